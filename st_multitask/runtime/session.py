"""A session over an exported graph: one small class per runtime, one ``run`` contract.

``run(feeds, outputs)`` takes numpy inputs by name and returns the named outputs as numpy arrays.
ONNX Runtime and OpenVINO are imported only when a session of theirs is opened.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ModelLoadError
from . import not_installed, runtime_threads

__all__ = ["GraphSession", "OnnxSession", "OpenVINOSession", "open_session", "runtime_version"]


def runtime_version(backend: str) -> str:
    """``"onnxruntime 1.32.0"`` / ``"openvino 2026.4.1"``: part of every cache key."""
    if backend == "onnx":
        import onnxruntime

        return f"onnxruntime {onnxruntime.__version__}"
    import openvino

    return f"openvino {openvino.get_version()}"


class GraphSession:
    """Base class: the graph's input names, and ``run``."""

    input_names: list[str]
    output_names: list[str]

    def run(self, feeds: dict[str, np.ndarray], outputs: list[str]) -> list[np.ndarray]:  # pragma: no cover
        raise NotImplementedError


class OnnxSession(GraphSession):
    """ONNX Runtime on the CPU, with all graph optimisations on."""

    def __init__(self, path: Path, threads: int = 0):
        try:
            import onnxruntime as ort
        except ImportError:
            raise not_installed("onnx") from None
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # ORT raises its own exception types for bad files
            raise ModelLoadError(f"{path} is not a readable ONNX graph ({exc}).") from None
        self.input_names = [i.name for i in self._session.get_inputs()]
        self.output_names = [o.name for o in self._session.get_outputs()]

    def run(self, feeds: dict[str, np.ndarray], outputs: list[str]) -> list[np.ndarray]:
        return self._session.run(outputs, {k: v for k, v in feeds.items() if k in self.input_names})


class OpenVINOSession(GraphSession):
    """OpenVINO on the CPU. ``fp32`` sets the f32 inference hint explicitly: OpenVINO otherwise runs
    bf16 on CPUs that have it, which is not exact."""

    def __init__(self, path: Path, precision: str = "fp32", threads: int = 0):
        try:
            import openvino
        except ImportError:
            raise not_installed("openvino") from None
        hint = {"fp32": "f32", "int8": "f32", "bf16": "bf16"}[precision]
        core = openvino.Core()
        config = {"INFERENCE_PRECISION_HINT": hint, "PERFORMANCE_HINT": "LATENCY"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        try:
            model = core.read_model(str(path))
            self._compiled = core.compile_model(model, "CPU", config)
        except Exception as exc:
            raise ModelLoadError(f"{path} is not a readable OpenVINO graph ({exc}).") from None
        self._request = self._compiled.create_infer_request()
        # a port has several names when a conversion merged tensors (word_count and the cast of it):
        # the graph's own name is the one without a node path
        self.input_names = [_port_name(p) for p in self._compiled.inputs]
        self.output_names = [_port_name(p) for p in self._compiled.outputs]
        self._ports = {name: i for i, name in enumerate(self.input_names)}

    def run(self, feeds: dict[str, np.ndarray], outputs: list[str]) -> list[np.ndarray]:
        result = self._request.infer({self._ports[k]: v for k, v in feeds.items() if k in self._ports})
        return [np.array(result[self._compiled.output(name)], copy=True) for name in outputs]


def _port_name(port: object) -> str:
    names = sorted(port.get_names())  # type: ignore[attr-defined]
    plain = [name for name in names if not name.startswith("/")]
    return plain[0] if plain else port.get_any_name()  # type: ignore[attr-defined]


def open_session(path: Path, backend: str, precision: str) -> GraphSession:
    """Open the graph at ``path`` in ``backend`` (``onnx`` or ``openvino``), on the threads that
    :func:`~st_multitask.runtime.set_threads` set."""
    if backend == "onnx":
        return OnnxSession(path, runtime_threads())
    if backend == "openvino":
        return OpenVINOSession(path, precision, runtime_threads())
    raise ValueError(f"not a fast backend: {backend}")  # pragma: no cover - resolve_backend checks
