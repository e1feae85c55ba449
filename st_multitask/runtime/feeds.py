"""What a model graph reads, computed on the host from the texts (numpy, no torch).

A graph of the whole model (backbone and heads, see :mod:`st_multitask.runtime.torch_graph`) reads
the token inputs and, when its heads ask for them:

- ``piece_word`` (batch, seq): the word of each word piece (-1: none), with ``word_mask``
  (batch, words) and ``word_count`` (batch,) for token heads;
- ``word_shape`` (batch, words, shapes) and ``word_chars`` (batch, words, chars);
- ``window_mean`` (batch, rows): how the rows of a batch (each text's first window, then the
  overlapping windows of texts past the model window) average into texts, for ``long: chunk``;
- ``ngram_ids.<task>`` / ``ngram_weights.<task>`` (batch, width): a hybrid head's TF-IDF rows.

Torch and the exported graphs are fed by this one module, so both read the same numbers.

    >>> plan = FeedPlan(words=True)
    >>> plan.input_names()
    ['input_ids', 'attention_mask', 'token_type_ids', 'piece_word', 'word_mask', 'word_count']
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ..alignment import CHAR_WIDTH, SHAPE_FEATURES, piece_to_word, word_char_rows, word_shape_rows

if TYPE_CHECKING:
    from ..text_features import SparseFeatures

__all__ = [
    "TOKEN_INPUTS",
    "FeedPlan",
    "TextTokens",
    "TokenBatch",
    "build_feeds",
    "chunk_text",
    "concat_batches",
    "dummy_feeds",
    "ngram_inputs",
    "output_name",
    "words_read",
]

TOKEN_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
SENTENCE_EMBEDDING = "sentence_embedding"


def output_name(task: str) -> str:
    """The graph output holding a head's probabilities."""
    return f"probabilities.{task}"


def ngram_inputs(task: str) -> tuple[str, str]:
    """The graph inputs holding a hybrid head's TF-IDF ids and weights."""
    return f"ngram_ids.{task}", f"ngram_weights.{task}"


@dataclass
class TokenBatch:
    """A tokenized, right-padded batch (numpy int64 arrays of shape (batch, seq))."""

    input_ids: np.ndarray
    attention_mask: np.ndarray
    token_type_ids: np.ndarray
    special_tokens_mask: np.ndarray
    offsets: np.ndarray  # (batch, seq, 2) character span of each piece; (0, 0) for specials/padding

    def feeds(self) -> dict[str, np.ndarray]:
        return {
            "input_ids": self.input_ids,
            "attention_mask": self.attention_mask,
            "token_type_ids": self.token_type_ids,
        }


class TextTokens(Protocol):
    """What the host side asks of a tokenizer (the fast path's and torch's answer it alike)."""

    window: int  # word pieces of a text the model reads (its window less the special tokens)

    def batch(self, texts: Sequence[str]) -> TokenBatch: ...

    def batches(self, texts: Sequence[str], batch_size: int) -> Iterator[tuple[list[int], TokenBatch]]: ...

    def lengths(self, texts: Sequence[str]) -> list[int]: ...

    def offsets(self, text: str) -> list[tuple[int, int]]: ...


def concat_batches(first: TokenBatch, second: TokenBatch, pad_id: int = 0) -> TokenBatch:
    """The rows of both batches, right-padded to the longer width."""
    width = max(first.input_ids.shape[1], second.input_ids.shape[1])

    def widen(values: np.ndarray, fill: int) -> np.ndarray:
        pad = [(0, 0), (0, width - values.shape[1])] + [(0, 0)] * (values.ndim - 2)
        return np.pad(values, pad, constant_values=fill)

    parts = []
    for name, fill in (
        ("input_ids", pad_id),
        ("attention_mask", 0),
        ("token_type_ids", 0),
        ("special_tokens_mask", 1),
        ("offsets", 0),
    ):
        parts.append(np.concatenate([widen(getattr(first, name), fill), widen(getattr(second, name), fill)]))
    return TokenBatch(*parts)


def chunk_text(text: str, offsets: Sequence[tuple[int, int]], window: int) -> list[str]:
    """Overlapping windows (half a window of overlap) of ``text`` as substrings of it, from the
    character spans of its word pieces; a text that fits is one window."""
    if len(offsets) <= window:
        return [text]
    step = max(1, window // 2)
    pieces = []
    for start in range(0, len(offsets), step):
        end = min(start + window, len(offsets))
        pieces.append(text[offsets[start][0] : offsets[end - 1][1]])
        if end == len(offsets):
            break
    return pieces


@dataclass
class FeedPlan:
    """Which host-side inputs a graph reads (decided by its heads)."""

    words: bool = False  # token heads: piece_word, word_mask, word_count
    word_shape: bool = False
    word_chars: bool = False
    windows: bool = False
    ngrams: dict[str, SparseFeatures | None] = field(default_factory=dict)  # task -> None: unfitted

    @classmethod
    def for_heads(cls, heads: dict[str, Any]) -> FeedPlan:
        """The plan of torch heads (their ``level``, ``uses_*`` and ``reads_windows`` flags)."""
        return cls(
            words=any(h.level == "token" for h in heads.values()),
            word_shape=any(h.uses_word_shape for h in heads.values()),
            word_chars=any(h.uses_word_chars for h in heads.values()),
            windows=any(h.reads_windows for h in heads.values()),
            ngrams={name: h._sparse for name, h in heads.items() if getattr(h, "uses_text", False)},
        )

    def narrowed(self, heads: Mapping[str, Any]) -> FeedPlan:
        """What the asked ``heads`` (by name; a ``level`` each) read of this plan; a graph's other
        inputs are fed empty (one padding word, no n-grams), so a topic alone costs no word
        features or tagging."""
        words = any(head.level == "token" for head in heads.values())
        return FeedPlan(
            words=self.words and words,
            word_shape=self.word_shape and words,
            word_chars=self.word_chars and words,
            windows=self.windows and any(head.level == "sentence" for head in heads.values()),
            ngrams={task: sparse for task, sparse in self.ngrams.items() if task in heads},
        )

    @classmethod
    def from_inputs(cls, names: Sequence[str], ngrams: Mapping[str, SparseFeatures | None]) -> FeedPlan:
        """The plan of a graph from its input names (and the fitted TF-IDF features per task)."""
        tasks = [n.split(".", 1)[1] for n in names if n.startswith("ngram_ids.")]
        return cls(
            words="piece_word" in names,
            word_shape="word_shape" in names,
            word_chars="word_chars" in names,
            windows="window_mean" in names,
            ngrams={task: ngrams.get(task) for task in tasks},
        )

    def input_names(self) -> list[str]:
        names = list(TOKEN_INPUTS)
        if self.words:
            names += ["piece_word", "word_mask", "word_count"]
        if self.word_shape:
            names.append("word_shape")
        if self.word_chars:
            names.append("word_chars")
        if self.windows:
            names.append("window_mean")
        for task in self.ngrams:
            names += list(ngram_inputs(task))
        return names


def _window_rows(tokens: TextTokens, texts: list[str], batch: TokenBatch) -> tuple[TokenBatch, np.ndarray]:
    """The batch with the windows of texts past the model window appended, and the (texts, rows)
    matrix that averages each text's windows (a text that fits is its own row)."""
    over = [i for i, n in enumerate(tokens.lengths(texts)) if n > tokens.window]
    chunks = {i: chunk_text(texts[i], tokens.offsets(texts[i]), tokens.window) for i in over}
    extra = [piece for i in over for piece in chunks[i]]
    rows = len(texts) + len(extra)
    mean = np.zeros((len(texts), rows), dtype=np.float32)
    mean[np.arange(len(texts)), np.arange(len(texts))] = 1.0
    column = len(texts)
    for i in over:
        mean[i, i] = 0.0
        mean[i, column : column + len(chunks[i])] = 1.0 / len(chunks[i])
        column += len(chunks[i])
    if extra:
        batch = concat_batches(batch, tokens.batch(extra))
    return batch, mean


def build_feeds(
    plan: FeedPlan,
    tokens: TextTokens,
    texts: list[str],
    spans: list[list[tuple[int, int]]],
    batch: TokenBatch | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The graph's inputs for ``texts`` (and their word ``spans``), and ``piece_word`` (batch, seq).

    ``batch`` is the texts' tokenized batch when the caller has it already."""
    batch = tokens.batch(texts) if batch is None else batch
    offsets = batch.offsets.tolist()
    piece_word = np.array(
        [piece_to_word([tuple(o) for o in offsets[row]], spans[row]) for row in range(len(texts))],
        dtype=np.int64,
    ).reshape(len(texts), -1)
    n_words = max([len(s) for s in spans] + [1])  # one padding word at least: no empty axes
    if plan.windows:
        batch, feeds_mean = _window_rows(tokens, texts, batch)
    feeds = batch.feeds()
    if plan.words:
        feeds["piece_word"] = piece_word
        mask = np.zeros((len(texts), n_words), dtype=np.int64)
        for row, word_spans in enumerate(spans):
            mask[row, : len(word_spans)] = 1
        feeds["word_mask"] = mask
        feeds["word_count"] = np.array([len(s) for s in spans], dtype=np.int64)
    if plan.word_shape:
        feeds["word_shape"] = np.asarray(word_shape_rows(texts, spans, n_words), dtype=np.float32).reshape(
            len(texts), n_words, len(SHAPE_FEATURES)
        )
    if plan.word_chars:
        feeds["word_chars"] = np.asarray(word_char_rows(texts, spans, n_words), dtype=np.int64).reshape(
            len(texts), n_words, CHAR_WIDTH
        )
    if plan.windows:
        feeds["window_mean"] = feeds_mean
    for task, sparse in plan.ngrams.items():
        if sparse is None:
            from ..errors import InputError

            raise InputError(
                f"The hybrid head {task!r} has no vocabulary yet: fit it on the training texts "
                "(fit_features), which training does before the first step."
            )
        ids, weights = sparse.transform(texts)
        feeds[ngram_inputs(task)[0]], feeds[ngram_inputs(task)[1]] = ids, weights
    return feeds, piece_word


def dummy_feeds(names: Sequence[str], batch: TokenBatch, seq: int | None = None) -> dict[str, np.ndarray]:
    """Inputs for a graph's heads that nobody reads: what an embedding-only run feeds a graph of
    the whole model (one empty word, no n-grams; each text is its own window). ``seq``: the width
    of the token inputs they go with, when wider than ``batch``'s (windows appended)."""
    n, width = batch.input_ids.shape
    seq = width if seq is None else seq
    values: dict[str, np.ndarray] = {
        "piece_word": np.full((n, seq), -1, dtype=np.int64),
        "word_mask": np.zeros((n, 1), dtype=np.int64),
        "word_count": np.ones(n, dtype=np.int64),
        "word_shape": np.zeros((n, 1, len(SHAPE_FEATURES)), dtype=np.float32),
        "word_chars": np.zeros((n, 1, CHAR_WIDTH), dtype=np.int64),
        "window_mean": np.eye(n, dtype=np.float32),
    }
    feeds = batch.feeds()
    for name in names:
        if name in feeds:
            continue
        if name.startswith("ngram_ids."):
            feeds[name] = np.zeros((n, 1), dtype=np.int64)
        elif name.startswith("ngram_weights."):
            feeds[name] = np.zeros((n, 1), dtype=np.float32)
        else:
            feeds[name] = values[name]
    return feeds


def words_read(piece_word: np.ndarray, n_words: int) -> np.ndarray:
    """(batch, n_words) True for the words with a piece inside the model window."""
    read = np.zeros((piece_word.shape[0], n_words + 1), dtype=bool)
    rows, cols = np.nonzero(piece_word >= 0)
    read[rows, piece_word[rows, cols]] = True
    return read[:, :n_words]
