"""Cosine similarity, pairwise scores, semantic search and paraphrase mining.

A thin layer over ``sentence_transformers.util``: every function accepts texts (embedded with the
given model, default all-MiniLM-L6-v2) or ready embeddings (numpy arrays or torch tensors).

    >>> from st_multitask import cosine_similarity
    >>> scores = cosine_similarity(["The dog ran across the grass."],
    ...                            ["The cat jumped into the weeds.", "Why is the sky blue?"])
    >>> print(scores.round(2))
    [[0.38 0.07]]
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np

from .backbone import embed
from .errors import InputError

if TYPE_CHECKING:
    import torch
    from sentence_transformers import SentenceTransformer

__all__ = ["Hit", "Paraphrase", "cosine_similarity", "pairwise_similarity", "paraphrases", "search"]


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


def _embeddings(
    x: Any, model: SentenceTransformer | str | os.PathLike[str] | None, batch_size: int, what: str
) -> torch.Tensor:
    import torch

    if isinstance(x, str):
        x = [x]
    if isinstance(x, torch.Tensor):
        tensor = x.detach().float()
    elif isinstance(x, np.ndarray) and x.dtype.kind in "fiu":
        tensor = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    else:
        if not isinstance(x, Sequence) or not all(isinstance(t, str) for t in x):
            raise InputError(
                f"{what} must be a list of strings or an embedding array, got {type(x).__name__}."
            )
        if not x:
            raise InputError(f"{what} is empty: pass at least one text.")
        tensor = torch.from_numpy(embed(list(x), model=model, batch_size=batch_size))
    if tensor.ndim == 1:
        tensor = tensor.unsqueeze(0)
    if tensor.ndim != 2 or tensor.shape[0] == 0:
        raise InputError(
            f"{what} must be a non-empty 2-D array of embeddings, got shape {tuple(tensor.shape)}."
        )
    return tensor


def _pair(a: Any, b: Any, model: Any, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    ea = _embeddings(a, model, batch_size, "a")
    eb = _embeddings(b, model, batch_size, "b")
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
    from sentence_transformers import util

    ea, eb = _pair(a, b, model, batch_size)
    return util.cos_sim(ea, eb).numpy().astype(np.float32)


def pairwise_similarity(
    a: Any, b: Any, model: SentenceTransformer | str | os.PathLike[str] | None = None, batch_size: int = 64
) -> np.ndarray:
    """Cosine similarity of ``a[i]`` with ``b[i]`` for every i: shape ``(n,)``.

    >>> print(pairwise_similarity(np.eye(2), np.ones((2, 2))).round(3))
    [0.707 0.707]
    """
    from sentence_transformers import util

    if len(a) != len(b):
        raise InputError(f"pairwise_similarity needs as many items in a as in b: got {len(a)} and {len(b)}.")
    ea, eb = _pair(a, b, model, batch_size)
    return util.pairwise_cos_sim(ea, eb).numpy().astype(np.float32)


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
    from sentence_transformers import util

    _check_top_k(top_k)
    eq, ec = _pair(queries, corpus, model, batch_size)
    texts = list(corpus) if _is_texts(corpus) else None
    results = util.semantic_search(eq, ec, top_k=top_k)
    return [
        [
            Hit(
                corpus_id=int(h["corpus_id"]),
                score=float(h["score"]),
                text=texts[int(h["corpus_id"])] if texts is not None else None,
            )
            for h in hits
        ]
        for hits in results
    ]


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
    from sentence_transformers import util

    _check_top_k(top_k)
    emb = _embeddings(texts, model, batch_size, "texts")
    if emb.shape[0] < 2:
        raise InputError("paraphrases needs at least two texts.")
    found = util.paraphrase_mining_embeddings(emb, top_k=top_k)
    return [Paraphrase(i=int(i), j=int(j), score=float(score)) for score, i, j in found]


def _is_texts(x: Any) -> bool:
    return isinstance(x, str) or (isinstance(x, Sequence) and all(isinstance(t, str) for t in x))


def _check_top_k(top_k: int) -> None:
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise InputError(f"top_k must be a positive integer, got {top_k!r}.")
