"""What the pipeline accepts as input, checked once: texts, pre-split word lists, scores.

>>> texts_and_spans(["Apple buys it.", ["EU", "rejects", "it"]])
(['Apple buys it.', 'EU rejects it'], [[(0, 5), (6, 10), (11, 13), (13, 14)], [(0, 2), (3, 10), (11, 13)]])
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .alignment import split_words, words_to_text
from .errors import InputError

__all__ = ["Item", "check_batch_size", "check_items", "check_min_score", "check_texts", "texts_and_spans"]

Item = str | Sequence[str]  # a raw text, or a text already split into words


def check_texts(texts: str | Iterable[str], what: str = "embed") -> list[str]:
    """Texts as a list of strings (a lone string is one text); none at all is an error."""
    if isinstance(texts, str):
        return [texts]
    if not isinstance(texts, Iterable):
        raise InputError(f"Expected a list of strings, got {type(texts).__name__}.")
    texts = list(texts)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise InputError(f"Text {i} is a {type(text).__name__}, not a string.")
    if not texts:
        raise InputError(f"No texts to {what}: pass at least one string.")
    return texts


def check_items(texts: Item | Iterable[Item]) -> list[Item]:
    """Texts to predict as a list; a lone string is one text; blank or no texts are errors."""
    if isinstance(texts, str):
        return [texts]
    items = list(texts)
    if not items:
        raise InputError("No texts to predict: pass at least one string.")
    for i, item in enumerate(items):
        if isinstance(item, str) and not item.strip():
            raise InputError(f"Text {i} is blank.")
    return items


def check_min_score(min_score: float | None) -> None:
    """``min_score`` is ``None`` or a probability in [0, 1]."""
    if min_score is not None and (
        isinstance(min_score, bool) or not isinstance(min_score, (int, float)) or not 0.0 <= min_score <= 1.0
    ):
        raise InputError(f"min_score must be a probability between 0 and 1, got {min_score!r}.")


def check_batch_size(batch_size: object) -> None:
    """``batch_size`` is a positive integer."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch_size must be a positive integer, got {batch_size!r}.")


def texts_and_spans(items: Sequence[Any]) -> tuple[list[str], list[list[tuple[int, int]]]]:
    """Each item as a text and its words' character spans: raw strings are split into words
    CoNLL-style, pre-split word lists are joined with single spaces."""
    texts, spans = [], []
    for i, item in enumerate(items):
        if isinstance(item, str):
            texts.append(item)
            spans.append(split_words(item))
        elif isinstance(item, Sequence) and all(isinstance(w, str) for w in item):
            text, word_spans = words_to_text(list(item))
            texts.append(text)
            spans.append(word_spans)
        else:
            raise InputError(f"Item {i} must be a string or a list of words, got {type(item).__name__}.")
    return texts, spans
