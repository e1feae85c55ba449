"""The OpenVINO runner. ``fp32`` sets the f32 inference hint explicitly: OpenVINO otherwise runs
bf16 on CPUs that have it, which is not exact."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np

from ...errors import ModelLoadError
from .. import EngineSpec, not_installed
from . import ModelSource, variant_for
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
            self._core = openvino.Core()
            self._model = self._core.read_model(str(path))
            self._compiled = self._core.compile_model(self._model, "CPU", config)
        except Exception as exc:
            raise ModelLoadError(f"{path} is not a readable OpenVINO graph ({exc}).") from None
        self._config = config
        self._request = self._compiled.create_infer_request()
        self._variants: dict[str, Any] = {}
        self.spec = spec
        self.record = record or {}
        self.dim = dim
        # a port has several names when a conversion merged tensors (word_count and the cast of it):
        # the graph's own name is the one without a node path
        self.input_names = [_port_name(p) for p in self._compiled.inputs]
        self.output_names = [_port_name(p) for p in self._compiled.outputs]
        self._ports = {name: i for i, name in enumerate(self.input_names)}

    def _compiled_for(self, outputs: Sequence[str]) -> tuple[Any, Any]:
        """The compiled model and request for ``outputs``: on a model with task branches, a call
        for some outputs runs a model cut down to them (compiled once), so it skips the rest."""
        variant = variant_for(outputs)
        if variant is None or variant not in (self.record.get("variants") or {}):
            return self._compiled, self._request
        if variant not in self._variants:
            import openvino

            wanted = set(outputs)
            results = [r for r in self._model.get_results() if wanted & set(r.input_value(0).get_names())]
            cut = openvino.Model(results, self._model.get_parameters(), variant)
            compiled = self._core.compile_model(cut, "CPU", self._config)
            self._variants[variant] = (compiled, compiled.create_infer_request())
        return cast("tuple[Any, Any]", self._variants[variant])

    def run(self, feeds: dict[str, np.ndarray], outputs: Sequence[str]) -> dict[str, np.ndarray]:
        compiled, request = self._compiled_for(outputs)
        ports = {_port_name(p): i for i, p in enumerate(compiled.inputs)}
        result = request.infer({ports[k]: v for k, v in feeds.items() if k in ports})
        return {
            name: np.array(result[compiled.output(name)], dtype=np.float32, copy=True) for name in outputs
        }


def _port_name(port: Any) -> str:
    names = sorted(port.get_names())
    plain = [name for name in names if not name.startswith("/")]
    return plain[0] if plain else str(port.get_any_name())


def open_runner(source: ModelSource, spec: EngineSpec) -> OpenVINORunner:
    graph, record, dim = graph_for(source, spec)
    return OpenVINORunner(graph, spec, record, dim)
