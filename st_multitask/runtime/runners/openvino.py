"""The OpenVINO runner. ``fp32`` sets the f32 inference hint explicitly: OpenVINO otherwise runs
bf16 on CPUs that have it, which is not exact."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import ModelLoadError
from .. import EngineSpec, not_installed
from . import ModelSource
from ._graph import graph_for

__all__ = ["OpenVINORunner", "open_runner"]


class OpenVINORunner:
    """A compiled OpenVINO model on the CPU, on ``spec.threads`` threads."""

    def __init__(self, path: Path, spec: EngineSpec, record: dict[str, Any] | None = None, dim: int = 0):
        try:
            import openvino
        except ImportError:
            raise not_installed("openvino") from None
        hint = {"fp32": "f32", "int8": "f32", "bf16": "bf16"}[spec.precision]
        config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": hint, "PERFORMANCE_HINT": "LATENCY"}
        if spec.threads:
            config["INFERENCE_NUM_THREADS"] = spec.threads
        try:
            core = openvino.Core()
            self._compiled = core.compile_model(core.read_model(str(path)), "CPU", config)
        except Exception as exc:
            raise ModelLoadError(f"{path} is not a readable OpenVINO graph ({exc}).") from None
        self._request = self._compiled.create_infer_request()
        self.spec = spec
        self.record = record or {}
        self.dim = dim
        # a port has several names when a conversion merged tensors (word_count and the cast of it):
        # the graph's own name is the one without a node path
        self.input_names = [_port_name(p) for p in self._compiled.inputs]
        self.output_names = [_port_name(p) for p in self._compiled.outputs]
        self._ports = {name: i for i, name in enumerate(self.input_names)}

    def run(self, feeds: dict[str, np.ndarray], outputs: Sequence[str]) -> dict[str, np.ndarray]:
        result = self._request.infer({self._ports[k]: v for k, v in feeds.items() if k in self._ports})
        return {
            name: np.array(result[self._compiled.output(name)], dtype=np.float32, copy=True)
            for name in outputs
        }


def _port_name(port: Any) -> str:
    names = sorted(port.get_names())
    plain = [name for name in names if not name.startswith("/")]
    return plain[0] if plain else str(port.get_any_name())


def open_runner(source: ModelSource, spec: EngineSpec) -> OpenVINORunner:
    graph, record, dim = graph_for(source, spec)
    return OpenVINORunner(graph, spec, record, dim)
