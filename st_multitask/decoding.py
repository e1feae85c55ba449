"""Turning head probabilities into answers, shared by the torch and the torch-free paths.

>>> decode_sentence(["negative", "positive"], [0.2, 0.8])
{'label': 'positive', 'score': 0.8, 'probabilities': {'negative': 0.2, 'positive': 0.8}}
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .alignment import Entity, decode_bio

__all__ = ["decode_sentence", "decode_words", "word_tags"]


def decode_sentence(
    labels: Sequence[str],
    values: Sequence[float],
    multi_label: bool = False,
    threshold: float = 0.5,
    min_score: float | None = None,
    other: tuple[str, float] | None = None,
) -> dict[str, Any]:
    """One text's ``{"label", "score", "probabilities"}`` from its probability vector; the label
    is ``None`` (abstain) when the top probability is below ``min_score``.

    ``other`` is ``(label, threshold)`` for a head with an out-of-scope class: the text gets that
    label when its probability reaches the threshold, and otherwise the best of the other labels
    (``min_score`` applies to whichever label is chosen).

    >>> decode_sentence(["other", "sport"], [0.4, 0.6], other=("other", 0.3))["label"]
    'other'
    >>> decode_sentence(["other", "sport"], [0.4, 0.6], other=("other", 0.5))["label"]
    'sport'
    """
    values = [float(v) for v in values]
    probs = dict(zip(labels, values))
    if multi_label:
        chosen = [label for label, p in probs.items() if p >= threshold]
        return {"label": chosen, "score": [probs[label] for label in chosen], "probabilities": probs}
    if other is not None and other[0] in probs and len(values) > 1:
        name, cutoff = other
        if probs[name] >= cutoff:
            label = None if min_score is not None and probs[name] < min_score else name
            return {"label": label, "score": probs[name], "probabilities": probs}
        best = max((i for i, label in enumerate(labels) if label != name), key=values.__getitem__)
    else:
        best = max(range(len(values)), key=values.__getitem__)
    label = None if min_score is not None and values[best] < min_score else labels[best]
    return {"label": label, "score": values[best], "probabilities": probs}


def word_tags(labels: Sequence[str], ids: Sequence[int], seen: Sequence[bool]) -> list[str]:
    """Each word's tag; words the model did not read (past its window) are ``O``."""
    return [labels[i] if w < len(seen) and seen[w] else "O" for w, i in enumerate(ids)]


def decode_words(
    labels: Sequence[str],
    ids: Sequence[int],
    scores: Sequence[float],
    seen: Sequence[bool],
    spans: Sequence[tuple[int, int]],
    text: str,
) -> list[Entity]:
    """Entities of one text from its words' best label ids and scores."""
    return decode_bio(word_tags(labels, ids, seen), scores, spans, text)
