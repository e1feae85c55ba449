"""MLPHead: a sentence-level classifier (topic, sentiment, any label set) on the pooled embedding.

>>> import torch
>>> head = MLPHead(384, ["negative", "positive"], hidden=[128])
>>> head({"sentence_embedding": torch.randn(3, 384)}).shape
torch.Size([3, 2])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import InputError
from .base import Features, Head, activation_from_name, activation_name

__all__ = ["LONG_MODES", "MLPHead", "build_mlp", "mean_pool_layers"]

LONG_MODES = ("truncate", "chunk")
MAX_HIDDEN = 65_536  # a larger hidden layer is a typo (hidden: [100000, 100000] would take 40 GB)


def build_mlp(
    in_features: int, hidden: Sequence[int], out_features: int, activation: str, dropout: float
) -> nn.Sequential:
    """Linear → activation → dropout for each hidden size, then Linear to ``out_features``."""
    if not 0.0 <= dropout < 1.0:
        raise InputError(f"dropout must be in [0, 1), got {dropout!r}.")
    if any(isinstance(h, bool) or not isinstance(h, int) or not 1 <= h <= MAX_HIDDEN for h in hidden):
        raise InputError(f"hidden sizes must be integers from 1 to {MAX_HIDDEN:,}, got {list(hidden)!r}.")
    layers: list[nn.Module] = []
    width = in_features
    for size in hidden:
        layers += [nn.Linear(width, size), activation_from_name(activation), nn.Dropout(dropout)]
        width = size
    layers.append(nn.Linear(width, out_features))
    return nn.Sequential(*layers)


def mean_pool_layers(
    hidden: Sequence[Tensor], attention_mask: Tensor, layers: Sequence[int] | None = None
) -> Tensor:
    """(batch, layers, dim): each hidden layer (all, or ``layers``) mean-pooled over the text's tokens."""
    mask = attention_mask.unsqueeze(-1).to(hidden[0].dtype)  # (batch, seq, 1)
    chosen = hidden if layers is None else [hidden[i] for i in layers]
    return torch.stack([(h * mask).sum(1) / mask.sum(1).clamp(min=1) for h in chosen], dim=1)


class MLPHead(Head):
    """Sentence-level head: an MLP over ``features["sentence_embedding"]``.

    Args:
        in_features: the backbone's embedding width.
        labels: the label names, in id order.
        hidden: hidden layer sizes; ``[]`` is a linear probe.
        activation: a torch.nn activation by dotted name.
        dropout: dropout after each hidden layer.
        multi_label: independent sigmoid per label (any number of labels per text) instead of softmax.
        threshold: the probability at which a label is predicted, in multi-label mode.
        layers: hidden layers to read instead of the pooled embedding: each is mean-pooled over the
            text's tokens, then mixed with learned softmax weights and layer-normalised.
        temperature: the logits are divided by it before the softmax (or sigmoid); fitted on dev
            data after training (:meth:`MultiTaskModel.calibrate`) so that scores are calibrated.
        long: texts longer than the backbone's window: ``"truncate"`` reads the first window only;
            ``"chunk"`` reads the whole text as overlapping windows whose states are mean-pooled,
            as ``embed(long="chunk")`` does.
        other_label: the label of texts that belong to none of the others (out of scope), trained
            on real out-of-scope text like any label. With ``other_threshold`` the head says it
            whenever its probability reaches the threshold (fitted on held-out data by
            :meth:`MultiTaskModel.calibrate`), and otherwise the best of the other labels.
        other_threshold: that threshold; ``None`` leaves the plain argmax.
        class_weights: ``{label: weight}`` for the training loss (default 1 each), so that a rare
            class (a neutral sentiment) is not drowned by the frequent ones.
    """

    kind: ClassVar[str] = "mlp"
    level: ClassVar[Literal["sentence", "token"]] = "sentence"
    config_keys: ClassVar[list[str]] = [
        "in_features",
        "labels",
        "hidden",
        "activation",
        "dropout",
        "multi_label",
        "threshold",
        "layers",
        "temperature",
        "long",
        "other_label",
        "other_threshold",
        "class_weights",
    ]
    input_keys: ClassVar[list[str]] = ["in_features", "layers", "long"]

    def __init__(
        self,
        in_features: int,
        labels: Sequence[str],
        hidden: Sequence[int] = (256,),
        activation: str = "torch.nn.GELU",
        dropout: float = 0.1,
        multi_label: bool = False,
        threshold: float = 0.5,
        layers: Sequence[int] | None = None,
        temperature: float = 1.0,
        long: str = "truncate",
        other_label: str | None = None,
        other_threshold: float | None = None,
        class_weights: dict[str, float] | None = None,
    ):
        super().__init__(in_features, labels)
        if class_weights is not None:
            if not isinstance(class_weights, dict) or multi_label:
                raise InputError("class_weights must be a mapping {label: weight} on a single-label head.")
            unknown = [k for k in class_weights if k not in self.labels]
            if unknown:
                raise InputError(
                    f"class_weights names unknown label {unknown[0]!r}. Valid: {', '.join(self.labels)}."
                )
            bad = [
                v
                for v in class_weights.values()
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0
            ]
            if bad:
                raise InputError(f"class weights must be positive numbers, got {bad[0]!r}.")
        self.class_weights = (
            None if class_weights is None else {k: float(v) for k, v in class_weights.items()}
        )
        if other_label is not None and other_label not in self.labels:
            raise InputError(
                f"other_label {other_label!r} is not one of the labels ({', '.join(self.labels)}); "
                "add out-of-scope texts with that label to the training data."
            )
        if other_label is not None and multi_label:
            raise InputError("other_label needs a single-label head (multi_label: false).")
        if other_threshold is not None and (
            isinstance(other_threshold, bool)
            or not isinstance(other_threshold, (int, float))
            or not 0.0 <= other_threshold <= 1.0
        ):
            raise InputError(
                f"other_threshold must be a probability between 0 and 1, got {other_threshold!r}."
            )
        self.other_label = other_label
        self.other_threshold = None if other_threshold is None else float(other_threshold)
        if long not in LONG_MODES:
            raise InputError(f"Unknown long mode {long!r}. Valid: {', '.join(LONG_MODES)}.")
        self.long = long
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature > 0:
            raise InputError(f"temperature must be a positive number, got {temperature!r}.")
        self.temperature = float(temperature)
        if not 0.0 < threshold < 1.0:
            raise InputError(f"threshold must be between 0 and 1, got {threshold!r}.")
        self.hidden = list(hidden)
        self.activation = activation_name(activation)
        self.dropout = float(dropout)
        self.multi_label = bool(multi_label)
        self.threshold = float(threshold)
        self.layers = None if layers is None else [int(i) for i in layers]
        if self.layers is not None:
            if not self.layers:
                raise InputError(
                    "layers must name at least one hidden layer (or be None for the pooled embedding)."
                )
            self.layer_weights = nn.Parameter(torch.zeros(len(self.layers)))
            self.layer_norm = nn.LayerNorm(in_features)
        self.mlp = build_mlp(in_features, self.hidden, self.num_labels, self.activation, self.dropout)

    @property
    def needs_hidden_states(self) -> bool:
        return self.layers is not None

    @property
    def reads_windows(self) -> bool:
        """The model computes window-pooled features (``window_*``) only when a head asks."""
        return self.long == "chunk"

    def inputs(self, features: Features) -> dict[str, Tensor]:
        windows = self.long == "chunk"
        if self.layers is None:
            if windows and "window_sentence_embedding" in features:
                return {"sentence_embedding": features["window_sentence_embedding"]}
            return {"sentence_embedding": features["sentence_embedding"]}
        if "pooled_layers" in features:
            return {"pooled_layers": features["pooled_layers"]}
        if windows and "window_pooled_layers" in features:
            return {"pooled_layers": features["window_pooled_layers"][:, self.layers]}
        hidden = features.get("all_layer_embeddings")
        if hidden is None:
            raise InputError("This head reads hidden layers; run the backbone with output_hidden_states.")
        return {"pooled_layers": mean_pool_layers(hidden, features["attention_mask"], self.layers)}

    def forward(self, features: Features) -> Tensor:
        inputs = self.inputs(features)
        if self.layers is None:
            return self.mlp(inputs["sentence_embedding"])  # (batch, labels)
        pooled = inputs["pooled_layers"]
        weights = torch.softmax(self.layer_weights, dim=0).to(pooled.dtype)
        return self.mlp(self.layer_norm(torch.einsum("l,bld->bd", weights, pooled)))

    def probabilities(self, logits: Tensor) -> Tensor:
        logits = logits / self.temperature
        return torch.sigmoid(logits) if self.multi_label else torch.softmax(logits, dim=-1)

    @property
    def calibrates(self) -> bool:
        return not self.multi_label

    def encode_targets(self, values: Sequence[Any]) -> Tensor:
        """Label ids (batch,), or a 0/1 matrix (batch, labels) when multi-label (a row may be one
        label or a list of them)."""
        if not self.multi_label:
            return self.encode_labels(values)
        matrix = torch.zeros(len(values), self.num_labels)
        for row, labels in enumerate(values):
            matrix[row, self.encode_labels(labels if isinstance(labels, list) else [labels])] = 1.0
        return matrix

    def loss(self, logits: Tensor, targets: Tensor) -> Tensor:
        """Cross-entropy on label ids (batch,), or BCE on a 0/1 matrix (batch, labels) if multi-label."""
        if self.multi_label:
            return nn.functional.binary_cross_entropy_with_logits(logits, targets.float())
        if self.class_weights is None:
            return nn.functional.cross_entropy(logits, targets)
        weight = torch.tensor(
            [self.class_weights.get(label, 1.0) for label in self.labels],
            dtype=logits.dtype,
            device=logits.device,
        )
        return nn.functional.cross_entropy(logits, targets, weight=weight)

    def predict_proba(self, embeddings: Tensor) -> Tensor:
        """Probabilities (batch, labels) from sentence embeddings (batch, dim)."""
        with torch.inference_mode():
            return self.probabilities(self({"sentence_embedding": embeddings}))

    def predict(self, embeddings: Tensor) -> list[str] | list[list[str]]:
        """Label names from sentence embeddings: one per text, or a list per text if multi-label."""
        return [self.decode(row)["label"] for row in self.predict_proba(embeddings)]

    def decode(self, probabilities: Tensor, min_score: float | None = None) -> dict:
        """One text's ``{"label", "score", "probabilities"}`` from its probability vector; no label
        (``None``) when the top probability is below ``min_score``."""
        values = probabilities.detach().cpu().numpy() if isinstance(probabilities, Tensor) else probabilities
        return self.decoder().decode(np.asarray(values), "", [], [], min_score)

    @property
    def other(self) -> tuple[str, float] | None:
        """``(other_label, other_threshold)`` once the threshold is fitted, else ``None``."""
        if self.other_label is None or self.other_threshold is None:
            return None
        return self.other_label, self.other_threshold
