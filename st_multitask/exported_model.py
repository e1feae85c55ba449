"""Deprecated: ``ExportedMultiTaskModel`` is :func:`st_multitask.load` on a fast backend.

It stays for one release; each use warns and names the replacement.

    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     model = ExportedMultiTaskModel.default(backend="onnx")
    >>> type(model).__name__
    'Pipeline'
"""

from __future__ import annotations

import os
import warnings

from .loader import load
from .pipeline import Pipeline

__all__ = ["ExportedMultiTaskModel"]


class ExportedMultiTaskModel:
    """Deprecated: use ``st_multitask.load(path, backend="onnx" | "openvino", precision=...)``."""

    def __new__(cls, *args: object, **kwargs: object) -> ExportedMultiTaskModel:
        raise TypeError("ExportedMultiTaskModel is replaced by st_multitask.load(path, backend=...).")

    @staticmethod
    def load(
        path: str | os.PathLike[str], backend: str | None = "auto", precision: str | None = None
    ) -> Pipeline:
        """``st_multitask.load(path, backend=backend, precision=precision, device="cpu")``."""
        _warn()
        return load(path, backend=backend, precision=precision, device="cpu")

    @staticmethod
    def default(backend: str | None = "auto", precision: str | None = None) -> Pipeline:
        """``st_multitask.load(backend=backend, precision=precision, device="cpu")``."""
        _warn()
        return load(None, backend=backend, precision=precision, device="cpu")


def _warn() -> None:
    warnings.warn(
        "ExportedMultiTaskModel is deprecated: st_multitask.load(path, backend=...) gives the same "
        "predictions as a Pipeline, on every engine.",
        DeprecationWarning,
        stacklevel=3,
    )
