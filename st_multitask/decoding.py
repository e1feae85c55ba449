"""Turning head probabilities into answers, the same on every engine: one decoder per head kind,
built from the head's saved config (torch-free), with the functions they share.

>>> decode_sentence(["negative", "positive"], [0.2, 0.8])
{'label': 'positive', 'score': 0.8, 'probabilities': {'negative': 0.2, 'positive': 0.8}}
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .alignment import Entity, decode_bio
from .errors import InputError

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "Decoder",
    "SentenceDecoder",
    "TokenDecoder",
    "decode_sentence",
    "decode_words",
    "decoder_for",
    "register_decoder",
    "word_tags",
]


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


class Decoder:
    """How one head's probabilities become answers, torch-free and the same on every engine.

    Built from the head's saved config (:func:`decoder_for`); the graph gives each head's
    probabilities, (labels,) per text for a sentence head and (words, labels) for a token head.
    A head kind brings its own decoding by registering a subclass (:func:`register_decoder`).
    """

    level: str = "sentence"

    def __init__(self, kind: str, labels: Sequence[str], config: dict[str, Any], is_trained: bool = True):
        self.kind = kind
        self.labels = list(labels)
        self.config = dict(config)
        self.is_trained = is_trained

    def __repr__(self) -> str:
        return f"{type(self).__name__}(kind={self.kind!r}, labels={self.labels})"

    @property
    def multi_label(self) -> bool:
        return bool(self.config.get("multi_label", False))

    @property
    def reads_windows(self) -> bool:
        """Whether the head reads a long text whole, as overlapping windows (``long: chunk``)."""
        return self.config.get("long") == "chunk"

    def probabilities(self, proba: np.ndarray, n_words: int) -> np.ndarray:
        """One text's probabilities as :meth:`predict_proba` gives them."""
        return proba

    def decode(
        self,
        proba: np.ndarray,
        text: str,
        spans: Sequence[tuple[int, int]],
        read: Sequence[bool],
        min_score: float | None = None,
    ) -> Any:  # pragma: no cover - abstract
        """One text's answer from its probabilities (``read``: its words inside the window)."""
        raise NotImplementedError

    def label_of(self, proba: np.ndarray, spans: Sequence[tuple[int, int]], read: Sequence[bool]) -> Any:
        """What evaluation scores: a label (sentence) or the repaired IOB2 tags of the words."""
        raise NotImplementedError  # pragma: no cover - abstract

    main_metric = "macro_f1"  # what evaluation and training's model selection read first

    def arrow_fields(self, name: str) -> list[Any]:  # pragma: no cover - abstract
        """The columns of the head ``name`` in a batch output (pyarrow fields)."""
        raise NotImplementedError

    def columns(self, name: str, answers: Sequence[Any]) -> dict[str, list[Any]]:  # pragma: no cover
        """The answers of a batch of texts (``None``: no answer) as the values of :meth:`arrow_fields`."""
        raise NotImplementedError


class SentenceDecoder(Decoder):
    """A label per text (or a list of labels, multi-label), with an out-of-scope ``other``."""

    level = "sentence"

    @property
    def other(self) -> tuple[str, float] | None:
        label, threshold = self.config.get("other_label"), self.config.get("other_threshold")
        return None if label is None or threshold is None else (label, float(threshold))

    def decode(
        self,
        proba: np.ndarray,
        text: str,
        spans: Sequence[tuple[int, int]],
        read: Sequence[bool],
        min_score: float | None = None,
    ) -> dict[str, Any]:
        threshold = float(self.config.get("threshold", 0.5))
        return decode_sentence(
            self.labels, proba.tolist(), self.multi_label, threshold, min_score, self.other
        )

    def label_of(self, proba: np.ndarray, spans: Sequence[tuple[int, int]], read: Sequence[bool]) -> Any:
        return self.decode(proba, "", spans, read)["label"]

    def arrow_fields(self, name: str) -> list[Any]:
        import pyarrow as pa

        many = self.multi_label
        label, score = (
            (pa.list_(pa.string()), pa.list_(pa.float32())) if many else (pa.string(), pa.float32())
        )
        return [pa.field(f"{name}_label", label), pa.field(f"{name}_score", score)]

    def columns(self, name: str, answers: Sequence[Any]) -> dict[str, list[Any]]:
        return {
            f"{name}_label": [None if a is None else a["label"] for a in answers],
            f"{name}_score": [None if a is None else a["score"] for a in answers],
        }


class TokenDecoder(Decoder):
    """Entities with character offsets from per-word IOB2 labels (argmax per word)."""

    level = "token"

    def probabilities(self, proba: np.ndarray, n_words: int) -> np.ndarray:
        return proba[:n_words]  # (words, labels): the padding words dropped

    def decode(
        self,
        proba: np.ndarray,
        text: str,
        spans: Sequence[tuple[int, int]],
        read: Sequence[bool],
        min_score: float | None = None,
    ) -> list[Entity]:
        words = proba[: len(spans)]
        return decode_words(self.labels, words.argmax(-1).tolist(), words.max(-1).tolist(), read, spans, text)

    def label_of(
        self, proba: np.ndarray, spans: Sequence[tuple[int, int]], read: Sequence[bool]
    ) -> list[str]:
        from .alignment import repair_bio

        return repair_bio(word_tags(self.labels, proba[: len(spans)].argmax(-1).tolist(), read))

    main_metric = "f1"

    def arrow_fields(self, name: str) -> list[Any]:
        import pyarrow as pa

        entity = pa.struct(
            [
                ("text", pa.string()),
                ("label", pa.string()),
                ("start", pa.int32()),
                ("end", pa.int32()),
                ("score", pa.float32()),
            ]
        )
        return [pa.field(name, pa.list_(entity))]

    def columns(self, name: str, answers: Sequence[Any]) -> dict[str, list[Any]]:
        return {name: [None if a is None else [dict(e) for e in a] for a in answers]}


_DECODERS: dict[str, type[Decoder]] = {}
_BY_LEVEL: dict[str, type[Decoder]] = {"sentence": SentenceDecoder, "token": TokenDecoder}


def register_decoder(kind: str, cls: type[Decoder]) -> None:
    """Decode heads of ``kind`` with ``cls`` on every engine (a head class may name it as its
    ``decoder`` attribute instead; :func:`st_multitask.heads.register_head` registers that)."""
    if not (isinstance(cls, type) and issubclass(cls, Decoder)):
        raise InputError(f"{cls!r} is not a subclass of st_multitask.decoding.Decoder.")
    _DECODERS[kind] = cls


def decoder_for(kind: str, level: str, config: dict[str, Any], is_trained: bool = True) -> Decoder:
    """The decoder of a head from its saved config: its kind's own, else its level's.

    >>> decoder_for("mlp", "sentence", {"labels": ["neg", "pos"]}).labels
    ['neg', 'pos']
    """
    cls = _DECODERS.get(kind) or _BY_LEVEL.get(level)
    if cls is None:
        raise InputError(f"Unknown head level {level!r}. Valid: {', '.join(_BY_LEVEL)}.")
    return cls(kind, config["labels"], config, is_trained)
