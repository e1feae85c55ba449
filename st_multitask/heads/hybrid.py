"""HybridHead: a "wide and deep" sentence classifier.

The deep part is :class:`MLPHead` over the backbone's states (pooled embedding or a learned layer
mix); the wide part is a linear layer over sparse TF-IDF word n-grams of the original text. Their
logits add up. The wide part sees what the backbone blurs: rare words, exact phrases, case-free
but uncut tokens. Its vocabulary is fitted on the training texts (:meth:`fit_features`, which
training calls) and saved as ``vocabulary.json`` beside the head's config and safetensors.

>>> import torch
>>> head = HybridHead(384, ["negative", "positive"], hidden=[])
>>> head.fit_features(["a great film", "a dull film", "great fun", "dull and long"])
>>> head({"sentence_embedding": torch.randn(2, 384), "texts": ["great", "dull"]}).shape
torch.Size([2, 2])
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from ..errors import InputError
from ..text_features import SparseFeatures, check_settings, read_vocabulary
from .base import Features
from .mlp import MLPHead

__all__ = ["HybridHead"]

IDS, WEIGHTS = "ragged_ngram_ids", "ragged_ngram_weights"


class HybridHead(MLPHead):
    """Sentence head = MLP over the backbone's states + linear over TF-IDF n-grams of the text.

    Args (besides :class:`MLPHead`'s):
        features: TF-IDF settings (``ngram_range``, ``min_df``, ``max_features``,
            ``sublinear_tf``, ``lowercase``, ``unknown_norm``; see :mod:`st_multitask.text_features`).
        wide_learning_rate_scale: the wide weights train with this multiple of the head learning
            rate: each weight sees few updates (one per text holding its n-gram), so they need
            larger steps than the dense MLP.
        vocabulary: the fitted terms (set by :meth:`fit_features` or read from
            ``vocabulary.json`` at load time; ``None`` until fitted).
    """

    kind: ClassVar[str] = "hybrid"
    level: ClassVar[Literal["sentence", "token"]] = "sentence"
    config_keys: ClassVar[list[str]] = [*MLPHead.config_keys, "features", "wide_learning_rate_scale"]
    input_keys: ClassVar[list[str]] = [*MLPHead.input_keys, "features"]
    uses_text = True

    def __init__(
        self,
        in_features: int,
        labels: Sequence[str],
        features: dict[str, Any] | None = None,
        wide_learning_rate_scale: float = 10.0,
        vocabulary: Sequence[str] | None = None,
        **mlp_settings: Any,
    ):
        super().__init__(in_features, labels, **mlp_settings)
        if features is not None and not isinstance(features, dict):
            raise InputError(f"features must be a mapping of TF-IDF settings, got {features!r}.")
        self.features = check_settings(features)
        scale = wide_learning_rate_scale
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale > 0:
            raise InputError(f"wide_learning_rate_scale must be a positive number, got {scale!r}.")
        self.wide_learning_rate_scale = float(scale)
        self._sparse: SparseFeatures | None = None
        if vocabulary is not None:
            self._build(SparseFeatures(vocabulary, torch.ones(len(vocabulary)).numpy(), self.features))
        else:
            self.register_buffer("idf", torch.zeros(0), persistent=True)
            self.wide = nn.Parameter(torch.zeros(0, self.num_labels))

    def _build(self, sparse: SparseFeatures) -> None:
        self._sparse = sparse
        self.register_buffer("idf", torch.from_numpy(sparse.idf.copy()), persistent=True)
        # starts at zero: the head begins as its deep part, and the wide weights grow from the data
        self.wide = nn.Parameter(torch.zeros(len(sparse), self.num_labels))

    @property
    def learning_rate_scales(self) -> dict[str, float]:
        """Parameter name prefix -> learning-rate multiple (read by the trainer's optimizer)."""
        return {"wide": self.wide_learning_rate_scale}

    @property
    def is_fitted(self) -> bool:
        return self._sparse is not None

    def input_fingerprint(self) -> Any:
        """As the base class's, plus the fitted vocabulary (it decides the TF-IDF rows the head reads)."""
        return {
            **super().input_fingerprint(),
            "vocabulary": None if self._sparse is None else list(self._sparse.terms),
        }

    def fit_features(self, texts: Sequence[str | Sequence[str]]) -> None:
        """Fit the vocabulary and idf on the training texts (once; training calls this)."""
        self._build(SparseFeatures.fit(list(texts), self.features))

    def _load_from_state_dict(
        self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any
    ) -> None:
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        if self._sparse is not None and prefix + "idf" in state_dict:
            self._sparse = SparseFeatures(
                self._sparse.terms, state_dict[prefix + "idf"].numpy(), self.features
            )

    def sparse_inputs(self, texts: Sequence[str]) -> dict[str, Tensor]:
        """The padded ids and TF-IDF weights of ``texts`` (what the wide part reads)."""
        if self._sparse is None:
            raise InputError(
                "This hybrid head has no vocabulary yet: fit it on the training texts (fit_features), "
                "which training does before the first step."
            )
        ids, weights = self._sparse.transform(texts)
        return {IDS: torch.from_numpy(ids), WEIGHTS: torch.from_numpy(weights)}

    def inputs(self, features: Features) -> dict[str, Tensor]:
        out = super().inputs(features)
        if IDS in features:
            out[IDS], out[WEIGHTS] = features[IDS], features[WEIGHTS]
        else:
            device = next(iter(out.values())).device
            out.update({k: v.to(device) for k, v in self.sparse_inputs(features["texts"]).items()})
        return out

    def forward(self, features: Features) -> Tensor:
        inputs = self.inputs(features)
        deep = super().forward(inputs)
        ids, weights = inputs[IDS], inputs[WEIGHTS]
        # (batch, width, labels); padding has weight 0. An embedding lookup rather than
        # ``self.wide[ids]``: the same rows forward, but its CPU backward sums each row's gradient
        # in a fixed order, where indexing's accumulates across threads in any order and makes a
        # seeded run differ in the last bits.
        rows = nn.functional.embedding(ids.clamp(min=0), self.wide)
        return deep + (rows * weights.unsqueeze(-1).to(rows.dtype)).sum(1)

    # -- save / load: the vocabulary lives in its own JSON file -----------------------------------
    def save_extra(self, path: Path) -> None:
        if self._sparse is None:
            raise InputError("A hybrid head without a vocabulary cannot be saved: train it first.")
        self._sparse.save(path)

    @classmethod
    def load_extra(cls, path: Path) -> dict[str, Any]:
        return {"vocabulary": read_vocabulary(path)}

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, vocabulary={len(self._sparse) if self._sparse else 0}"
