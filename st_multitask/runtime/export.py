"""Export a backbone to ONNX / OpenVINO graphs in fp32 or int8 (the one part of the fast path that
needs torch).

- ONNX: ``torch.onnx.export`` (opset 17); int8 is ONNX Runtime's dynamic quantisation
  (``quantize_dynamic``, per-channel int8 weights, activations quantised per batch at run time).
- OpenVINO: ``openvino.convert_model`` of that ONNX graph, saved uncompressed (exact fp32); int8 is
  NNCF's static post-training quantisation (``nncf.quantize``, transformer preset) calibrated on
  texts (``--calibration FILE``, else ``calibration.txt`` beside this module).
- In both, the first :data:`FP32_LAYERS` transformer layers stay fp32.

Every export is checked against torch on probe texts before it is kept.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ExportError, InputError, ModelLoadError, RuntimeUnavailableError, StMultitaskError
from .layout import EXPORT_FORMAT, GRAPH_FILES, graph_key
from .model_files import ModelFiles, sha256_file

__all__ = ["OPSET", "default_calibration", "export_graph", "export_model", "hidden_output_names"]

logger = logging.getLogger(__name__)

OPSET = 17
_PROBES = [
    "a",
    "Angela Merkel met Tim Cook in Berlin to discuss Apple's new factory.",
    "The quick brown fox jumps over the lazy dog, again and again, until the dog finally wakes up.",
]
# largest acceptable difference from torch, on unit-length pooled vectors, per graph precision
_TOLERANCE = {"fp32": 1e-4, "int8": 0.35}
# int8 graphs keep the first layers in fp32: their rounding errors would pass through every later
# layer. Measured with benchmarks/backend_quality.py (Rotten Tomatoes test, the default sentiment
# head): quantising every layer agreed with torch on 96.6% of labels, keeping two layers fp32 on 98.4%.
FP32_LAYERS = 2
_FP32_LAYER = re.compile(r"/layers?\.(" + "|".join(str(i) for i in range(FP32_LAYERS)) + r")/")


def hidden_output_names(num_layers: int) -> list[str]:
    """Graph outputs: the last layer, then every hidden layer (0 is the embedding layer)."""
    return ["token_embeddings", *[f"hidden_state_{i}" for i in range(num_layers + 1)]]


def default_calibration() -> list[str]:
    """The calibration texts shipped with st_multitask (varied news, reviews, questions)."""
    text = (Path(__file__).with_name("calibration.txt")).read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line.strip()]


def _load_torch_backbone(files: ModelFiles) -> Any:
    from ..backbone import load_backbone

    try:
        import transformers

        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()
    except ImportError:  # pragma: no cover - a dependency of sentence-transformers
        pass
    return load_backbone(str(files.path), device="cpu")


def _export_onnx(st_model: Any, files: ModelFiles, target: Path) -> list[str]:
    import torch

    hf = st_model[0].auto_model.eval()
    names = hidden_output_names(files.num_layers)

    class Graph(torch.nn.Module):
        def __init__(self, model: torch.nn.Module):
            super().__init__()
            self.model = model

        def forward(
            self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
        ):
            out = self.model(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=token_type_ids,
                output_hidden_states=True,
            )
            return (out.last_hidden_state, *out.hidden_states)  # (batch, seq, dim) each

    # a padded batch, so the attention mask is part of the traced graph
    example = st_model.tokenizer(_PROBES[:2], padding=True, return_tensors="pt")
    inputs = (
        example["input_ids"],
        example["attention_mask"],
        example.get("token_type_ids", torch.zeros_like(example["input_ids"])),
    )
    input_names = ["input_ids", "attention_mask", "token_type_ids"]
    axes = {name: {0: "batch", 1: "sequence"} for name in [*input_names, *names]}
    target.parent.mkdir(parents=True, exist_ok=True)
    # eager attention exports to plain MatMul/Softmax, which ONNX Runtime and OpenVINO run faster
    # on long texts than the decomposed scaled_dot_product_attention (13% at 256 tokens, same on short)
    previous = getattr(hf.config, "_attn_implementation", None)
    with contextlib.suppress(AttributeError, ValueError):
        hf.set_attn_implementation("eager")
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Graph(hf),
            inputs,
            str(target),
            input_names=input_names,
            output_names=names,
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,
        )
    if previous is not None:
        with contextlib.suppress(AttributeError, ValueError):
            hf.set_attn_implementation(previous)
    return names


def _quantize_onnx(source: Path, target: Path) -> None:
    """Dynamic int8: per-channel int8 weights, activations quantised per batch at run time; the
    MatMuls of the first layers stay fp32 (see :data:`FP32_LAYERS`)."""
    try:
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise RuntimeUnavailableError(
            f"int8 export needs the onnx package ({exc}): pip install 'st-multitask[onnx]'."
        ) from None

    names = [
        n.name for n in onnx.load(str(source), load_external_data=False).graph.node if n.op_type == "MatMul"
    ]
    keep = [name for name in names if _FP32_LAYER.search(name)]
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # onnxruntime.quantization advises on the root logger
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_dynamic(
                str(source),
                str(target),
                weight_type=QuantType.QInt8,
                per_channel=True,
                op_types_to_quantize=["MatMul"],
                nodes_to_exclude=keep,
                extra_options={"DefaultTensorType": 1},
            )
    finally:
        root.setLevel(level)


def _calibration_feeds(files: ModelFiles, texts: Sequence[str]) -> list[dict[str, np.ndarray]]:
    from .encoder import TextTokenizer

    tokenizer = TextTokenizer(files)
    feeds = []
    for text in texts:
        batch = tokenizer.batch([text])
        feeds.append(
            {
                "input_ids": batch.input_ids,
                "attention_mask": batch.attention_mask,
                "token_type_ids": batch.token_type_ids,
            }
        )
    return feeds


def _export_openvino(
    onnx_path: Path, target: Path, precision: str, files: ModelFiles, calibration: Sequence[str] | None
) -> None:
    import openvino

    model = openvino.convert_model(str(onnx_path))
    if precision == "int8":
        import nncf

        texts = list(calibration) if calibration is not None else default_calibration()
        if not texts:
            raise InputError("The calibration texts are empty: give a file with at least one line of text.")
        feeds = _calibration_feeds(files, texts)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            logging.getLogger("nncf").setLevel(logging.ERROR)
            model = nncf.quantize(
                model,
                nncf.Dataset(feeds),
                model_type=nncf.ModelType.TRANSFORMER,
                preset=nncf.QuantizationPreset.MIXED,
                subset_size=min(300, len(feeds)),
                ignored_scope=nncf.IgnoredScope(patterns=[f".*{_FP32_LAYER.pattern}.*"], validate=False),
            )
    target.parent.mkdir(parents=True, exist_ok=True)
    openvino.save_model(model, str(target), compress_to_fp16=False)


def _check_against_torch(
    st_model: Any, files: ModelFiles, graph: Path, backend: str, precision: str
) -> float:
    """Largest difference between the graph's and torch's unit-length pooled vectors on probes."""
    from .encoder import FastEncoder
    from .session import open_session

    encoder = FastEncoder(files, open_session(graph, backend, precision), backend, precision)
    ours = encoder.encode(_PROBES, batch_size=len(_PROBES))
    theirs = st_model.encode(
        _PROBES, batch_size=len(_PROBES), convert_to_numpy=True, normalize_embeddings=True
    )
    return float(np.abs(ours - theirs).max())


def export_graph(
    files: ModelFiles,
    backend: str,
    precision: str,
    root: Path,
    calibration: Sequence[str] | None = None,
    st_model: Any = None,
) -> dict[str, Any]:
    """Export the backbone in ``files`` to ``backend``/``precision`` under ``root`` (a fresh folder,
    in sentence-transformers' layout) and return the graph record for a manifest."""
    if (backend, precision) not in GRAPH_FILES:
        raise InputError(
            f"No {precision} graph for the {backend} backend. Valid precisions: fp32, int8 (bf16 on openvino)."
        )
    from .session import runtime_version

    with contextlib.redirect_stdout(sys.stderr):  # exporters' progress bars must not reach piped output
        try:
            return _export_graph(
                files, backend, precision, root, calibration, st_model, runtime_version(backend)
            )
        except StMultitaskError:
            raise
        except Exception as exc:  # the exporters' own errors, named as an export failure
            raise ExportError(f"Exporting {files.path} to {backend} {precision} failed: {exc}") from exc


def _export_graph(
    files: ModelFiles,
    backend: str,
    precision: str,
    root: Path,
    calibration: Sequence[str] | None,
    st_model: Any,
    runtime: str,
) -> dict[str, Any]:
    st_model = st_model if st_model is not None else _load_torch_backbone(files)
    onnx_fp32 = root / GRAPH_FILES[("onnx", "fp32")][0]
    outputs = _export_onnx(st_model, files, onnx_fp32)
    if backend == "onnx" and precision == "int8":
        _quantize_onnx(onnx_fp32, root / GRAPH_FILES[("onnx", "int8")][0])
        onnx_fp32.unlink()
    elif backend == "openvino":
        _export_openvino(
            onnx_fp32, root / GRAPH_FILES[("openvino", precision)][0], precision, files, calibration
        )
        for leftover in onnx_fp32.parent.iterdir():
            leftover.unlink()
        onnx_fp32.parent.rmdir()
    names = GRAPH_FILES[(backend, precision)]
    difference = _check_against_torch(st_model, files, root / names[0], backend, precision)
    if not difference <= _TOLERANCE[precision]:
        raise ExportError(
            f"The exported {graph_key(backend, precision)} graph of {files.path} differs from torch by "
            f"{difference:.3g} (allowed {_TOLERANCE[precision]}); it was not kept. Use backend='torch'."
        )
    return {
        "backend": backend,
        "precision": precision,
        "files": {name: sha256_file(root / name) for name in names},
        "source": files.fingerprint(),
        "runtime": runtime,
        "outputs": outputs,
        "opset": OPSET,
        "max_abs_diff_vs_torch": difference,
        "format": EXPORT_FORMAT,
    }


def export_model(
    model: str | os.PathLike[str] | None,
    output: str | os.PathLike[str],
    backend: str,
    precision: str = "fp32",
    calibration: Sequence[str] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a complete model directory with an exported graph, atomically.

    ``model`` is a st_multitask model directory, a plain sentence-transformers model directory, or
    ``None`` for the bundled default model. The output holds the backbone's files, the heads, and
    the graph in sentence-transformers' layout (``onnx/...`` or ``openvino/...``), each graph file
    listed with its sha256 in the manifest. Graphs already in ``model`` are kept. ``bf16`` writes
    the fp32 OpenVINO graph, which OpenVINO runs in bf16 where the CPU supports it.
    ``stmt export`` is this function on the command line.
    """
    from .._atomic import atomic_directory
    from ..backbone import bundled_model_dir
    from ..manifest import FORMAT_VERSION, MANIFEST_NAME, read_manifest
    from . import BackendChoice
    from .layout import graph_precision
    from .model_files import backbone_dir, read_model_files

    if backend not in ("onnx", "openvino"):
        raise InputError(f"Unknown export backend {backend!r}. Valid: onnx, openvino.")
    choice = BackendChoice(backend, precision)
    if precision not in ("fp32", "bf16", "int8") or (backend == "onnx" and precision == "bf16"):
        raise InputError(
            f"Cannot export {backend} {precision}. Valid: onnx fp32|int8, openvino fp32|bf16|int8."
        )
    source = bundled_model_dir() if model is None else Path(model).expanduser()
    if not source.is_dir():
        raise ModelLoadError(f"{source} is not a model directory.")
    manifest = read_manifest(source) if (source / MANIFEST_NAME).is_file() else None
    backbone = backbone_dir(source)
    read_model_files(backbone)  # fail early on models the fast path cannot run
    output = Path(output)
    if output.resolve() == source.resolve() and not overwrite:
        raise InputError(f"{output} is the model itself; pass overwrite=True to add the graph to it.")
    with atomic_directory(output, overwrite) as tmp:
        shutil.copytree(backbone, tmp, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".*", "__pycache__"))
        if manifest is None:
            manifest = {"format_version": FORMAT_VERSION, "backbone": {"type": "directory"}, "heads": {}}
            manifest["dimension"] = read_model_files(backbone).dim
        elif backbone != source:  # heads on the packaged MiniLM: copy the heads beside it
            shutil.copytree(source / "heads", tmp / "heads", dirs_exist_ok=True)
        manifest = dict(manifest)
        manifest["backbone"] = {**manifest["backbone"], "type": "directory"}
        graphs = dict(manifest.get("graphs", {}))
        key = graph_key(backend, graph_precision(choice))
        for name in graphs.pop(key, {}).get("files", {}):
            (tmp / name).unlink(missing_ok=True)
        files = read_model_files(tmp)
        record = export_graph(files, backend, graph_precision(choice), tmp, calibration)
        graphs[key] = record
        manifest["graphs"] = graphs
        (tmp / MANIFEST_NAME).write_text(
            json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
    return output
