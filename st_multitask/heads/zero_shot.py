"""ZeroShotHead: a sentence head made from label names, no examples (see :mod:`st_multitask.zero_shot`).

Its weights are the labels' unit prototypes; its logits are 20 x the cosines of the sentence
embedding to them (the ``other`` column: the fixed ``other_cosine``), divided by the temperature
before the softmax. It saves, loads and exports into the one graph like every other head, and decodes with
the sentence decoder (the ``other`` threshold lives in the logits, so a plain argmax applies it).

>>> import numpy as np, torch
>>> from st_multitask.zero_shot import ZeroShotClassifier
>>> fake = lambda texts: np.array([[1.0, 0.0] if "sports" in t else [0.0, 1.0] for t in texts])
>>> head = ZeroShotHead.from_classifier(ZeroShotClassifier.build("sports,finance,other", fake))
>>> head.probabilities(head({"sentence_embedding": torch.tensor([[0.9, 0.1]])})).argmax(-1).tolist()
[0]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import InputError
from ..zero_shot import (
    DEFAULT_OTHER_COSINE,
    DEFAULT_TEMPERATURE,
    DEFAULT_TEMPLATES,
    KIND,
    OTHER,
    SCALE,
    LabelSpec,
    ZeroShotClassifier,
)
from .base import Features, Head

__all__ = ["ZeroShotHead"]


class ZeroShotHead(Head):
    """Sentence head: ``20 x cosine(embedding, prototype) / temperature`` per label.

    Args:
        in_features: the backbone's embedding width.
        labels: the label names, in id order; one named ``other`` means "none of the others".
        descriptions: ``{label: description}`` the prototypes were built with (kept for the record).
        templates: the templates the prototypes were built with (kept for the record).
        temperature: the logits are divided by it before the softmax; fitted on dev data by
            :meth:`MultiTaskModel.calibrate`; the logits are 20 x the cosines, the backbone's training scale.
        other_cosine: a text whose best label's cosine is below this is ``other``.
    """

    kind: ClassVar[str] = KIND
    level: ClassVar[Literal["sentence", "token"]] = "sentence"
    config_keys: ClassVar[list[str]] = [
        "in_features",
        "labels",
        "descriptions",
        "templates",
        "temperature",
        "other_cosine",
    ]
    input_keys: ClassVar[list[str]] = ["in_features"]
    prototypes: Tensor
    other_mask: Tensor

    def __init__(
        self,
        in_features: int,
        labels: Sequence[str],
        descriptions: dict[str, str] | None = None,
        templates: Sequence[str] = DEFAULT_TEMPLATES,
        temperature: float = DEFAULT_TEMPERATURE,
        other_cosine: float = DEFAULT_OTHER_COSINE,
    ):
        super().__init__(in_features, labels)
        if descriptions is not None and (
            not isinstance(descriptions, dict) or any(k not in self.labels for k in descriptions)
        ):
            raise InputError(f"descriptions must map some of the labels ({', '.join(self.labels)}) to texts.")
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature > 0:
            raise InputError(f"temperature must be a positive number, got {temperature!r}.")
        if isinstance(other_cosine, bool) or not isinstance(other_cosine, (int, float)):
            raise InputError(f"other_cosine must be a number (a cosine), got {other_cosine!r}.")
        self.descriptions = None if not descriptions else dict(descriptions)
        self.templates = list(templates)
        self.temperature = float(temperature)
        self.other_cosine = float(other_cosine)
        self.register_buffer("prototypes", torch.zeros(self.num_labels, in_features))
        mask = torch.tensor([label == OTHER for label in self.labels])
        self.register_buffer("other_mask", mask, persistent=False)

    @classmethod
    def from_classifier(cls, classifier: ZeroShotClassifier) -> ZeroShotHead:
        """The head of a built (or calibrated, or self-trained) classifier; marked trained."""
        config = classifier.config()
        head = cls(int(classifier.prototypes.shape[1]), **config)
        head.prototypes.copy_(torch.from_numpy(np.asarray(classifier.prototypes, dtype=np.float32)))
        head.mark_trained()
        return head

    def classifier(self) -> ZeroShotClassifier:
        """This head as a torch-free :class:`~st_multitask.zero_shot.ZeroShotClassifier`."""
        specs = [LabelSpec(label, (self.descriptions or {}).get(label)) for label in self.labels]
        prototypes = self.prototypes.detach().float().cpu().numpy()
        return ZeroShotClassifier(specs, prototypes, self.templates, self.temperature, self.other_cosine)

    def forward(self, features: Features) -> Tensor:
        embedding = nn.functional.normalize(self.inputs(features)["sentence_embedding"], dim=-1)
        cosines = embedding @ self.prototypes.to(embedding.dtype).T  # (batch, labels)
        other = torch.full_like(cosines, self.other_cosine)
        return SCALE * torch.where(self.other_mask, other, cosines)  # (batch, labels)

    def probabilities(self, logits: Tensor) -> Tensor:
        return torch.softmax(logits / self.temperature, dim=-1)

    @property
    def calibrates(self) -> bool:
        return True

    def loss(self, logits: Tensor, targets: Tensor) -> Tensor:
        """Cross-entropy of the tempered logits (the prototypes are buffers: nothing trains)."""
        return nn.functional.cross_entropy(logits / self.temperature, targets)

    def get_config_dict(self) -> dict[str, Any]:
        config = super().get_config_dict()
        config["templates"] = list(self.templates)
        return config
