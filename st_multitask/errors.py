"""The library's exceptions.

Every error a user can cause derives from :class:`StMultitaskError`, so callers (and the ``stmt``
CLI, which turns them into one line and exit code 2) can catch them in one place. Messages name the
problem and the fix. A fix that is an argument travels as a :class:`Hint` among the message's
parts, so each front end names it in its own terms: ``overwrite=True`` in Python, ``--overwrite``
on the command line.

    >>> error = InputError("out exists already; pass ", Hint("overwrite", True), " to replace it.")
    >>> str(error), error.hints
    ('out exists already; pass overwrite=True to replace it.', (Hint(name='overwrite', value=True, verb=''),))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ExportError",
    "Hint",
    "InputError",
    "ModelLoadError",
    "RuntimeUnavailableError",
    "StMultitaskError",
]


@dataclass(frozen=True)
class Hint:
    """An argument that fixes a mistake, by its Python name and value (``None``: leave it out);
    ``verb`` (pass, use) is said with it where the value alone would not read."""

    name: str
    value: Any = True
    verb: str = ""

    def __str__(self) -> str:
        return f"{self.verb} {self.name}={self.value!r}".strip()


class StMultitaskError(Exception):
    """Base class of every error raised on purpose by st_multitask.

    The message is given in parts: text and :class:`Hint`\\ s. ``str(error)`` reads them in Python
    terms; :meth:`render` lets a front end spell the hints its own way."""

    def __init__(self, *parts: str | Hint):
        self.parts = parts
        super().__init__(self.render())

    @property
    def hints(self) -> tuple[Hint, ...]:
        """The arguments the message suggests, in order."""
        return tuple(part for part in self.parts if isinstance(part, Hint))

    def render(self, hint: Callable[[Hint], str] = str) -> str:
        """The message with each hint spelled by ``hint`` (Python's ``name=value`` by default)."""
        return "".join(hint(part) if isinstance(part, Hint) else str(part) for part in self.parts)


class InputError(StMultitaskError, ValueError):
    """Input texts, files or arguments are missing, empty, malformed or inconsistent."""


class ModelLoadError(StMultitaskError, OSError):
    """A model could not be found or loaded (not a model directory, unknown name, offline)."""


class RuntimeUnavailableError(StMultitaskError, ImportError):
    """An inference backend (ONNX Runtime, OpenVINO, torch) is not installed; the message gives the pip command."""


class ExportError(ModelLoadError):
    """Exporting a model to a graph failed (an unsupported operator, or a graph that does not match
    torch); ``backend="auto"`` then runs the model in torch."""
