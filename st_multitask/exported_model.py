"""ExportedMultiTaskModel: a saved multi-task model on the fast path (no torch).

The whole model, backbone and heads, runs as one exported graph (ONNX Runtime or OpenVINO); the
host computes what the graph reads from the texts (:mod:`st_multitask.runtime.feeds`) and decodes
its outputs as :class:`~st_multitask.model.MultiTaskModel` does, with the same code
(:class:`~st_multitask.inference.Predictor`). Predictions match torch's: the same labels and
entities, probabilities within 1e-4 in fp32.

    >>> from st_multitask.exported_model import ExportedMultiTaskModel
    >>> model = ExportedMultiTaskModel.default(backend="onnx")
    >>> model.predict(["The film was a joy from start to finish."])[0]["sentiment"]["label"]
    'positive'
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .backbone import bundled_model_dir
from .errors import ModelLoadError
from .inference import HeadInfo, Predictor
from .manifest import CONFIG_NAME, MANIFEST_NAME, WEIGHTS_NAME, check_head_files, read_manifest
from .runtime import BackendChoice, resolve_backend, runtime_threads
from .runtime.encoder import FastEncoder, TextTokenizer
from .runtime.feeds import FeedPlan, ngram_inputs, output_name
from .runtime.graphs import find_graph
from .runtime.session import GraphSession, open_session

__all__ = ["ExportedMultiTaskModel", "read_head_info"]


@functools.lru_cache(maxsize=8)
def _open_graph(path: str, backend: str, precision: str, threads: int) -> tuple[FastEncoder, dict]:
    """The verified graph of the whole model, opened once per process (``threads`` keys the
    cache: sessions read it when they open)."""
    graph, record, files = find_graph(path, BackendChoice(backend, precision), heads=True)
    return FastEncoder(files, open_session(graph, backend, precision), backend, precision), record


def read_head_info(
    head_dir: Path, info: dict[str, Any], session: GraphSession, task: str
) -> tuple[HeadInfo, Any]:
    """A head's decoding settings (its ``config.json``) and, for a head whose TF-IDF rows the
    graph reads, its fitted features; a damaged file is named."""
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
    if ngram_inputs(task)[0] in session.input_names:
        from .text_features import SparseFeatures, read_vocabulary

        sparse = SparseFeatures(read_vocabulary(head_dir), np.asarray(idf), settings.get("features"))
    return HeadInfo(kind, level, list(settings["labels"]), settings, trained), sparse


class ExportedMultiTaskModel(Predictor):
    """A saved multi-task model as one exported graph; the inference API of ``MultiTaskModel``."""

    def __init__(
        self,
        encoder: FastEncoder,
        heads: dict[str, HeadInfo],
        plan: FeedPlan,
        manifest: dict[str, Any],
        source: str,
    ):
        self.backbone = encoder
        self._heads = heads
        self._feed_plan = plan
        self._manifest = manifest
        self._source = source
        self.training = False

    # -- loading --------------------------------------------------------------------------------
    @classmethod
    def load(
        cls, path: str | os.PathLike[str], backend: str | None = "auto", precision: str | None = None
    ) -> ExportedMultiTaskModel:
        """Load a model directory on a fast backend; every head file and graph is hash-checked.
        The graph is the directory's own (``stmt export``), else the per-user cache's, else it is
        exported once into that cache."""
        path = Path(path).expanduser().resolve()
        manifest = read_manifest(path)
        choice = resolve_backend(backend, precision, device="cpu")
        if not choice.fast:
            raise ModelLoadError(f"ExportedMultiTaskModel runs the fast backends, not {choice.backend}.")
        encoder, record = _open_graph(str(path), choice.backend, choice.precision, runtime_threads())
        session = encoder.session
        heads, ngrams = {}, {}
        for name, info in manifest["heads"].items():
            head_dir = check_head_files(path, name, info)
            if output_name(name) not in session.output_names:
                raise ModelLoadError(
                    f"The graph of {path} has no output for head {name!r}; export it again with "
                    "stmt export --overwrite."
                )
            heads[name], ngrams[name] = read_head_info(head_dir, info, session, name)
            if heads[name].config.get("in_features") != encoder.files.dim:
                raise ModelLoadError(
                    f"{head_dir}: head takes {heads[name].config.get('in_features')}-d input, the "
                    f"backbone gives {encoder.files.dim}-d."
                )
        plan = FeedPlan.from_inputs(session.input_names, ngrams)
        return cls(encoder, heads, plan, {**manifest, "graph": record}, str(path))

    @classmethod
    def default(cls, backend: str | None = "auto", precision: str | None = None) -> ExportedMultiTaskModel:
        """The bundled default model (topic, sentiment and NER) on a fast backend."""
        return cls.load(bundled_model_dir(), backend, precision)

    # -- what MultiTaskModel offers for inference -----------------------------------------------
    @property
    def dim(self) -> int:
        return self.backbone.files.dim

    @property
    def backend(self) -> str:
        return self.backbone.backend

    @property
    def precision(self) -> str:
        return self.backbone.precision

    def __repr__(self) -> str:
        return (
            f"ExportedMultiTaskModel({self._source!r}, heads={list(self._heads)}, "
            f"backend={self.backend!r}, precision={self.precision!r})"
        )

    def encode(
        self, texts: str | Sequence[str], batch_size: int = 64, normalize: bool = True, **kwargs: Any
    ) -> np.ndarray:
        """Sentence embeddings of the backbone (as :func:`st_multitask.embed`)."""
        from .embedding import embed

        return embed(texts, model=self.backbone, batch_size=batch_size, normalize=normalize, **kwargs)

    def info(self) -> dict[str, Any]:
        return {
            "backbone": {
                "name": self._manifest.get("backbone", {}).get("name") or self._source,
                "dimension": self.dim,
                "max_seq_length": self.backbone.max_seq_length,
                "backend": self.backend,
                "precision": self.precision,
            },
            "heads": {
                name: {
                    "kind": head.kind,
                    "level": head.level,
                    "labels": head.labels,
                    "trained": head.is_trained,
                    "config": {k: v for k, v in head.config.items() if k not in ("labels", "in_features")},
                }
                for name, head in self._heads.items()
            },
            "metrics": self._manifest.get("metrics", {}),
        }

    # -- the forward contract of Predictor: one graph call per batch ------------------------------
    def _tokens(self) -> TextTokenizer:
        return self.backbone.tokenizer

    def _plan(self, heads: dict[str, Any]) -> FeedPlan | None:
        """What the asked heads read; the graph runs every head, and the others are fed empty
        inputs (one padding word, no n-grams), so a topic alone costs no word features or tagging."""
        if not heads:
            return None
        full = self._feed_plan
        words = any(head.level == "token" for head in heads.values())
        return FeedPlan(
            words=full.words and words,
            word_shape=full.word_shape and words,
            word_chars=full.word_chars and words,
            windows=full.windows and any(head.level == "sentence" for head in heads.values()),
            ngrams={task: sparse for task, sparse in full.ngrams.items() if task in heads},
        )

    def _graph_inputs(self) -> list[str]:
        return list(self.backbone.session.input_names)

    def _run(self, feeds: dict[str, np.ndarray], heads: dict[str, Any]) -> dict[str, np.ndarray]:
        names = ["sentence_embedding", *[output_name(task) for task in heads]]
        values = self.backbone.session.run(feeds, names)
        return {name: value.astype(np.float32, copy=False) for name, value in zip(names, values)}
