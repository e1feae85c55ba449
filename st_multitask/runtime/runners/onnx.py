"""The ONNX Runtime runner: the exported graph on the CPU, graph optimisations on.

Optimising the graph is most of what opening a session costs. For a graph in the per-user cache,
the first session saves its optimised graph beside it (ONNX Runtime's ``optimized_model_filepath``,
at the ``extended`` level: no hardware-specific layout changes) with its sha256; later sessions
open that file with the optimisations off, after checking it against its sha256 like every graph
file (hashed again only when it changes, :mod:`st_multitask.file_hashes`). It goes with its cache
entry. A graph in a model directory (``stmt export``) is optimised at every open: nothing is
written there.

With ``spec.spin`` off, the intra-op threads sleep rather than busy-wait between ops and calls
(``session.intra_op.allow_spinning``), as a server wants: see :class:`~st_multitask.runtime.EngineSpec`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import ModelLoadError
from ...file_hashes import cache_root, sha256_of
from .. import EngineSpec, not_installed
from . import ModelSource, variant_for
from ._graph import graph_for

__all__ = ["OnnxRunner", "open_runner"]

logger = logging.getLogger(__name__)

_LEVELS = {"disable": "ORT_DISABLE_ALL", "extended": "ORT_ENABLE_EXTENDED", "all": "ORT_ENABLE_ALL"}
_SAVED_LEVEL = "extended"  # optimisations saved with the graph; layout ones (level "all") are CPU-specific


class OnnxRunner:
    """An ``onnxruntime.InferenceSession`` over a graph file, on ``spec.threads`` threads.

    A graph with task branches comes with variants cut from it (``record["variants"]``: the heads
    alone, the embedding alone), each opened when a call first asks for just those outputs, so a
    call runs only the layers it needs."""

    def __init__(self, path: Path, spec: EngineSpec, record: dict[str, Any] | None = None, dim: int = 0):
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            raise not_installed("onnx") from None
        self.spec = spec
        self.record = record or {}
        self.dim = dim
        self._path = path
        self._session = self._open(path)
        self._variants: dict[str, Any] = {}
        self.input_names = [i.name for i in self._session.get_inputs()]
        self._inputs = {id(self._session): set(self.input_names)}  # per session, read once
        self.output_names = [o.name for o in self._session.get_outputs()]

    def _open(self, path: Path) -> Any:
        import onnxruntime as ort

        try:
            return _optimized_session(ort, path, self.spec) or _session(ort, path, self.spec, "all")
        except Exception as exc:  # ORT raises its own exception types for bad files
            raise ModelLoadError(f"{path} is not a readable ONNX graph ({exc}).") from None

    def _session_for(self, outputs: Sequence[str]) -> Any:
        files = self.record.get("variants") or {}
        variant = variant_for(outputs)
        if variant is None or variant not in files:
            return self._session
        if variant not in self._variants:
            main = next(iter(self.record.get("files") or {}), None)
            root = self._path.parents[len(Path(main).parts) - 1] if main else self._path.parent.parent
            session = self._variants[variant] = self._open(root / files[variant])
            self._inputs[id(session)] = {i.name for i in session.get_inputs()}
        return self._variants[variant]

    def run(self, feeds: dict[str, np.ndarray], outputs: Sequence[str]) -> dict[str, np.ndarray]:
        names = list(outputs)
        session = self._session_for(names)
        inputs = self._inputs[id(session)]
        values = session.run(names, {k: v for k, v in feeds.items() if k in inputs})
        return {name: value.astype(np.float32, copy=False) for name, value in zip(names, values)}


def _session(ort: Any, path: Path, spec: EngineSpec, level: str, save_to: Path | None = None) -> Any:
    """A CPU session over ``path`` with the graph optimisations of ``level`` (:data:`_LEVELS`),
    saving the optimised graph to ``save_to`` when given."""
    options = ort.SessionOptions()
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, _LEVELS[level])
    options.intra_op_num_threads = spec.threads
    options.log_severity_level = 3
    if not spec.spin:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    if save_to is not None:
        options.optimized_model_filepath = str(save_to)
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _optimized_session(ort: Any, path: Path, spec: EngineSpec) -> Any | None:
    """A session over the saved optimised graph of the cached graph ``path`` (saved now, from this
    session, if it is not there yet); None for a graph outside the cache, or if the cache is
    read-only."""
    if cache_root().resolve() not in path.resolve().parents:
        return None
    saved = path.with_name(f"{path.stem}.optimized.onnx")
    meta = path.with_name(f"{path.stem}.optimized.json")
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        expected = json.loads(meta.read_text(encoding="utf-8"))
        if expected["level"] == _SAVED_LEVEL and sha256_of(saved) == expected["sha256"]:
            return _session(ort, saved, spec, "disable")
        logger.warning("%s does not match its sha256 in %s: optimising the graph again.", saved, meta)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=".optimize-", dir=path.parent))
    except OSError:  # a read-only cache: optimise in memory only
        return None
    try:
        session = _session(ort, path, spec, _SAVED_LEVEL, save_to=tmp / saved.name)
        with contextlib.suppress(OSError):
            os.replace(tmp / saved.name, saved)  # the graph first, then the record that vouches for it
            record = {"level": _SAVED_LEVEL, "sha256": sha256_of(saved)}  # kept: no hash at the next open
            (tmp / meta.name).write_text(json.dumps(record) + "\n", encoding="utf-8")
            os.replace(tmp / meta.name, meta)
        return session
    finally:
        for leftover in tmp.iterdir():
            leftover.unlink()
        tmp.rmdir()


def open_runner(source: ModelSource, spec: EngineSpec) -> OnnxRunner:
    graph, record, dim = graph_for(source, spec)
    return OnnxRunner(graph, spec, record, dim)
