"""The library's exceptions.

Every error a user can cause derives from :class:`StMultitaskError`, so callers (and the ``stmt``
CLI, which turns them into one line and exit code 2) can catch them in one place. Messages name the
problem and the fix.
"""

from __future__ import annotations

__all__ = ["ExportError", "InputError", "ModelLoadError", "RuntimeUnavailableError", "StMultitaskError"]


class StMultitaskError(Exception):
    """Base class of every error raised on purpose by st_multitask."""


class InputError(StMultitaskError, ValueError):
    """Input texts, files or arguments are missing, empty, malformed or inconsistent."""


class ModelLoadError(StMultitaskError, OSError):
    """A model could not be found or loaded (not a model directory, unknown name, offline)."""


class RuntimeUnavailableError(StMultitaskError, ImportError):
    """An inference backend (ONNX Runtime, OpenVINO, torch) is not installed; the message gives the pip command."""


class ExportError(ModelLoadError):
    """Exporting a model to a graph failed (an unsupported operator, or a graph that does not match
    torch); ``backend="auto"`` then runs the model in torch."""
