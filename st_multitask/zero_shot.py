"""Zero-shot labels: a classifier made from label names (and descriptions), no examples.

Each label's prototype is the normalised mean of the backbone's embeddings of the label put into
several templates ("This text is about {label}.") and of its description, if given
(``"finance: money, markets, banks and the economy"``). A text's score for a label is the cosine
of its embedding to the prototype; ``softmax(20 x cosine / temperature)`` gives probabilities. A label
named ``other`` has no prototype: its score is a fixed cosine (``other_cosine``), so a text whose
best label is below that threshold comes out ``other``. Torch-free (numpy): the ad hoc path
(``Pipeline.predict(texts, labels=[...])``) runs on every engine, and
:class:`~st_multitask.heads.ZeroShotHead` computes the same thing in the exported graph.

    >>> import numpy as np
    >>> specs = parse_labels("sports, finance: money and markets, other")
    >>> [(s.name, s.description) for s in specs]
    [('sports', None), ('finance', 'money and markets'), ('other', None)]
    >>> fake = lambda texts: np.array([[1.0, 0.0] if "sports" in t else [0.0, 1.0] for t in texts])
    >>> zs = ZeroShotClassifier.build(specs, fake, templates=["{label}"])
    >>> [p["label"] for p in zs.predict(np.array([[0.9, 0.1], [0.1, 0.9], [-0.6, -0.8]]))]
    ['sports', 'finance', 'other']
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .calibration import fit_temperature, softmax
from .decoding import SentenceDecoder
from .errors import InputError

__all__ = [
    "DEFAULT_OTHER_COSINE",
    "DEFAULT_TEMPERATURE",
    "DEFAULT_TEMPLATES",
    "KIND",
    "NAIVE_TEMPLATES",
    "OTHER",
    "SCALE",
    "LabelSpec",
    "ZeroShotClassifier",
    "parse_labels",
    "zero_shot_logits",
]

KIND = "zero_shot"  # the head kind, and the decoder's
OTHER = "other"  # a label with this name means "none of the others"
NAIVE_TEMPLATES = ("This text is about {label}.",)
# Several phrasings, their embeddings averaged: the six generic ones (no news-only phrasing) that
# score best alone on BBC's train split (benchmarks/zero_shot.py).
DEFAULT_TEMPLATES = (
    "This is a text on the topic of {label}.",
    "This article is about {label}.",
    "A post about {label}.",
    "Talking about {label}.",
    "It is about {label}.",
    "This text is about {label}.",
)
# all-MiniLM-L6-v2 was trained with a contrastive loss on cosine x 20 (sentence-transformers'
# MultipleNegativesRankingLoss scale): the logits are the cosines at that scale, and the
# temperature (1 unless fitted on dev data) divides them, as it does any head's logits.
SCALE = 20.0
DEFAULT_TEMPERATURE = 1.0
# The cosine below which a text is "other" when no dev data sets it: fitted (balanced accuracy) by
# benchmarks/zero_shot.py on dev splits, BBC sentences (in scope, five topics) against captions,
# forum posts and tweets (out of scope). They separate poorly; fit it on your own dev data.
DEFAULT_OTHER_COSINE = 0.145


@dataclass(frozen=True)
class LabelSpec:
    """One label: its name, and an optional description that helps place it."""

    name: str
    description: str | None = None

    def texts(self, templates: Sequence[str]) -> list[str]:
        """The texts whose embeddings make the prototype: each template, and the description."""
        out = [template.format(label=self.name) for template in templates]
        if self.description:
            out.append(self.description)
            out.append(f"{self.name}: {self.description}")
        return out


def parse_labels(labels: str | Sequence[str | LabelSpec]) -> list[LabelSpec]:
    """Labels from a comma-separated string or a list, each ``name`` or ``name: description``;
    empty or repeated names are an error that says so.

    >>> parse_labels(["tech: computers and phones", "health"])[0]
    LabelSpec(name='tech', description='computers and phones')
    >>> parse_labels("a,,b")
    Traceback (most recent call last):
    ...
    st_multitask.errors.InputError: Label 2 of 'a,,b' is empty: give names separated by commas, such as 'sports,health,other'.
    """
    shown = labels if isinstance(labels, str) else ", ".join(map(str, labels))
    items: Sequence[str | LabelSpec] = labels.split(",") if isinstance(labels, str) else labels
    if isinstance(items, (bytes, dict)) or not len(items):
        raise InputError("labels is empty: give label names such as 'sports,health,other'.")
    specs = []
    for position, item in enumerate(items, 1):
        if isinstance(item, LabelSpec):
            specs.append(item)
            continue
        if not isinstance(item, str):
            raise InputError(
                f"Label {position} is {item!r}: labels are strings ('name' or 'name: description')."
            )
        name, _, description = item.partition(":")
        if not name.strip():
            raise InputError(
                f"Label {position} of {shown!r} is empty: give names separated by commas, such as "
                "'sports,health,other'."
            )
        specs.append(LabelSpec(name.strip(), description.strip() or None))
    names = [s.name for s in specs]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InputError(f"Labels must be unique; repeated: {', '.join(repeated)}.")
    if len(specs) < 2:
        raise InputError(f"Zero-shot needs at least two labels to choose from; got {names[0]!r}.")
    if names == [OTHER] * len(names) or [n for n in names if n != OTHER] == []:
        raise InputError("Give at least one label besides 'other'.")
    return specs


def zero_shot_logits(
    embeddings: np.ndarray, prototypes: np.ndarray, other_index: int | None, other_cosine: float
) -> np.ndarray:
    """(n, labels) logits: ``SCALE`` x the cosines of the (n, dim) ``embeddings`` to the unit
    ``prototypes`` (labels, dim); the ``other`` column, if any, is ``SCALE`` x ``other_cosine``."""
    vectors = np.asarray(embeddings, dtype=np.float32)
    vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    cosines = vectors @ np.asarray(prototypes, dtype=np.float32).T
    if other_index is not None:
        cosines[:, other_index] = other_cosine
    return SCALE * cosines


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)


@dataclass
class ZeroShotClassifier:
    """Labels, their unit prototypes (labels, dim), a temperature and the ``other`` cosine.

    Build one with :meth:`build`; :meth:`predict` decodes embeddings with the same decoder an
    exported zero-shot head gets; :meth:`calibrate` and :meth:`self_train` refit it.
    """

    labels: list[LabelSpec]
    prototypes: np.ndarray
    templates: list[str] = field(default_factory=lambda: list(DEFAULT_TEMPLATES))
    temperature: float = DEFAULT_TEMPERATURE
    other_cosine: float = DEFAULT_OTHER_COSINE

    @classmethod
    def build(
        cls,
        labels: str | Sequence[str | LabelSpec],
        embed: Callable[[list[str]], np.ndarray],
        templates: Sequence[str] | None = None,
        temperature: float = DEFAULT_TEMPERATURE,
        other_cosine: float = DEFAULT_OTHER_COSINE,
    ) -> ZeroShotClassifier:
        """Prototypes from ``embed`` (texts -> (n, dim) embeddings), e.g. a pipeline's ``embed``."""
        specs = parse_labels(labels)
        templates = list(DEFAULT_TEMPLATES if templates is None else templates)
        bad = [t for t in templates if not isinstance(t, str) or "{label}" not in t]
        if not templates or bad:
            raise InputError(f"Each template must contain '{{label}}'; got {bad[0] if bad else 'none'!r}.")
        scored = [s for s in specs if s.name != OTHER]
        texts = [spec.texts(templates) for spec in scored]
        flat = [t for group in texts for t in group]
        vectors = _unit(np.asarray(embed(flat), dtype=np.float32))
        prototypes = np.zeros((len(specs), vectors.shape[1]), dtype=np.float32)
        start = 0
        rows = {spec.name: i for i, spec in enumerate(specs)}
        for spec, group in zip(scored, texts):
            prototypes[rows[spec.name]] = _unit(vectors[start : start + len(group)].mean(0))
            start += len(group)
        return cls(specs, prototypes, templates, float(temperature), float(other_cosine))

    # -- what it is ---------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return [s.name for s in self.labels]

    @property
    def other_index(self) -> int | None:
        return self.names.index(OTHER) if OTHER in self.names else None

    def config(self) -> dict[str, Any]:
        """The settings a :class:`~st_multitask.heads.ZeroShotHead` saves (prototypes aside)."""
        return {
            "labels": self.names,
            "descriptions": {s.name: s.description for s in self.labels if s.description} or None,
            "templates": list(self.templates),
            "temperature": self.temperature,
            "other_cosine": self.other_cosine,
        }

    def decoder(self) -> SentenceDecoder:
        """The decoder of its probabilities: the sentence decoder every engine uses."""
        return SentenceDecoder(KIND, self.names, self.config())

    # -- scoring --------------------------------------------------------------------------------
    def logits(self, embeddings: np.ndarray) -> np.ndarray:
        """(n, labels) ``SCALE`` x cosines (the ``other`` column: the threshold)."""
        return zero_shot_logits(embeddings, self.prototypes, self.other_index, self.other_cosine)

    def predict_proba(self, embeddings: np.ndarray) -> np.ndarray:
        """(n, labels) probabilities: ``softmax(SCALE x cosine / temperature)``."""
        return softmax(self.logits(embeddings), self.temperature).astype(np.float32)

    def predict(self, embeddings: np.ndarray, min_score: float | None = None) -> list[dict[str, Any]]:
        """Per text, ``{"label", "score", "probabilities"}``, as a sentence head gives them."""
        decoder = self.decoder()
        return [decoder.decode(row, "", [], [], min_score) for row in self.predict_proba(embeddings)]

    # -- refitting ------------------------------------------------------------------------------
    def ids(self, gold: Sequence[str]) -> np.ndarray:
        """Gold label names as indices, naming any unknown one."""
        unknown = sorted({g for g in gold if g not in self.names})
        if unknown:
            raise InputError(f"Unknown label {unknown[0]!r} in the data. Valid: {', '.join(self.names)}.")
        return np.array([self.names.index(g) for g in gold], dtype=np.int64)

    def calibrate(self, embeddings: np.ndarray, gold: Sequence[str]) -> dict[str, float]:
        """Fit the temperature on labelled dev embeddings, and, when ``other`` is a label and the
        dev data has texts of it and of the rest, the ``other`` cosine that best separates them
        (the midpoint of the range with the best balanced accuracy: the mean of the recall of
        ``other`` and of the rest). Returns the fitted values."""
        ids = self.ids(gold)
        other = self.other_index
        report: dict[str, float] = {}
        if other is not None and (ids == other).any() and (ids != other).any():
            cosines = self.logits(embeddings) / SCALE
            best = np.delete(cosines, other, axis=1).max(1)  # each text's best real label
            candidates = np.unique(np.round(best, 4))
            outside = ids == other  # balanced: the mean of the recall of each side
            scores = [((best < c)[outside].mean() + (best >= c)[~outside].mean()) / 2 for c in candidates]
            top = max(scores)
            chosen = [c for c, s in zip(candidates, scores) if s == top]
            self.other_cosine = round(float((chosen[0] + chosen[-1]) / 2), 4)
            report["other_cosine"] = self.other_cosine
        self.temperature = fit_temperature(self.logits(embeddings), ids)
        report["temperature"] = self.temperature
        return report

    def self_train(
        self, embeddings: np.ndarray, rounds: int = 1, keep: float = 0.5, weight: float = 1.0
    ) -> ZeroShotClassifier:
        """Refit the prototypes on unlabelled texts: each round, every label's most confident
        ``keep`` share of the texts predicted as it (by margin over the runner-up) are averaged
        and added to its prototype (``weight`` x the pseudo-labelled mean). Returns a new classifier.
        The defaults are those chosen on BBC's dev split (benchmarks/zero_shot.py).
        """
        if not 0.0 < keep <= 1.0 or rounds < 1:
            raise InputError(f"self_train needs rounds >= 1 and 0 < keep <= 1; got {rounds}, {keep}.")
        vectors = _unit(np.asarray(embeddings, dtype=np.float32))
        start = self.prototypes.copy()
        current = replace(self, prototypes=start.copy())
        other = self.other_index
        for _ in range(rounds):
            logits = current.logits(vectors)
            order = np.sort(logits, axis=1)
            margin = order[:, -1] - order[:, -2]
            chosen = logits.argmax(1)
            prototypes = start.copy()
            for label in range(len(self.labels)):
                if label == other:
                    continue
                members = np.flatnonzero(chosen == label)
                if not len(members):
                    continue
                top = members[np.argsort(-margin[members])[: max(1, round(keep * len(members)))]]
                prototypes[label] = _unit(start[label] + weight * _unit(vectors[top].mean(0)))
            current = replace(current, prototypes=prototypes)
        return current
