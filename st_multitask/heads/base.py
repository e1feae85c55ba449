"""The Head contract: a torch module on top of the backbone that owns its loss and its decoding.

A head reads what it needs from the features of one backbone pass (``sentence_embedding`` for
sentence heads, word vectors for token heads) and returns logits. It saves as ``config.json`` (its
constructor arguments, ``config_keys``) plus ``model.safetensors``, and loads without running code.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from ..decoding import Decoder, decoder_for
from ..errors import InputError, ModelLoadError
from ..manifest import CONFIG_NAME, WEIGHTS_NAME

__all__ = ["CONFIG_NAME", "HEAD_LEVELS", "WEIGHTS_NAME", "Head", "activation_from_name", "activation_name"]

HEAD_LEVELS = ("sentence", "token")

# What a head reads from one backbone pass, by name: tensors ("sentence_embedding", "attention_mask",
# "piece_word", ...) and a few values that are not ("all_layer_embeddings": a list of (batch, seq, dim)
# tensors, "n_words": an int or a traced size, "texts": the raw texts).
Features = dict[str, Any]


def activation_name(activation: str | nn.Module | type[nn.Module]) -> str:
    """The dotted import name of an activation (how configs store it)."""
    if isinstance(activation, str):
        return activation
    cls = activation if isinstance(activation, type) else type(activation)
    return f"{cls.__module__}.{cls.__qualname__}"


def activation_from_name(name: str) -> nn.Module:
    """An activation module from its dotted name; only ``torch.nn`` activations are allowed."""
    module, _, attr = name.rpartition(".")
    if module not in ("torch.nn", "torch.nn.modules.activation") or not hasattr(nn, attr):
        raise InputError(f"Unknown activation {name!r}: use a torch.nn activation such as 'torch.nn.GELU'.")
    cls = getattr(nn, attr)
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise InputError(f"{name!r} is not a torch.nn module.")
    return cls()


class Head(nn.Module):
    """Base class of every head kind.

    Subclasses set ``kind`` (the registry name), ``level`` and ``config_keys``, take ``in_features``
    and ``labels`` as their first arguments, and implement :meth:`forward`, :meth:`probabilities`
    and :meth:`loss`. The graph (torch and exported alike) runs ``probabilities(forward(...))``;
    the host turns those into answers with the kind's torch-free :class:`~st_multitask.decoding.Decoder`,
    built from the saved config: the level's by default, or the class named by ``decoder``
    (a CRF's Viterbi, say), which :func:`~st_multitask.heads.register_head` registers for every engine.
    """

    kind: ClassVar[str]
    level: ClassVar[Literal["sentence", "token"]]
    config_keys: ClassVar[list[str]] = ["in_features", "labels"]
    # the config keys that decide what inputs() gives (None: all of them). The training cache across
    # runs is keyed by these, so recipes that differ only in, say, dropout or class weights share it.
    input_keys: ClassVar[list[str] | None] = None

    # What the head reads beyond the last layer's states. The model computes an input only when
    # some head asks for it; kinds override these (as class attributes or properties), so they
    # are read-only here.
    @property
    def needs_hidden_states(self) -> bool:
        """Every layer's states (``all_layer_embeddings``)."""
        return False

    @property
    def uses_word_shape(self) -> bool:
        """``word_shape`` (batch, words, shapes)."""
        return False

    @property
    def uses_word_chars(self) -> bool:
        """``word_chars`` (batch, words, chars)."""
        return False

    @property
    def reads_windows(self) -> bool:
        """``window_*``: long texts read as overlapping windows."""
        return False

    @property
    def uses_text(self) -> bool:
        """The raw texts: fit a vocabulary on them before training."""
        return False

    multi_label: bool = False  # any number of labels per example
    ignore_index: ClassVar[int] = -100  # a target the loss skips (padding, words not read)
    decoder_class: ClassVar[type[Decoder] | None] = None  # None: the level's decoder
    _trained: Tensor  # a persistent bool buffer (registered in __init__)

    def __init__(self, in_features: int, labels: Sequence[str]):
        super().__init__()
        if isinstance(in_features, bool) or not isinstance(in_features, int) or in_features < 1:
            raise InputError(f"in_features must be a positive integer, got {in_features!r}.")
        labels = list(labels)
        if len(labels) < 1 or not all(isinstance(label, str) and label for label in labels):
            raise InputError("labels must be a non-empty list of non-empty strings.")
        if len(set(labels)) != len(labels):
            duplicates = sorted({label for label in labels if labels.count(label) > 1})
            raise InputError(f"labels must be unique; repeated: {', '.join(duplicates)}.")
        self.in_features = in_features
        self.labels = labels
        # set to True by training (or by loading trained weights); predicting with an untrained head warns
        self.register_buffer("_trained", torch.tensor(False), persistent=True)

    # -- labels ---------------------------------------------------------------------------------
    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.labels))

    @property
    def label2id(self) -> dict[str, int]:
        return {label: i for i, label in enumerate(self.labels)}

    @property
    def num_labels(self) -> int:
        return len(self.labels)

    @property
    def is_trained(self) -> bool:
        return bool(self._trained)

    def mark_trained(self, trained: bool = True) -> None:
        self._trained.fill_(trained)

    def encode_labels(self, labels: Sequence[str]) -> Tensor:
        """Label names to ids, naming any label the head does not know."""
        mapping = self.label2id
        unknown = sorted({label for label in labels if label not in mapping})
        if unknown:
            raise InputError(
                f"Unknown label{'s' * (len(unknown) > 1)} {', '.join(map(repr, unknown))}. "
                f"Valid: {', '.join(self.labels)}."
            )
        return torch.tensor([mapping[label] for label in labels], dtype=torch.long)

    # -- the contract -------------------------------------------------------------------------
    def inputs(self, features: Features) -> dict[str, Tensor]:
        """What the head reads from the features of a backbone pass, as ``{key: (batch, ...)}``.

        Training caches these when the backbone is frozen and later calls ``forward`` on them, so
        ``forward(inputs(features)) == forward(features)``. Keys starting with ``word_`` hold
        per-word values (batch, words, ...) and are padded per batch; others are per text.
        """
        if self.level == "sentence":
            return {"sentence_embedding": features["sentence_embedding"]}
        return features

    def forward(self, features: Features) -> Tensor:  # pragma: no cover - abstract
        """Logits: (batch, labels) for a sentence head, (batch, words, labels) for a token head."""
        raise NotImplementedError

    def probabilities(self, logits: Tensor) -> Tensor:
        """What the graph outputs for the decoder: softmax over the labels by default."""
        return torch.softmax(logits, dim=-1)

    def decoder(self) -> Decoder:
        """The torch-free decoder of this head's outputs, from its current config (what every
        engine runs after the graph)."""
        return decoder_for(self.kind, self.level, self.get_config_dict(), self.is_trained)

    def loss(self, logits: Tensor, targets: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- training -------------------------------------------------------------------------------
    @property
    def is_fitted(self) -> bool:
        """False while the head still has to see its training texts (see :meth:`fit_features`)."""
        return True

    def fit_features(self, texts: Sequence[str | Sequence[str]]) -> None:
        """Fit whatever the head builds from its training texts (a vocabulary); most build nothing."""

    def input_fingerprint(self) -> Any:
        """JSON-able state that decides :meth:`inputs`: the config keys in ``input_keys`` (all of
        them by default) and any fitted state (a vocabulary); the training cache across runs hashes it."""
        config = self.get_config_dict()
        return {k: config[k] for k in (self.input_keys or self.config_keys)}

    @property
    def learning_rate_scales(self) -> dict[str, float]:
        """``{submodule: factor}``: weights that train at ``factor`` x the head learning rate."""
        return {}

    @property
    def calibrates(self) -> bool:
        """Whether a temperature fitted on dev data calibrates the head's scores."""
        return False

    def encode_targets(self, values: Sequence[Any]) -> Tensor:
        """A batch of gold values (one label per example) as the targets :meth:`loss` takes."""
        return self.encode_labels(values)

    def training_loss(self, logits: Tensor, targets: Tensor, read: Tensor) -> Tensor | None:
        """The loss of a training batch; ``read`` (batch, words) marks the words inside the model
        window. ``None`` when the batch holds nothing to learn from."""
        return self.loss(logits, targets)

    # -- save / load ----------------------------------------------------------------------------
    def get_config_dict(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in self.config_keys}

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write ``config.json`` (kind + constructor arguments) and ``model.safetensors``."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        config = {"kind": self.kind, "level": self.level, "config": self.get_config_dict()}
        (path / CONFIG_NAME).write_text(
            json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        save_file(state, str(path / WEIGHTS_NAME), metadata={"kind": self.kind})
        self.save_extra(path)

    def save_extra(self, path: Path) -> None:
        """Write files beyond config and weights (a vocabulary, say); the manifest hashes them too."""

    @classmethod
    def load_extra(cls, path: Path) -> dict[str, Any]:
        """Constructor arguments read from the files :meth:`save_extra` wrote."""
        return {}

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Head:
        """Rebuild a head from ``config.json`` (by its registered kind) and load its weights.

        Works on the base class (``Head.load(dir)`` picks the kind from the config) and on a
        subclass (which checks the kind matches).
        """
        from . import get_head_class

        path = Path(path)
        config_path, weights_path = path / CONFIG_NAME, path / WEIGHTS_NAME
        for required in (config_path, weights_path):
            if not required.is_file():
                raise ModelLoadError(f"{required} is missing: {path} is not a saved head.")
        try:
            config = json.loads(config_path.read_text(encoding="utf-8"))
            kind, kwargs = config["kind"], config["config"]
        except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as exc:
            raise ModelLoadError(f"{config_path} is not a valid head config ({exc}).") from None
        head_cls = get_head_class(kind)
        if cls is not Head and not issubclass(head_cls, cls):
            raise ModelLoadError(f"{path} holds a {kind!r} head, not a {cls.kind!r} head.")
        unknown = sorted(set(kwargs) - set(head_cls.config_keys))
        if unknown:
            raise ModelLoadError(f"{config_path}: unknown settings {', '.join(unknown)} for a {kind!r} head.")
        kwargs = {**kwargs, **head_cls.load_extra(path)}
        try:
            head = head_cls(**kwargs)
        except (InputError, TypeError, ValueError) as exc:
            raise ModelLoadError(f"{config_path}: invalid settings ({exc}).") from None
        try:
            state = load_file(str(weights_path))
        except Exception as exc:  # safetensors raises its own error types for truncated/corrupt files
            raise ModelLoadError(f"{weights_path} is not a readable safetensors file ({exc}).") from None
        expected = head.state_dict()
        missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
        if missing or extra:
            raise ModelLoadError(
                f"{weights_path} does not match its config: missing {missing}, unexpected {extra}."
            )
        for key, tensor in state.items():
            if tensor.shape != expected[key].shape:
                raise ModelLoadError(
                    f"{weights_path}: {key} has shape {tuple(tensor.shape)}, the config implies "
                    f"{tuple(expected[key].shape)}."
                )
        head.load_state_dict(state)
        return head

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, labels={self.labels}"
