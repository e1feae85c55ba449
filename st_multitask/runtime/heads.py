"""Heads in numpy: the torch-free twins of the torch heads, built from the same saved files.

Each kind reads ``config.json`` and ``model.safetensors`` (through ``safetensors.numpy``) and
computes the same logits as its torch class from the features of one graph pass. A new head kind
runs on the fast path once it registers a numpy twin::

    @register_numpy_head("my_kind")
    class MyNumpyHead(NumpyHead):
        def logits(self, features): ...

or through the ``st_multitask.numpy_heads`` entry-point group.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..decoding import decode_sentence
from ..errors import ModelLoadError

__all__ = [
    "ENTRY_POINT_GROUP",
    "NumpyHead",
    "get_numpy_head_class",
    "load_numpy_head",
    "pool_words",
    "register_numpy_head",
]

ENTRY_POINT_GROUP = "st_multitask.numpy_heads"
_REGISTRY: dict[str, type[NumpyHead]] = {}


def register_numpy_head(kind: str) -> Callable[[type[NumpyHead]], type[NumpyHead]]:
    """Class decorator: the numpy twin of the torch head kind ``kind``."""

    def decorate(cls: type[NumpyHead]) -> type[NumpyHead]:
        cls.kind = kind
        _REGISTRY[kind] = cls
        return cls

    return decorate


def get_numpy_head_class(kind: str) -> type[NumpyHead] | None:
    """The numpy twin of ``kind``, or ``None`` if the kind has none (it then runs in torch only)."""
    if kind not in _REGISTRY:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name == kind:
                try:
                    _REGISTRY[kind] = ep.load()
                except Exception as exc:
                    raise ModelLoadError(
                        f"Numpy head {kind!r} from {ep.value!r} failed to import: {exc}"
                    ) from exc
    return _REGISTRY.get(kind)


# -- building blocks ------------------------------------------------------------------------------
def _gelu(x: np.ndarray) -> np.ndarray:
    from scipy.special import erf

    return 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "torch.nn.GELU": _gelu,
    "torch.nn.ReLU": lambda x: np.maximum(x, 0),
    "torch.nn.Tanh": np.tanh,
    "torch.nn.Sigmoid": _sigmoid,
    "torch.nn.SiLU": lambda x: x * _sigmoid(x),
    "torch.nn.Identity": lambda x: x,
}
for _name in list(ACTIVATIONS):  # configs may store the defining module's path
    ACTIVATIONS[_name.replace("torch.nn.", "torch.nn.modules.activation.")] = ACTIVATIONS[_name]
ACTIVATIONS["torch.nn.modules.linear.Identity"] = ACTIVATIONS["torch.nn.Identity"]


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    shifted = np.exp(x - x.max(axis=axis, keepdims=True))
    return shifted / shifted.sum(axis=axis, keepdims=True)


def layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def pool_words(states: np.ndarray, piece_word: np.ndarray, n_words: int, mode: str = "first") -> np.ndarray:
    """(batch, n_words, dim) word vectors from (batch, seq, dim) piece vectors, as
    :func:`st_multitask.alignment.pool_words` computes them."""
    batch, _, dim = states.shape
    out = np.zeros((batch, n_words, dim), dtype=states.dtype)
    valid = piece_word >= 0
    if mode == "mean":
        rows, cols = np.nonzero(valid)
        count = np.zeros((batch, n_words), dtype=states.dtype)
        np.add.at(out, (rows, piece_word[rows, cols]), states[rows, cols])
        np.add.at(count, (rows, piece_word[rows, cols]), 1)
        return out / np.maximum(count, 1)[..., None]
    previous = np.concatenate([np.full((batch, 1), -1, dtype=piece_word.dtype), piece_word[:, :-1]], axis=1)
    rows, cols = np.nonzero(valid & (piece_word != previous))
    out[rows, piece_word[rows, cols]] = states[rows, cols]
    return out


_LSTM_WEIGHTS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def _bidirectional_lstm(x: np.ndarray, lengths: np.ndarray, forward: dict, backward: dict) -> np.ndarray:
    """One bidirectional layer of a packed LSTM: (batch, time, 2 * hidden), zeros past each row's
    length. Both directions advance in the same step (one batched matmul), as torch computes them:
    the backward direction starts at each row's last word."""
    batch, steps, _ = x.shape
    hidden = forward["weight_hh"].shape[1]
    weights = [forward, backward]
    gates_x = np.stack(
        [x @ w["weight_ih"].T + (w["bias_ih"] + w["bias_hh"]) for w in weights]
    )  # (2, batch, time, 4h)
    w_hh = np.stack([np.ascontiguousarray(w["weight_hh"].T) for w in weights])  # (2, hidden, 4h)
    h = np.zeros((2, batch, hidden), dtype=x.dtype)
    c = np.zeros((2, batch, hidden), dtype=x.dtype)
    out = np.zeros((2, batch, steps, hidden), dtype=x.dtype)
    for step in range(steps):
        times = (step, steps - 1 - step)
        gates = np.stack([gates_x[0, :, times[0]], gates_x[1, :, times[1]]]) + np.matmul(h, w_hh)
        i, f, g, o = np.split(gates, 4, axis=2)
        c_new = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
        h_new = _sigmoid(o) * np.tanh(c_new)
        active = np.stack([times[0] < lengths, times[1] < lengths])[..., None]  # (2, batch, 1)
        c = np.where(active, c_new, c)
        h = np.where(active, h_new, h)
        kept = np.where(active, h_new, 0.0)
        out[0, :, times[0]] = kept[0]
        out[1, :, times[1]] = kept[1]
    return np.concatenate([out[0], out[1]], axis=-1)


# -- the heads ------------------------------------------------------------------------------------
class NumpyHead:
    """Base class: config and weights of a saved head, and ``logits(features)``.

    ``features`` holds numpy arrays from one graph pass: ``sentence_embedding`` (batch, dim),
    ``attention_mask`` (batch, seq), ``token_embeddings`` and ``hidden_state_<i>`` (batch, seq,
    dim), ``piece_word`` (batch, seq), ``n_words``, ``word_count`` (batch,) and, when a head
    asks for it, ``word_shape`` (batch, words, features).
    """

    kind: ClassVar[str]
    level: ClassVar[str]

    def __init__(self, config: dict[str, Any], weights: dict[str, np.ndarray], num_layers: int):
        self.config = config
        self.weights = {k: v.astype(np.float32) if v.dtype.kind == "f" else v for k, v in weights.items()}
        self.labels: list[str] = list(config["labels"])
        self.in_features = int(config["in_features"])
        self.num_layers = num_layers
        self.is_trained = bool(np.asarray(weights.get("_trained", False)).item())
        layers = config.get("layers")
        self.layers = None if layers is None else [int(i) % (num_layers + 1) for i in layers]
        activation = config.get("activation", "torch.nn.Identity")
        if activation not in ACTIVATIONS:
            raise ModelLoadError(
                f"Activation {activation!r} has no numpy twin; use backend='torch' for this model."
            )
        self.activation = ACTIVATIONS[activation]

    @property
    def outputs(self) -> set[str]:
        """The graph outputs this head reads."""
        if self.layers is None:
            return {"token_embeddings"}
        return {f"hidden_state_{i}" for i in self.layers}

    uses_word_shape: ClassVar[bool] = False

    @property
    def reads_windows(self) -> bool:
        """The head reads whole texts as pooled windows (``long: chunk``)."""
        return self.config.get("long", "truncate") == "chunk"

    @property
    def window_layers(self) -> set[int]:
        """The hidden layers whose window-pooled states this head reads."""
        return set(self.layers or ()) if self.reads_windows else set()

    def mlp(self, x: np.ndarray, prefix: str = "mlp") -> np.ndarray:
        """The saved ``build_mlp`` stack: Linear (activation, dropout)* ... Linear."""
        hidden = self.config.get("hidden", [])
        for k in range(len(hidden) + 1):
            index = 3 * k
            x = x @ self.weights[f"{prefix}.{index}.weight"].T + self.weights[f"{prefix}.{index}.bias"]
            if k < len(hidden):
                x = self.activation(x)
        return x

    def logits(self, features: dict[str, Any]) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def read_extra(cls, head_dir: Path) -> dict[str, Any]:
        """Config values read from the head's files beyond config and weights (a vocabulary)."""
        return {}

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        return softmax(logits)


@register_numpy_head("mlp")
class NumpyMLPHead(NumpyHead):
    """Twin of :class:`~st_multitask.heads.MLPHead`."""

    level = "sentence"

    def vector(self, features: dict[str, Any]) -> np.ndarray:
        """(batch, dim): what the MLP reads (pooled embedding, or the normalised layer mix)."""
        windows = self.reads_windows and "window_sentence_embedding" in features
        if self.layers is None:
            return features["window_sentence_embedding" if windows else "sentence_embedding"]
        if windows and "window_pooled_layers" in features:
            pooled = np.stack([features["window_pooled_layers"][i] for i in self.layers], axis=1)
        else:
            mask = features["attention_mask"][..., None].astype(np.float32)
            pooled = np.stack(
                [
                    (features[f"hidden_state_{i}"] * mask).sum(1) / np.maximum(mask.sum(1), 1)
                    for i in self.layers
                ],
                axis=1,
            )  # (batch, layers, dim)
        mixed = np.einsum("l,bld->bd", softmax(self.weights["layer_weights"]), pooled)
        return layer_norm(mixed, self.weights["layer_norm.weight"], self.weights["layer_norm.bias"])

    def logits(self, features: dict[str, Any]) -> np.ndarray:
        return self.mlp(self.vector(features))

    @property
    def multi_label(self) -> bool:
        return bool(self.config.get("multi_label", False))

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        logits = logits / float(self.config.get("temperature", 1.0))
        return _sigmoid(logits) if self.multi_label else softmax(logits)

    def decode(self, probabilities: np.ndarray, min_score: float | None = None) -> dict:
        """As :meth:`MLPHead.decode <st_multitask.heads.MLPHead.decode>`."""
        threshold = float(self.config.get("threshold", 0.5))
        name, cutoff = self.config.get("other_label"), self.config.get("other_threshold")
        other = None if name is None or cutoff is None else (name, float(cutoff))
        return decode_sentence(
            self.labels, probabilities.tolist(), self.multi_label, threshold, min_score, other
        )


@register_numpy_head("hybrid")
class NumpyHybridHead(NumpyMLPHead):
    """Twin of :class:`~st_multitask.heads.HybridHead`: the MLP's logits plus the wide part's,
    a linear map of the text's TF-IDF n-grams (the same scikit-learn vectorizer, rebuilt from
    ``vocabulary.json`` and the saved idf)."""

    def __init__(self, config: dict[str, Any], weights: dict[str, np.ndarray], num_layers: int):
        from ..text_features import SparseFeatures

        super().__init__(config, weights, num_layers)
        self.sparse = SparseFeatures(config["vocabulary"], self.weights["idf"], config.get("features"))

    @classmethod
    def read_extra(cls, head_dir: Path) -> dict[str, Any]:
        from ..text_features import read_vocabulary

        return {"vocabulary": read_vocabulary(head_dir)}

    def logits(self, features: dict[str, Any]) -> np.ndarray:
        ids, weights = self.sparse.transform(features["texts"])
        wide = (self.weights["wide"][np.maximum(ids, 0)] * weights[..., None]).sum(1)
        return super().logits(features) + wide


@register_numpy_head("token")
class NumpyTokenHead(NumpyHead):
    """Twin of :class:`~st_multitask.heads.TokenHead`."""

    level = "token"

    def words(self, features: dict[str, Any]) -> np.ndarray:
        """(batch, words, dim): pooled into words, then the layer mix."""
        piece_word = features["piece_word"]
        n_words = max(int(piece_word.max()) + 1 if piece_word.size else 0, int(features.get("n_words", 0)))
        mode = self.config.get("alignment", "first")
        if self.layers is None:
            return pool_words(features["token_embeddings"], piece_word, n_words, mode)
        pooled = np.stack(
            [pool_words(features[f"hidden_state_{i}"], piece_word, n_words, mode) for i in self.layers],
            axis=2,
        )  # (batch, words, layers, dim)
        return np.einsum("l,bwld->bwd", softmax(self.weights["layer_weights"]), pooled)

    def logits(self, features: dict[str, Any]) -> np.ndarray:
        return self.mlp(self.words(features))


@register_numpy_head("token_context")
class NumpyContextTokenHead(NumpyTokenHead):
    """Twin of :class:`~st_multitask.heads.context.ContextTokenHead` (word shapes, BiLSTM)."""

    @property
    def uses_word_shape(self) -> bool:  # type: ignore[override]
        return bool(self.config.get("shape_features", True))

    @property
    def uses_word_chars(self) -> bool:
        return int(self.config.get("char_dim", 0)) > 0

    def char_vectors(self, chars: np.ndarray) -> np.ndarray:
        """As :meth:`ContextTokenHead.char_vectors`: embed, conv (kernel 3, padding 1), ReLU, max."""
        x = self.weights["char_embedding.weight"][chars]  # (batch, words, chars, dim)
        kernel, bias = self.weights["char_conv.weight"], self.weights["char_conv.bias"]  # (filters, dim, 3)
        padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (0, 0)))
        width = chars.shape[2]
        out = bias + sum(padded[:, :, k : k + width] @ kernel[:, :, k].T for k in range(3))
        out = np.maximum(out, 0) * (chars > 0)[..., None]
        return out.max(axis=2) if width else np.zeros((*chars.shape[:2], kernel.shape[0]), np.float32)

    def logits(self, features: dict[str, Any]) -> np.ndarray:
        words = self.words(features)  # (batch, words, dim)
        width = words.shape[1]
        if self.uses_word_shape:
            shapes = features["word_shape"][:, :width].astype(np.float32)
            projected = shapes @ self.weights["shape_proj.weight"].T + self.weights["shape_proj.bias"]
            words = np.concatenate([words, projected], axis=-1)
        if int(self.config.get("char_dim", 0)):
            words = np.concatenate([words, self.char_vectors(features["word_chars"][:, :width])], axis=-1)
        lengths = np.clip(np.asarray(features["word_count"]), 1, max(width, 1))
        x = words
        for layer in range(int(self.config.get("lstm_layers", 1))):
            forward, backward = (
                {name: self.weights[f"lstm.{name}_l{layer}{suffix}"] for name in _LSTM_WEIGHTS}
                for suffix in ("", "_reverse")
            )
            x = _bidirectional_lstm(x, lengths, forward, backward)  # (batch, words, 2 * hidden)
        return self.mlp(x)


def load_numpy_head(head_dir: Path, num_layers: int) -> NumpyHead:
    """Build the numpy twin of the head saved in ``head_dir`` (files already hash-checked)."""
    from safetensors.numpy import load_file

    from ..manifest import CONFIG_NAME, WEIGHTS_NAME

    try:
        saved = json.loads((head_dir / CONFIG_NAME).read_text(encoding="utf-8"))
        kind, config = saved["kind"], saved["config"]
        if not isinstance(kind, str) or not isinstance(config, dict):
            raise TypeError("kind must be a name and config an object")
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
        raise ModelLoadError(f"{head_dir / CONFIG_NAME} is not a valid head config ({exc}).") from None
    cls = get_numpy_head_class(kind)
    if cls is None:
        raise ModelLoadError(
            f"{head_dir / CONFIG_NAME}: head kind {kind!r} has no torch-free twin (register one with "
            "st_multitask.runtime.heads.register_numpy_head); use backend='torch' for this model."
        )
    try:
        weights = load_file(str(head_dir / WEIGHTS_NAME))
    except Exception as exc:
        raise ModelLoadError(
            f"{head_dir / WEIGHTS_NAME} is not a readable safetensors file ({exc})."
        ) from None
    try:
        return cls({**config, **cls.read_extra(head_dir)}, weights, num_layers)
    except (KeyError, TypeError, ValueError, IndexError) as exc:  # settings missing or of the wrong type
        raise ModelLoadError(f"{head_dir / CONFIG_NAME}: invalid head settings ({exc}).") from None
    except ModelLoadError as exc:  # an activation without a twin, say: name the file
        raise type(exc)(f"{head_dir / CONFIG_NAME}: {exc}") from None
