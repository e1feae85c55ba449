"""Open a FastEncoder for a model: resolve the engine, find (or export) its graph, once per process.

>>> from st_multitask.runtime.load import load_encoder
>>> encoder = load_encoder(None, "onnx", "fp32")
>>> encoder.encode(["The dog ran across the grass."]).shape
(1, 384)
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from ..errors import InputError
from . import BackendChoice, resolve_backend, runtime_threads
from .encoder import FastEncoder
from .graphs import find_graph
from .session import open_session

__all__ = ["load_encoder"]


@functools.lru_cache(maxsize=8)
def _cached_encoder(name: str | None, backend: str, precision: str, threads: int = 0) -> FastEncoder:
    # ``threads`` is part of the cache key: open_session reads it from runtime_threads()
    graph, _, files = find_graph(name, BackendChoice(backend, precision))
    return FastEncoder(files, open_session(graph, backend, precision), backend, precision)


def load_encoder(
    name_or_path: str | os.PathLike[str] | None = None,
    backend: str | None = "auto",
    precision: str | None = None,
) -> FastEncoder:
    """A FastEncoder for the model (``None``: the packaged all-MiniLM-L6-v2), once per process.

    ``backend`` must resolve to ``onnx`` or ``openvino``; the graph is found in the model
    directory, else in the per-user cache, else exported once into it.
    """
    choice = resolve_backend(backend, precision, device="cpu")
    if not choice.fast:
        raise InputError(f"load_encoder runs the fast backends (onnx, openvino), not {choice.backend}.")
    name = None
    if name_or_path is not None:
        path = Path(os.fspath(name_or_path)).expanduser()
        name = str(path.resolve()) if path.exists() else os.fspath(name_or_path)  # one cache entry per folder
    return _cached_encoder(name, choice.backend, choice.precision, runtime_threads())
