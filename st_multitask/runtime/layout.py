"""Where exported graphs live and what they are called: the layout every part of the runtime shares.

>>> graph_key("onnx", "int8"), GRAPH_FILES[("onnx", "int8")]
('onnx/int8', ('onnx/model_qint8.onnx',))
"""

from __future__ import annotations

from . import EngineSpec

__all__ = ["ENTRY_NAME", "EXPORT_FORMAT", "FP32_LAYERS", "GRAPH_FILES", "graph_key", "graph_precision"]

# part of every cache key: a change in how graphs are made re-exports them (4: heads inside)
EXPORT_FORMAT = 4
# int8 graphs keep the first layers in fp32: their rounding errors pass through every later layer.
# ONNX Runtime: chosen on dev data by benchmarks/int8_layers.py (results/2c-amx/int8_layers.json):
# three layers are the fewest that keep the default model's sentiment labels on 98.5% of the dev
# texts (every MatMul int8: 96.6%; two layers: 97.7%), at 0.64x the speed of all-int8 embeddings.
# OpenVINO (NNCF static quantisation, not studied that way): two layers.
FP32_LAYERS = {"onnx": 3, "openvino": 2}
# files of each graph, main file first, in sentence-transformers' layout
GRAPH_FILES = {
    ("onnx", "fp32"): ("onnx/model.onnx",),
    ("onnx", "int8"): ("onnx/model_qint8.onnx",),
    ("openvino", "fp32"): ("openvino/openvino_model.xml", "openvino/openvino_model.bin"),
    ("openvino", "int8"): (
        "openvino/openvino_model_qint8_quantized.xml",
        "openvino/openvino_model_qint8_quantized.bin",
    ),
}
ENTRY_NAME = "graph.json"


def graph_precision(choice: EngineSpec) -> str:
    """The precision stored in the graph: OpenVINO's bf16 is a run-time hint on the fp32 graph."""
    return "fp32" if choice.precision == "bf16" else choice.precision


def graph_key(backend: str, precision: str) -> str:
    """``"onnx/int8"``: the key of a graph in a manifest's ``graphs``."""
    return f"{backend}/{precision}"


def runtime_version(backend: str) -> str:
    """``"onnxruntime 1.32.0"`` / ``"openvino 2026.4.1"``: part of every cache key."""
    if backend == "onnx":
        import onnxruntime

        return f"onnxruntime {onnxruntime.__version__}"
    import openvino

    return f"openvino {openvino.get_version()}"
