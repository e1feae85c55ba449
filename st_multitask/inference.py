"""What every multi-task model does before its heads run, torch or not: choose the tasks, check
the inputs, and give each text its word spans.

Shared by :class:`~st_multitask.model.MultiTaskModel` and
:class:`~st_multitask.exported_model.ExportedMultiTaskModel`.

    >>> texts_and_spans(["Apple buys it.", ["EU", "rejects", "it"]])
    (['Apple buys it.', 'EU rejects it'], [[(0, 5), (6, 10), (11, 13), (13, 14)], [(0, 2), (3, 10), (11, 13)]])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .alignment import split_words, words_to_text
from .errors import InputError

__all__ = ["TaskSelection", "check_items", "check_min_score", "texts_and_spans"]


class TaskSelection:
    """Mixin: ``_select(tasks)`` over ``self._heads`` (name -> head)."""

    _heads: Any

    @property
    def heads(self) -> dict[str, Any]:
        """The heads by name (a copy)."""
        return dict(self._heads.items())

    def _select(self, tasks: Sequence[str] | str | None) -> dict[str, Any]:
        if tasks is None:
            if not self._heads:
                raise InputError("This model has no heads; add one with add_head() or load a trained model.")
            return self.heads
        if isinstance(tasks, str):
            tasks = [t for t in tasks.split(",") if t]
        unknown = [t for t in tasks if t not in self._heads]
        if unknown:
            raise InputError(
                f"Unknown task {unknown[0]!r}. Valid: {', '.join(self._heads) or 'none (no heads)'}."
            )
        return {t: self._heads[t] for t in tasks}


def check_items(texts: Any) -> list:
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


def texts_and_spans(items: Sequence[str | Sequence[str]]) -> tuple[list[str], list[list[tuple[int, int]]]]:
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
