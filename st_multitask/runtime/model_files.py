"""What the fast path needs to know about a sentence-transformers model, read from its own files.

Tokenizer (``tokenizer.json``), window (``sentence_bert_config.json``), pooling (``1_Pooling``) and
normalisation (``modules.json``) come from the model directory, and the model's identity is the
sha256 of the files that shape its outputs. Nothing here imports torch.

    >>> files = read_model_files(None)
    >>> files.max_seq_length, files.pooling, files.normalize, files.dim
    (256, 'mean', True, 384)
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..backbone import DEFAULT_ALIASES, default_model_path
from ..errors import Hint, ModelLoadError
from ..file_hashes import sha256_of
from ..manifest import MANIFEST_NAME, sha256_file

__all__ = [
    "MANIFEST_NAME",
    "ModelFiles",
    "backbone_dir",
    "heads_fingerprint",
    "read_json",
    "read_model_files",
    "sha256_file",
]

_POOLING_KEYS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len",
}
# new pooling_mode names -> ours (sentence-transformers >= 6 stores one "pooling_mode" string)
_POOLING_MODES = {"mean": "mean", "cls": "cls", "max": "max", "mean_sqrt_len_tokens": "mean_sqrt_len"}
_RUNNABLE = ("Transformer", "Pooling", "Normalize")


def _module_kind(module_type: str) -> str:
    """``Transformer`` for both ``sentence_transformers.models.Transformer`` and
    ``sentence_transformers.base.modules.transformer.Transformer``; the type itself otherwise."""
    if module_type.startswith("sentence_transformers.") and module_type.rsplit(".", 1)[-1] in _RUNNABLE:
        return module_type.rsplit(".", 1)[-1]
    return module_type


# files whose bytes decide the backbone's outputs (weights, architecture, tokenizer, modules)
_IDENTITY_FILES = (
    "config.json",
    "modules.json",
    "sentence_bert_config.json",
    "tokenizer.json",
    "1_Pooling/config.json",
)


def _file_hash(path: Path) -> str:
    return sha256_of(path)


def read_json(path: Path) -> Any:
    """A JSON file, or a ModelLoadError naming it."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelLoadError(f"{path} is missing.") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"{path} is not valid JSON ({exc}).") from None


def backbone_dir(name_or_path: str | os.PathLike[str] | None) -> Path:
    """The directory that holds the backbone's files: the packaged MiniLM, a model directory, or
    the packaged MiniLM when a st_multitask model references it instead of copying it."""
    if name_or_path is None or os.fspath(name_or_path) in DEFAULT_ALIASES:
        return default_model_path()
    path = Path(name_or_path).expanduser()
    if path.is_file():
        raise ModelLoadError(f"Model path {os.fspath(name_or_path)!r} is a file; pass the model's directory.")
    if not path.is_dir():
        raise ModelLoadError(
            f"Model directory {os.fspath(name_or_path)!r} does not exist (the fast backends read "
            "local model directories only; st_multitask never downloads models)."
        )
    manifest = path / MANIFEST_NAME
    if not (path / "modules.json").is_file() and manifest.is_file():
        info = read_json(manifest).get("backbone", {})
        if isinstance(info, dict) and info.get("type") == "packaged":
            return default_model_path()
    return path


@dataclass(frozen=True)
class ModelFiles:
    """The settings of a sentence-transformers model directory that inference needs."""

    path: Path
    max_seq_length: int
    do_lower_case: bool
    pooling: str
    normalize: bool
    dim: int
    num_layers: int
    tokenizer_file: Path
    pad_token: str

    def fingerprint(self) -> str:
        """sha256 over the weights and the files that shape the outputs: the model's identity."""
        digest = hashlib.sha256()
        names = [*_IDENTITY_FILES, *sorted(p.name for p in self.path.glob("*.safetensors"))]
        for name in names:
            file = self.path / name
            if file.is_file():
                digest.update(f"{name}:{_file_hash(file)}\n".encode())
        return digest.hexdigest()


@functools.lru_cache(maxsize=8)
def _read(path: Path) -> ModelFiles:
    modules_path = path / "modules.json"
    if not modules_path.is_file():
        raise ModelLoadError(
            f"{path} is not a sentence-transformers model directory (no modules.json); the fast "
            "backends need one. Use ",
            Hint("backend", "torch"),
            " for plain transformers checkpoints.",
        )
    modules = read_json(modules_path)
    kinds = [_module_kind(m.get("type", "")) for m in modules]
    unsupported = [k for k in kinds if k not in _RUNNABLE]
    if not kinds or kinds[0] != "Transformer" or "Pooling" not in kinds or unsupported:
        raise ModelLoadError(
            f"{path} has modules the fast backends do not run ({', '.join(unsupported or kinds)}); "
            "they run Transformer, Pooling and Normalize. Use ",
            Hint("backend", "torch"),
            ".",
        )
    st_settings = path / "config_sentence_transformers.json"
    if st_settings.is_file() and read_json(st_settings).get("default_prompt_name"):
        raise ModelLoadError(
            f"{st_settings} sets a default prompt, which the fast backends do not add; use ",
            Hint("backend", "torch"),
            ".",
        )
    pooling_dir = next(m.get("path", "") for m, kind in zip(modules, kinds) if kind == "Pooling")
    pooling_config = read_json(path / pooling_dir / "config.json")
    modes = [mode for key, mode in _POOLING_KEYS.items() if pooling_config.get(key)]
    if "pooling_mode" in pooling_config:
        modes = [_POOLING_MODES.get(str(pooling_config["pooling_mode"]), str(pooling_config["pooling_mode"]))]
    if len(modes) != 1 or modes[0] not in _POOLING_MODES.values():
        raise ModelLoadError(
            f"{path / pooling_dir / 'config.json'}: the fast backends run exactly one of the pooling "
            f"modes {', '.join(_POOLING_KEYS.values())}; use ",
            Hint("backend", "torch"),
            ".",
        )
    st_config = (
        read_json(path / "sentence_bert_config.json")
        if (path / "sentence_bert_config.json").is_file()
        else {}
    )
    config = read_json(path / "config.json")
    tokenizer_config = (
        read_json(path / "tokenizer_config.json") if (path / "tokenizer_config.json").is_file() else {}
    )
    tokenizer_file = path / "tokenizer.json"
    if not tokenizer_file.is_file():
        raise ModelLoadError(f"{tokenizer_file} is missing: the fast backends need a fast tokenizer file.")
    max_len = st_config.get("max_seq_length") or min(
        int(tokenizer_config.get("model_max_length", 512) or 512),
        int(config.get("max_position_embeddings", 512)),
    )
    pad = tokenizer_config.get("pad_token", "[PAD]")
    if isinstance(pad, dict):
        pad = pad.get("content", "[PAD]")
    return ModelFiles(
        path=path,
        max_seq_length=int(max_len),
        do_lower_case=bool(st_config.get("do_lower_case", False)),
        pooling=modes[0],
        normalize="Normalize" in kinds,
        dim=int(
            pooling_config.get("word_embedding_dimension")
            or pooling_config.get("embedding_dimension")
            or config["hidden_size"]
        ),
        num_layers=int(config.get("num_hidden_layers", 0)),
        tokenizer_file=tokenizer_file,
        pad_token=str(pad),
    )


def read_model_files(name_or_path: str | os.PathLike[str] | None) -> ModelFiles:
    """Read the settings of the model ``name_or_path`` (``None``: the packaged all-MiniLM-L6-v2)."""
    return _read(backbone_dir(name_or_path).resolve())


def heads_fingerprint(model_dir: Path | None) -> str | None:
    """sha256 over the heads a model directory's manifest lists (their kinds, labels and file
    hashes): with the backbone's fingerprint, the identity of a graph with heads; ``None`` without
    heads."""
    manifest = None if model_dir is None else Path(model_dir) / MANIFEST_NAME
    if manifest is None or not manifest.is_file():
        return None
    content = read_json(manifest)
    heads = content.get("heads") or {}
    if not heads:
        return None
    branches = content.get("branches") or {}
    identity = {"heads": heads, "branches": branches} if branches else heads  # unchanged without branches
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
