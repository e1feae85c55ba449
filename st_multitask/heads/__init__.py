"""Heads and the registry of head kinds.

Built-in kinds: ``"mlp"`` (:class:`MLPHead`, sentence level), ``"token"`` (:class:`TokenHead`,
token level) and ``"token_context"`` (:class:`ContextTokenHead`: layer mix, word shapes, BiLSTM) and ``"hybrid"``
(:class:`HybridHead`: wide and deep, TF-IDF n-grams of the text beside the backbone's states). Third parties add kinds without touching this code, either by calling
:func:`register_head` or through the ``st_multitask.heads`` entry point group::

    [options.entry_points]
    st_multitask.heads =
        my_kind = my_package.heads:MyHead
"""

from __future__ import annotations

from importlib.metadata import entry_points

from ..errors import InputError, ModelLoadError
from .base import Head
from .context import ContextTokenHead
from .hybrid import HybridHead
from .mlp import MLPHead
from .token import TokenHead

__all__ = [
    "ENTRY_POINT_GROUP",
    "Head",
    "HybridHead",
    "MLPHead",
    "TokenHead",
    "get_head_class",
    "head_kinds",
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
