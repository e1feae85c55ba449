"""load(): the one loader. A model name or directory and the engine settings in, a
:class:`~st_multitask.pipeline.Pipeline` out, on every engine.

What it reads, it reads once: the engine is resolved once (:func:`~st_multitask.runtime.resolve_engine`,
``auto`` included), the model directory's manifest and each head's config and weights are checked
against their hashes, the graph is verified (hashed again only when it changed) or exported once,
and an opened runner is kept for the process. This module never imports torch: only the torch
runner does, when torch is what runs.

    >>> from st_multitask import load
    >>> pipe = load(backend="onnx", threads=1)    # the bundled default model: topic, sentiment, NER
    >>> sorted(pipe.heads), pipe.backend
    (['ner', 'sentiment', 'topic'], 'onnx')
    >>> load("all-MiniLM-L6-v2", backend="onnx").heads     # the packaged backbone alone
    {}
"""

from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .backbone import DEFAULT_ALIASES, DEFAULT_MODEL_NAME, bundled_model_dir, default_model_path
from .decoding import Decoder, decoder_for
from .errors import ModelLoadError
from .manifest import CONFIG_NAME, MANIFEST_NAME, WEIGHTS_NAME, check_head_files, read_manifest
from .pipeline import Pipeline
from .runtime import EngineSpec, load_on, resolve_engine
from .runtime.feeds import ngram_inputs, output_name
from .runtime.model_files import read_model_files
from .runtime.runners import ModelSource, Runner, open_runner
from .runtime.tokenizer import TextTokenizer

if TYPE_CHECKING:
    from .text_features import SparseFeatures

__all__ = ["DEFAULT", "deprecated_load", "load", "model_source", "read_head"]

logger = logging.getLogger(__name__)

DEFAULT = "default"  # the bundled default model (topic, sentiment and NER heads)


def model_source(model: str | os.PathLike[str] | None = None) -> ModelSource:
    """What ``model`` names: ``None`` or ``"default"`` the bundled default model; the name of the
    packaged MiniLM (``"all-MiniLM-L6-v2"``) that backbone alone; a directory a st_multitask model
    or a sentence-transformers model; any other name a model in the local Hugging Face cache."""
    if model is None or os.fspath(model) == DEFAULT:
        return ModelSource("the default model", bundled_model_dir(), heads=True)
    name = os.fspath(model)
    if name in DEFAULT_ALIASES:
        return ModelSource(DEFAULT_MODEL_NAME, default_model_path())
    path = Path(name).expanduser()
    if path.is_file():
        raise ModelLoadError(f"Model path {name!r} is a file; pass the model's directory instead.")
    if path.is_dir():
        path = path.resolve()
        if (path / MANIFEST_NAME).is_file():
            return ModelSource(str(path), path, heads=bool(read_manifest(path)["heads"]))
        if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
            raise ModelLoadError(
                f"{name!r} is not a model directory (no {MANIFEST_NAME}, modules.json or config.json in "
                f"it). Pass a directory saved by st_multitask or sentence-transformers, or leave the "
                f"model out for the default."
            )
        return ModelSource(str(path), path)
    if name.startswith((".", "~", "/")) or (os.sep in name.strip("/") and Path(name).parent.exists()):
        raise ModelLoadError(f"Model directory {name!r} does not exist.")
    return ModelSource(name, None, cached_name=name)


def load(
    model: str | os.PathLike[str] | None = None,
    *,
    backend: str | EngineSpec | None = None,
    precision: str | None = None,
    device: str | None = None,
    threads: int | None = None,
) -> Pipeline:
    """Load a model on an engine: the one way to run one.

    Args:
        model: ``None`` or ``"default"`` for the bundled default model; a directory saved by
            st_multitask (its heads come along) or by sentence-transformers (embeddings only);
            ``"all-MiniLM-L6-v2"`` for the packaged backbone; a name in the local Hugging Face
            cache (torch). Nothing is ever downloaded.
        backend: ``"auto"`` (the default, or ``$STMT_BACKEND``), ``"torch"``, ``"onnx"`` or
            ``"openvino"``, or a resolved :class:`~st_multitask.runtime.EngineSpec`. auto runs the
            fastest installed exact runtime on a CPU and torch on a GPU; a model the fast runtimes
            cannot read or export runs in torch, with a logged warning that says why.
        precision: ``"fp32"`` (exact, the default, or ``$STMT_PRECISION``), ``"bf16"`` or ``"int8"``.
        device: torch's device (``None``: cuda when available).
        threads: the runtime's threads (``None``: one a physical core).
    """
    spec = resolve_engine(backend, precision, device, threads)
    source = model_source(model)
    check = (lambda: read_model_files(source.path)) if source.path is not None else _not_local(source)
    return load_on(
        spec,
        source.name,
        fast=lambda: _pipeline(source, spec),
        torch=lambda: _pipeline(source, replace(spec, backend="torch", precision="fp32")),
        check=check,
    )


def _not_local(source: ModelSource) -> Any:
    def check() -> None:
        raise ModelLoadError(f"{source.name!r} is not a local model directory")

    return check


def _pipeline(source: ModelSource, spec: EngineSpec) -> Pipeline:
    runner, tokenizer = _runner(source, spec)
    manifest: dict[str, Any] = {}
    decoders: dict[str, Decoder] = {}
    sparse: dict[str, SparseFeatures | None] = {}
    if source.path is not None and (source.path / MANIFEST_NAME).is_file():
        manifest = read_manifest(source.path)
        for name, info in manifest["heads"].items():
            head_dir = check_head_files(source.path, name, info)
            if output_name(name) not in runner.output_names:
                raise ModelLoadError(
                    f"The graph of {source.path} has no output for head {name!r}; export it again with "
                    "stmt export --overwrite."
                )
            decoders[name], sparse[name] = read_head(head_dir, info, runner.input_names, runner.dim, name)
        manifest = {**manifest, "graph": runner.record} if runner.record else manifest
    return Pipeline(runner, tokenizer, decoders, sparse, source.name, manifest, source.path)


def _runner(source: ModelSource, spec: EngineSpec) -> tuple[Runner, TextTokenizer]:
    """The opened runner and tokenizer of ``source`` on ``spec``, once per process for the fast
    runtimes and for a backbone alone (torch heads are loaded afresh: they can be trained)."""
    if spec.fast or not source.heads:
        return _shared_runner(source, spec)
    return _open(source, spec)


@functools.lru_cache(maxsize=8)
def _shared_runner(source: ModelSource, spec: EngineSpec) -> tuple[Runner, TextTokenizer]:
    return _open(source, spec)


def _open(source: ModelSource, spec: EngineSpec) -> tuple[Runner, TextTokenizer]:
    runner = open_runner(source, spec)
    if spec.fast:
        assert source.path is not None
        return runner, TextTokenizer.from_files(read_model_files(source.path))
    return runner, TextTokenizer.from_backbone(runner.backbone)  # type: ignore[attr-defined]


def read_head(
    head_dir: Path, info: dict[str, Any], input_names: Sequence[str], dim: int | None, task: str
) -> tuple[Decoder, SparseFeatures | None]:
    """A head's decoder (from its ``config.json``) and, for a head whose TF-IDF rows the graph
    reads (``input_names``), its fitted features; a damaged file, or a head whose width is not the
    backbone's ``dim``, is named."""
    from safetensors import safe_open

    try:
        config = json.loads((head_dir / CONFIG_NAME).read_text(encoding="utf-8"))
        kind, level, settings = config["kind"], config["level"], dict(config["config"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelLoadError(f"{head_dir / CONFIG_NAME} is not a valid head config ({exc}).") from None
    if kind != info.get("kind") or settings.get("labels") != info.get("labels"):
        raise ModelLoadError(f"{head_dir}: kind or labels differ from {MANIFEST_NAME}.")
    for key in ("threshold", "other_threshold"):
        value = settings.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ModelLoadError(f"{head_dir / CONFIG_NAME}: {key} must be a number, got {value!r}.")
    if dim is not None and settings.get("in_features") != dim:
        raise ModelLoadError(
            f"{head_dir}: head takes {settings.get('in_features')}-d input, the backbone gives {dim}-d."
        )
    try:
        with safe_open(str(head_dir / WEIGHTS_NAME), framework="numpy") as weights:
            keys = set(weights.keys())
            trained = bool(weights.get_tensor("_trained")) if "_trained" in keys else True
            idf = weights.get_tensor("idf") if "idf" in keys else None
    except Exception as exc:  # safetensors raises its own error types for damaged files
        raise ModelLoadError(
            f"{head_dir / WEIGHTS_NAME} is not a readable safetensors file ({exc})."
        ) from None
    sparse = None
    if ngram_inputs(task)[0] in input_names:
        from .text_features import SparseFeatures, read_vocabulary

        sparse = SparseFeatures(read_vocabulary(head_dir), np.asarray(idf), settings.get("features"))
    return decoder_for(kind, level, settings, trained), sparse


def deprecated_load(path: Any, device: str | None, backend: str | None, precision: str | None) -> Pipeline:
    """``MultiTaskModel.load/default(backend=...)``, deprecated: :func:`load` with a warning."""
    import warnings

    message = (
        "MultiTaskModel.load/default(backend=...) are deprecated: use st_multitask.load(path, backend=...)."
    )
    warnings.warn(message, DeprecationWarning, stacklevel=3)
    return load(path, backend=backend, precision=precision, device=device)
