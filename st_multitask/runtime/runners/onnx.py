"""The ONNX Runtime runner: the exported graph on the CPU, all graph optimisations on; with
``spec.spin`` off, the intra-op threads sleep rather than busy-wait between ops and calls
(``session.intra_op.allow_spinning``), as a server wants: see :class:`~st_multitask.runtime.EngineSpec`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import ModelLoadError
from .. import EngineSpec, not_installed
from . import ModelSource
from ._graph import graph_for

__all__ = ["OnnxRunner", "open_runner"]


class OnnxRunner:
    """An ``onnxruntime.InferenceSession`` over a graph file, on ``spec.threads`` threads."""

    def __init__(self, path: Path, spec: EngineSpec, record: dict[str, Any] | None = None, dim: int = 0):
        try:
            import onnxruntime as ort
        except ImportError:
            raise not_installed("onnx") from None
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = spec.threads
        options.log_severity_level = 3
        if not spec.spin:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        try:
            self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # ORT raises its own exception types for bad files
            raise ModelLoadError(f"{path} is not a readable ONNX graph ({exc}).") from None
        self.spec = spec
        self.record = record or {}
        self.dim = dim
        self.input_names = [i.name for i in self._session.get_inputs()]
        self.output_names = [o.name for o in self._session.get_outputs()]

    def run(self, feeds: dict[str, np.ndarray], outputs: Sequence[str]) -> dict[str, np.ndarray]:
        names = list(outputs)
        values = self._session.run(names, {k: v for k, v in feeds.items() if k in self.input_names})
        return {name: value.astype(np.float32, copy=False) for name, value in zip(names, values)}


def open_runner(source: ModelSource, spec: EngineSpec) -> OnnxRunner:
    graph, record, dim = graph_for(source, spec)
    return OnnxRunner(graph, spec, record, dim)
