"""The ONNX Runtime runner: the exported graph on the CPU, all graph optimisations on."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import ModelLoadError
from .. import EngineSpec, not_installed
from . import ModelSource, variant_for
from ._graph import graph_for

__all__ = ["OnnxRunner", "open_runner"]


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
        self.output_names = [o.name for o in self._session.get_outputs()]

    def _open(self, path: Path) -> Any:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = self.spec.threads
        options.log_severity_level = 3
        try:
            return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
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
            self._variants[variant] = self._open(root / files[variant])
        return self._variants[variant]

    def run(self, feeds: dict[str, np.ndarray], outputs: Sequence[str]) -> dict[str, np.ndarray]:
        names = list(outputs)
        session = self._session_for(names)
        inputs = {i.name for i in session.get_inputs()}
        values = session.run(names, {k: v for k, v in feeds.items() if k in inputs})
        return {name: value.astype(np.float32, copy=False) for name, value in zip(names, values)}


def open_runner(source: ModelSource, spec: EngineSpec) -> OnnxRunner:
    graph, record, dim = graph_for(source, spec)
    return OnnxRunner(graph, spec, record, dim)
