"""Cosine similarity, pairwise scores, similarity records, semantic search and paraphrase mining.

In numpy, so it runs on the fast path without torch: every function accepts texts (embedded with
the given model, default all-MiniLM-L6-v2) or ready embeddings (numpy arrays or torch tensors).

    >>> from st_multitask import cosine_similarity
    >>> scores = cosine_similarity(["The dog ran across the grass."],
    ...                            ["The cat jumped into the weeds.", "Why is the sky blue?"])
    >>> print(scores.round(2))
    [[0.38 0.07]]
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, TypedDict

import numpy as np

from .embedding import embed
from .errors import InputError
from .vectors import unit_rows as _unit

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = [
    "SIMILARITY_MODES",
    "Hit",
    "Paraphrase",
    "as_embeddings",
    "check_top_k",
    "cosine_similarity",
    "is_texts",
    "pairwise_similarity",
    "paraphrases",
    "search",
    "similarity_records",
]

SIMILARITY_MODES = ("best", "pairwise", "matrix")
SimilarityMode = Literal["best", "pairwise", "matrix"]


class Hit(TypedDict):
    """One search result: the corpus index, its score and (when the corpus was texts) its text."""

    corpus_id: int
    score: float
    text: str | None


class Paraphrase(TypedDict):
    """Two texts (by index) and their cosine similarity."""

    i: int
    j: int
    score: float


def as_embeddings(
    x: Any, model: SentenceTransformer | str | os.PathLike[str] | None, batch_size: int, what: str
) -> np.ndarray:
    """(n, dim) float32 embeddings of texts (embedded with ``model``) or of ready vectors."""
    if isinstance(x, str):
        x = [x]
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch tensor, converted without importing torch
        array = x.detach().float().cpu().numpy()
    elif isinstance(x, np.ndarray) and x.dtype.kind in "fiu":
        array = np.ascontiguousarray(x, dtype=np.float32)
    else:
        if not isinstance(x, Sequence) or not all(isinstance(t, str) for t in x):
            raise InputError(
                f"{what} must be a list of strings or an embedding array, got {type(x).__name__}."
            )
        if not x:
            raise InputError(f"{what} is empty: pass at least one text.")
        array = embed(list(x), model=model, batch_size=batch_size)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[0] == 0:
        raise InputError(
            f"{what} must be a non-empty 2-D array of embeddings, got shape {tuple(array.shape)}."
        )
    return array


def _pair(a: Any, b: Any, model: Any, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    ea = as_embeddings(a, model, batch_size, "a")
    eb = as_embeddings(b, model, batch_size, "b")
    if ea.shape[1] != eb.shape[1]:
        raise InputError(f"Embedding widths differ: a has {ea.shape[1]}, b has {eb.shape[1]}.")
    return ea, eb


def cosine_similarity(
    a: Any, b: Any, model: SentenceTransformer | str | os.PathLike[str] | None = None, batch_size: int = 64
) -> np.ndarray:
    """Cosine similarity matrix of shape ``(len(a), len(b))``.

    >>> cosine_similarity(np.eye(2), np.eye(2)).tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    """
    ea, eb = _pair(a, b, model, batch_size)
    return (_unit(ea) @ _unit(eb).T).astype(np.float32)


def pairwise_similarity(
    a: Any, b: Any, model: SentenceTransformer | str | os.PathLike[str] | None = None, batch_size: int = 64
) -> np.ndarray:
    """Cosine similarity of ``a[i]`` with ``b[i]`` for every i: shape ``(n,)``.

    >>> print(pairwise_similarity(np.eye(2), np.ones((2, 2))).round(3))
    [0.707 0.707]
    """
    if len(a) != len(b):
        raise InputError(f"pairwise_similarity needs as many items in a as in b: got {len(a)} and {len(b)}.")
    ea, eb = _pair(a, b, model, batch_size)
    return np.einsum("ij,ij->i", _unit(ea), _unit(eb)).astype(np.float32)


def similarity_records(
    texts_a: Sequence[str],
    texts_b: Sequence[str],
    mode: SimilarityMode = "best",
    top_k: int = 1,
    *,
    embeddings_a: Any = None,
    embeddings_b: Any = None,
    lines_a: Sequence[int] | None = None,
    lines_b: Sequence[int] | None = None,
    model: SentenceTransformer | str | os.PathLike[str] | None = None,
    batch_size: int = 64,
) -> list[dict[str, Any]] | dict[str, Any]:
    """Texts ``a`` compared with texts ``b``, as the records ``stmt similarity --format json``
    prints and ``POST /similarity`` returns (data: the caller formats them).

    - ``best``: for each text of a, its ``top_k`` closest texts of b, best first (ties in the
      order of b): ``{"line_a", "a", "rank", "line_b", "b", "score"}``, without ``rank`` when
      there is one match a text (``top_k`` 1, or b holds one text).
    - ``pairwise``: a[i] with b[i]: ``{"line", "a", "b", "score"}``.
    - ``matrix``: every a with every b: one ``{"a": [...], "b": [...], "scores": [[...]]}``, the
      scores rounded to 6 places (float32 holds no more).

    ``lines_a`` / ``lines_b`` number the texts (their lines in a file; default 1, 2, ...); the
    texts are embedded with ``model`` unless their ``embeddings_a`` / ``embeddings_b`` are given.

    >>> vectors = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> similarity_records(["x", "y"], ["p", "q"], embeddings_a=vectors, embeddings_b=vectors[::-1])
    [{'line_a': 1, 'a': 'x', 'line_b': 2, 'b': 'q', 'score': 1.0}, {'line_a': 2, 'a': 'y', 'line_b': 1, 'b': 'p', 'score': 1.0}]
    >>> similarity_records(["x"], ["p"], "pairwise", embeddings_a=vectors[:1], embeddings_b=vectors[:1])
    [{'line': 1, 'a': 'x', 'b': 'p', 'score': 1.0}]
    """
    if mode not in SIMILARITY_MODES:
        raise InputError(f"Unknown similarity mode {mode!r}. Valid: {', '.join(SIMILARITY_MODES)}.")
    check_top_k(top_k)
    lines_a = list(lines_a) if lines_a is not None else list(range(1, len(texts_a) + 1))
    lines_b = list(lines_b) if lines_b is not None else list(range(1, len(texts_b) + 1))
    if len(lines_a) != len(texts_a) or len(lines_b) != len(texts_b):
        raise InputError("lines_a and lines_b must number every text of a and of b, one line each.")
    ea = as_embeddings(texts_a if embeddings_a is None else embeddings_a, model, batch_size, "a")
    eb = as_embeddings(texts_b if embeddings_b is None else embeddings_b, model, batch_size, "b")
    if len(ea) != len(texts_a) or len(eb) != len(texts_b):
        raise InputError(
            f"One embedding a text: a has {len(texts_a)} texts and {len(ea)} embeddings, "
            f"b has {len(texts_b)} texts and {len(eb)} embeddings."
        )
    if mode == "pairwise":
        scores = pairwise_similarity(ea, eb)
        return [
            {"line": line, "a": a, "b": b, "score": float(score)}
            for line, a, b, score in zip(lines_a, texts_a, texts_b, scores)
        ]
    if mode == "matrix":
        return {"a": list(texts_a), "b": list(texts_b), "scores": cosine_similarity(ea, eb).round(6).tolist()}
    records: list[dict[str, Any]] = []
    for i, hits in enumerate(search(ea, eb, top_k=top_k)):
        for rank, hit in enumerate(hits, 1):
            j = hit["corpus_id"]
            record = {
                "line_a": lines_a[i],
                "a": texts_a[i],
                "rank": rank,
                "line_b": lines_b[j],
                "b": texts_b[j],
            }
            if len(hits) == 1:
                del record["rank"]
            records.append({**record, "score": hit["score"]})
    return records


def search(
    queries: Any,
    corpus: Any,
    top_k: int = 5,
    model: SentenceTransformer | str | os.PathLike[str] | None = None,
    batch_size: int = 64,
) -> list[list[Hit]]:
    """Semantic search: for each query, the ``top_k`` most similar corpus entries, best first.

    >>> hits = search(["a pet animal"], ["The cat sat.", "Stocks fell.", "A dog barked."], top_k=2)
    >>> [h["text"] for h in hits[0]]
    ['A dog barked.', 'The cat sat.']
    """
    check_top_k(top_k)
    eq, ec = _pair(queries, corpus, model, batch_size)
    texts = list(corpus) if is_texts(corpus) else None
    scores = _unit(eq) @ _unit(ec).T  # (queries, corpus)
    k = min(top_k, scores.shape[1])
    results = []
    for row in scores:
        best = np.argpartition(-row, k - 1)[:k] if k < row.size else np.arange(row.size)
        best = best[np.lexsort((best, -row[best]))]  # by score, then by corpus position
        results.append(
            [
                Hit(corpus_id=int(i), score=float(row[i]), text=texts[int(i)] if texts is not None else None)
                for i in best
            ]
        )
    return results


def paraphrases(
    texts: Any,
    top_k: int = 100,
    model: SentenceTransformer | str | os.PathLike[str] | None = None,
    batch_size: int = 64,
) -> list[Paraphrase]:
    """Pairs of similar texts within one collection, best first (each text keeps its ``top_k`` best).

    >>> pairs = paraphrases(["A man eats food.", "A man is eating a meal.", "The sky is blue."])
    >>> (pairs[0]["i"], pairs[0]["j"])
    (0, 1)
    """
    check_top_k(top_k)
    emb = as_embeddings(texts, model, batch_size, "texts")
    if emb.shape[0] < 2:
        raise InputError("paraphrases needs at least two texts.")
    unit = _unit(emb)
    best: dict[tuple[int, int], float] = {}
    k = min(top_k, emb.shape[0] - 1)
    for start in range(0, len(unit), 1024):  # rows in chunks: memory stays (1024, n)
        scores = unit[start : start + 1024] @ unit.T
        for row, values in enumerate(scores, start):
            values[row] = -np.inf  # not itself
            for j in np.argpartition(-values, k - 1)[:k]:
                pair = (min(row, int(j)), max(row, int(j)))
                best[pair] = float(values[j])
    ranked = sorted(best.items(), key=lambda item: (-item[1], item[0]))
    return [Paraphrase(i=i, j=j, score=score) for (i, j), score in ranked]


def is_texts(x: Any) -> bool:
    return isinstance(x, str) or (isinstance(x, Sequence) and all(isinstance(t, str) for t in x))


def check_top_k(top_k: int) -> None:
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise InputError(f"top_k must be a positive integer, got {top_k!r}.")
