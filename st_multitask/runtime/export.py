"""Export a model, backbone and heads, to one ONNX / OpenVINO graph in fp32 or int8 (the one part
of the fast path that needs torch).

The graph is :class:`~st_multitask.runtime.torch_graph.ModelGraph`, the module torch runs: it reads
the inputs of :mod:`st_multitask.runtime.feeds` and outputs ``sentence_embedding`` and one
``probabilities.<task>`` per head.

- ONNX: ``torch.onnx.export`` (opset 17); int8 is ONNX Runtime's dynamic quantisation
  (``quantize_dynamic``, per-channel int8 weights, activations quantised per batch at run time).
- OpenVINO: ``openvino.convert_model`` of that ONNX graph, saved uncompressed (exact fp32); int8 is
  NNCF's static post-training quantisation (``nncf.quantize``, transformer preset) calibrated on
  texts (``--calibration FILE``, else ``calibration.txt`` beside this module).
- In both, the heads and the first transformer layers (:data:`FP32_LAYERS` per backend) stay fp32.

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

from ..errors import ExportError, Hint, InputError, ModelLoadError, RuntimeUnavailableError, StMultitaskError
from .graph_cuts import check_against_torch, export_cuts
from .layout import EXPORT_FORMAT, FP32_LAYERS, GRAPH_FILES, graph_key
from .model_files import ModelFiles, heads_fingerprint, sha256_file

__all__ = ["OPSET", "default_calibration", "export_graph", "export_model"]

logger = logging.getLogger(__name__)

OPSET = 17
_PROBES = [
    "a",
    "Angela Merkel met Tim Cook in Berlin to discuss Apple's new factory.",
    "The quick brown fox jumps over the lazy dog, again and again, until the dog finally wakes up.",
]
# largest acceptable difference from torch, on unit-length pooled vectors, per graph precision
_TOLERANCE = {"fp32": 1e-4, "int8": 0.35}


# the first layers per backend, kept fp32 in int8 graphs
_FP32_LAYER = {b: re.compile(rf"/layers?\.({'|'.join(map(str, range(n)))})/") for b, n in FP32_LAYERS.items()}
# the transformer's nodes: the backbone's layers (/encoder/, or /layer.N/ run one by one beside task
# branches) and the branches' (/blocks.N/); the heads' nodes stay fp32
_BACKBONE_NODE = re.compile(r"/encoder/|/layer\.\d+/|/blocks\.\d+/")


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


def _example_feeds(graph: Any, files: ModelFiles, texts: Sequence[str]) -> dict[str, np.ndarray]:
    from ..alignment import split_words
    from .feeds import build_feeds
    from .tokenizer import TextTokenizer

    texts = list(texts)
    feeds, _ = build_feeds(
        graph.plan, TextTokenizer.from_files(files), texts, [split_words(t) for t in texts]
    )
    return feeds


def _dynamic_axes(graph: Any) -> dict[str, dict[int, str]]:
    axes: dict[str, dict[int, str]] = {}
    for name in graph.input_names:
        if name in ("input_ids", "attention_mask", "token_type_ids"):
            axes[name] = {0: "rows", 1: "sequence"}
        elif name == "piece_word":
            axes[name] = {0: "batch", 1: "sequence"}
        elif name == "word_count":
            axes[name] = {0: "batch"}
        elif name == "window_mean":
            axes[name] = {0: "batch", 1: "rows"}
        elif name.startswith("ngram_"):  # each hybrid head has its own width
            axes[name] = {0: "batch", 1: f"ngrams_{name.split('.', 1)[1]}"}
        else:  # word_mask, word_shape, word_chars
            axes[name] = {0: "batch", 1: "words"}
    axes["sentence_embedding"] = {0: "batch"}
    for name, head in zip(graph.output_names[1:], graph.heads.values()):
        axes[name] = {0: "batch", 1: "words"} if head.level == "token" else {0: "batch"}
    return axes


def _export_onnx(graph: Any, files: ModelFiles, target: Path) -> list[str]:
    import torch

    hf = graph.backbone[0].auto_model.eval()
    graph.eval()
    # a padded batch with a long text, so that masks, windows and word padding are in the traced graph
    feeds = _example_feeds(graph, files, [_PROBES[1], _PROBES[2] * 40 if graph.plan.windows else _PROBES[2]])
    inputs = tuple(torch.from_numpy(feeds[name]) for name in graph.input_names)
    target.parent.mkdir(parents=True, exist_ok=True)
    # eager attention exports to plain MatMul/Softmax, which ONNX Runtime and OpenVINO run faster
    # on long texts than the decomposed scaled_dot_product_attention (13% at 256 tokens, same on short)
    previous = getattr(hf.config, "_attn_implementation", None)
    with contextlib.suppress(AttributeError, ValueError):
        hf.set_attn_implementation("eager")
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                graph,
                inputs,
                str(target),
                input_names=graph.input_names,
                output_names=graph.output_names,
                dynamic_axes=_dynamic_axes(graph),
                opset_version=OPSET,
                dynamo=False,
            )
    finally:
        if previous is not None:
            with contextlib.suppress(AttributeError, ValueError):
                hf.set_attn_implementation(previous)
    return list(graph.output_names)


def _quantize_onnx(source: Path, target: Path) -> None:
    """Dynamic int8: per-channel int8 weights, activations quantised per batch at run time; the
    MatMuls of the first layers and of the heads stay fp32 (see :data:`FP32_LAYERS`)."""
    try:
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise RuntimeUnavailableError(
            f"int8 export needs the onnx package ({exc}): pip install 'st-multitask[onnx]'."
        ) from None

    names = [n.name for n in onnx.load(str(source), load_external_data=False).graph.node]
    fp32 = _FP32_LAYER["onnx"]
    keep = [name for name in names if fp32.search(name) or not _BACKBONE_NODE.search(name)]
    keep += [f"{name}_MatMul" for name in keep if name.endswith("Gemm")]  # the quantizer's MatMul of a Gemm
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


def _export_openvino(
    onnx_path: Path,
    target: Path,
    precision: str,
    files: ModelFiles,
    calibration: Sequence[str] | None,
    graph: Any,
) -> None:
    import openvino

    model = openvino.convert_model(str(onnx_path))
    if precision == "int8":
        import nncf

        texts = list(calibration) if calibration is not None else default_calibration()
        if not texts:
            raise InputError("The calibration texts are empty: give a file with at least one line of text.")
        feeds = [_example_feeds(graph, files, [text]) for text in texts]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            logging.getLogger("nncf").setLevel(logging.ERROR)
            model = nncf.quantize(
                model,
                nncf.Dataset(feeds),
                model_type=nncf.ModelType.TRANSFORMER,
                preset=nncf.QuantizationPreset.MIXED,
                subset_size=min(300, len(feeds)),
                ignored_scope=nncf.IgnoredScope(  # the first layers and the heads (LSTMs renamed)
                    patterns=[
                        f".*{_FP32_LAYER['openvino'].pattern}.*",
                        *[f"/{re.escape(t)}/.*" for t in graph.heads],
                    ],
                    types=["LSTMSequence", "GRUSequence", "RNNSequence"],
                    validate=False,
                ),
            )
    target.parent.mkdir(parents=True, exist_ok=True)
    openvino.save_model(model, str(target), compress_to_fp16=False)


def _torch_graph(files: ModelFiles, model_dir: Path | None) -> Any:
    """The torch module to export: the backbone and, for a st_multitask model directory, its heads."""
    from ..heads import read_heads
    from ..manifest import MANIFEST_NAME, read_manifest
    from .branches import read_branches
    from .torch_graph import ModelGraph

    backbone = _load_torch_backbone(files)
    heads: dict[str, Any] = {}
    branches: dict[str, Any] = {}
    branch_of: dict[str, str] = {}
    if model_dir is not None and (Path(model_dir) / MANIFEST_NAME).is_file():
        manifest = read_manifest(Path(model_dir))
        heads = read_heads(Path(model_dir), manifest, files.dim)
        branches, branch_of = read_branches(Path(model_dir), manifest, backbone)
    return ModelGraph(backbone, heads, branches, branch_of).eval()


def export_graph(
    files: ModelFiles,
    backend: str,
    precision: str,
    root: Path,
    calibration: Sequence[str] | None = None,
    model_dir: Path | None = None,
) -> dict[str, Any]:
    """Export the backbone in ``files``, with the heads of the st_multitask model in ``model_dir``
    (``None``: no heads), to ``backend``/``precision`` under ``root`` (a fresh folder, in
    sentence-transformers' layout) and return the graph record for a manifest."""
    if (backend, precision) not in GRAPH_FILES:
        raise InputError(
            f"No {precision} graph for the {backend} backend. Valid precisions: fp32, int8 (bf16 on openvino)."
        )
    from .layout import runtime_version

    with contextlib.redirect_stdout(sys.stderr):  # exporters' progress bars must not reach piped output
        try:
            return _export_graph(
                files, backend, precision, root, calibration, model_dir, runtime_version(backend)
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
    model_dir: Path | None,
    runtime: str,
) -> dict[str, Any]:
    graph = _torch_graph(files, model_dir)
    onnx_fp32 = root / GRAPH_FILES[("onnx", "fp32")][0]
    outputs = _export_onnx(graph, files, onnx_fp32)
    if backend == "onnx" and precision == "int8":
        _quantize_onnx(onnx_fp32, root / GRAPH_FILES[("onnx", "int8")][0])
        onnx_fp32.unlink()
    elif backend == "openvino":
        _export_openvino(
            onnx_fp32, root / GRAPH_FILES[("openvino", precision)][0], precision, files, calibration, graph
        )
        for leftover in onnx_fp32.parent.iterdir():
            leftover.unlink()
        onnx_fp32.parent.rmdir()
    names = GRAPH_FILES[(backend, precision)]
    variants = export_cuts(graph, root / names[0], backend)
    difference = check_against_torch(
        graph, _example_feeds(graph, files, _PROBES), root / names[0], backend, precision
    )
    if not difference <= _TOLERANCE[precision]:
        raise ExportError(
            f"The exported {graph_key(backend, precision)} graph of {files.path} differs from torch by "
            f"{difference:.3g} (allowed {_TOLERANCE[precision]}); it was not kept. Use ",
            Hint("backend", "torch"),
            ".",
        )
    return {
        "backend": backend,
        "precision": precision,
        "files": {name: sha256_file(root / name) for name in (*names, *filter(None, variants.values()))},
        "variants": variants,
        "source": files.fingerprint(),
        "heads": heads_fingerprint(model_dir) if graph.heads else None,
        "runtime": runtime,
        "inputs": list(graph.input_names),
        "outputs": outputs,
        "opset": OPSET,
        "max_abs_diff_vs_torch": difference,
        "fp32_layers": FP32_LAYERS[backend] if precision == "int8" else None,
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
    the graph of the whole model (backbone and heads) in sentence-transformers' layout
    (``onnx/...`` or ``openvino/...``), each graph file listed with its sha256 in the manifest. Graphs already in ``model`` are kept. ``bf16`` writes
    the fp32 OpenVINO graph, which OpenVINO runs in bf16 where the CPU supports it.
    ``stmt export`` is this function on the command line.
    """
    from ..atomic import atomic_directory
    from ..backbone import bundled_model_dir
    from ..manifest import FORMAT_VERSION, MANIFEST_NAME, read_manifest
    from . import EngineSpec
    from .layout import graph_precision
    from .model_files import backbone_dir, read_model_files

    if backend not in ("onnx", "openvino"):
        raise InputError(f"Unknown export backend {backend!r}. Valid: onnx, openvino.")
    choice = EngineSpec(backend, precision)
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
        raise InputError(
            f"{output} is the model itself; pass ", Hint("overwrite"), " to add the graph to it."
        )
    with atomic_directory(output, overwrite) as tmp:
        shutil.copytree(backbone, tmp, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".*", "__pycache__"))
        if manifest is None:
            manifest = {"format_version": FORMAT_VERSION, "backbone": {"type": "directory"}, "heads": {}}
            manifest["dimension"] = read_model_files(backbone).dim
        elif backbone != source:  # heads (and task branches) on the packaged MiniLM: copy them beside it
            for part in ("heads", "branches"):
                if (source / part).is_dir():
                    shutil.copytree(source / part, tmp / part, dirs_exist_ok=True)
        manifest = dict(manifest)
        manifest["backbone"] = {**manifest["backbone"], "type": "directory"}
        graphs = dict(manifest.get("graphs", {}))
        key = graph_key(backend, graph_precision(choice))
        for name in graphs.pop(key, {}).get("files", {}):
            (tmp / name).unlink(missing_ok=True)
        manifest["graphs"] = graphs
        _write_manifest(tmp, manifest)  # the heads the graph is exported with are those it lists
        files = read_model_files(tmp)
        graphs[key] = export_graph(files, backend, graph_precision(choice), tmp, calibration, model_dir=tmp)
        _write_manifest(tmp, manifest)
    return output


def _write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    from ..manifest import MANIFEST_NAME

    text = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
    (folder / MANIFEST_NAME).write_text(text, encoding="utf-8")
