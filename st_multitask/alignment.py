"""Word pieces <-> words <-> character offsets, and IOB2 decoding (with repair) into entity spans.

Raw strings are split into words CoNLL-style (abbreviations such as ``U.K.`` stay whole, other
punctuation stands alone); pre-split word lists are joined with single spaces. Either way each
word has a character span in the text, and each word piece maps to the word whose span holds it.

    >>> text, spans = words_to_text(["Apple", "buys", "U.K.", "startup"])
    >>> text, spans[2]
    ('Apple buys U.K. startup', (11, 15))
    >>> decode_bio(["B-ORG", "O", "I-LOC", "O"], [0.9, 0.99, 0.8, 0.97], spans, text)
    [{'text': 'Apple', 'label': 'ORG', 'start': 0, 'end': 5, 'score': 0.9}, {'text': 'U.K.', 'label': 'LOC', 'start': 11, 'end': 15, 'score': 0.8}]
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, TypedDict

from .errors import InputError

if TYPE_CHECKING:
    from torch import Tensor

__all__ = [
    "ALIGNMENTS",
    "CHAR_VOCABULARY",
    "CHAR_WIDTH",
    "SHAPE_FEATURES",
    "Entity",
    "decode_bio",
    "piece_to_word",
    "pool_words",
    "repair_bio",
    "split_words",
    "word_shape_rows",
    "word_shapes",
    "words_to_text",
]

ALIGNMENTS = ("first", "mean")

# abbreviations with dots (U.K., e.g.), words with inner hyphens/apostrophes, numbers with , or .,
# then any other single non-space character
_WORD = re.compile(r"(?:\w\.){2,}|\w+(?:[-'’.,]\w+)*|\S", re.UNICODE)
# a clitic at the end of a word: n't, 's, 'm, 'd, 're, 've, 'll (either apostrophe)
_CLITIC = re.compile(r"(?:n['’]t|['’](?:s|m|d|re|ve|ll))$", re.IGNORECASE)


# what an uncased backbone cannot see, taken from the original characters of each word
SHAPE_FEATURES = (
    "title",  # Capitalised
    "upper",  # ALL CAPS (2+ letters)
    "lower",  # all lower case
    "mixed",  # other letter case (iPhone, McDonald)
    "digit",  # has a digit
    "punct",  # no letter or digit
    "first",  # first word of the text
    "after_punct",  # follows a sentence end (. ! ?)
    "inner_cap",  # capital letter after the first character
    "short",  # one character
)


def word_shapes(texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]], n_words: int) -> Tensor:
    """(batch, n_words, len(SHAPE_FEATURES)) 0/1 features of each word's original characters."""
    import torch

    rows = word_shape_rows(texts, spans, n_words)
    return torch.tensor(rows, dtype=torch.float).reshape(len(texts), n_words, len(SHAPE_FEATURES))


def word_shape_rows(
    texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]], n_words: int
) -> list[list[list[float]]]:
    """:func:`word_shapes` as nested lists (batch, n_words, features), for torch or numpy."""
    empty = [0.0] * len(SHAPE_FEATURES)
    rows = []
    for text, word_spans in zip(texts, spans):
        row, previous = [], ""
        for w, (start, end) in enumerate(word_spans):
            word = text[start:end]
            title, upper, lower, mixed, digit, punct, inner_cap, short = _shape(word)
            row.append(
                [
                    title,
                    upper,
                    lower,
                    mixed,
                    digit,
                    punct,
                    float(w == 0),
                    float(previous in (".", "!", "?")),
                    inner_cap,
                    short,
                ]
            )
            previous = word
        rows.append(row + [empty] * (n_words - len(row)))
    return rows


@functools.lru_cache(maxsize=65536)
def _shape(word: str) -> tuple[float, ...]:
    """The features of :data:`SHAPE_FEATURES` that depend on the word alone (words repeat: cached)."""
    letters = [c for c in word if c.isalpha()]
    upper = sum(c.isupper() for c in letters)
    return (
        float(bool(letters) and word[0].isupper() and upper == 1),
        float(len(letters) > 1 and upper == len(letters)),
        float(bool(letters) and upper == 0),
        float(bool(letters) and 1 < upper < len(letters)),
        float(any(c.isdigit() for c in word)),
        float(not any(c.isalnum() for c in word)),
        float(any(c.isupper() for c in word[1:])),
        float(len(word) == 1),
    )


CHAR_WIDTH = 16  # characters kept per word: all of a short word, the first and last 8 of a long one
CHAR_VOCABULARY = 258  # 0 pads, 1..256 are code points 0..255, 257 is any other character


def word_char_rows(
    texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]], n_words: int
) -> list[list[list[int]]]:
    """(batch, n_words, CHAR_WIDTH) character ids of each word's original characters (case kept),
    0-padded; for torch or numpy.

    >>> word_char_rows(["Hi you"], [[(0, 2), (3, 6)]], 2)[0][0][:3]
    [73, 106, 0]
    """
    half = CHAR_WIDTH // 2
    empty = [0] * CHAR_WIDTH
    rows = []
    for text, word_spans in zip(texts, spans):
        row = []
        for start, end in word_spans:
            word = text[start:end]
            if len(word) > CHAR_WIDTH:
                word = word[:half] + word[-half:]
            ids = [ord(c) + 1 if ord(c) < 256 else CHAR_VOCABULARY - 1 for c in word]
            row.append(ids + [0] * (CHAR_WIDTH - len(ids)))
        rows.append(row + [empty] * (n_words - len(row)))
    return rows


class Entity(TypedDict):
    """One entity: ``text == original[start:end]``."""

    text: str
    label: str
    start: int
    end: int
    score: float


def split_words(text: str) -> list[tuple[int, int]]:
    """Character spans of the words of ``text`` (CoNLL-like tokenization).

    Clitics stand alone as in CoNLL-2003 (Penn Treebank style), so an entity never swallows them:

    >>> text = "Apple's CEO doesn't know."
    >>> [text[s:e] for s, e in split_words(text)]
    ['Apple', "'s", 'CEO', 'does', "n't", 'know', '.']
    """
    spans = []
    for match in _WORD.finditer(text):
        start, end = match.span()
        clitic = _CLITIC.search(text, start, end)
        if clitic is not None and clitic.start() > start:
            spans += [(start, clitic.start()), (clitic.start(), end)]
        else:
            spans.append((start, end))
    return spans


def words_to_text(words: Sequence[str]) -> tuple[str, list[tuple[int, int]]]:
    """Join pre-split words with single spaces; return the text and each word's span in it."""
    spans, position = [], 0
    for i, word in enumerate(words):
        if not isinstance(word, str) or not word or any(c.isspace() for c in word):
            raise InputError(f"Word {i} ({word!r}) must be a non-empty string without spaces.")
        spans.append((position, position + len(word)))
        position += len(word) + 1
    return " ".join(words), spans


def piece_to_word(offsets: Sequence[tuple[int, int]], word_spans: Sequence[tuple[int, int]]) -> list[int]:
    """For each word piece (by its character span), the index of its word; -1 for special tokens."""
    result, w = [], 0
    for start, end in offsets:
        if start == end:  # special token or padding
            result.append(-1)
            continue
        while w < len(word_spans) and word_spans[w][1] <= start:
            w += 1
        result.append(w if w < len(word_spans) and word_spans[w][0] <= start < word_spans[w][1] else -1)
    return result


def pool_words(states: Tensor, piece_word: Tensor, n_words: int, mode: str = "first") -> Tensor:
    """Word vectors from word-piece vectors.

    Args:
        states: (batch, seq, dim) word-piece vectors.
        piece_word: (batch, seq) word index of each piece, -1 for none.
        n_words: words per row in the output (the longest text's word count).
        mode: ``first`` piece of each word, or ``mean`` of its pieces.

    Returns:
        (batch, n_words, dim); words with no piece (past the model window) are zero vectors.
    """
    import torch

    if mode not in ALIGNMENTS:
        raise InputError(f"Unknown alignment {mode!r}. Valid: {', '.join(ALIGNMENTS)}.")
    batch, _, dim = states.shape
    valid = piece_word >= 0  # (batch, seq)
    index = piece_word.clamp(min=0)
    if mode == "mean":
        total = states.new_zeros(batch, n_words, dim)
        total.scatter_add_(1, index.unsqueeze(-1).expand(-1, -1, dim), states * valid.unsqueeze(-1))
        count = states.new_zeros(batch, n_words).scatter_add_(1, index, valid.to(states.dtype))
        return total / count.clamp(min=1).unsqueeze(-1)
    # first: the piece whose word differs from the previous piece's word
    previous = torch.cat([piece_word.new_full((batch, 1), -1), piece_word[:, :-1]], dim=1)
    first = valid & (piece_word != previous)  # (batch, seq)
    out = states.new_zeros(batch, n_words, dim)
    rows, cols = first.nonzero(as_tuple=True)
    out[rows, piece_word[rows, cols]] = states[rows, cols]
    return out


def repair_bio(tags: Sequence[str]) -> list[str]:
    """Make an IOB2 sequence valid: an ``I-X`` that does not continue an ``X`` entity opens one (``B-X``)."""
    repaired, previous = [], "O"
    for tag in tags:
        if tag.startswith("I-") and previous[2:] != tag[2:]:
            tag = "B-" + tag[2:]
        repaired.append(tag)
        previous = tag
    return repaired


def decode_bio(
    tags: Sequence[str], scores: Sequence[float], word_spans: Sequence[tuple[int, int]], text: str
) -> list[Entity]:
    """Entities from per-word IOB2 tags (repaired first, then chunked by seqeval); the score is the
    mean of the words' scores."""
    from seqeval.scheme import IOB2, Entities

    tags = repair_bio(tags)[: min(len(scores), len(word_spans))]
    entities = []
    for chunk in Entities([tags], IOB2).entities[0]:  # words [start, end) of one entity
        start, end = word_spans[chunk.start][0], word_spans[chunk.end - 1][1]
        words = scores[chunk.start : chunk.end]
        score = round(sum(words) / len(words), 4)
        entities.append(Entity(text=text[start:end], label=chunk.tag, start=start, end=end, score=score))
    return entities
