"""Heads and the registry of head kinds.

Built-in kinds: ``"mlp"`` (:class:`MLPHead`, sentence level), ``"token"`` (:class:`TokenHead`,
token level) and ``"token_context"`` (:class:`ContextTokenHead`: layer mix, word shapes, BiLSTM) and ``"hybrid"``
(:class:`HybridHead`: wide and deep, TF-IDF n-grams of the text beside the backbone's states) and
``"zero_shot"`` (:class:`ZeroShotHead`: label prototypes from names and descriptions, no examples). Third parties add kinds without touching this code, either by calling
:func:`register_head` or through the ``st_multitask.heads`` entry point group::

    [options.entry_points]
    st_multitask.heads =
        my_kind = my_package.heads:MyHead
"""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from ..decoding import register_decoder
from ..errors import InputError, ModelLoadError, StMultitaskError
from ..manifest import CONFIG_NAME, MANIFEST_NAME, check_head_files
from .base import Head
from .context import ContextTokenHead
from .hybrid import HybridHead
from .mlp import MLPHead
from .token import TokenHead
from .zero_shot import ZeroShotHead

__all__ = [
    "ENTRY_POINT_GROUP",
    "ContextTokenHead",
    "Head",
    "HybridHead",
    "MLPHead",
    "TokenHead",
    "ZeroShotHead",
    "get_head_class",
    "head_kinds",
    "read_heads",
    "register_head",
]

ENTRY_POINT_GROUP = "st_multitask.heads"
_REGISTRY: dict[str, type[Head]] = {}
_entry_points_loaded = False


def register_head(cls: type[Head]) -> type[Head]:
    """Register a head class under its ``kind`` (usable as a class decorator)."""
    if not (isinstance(cls, type) and issubclass(cls, Head)):
        raise InputError(f"{cls!r} is not a subclass of st_multitask.heads.Head.")
    kind = getattr(cls, "kind", None)
    if not isinstance(kind, str) or not kind:
        raise InputError(f"{cls.__name__} must set a class attribute `kind` (its registry name).")
    if getattr(cls, "level", None) not in ("sentence", "token"):
        raise InputError(f"{cls.__name__}.level must be 'sentence' or 'token'.")
    existing = _REGISTRY.get(kind)
    if existing is not None and existing is not cls:
        raise InputError(
            f"Head kind {kind!r} is already registered by {existing.__module__}.{existing.__name__}."
        )
    _REGISTRY[kind] = cls
    if cls.decoder_class is not None:
        register_decoder(kind, cls.decoder_class)
    return cls


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in _REGISTRY:
            continue
        try:
            cls = ep.load()
        except Exception as exc:
            raise ModelLoadError(
                f"Head kind {ep.name!r} from entry point {ep.value!r} failed to import: {exc}"
            ) from exc
        register_head(cls)


def head_kinds() -> list[str]:
    """Every registered kind, entry points included."""
    _load_entry_points()
    return sorted(_REGISTRY)


def get_head_class(kind: str) -> type[Head]:
    """The class registered for ``kind``."""
    if kind not in _REGISTRY:
        _load_entry_points()
    if kind not in _REGISTRY:
        raise ModelLoadError(
            f"Unknown head kind {kind!r}. Valid: {', '.join(head_kinds())}. A third-party kind must be "
            f"installed (entry point group {ENTRY_POINT_GROUP!r}) or registered with register_head()."
        )
    return _REGISTRY[kind]


register_head(MLPHead)
register_head(TokenHead)
register_head(ContextTokenHead)
register_head(HybridHead)
register_head(ZeroShotHead)


def read_heads(path: Path, manifest: dict[str, Any], dimension: int) -> dict[str, Head]:
    """The heads of the model directory ``path``, each checked against the manifest: file hashes,
    kind, labels, and an input width equal to the backbone's ``dimension``."""
    heads: dict[str, Head] = {}
    for name, info in manifest["heads"].items():
        head_dir = check_head_files(Path(path), name, info)
        head = _load_head(head_dir)
        if head.kind != info.get("kind") or head.labels != info.get("labels"):
            raise ModelLoadError(f"{head_dir}: kind or labels differ from {MANIFEST_NAME}.")
        if head.in_features != dimension:
            raise ModelLoadError(
                f"{head_dir}: head takes {head.in_features}-d input, the backbone gives {dimension}-d."
            )
        heads[name] = head
    return heads


def _load_head(head_dir: Path) -> Head:
    """``Head.load``, with every problem of the head's files named by its folder."""
    try:
        return Head.load(head_dir)
    except StMultitaskError as exc:
        if str(head_dir) in str(exc):
            raise
        raise ModelLoadError(f"{head_dir / CONFIG_NAME}: {exc}") from None
    except (TypeError, ValueError, RuntimeError) as exc:  # settings of the wrong type or size
        raise ModelLoadError(f"{head_dir / CONFIG_NAME}: invalid head settings ({exc}).") from None
