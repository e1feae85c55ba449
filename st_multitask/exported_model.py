"""ExportedMultiTaskModel: a saved multi-task model on the fast path (no torch).

The backbone runs as an exported graph (ONNX Runtime or OpenVINO) that outputs every hidden layer;
the heads run as their numpy twins on that one pass. Predictions match
:class:`~st_multitask.model.MultiTaskModel`'s: the same labels and entities, probabilities within
1e-4 in fp32.

    >>> from st_multitask.exported_model import ExportedMultiTaskModel
    >>> model = ExportedMultiTaskModel.default(backend="onnx")
    >>> model.predict(["The film was a joy from start to finish."])[0]["sentiment"]["label"]
    'positive'
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .alignment import piece_to_word, repair_bio, word_char_rows, word_shape_rows
from .backbone import bundled_model_dir
from .decoding import decode_words, word_tags
from .errors import ModelLoadError
from .inference import TaskSelection, check_items, check_min_score, texts_and_spans
from .manifest import MANIFEST_NAME, check_head_files, read_manifest
from .runtime.encoder import FastEncoder, TokenBatch, normalize_rows, pool
from .runtime.heads import NumpyHead, load_numpy_head
from .runtime.load import load_encoder

__all__ = ["ExportedMultiTaskModel", "fast_path_problem"]

logger = logging.getLogger(__name__)


def fast_path_problem(path: str | os.PathLike[str]) -> str | None:
    """Why the model in ``path`` cannot run on the fast path (a backbone module or a head kind
    without a torch-free twin), or ``None`` when it can."""
    from .runtime.heads import get_numpy_head_class
    from .runtime.model_files import read_model_files

    try:
        manifest = read_manifest(Path(path))
        read_model_files(path)
    except ModelLoadError as exc:
        return str(exc)
    for name, info in manifest["heads"].items():
        if get_numpy_head_class(str(info.get("kind"))) is None:
            return f"head {name!r} is of kind {info.get('kind')!r}, which has no torch-free twin"
    return None


@functools.cache
def _blas_controller() -> Any:
    """threadpoolctl's view of the loaded BLAS libraries, made once: ``threadpool_limits`` scans
    every loaded library on each use (0.7-4 ms, measured), which small predict calls (a server's
    batches) paid each time; ``controller.limit`` costs about 10 microseconds."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


class ExportedMultiTaskModel(TaskSelection):
    """Named numpy heads on an exported backbone; the inference API of ``MultiTaskModel``."""

    def __init__(
        self, encoder: FastEncoder, heads: dict[str, NumpyHead], manifest: dict[str, Any], source: str
    ):
        self.backbone = encoder
        self._heads = heads
        self._manifest = manifest
        self._source = source
        self.training = False

    # -- loading --------------------------------------------------------------------------------
    @classmethod
    def load(
        cls, path: str | os.PathLike[str], backend: str | None = "auto", precision: str | None = None
    ) -> ExportedMultiTaskModel:
        """Load a model directory on a fast backend; every head file and graph is hash-checked."""
        path = Path(path).expanduser().resolve()
        manifest = read_manifest(path)
        encoder = load_encoder(path, backend, precision)
        heads = {}
        for name, info in manifest["heads"].items():
            head_dir = check_head_files(path, name, info)
            head = load_numpy_head(head_dir, encoder.files.num_layers)
            if head.kind != info.get("kind") or head.labels != info.get("labels"):
                raise ModelLoadError(f"{head_dir}: kind or labels differ from {MANIFEST_NAME}.")
            if head.in_features != encoder.files.dim:
                raise ModelLoadError(
                    f"{head_dir}: head takes {head.in_features}-d input, the backbone gives {encoder.files.dim}-d."
                )
            heads[name] = head
        return cls(encoder, heads, manifest, str(path))

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

    # -- inference ------------------------------------------------------------------------------
    def features(
        self, items: Sequence[str | Sequence[str]], heads: dict[str, NumpyHead]
    ) -> tuple[dict[str, Any], list[str], list]:
        """One graph pass over a batch: what the heads read, the texts, and each text's word spans."""
        texts, spans = texts_and_spans(items)
        return self._features(texts, spans, self.backbone.tokenizer.batch(texts), heads), texts, spans

    def _features(
        self, texts: list[str], spans: list, batch: TokenBatch, heads: dict[str, NumpyHead]
    ) -> dict[str, Any]:
        outputs = sorted({"token_embeddings"}.union(*(h.outputs for h in heads.values())))
        features: dict[str, Any] = self.backbone.forward(batch, outputs)
        features = {k: v.astype(np.float32, copy=False) for k, v in features.items()}
        features["attention_mask"] = batch.attention_mask
        pooled = pool(features["token_embeddings"], batch.attention_mask, self.backbone.files.pooling)
        features["sentence_embedding"] = normalize_rows(pooled) if self.backbone.files.normalize else pooled
        offsets = batch.offsets.tolist()
        features["piece_word"] = np.array(
            [piece_to_word([tuple(o) for o in offsets[row]], spans[row]) for row in range(len(texts))],
            dtype=np.int64,
        )
        features["n_words"] = max((len(s) for s in spans), default=0)
        features["word_count"] = np.array([len(s) for s in spans], dtype=np.int64)
        features["texts"] = texts
        if any(h.reads_windows for h in heads.values()):
            features.update(self._window_features(texts, features, heads))
        if any(getattr(h, "uses_word_chars", False) for h in heads.values()):
            features["word_chars"] = np.asarray(
                word_char_rows(texts, spans, features["n_words"]), dtype=np.int64
            ).reshape(len(texts), features["n_words"], -1)
        if any(h.uses_word_shape for h in heads.values()):
            features["word_shape"] = np.asarray(
                word_shape_rows(texts, spans, features["n_words"]), dtype=np.float32
            ).reshape(len(texts), features["n_words"], -1)
        return features

    def _window_features(
        self, texts: list[str], features: dict[str, Any], heads: dict[str, NumpyHead]
    ) -> dict[str, np.ndarray]:
        """As :meth:`MultiTaskModel._window_features <st_multitask.model.MultiTaskModel>`: texts
        past the window read as overlapping windows, their states mean-pooled."""
        from .embedding import _chunks, _token_lengths, window_size

        layers = sorted(set().union(*(h.window_layers for h in heads.values())))
        names = [f"hidden_state_{i}" for i in layers]

        def pooled_layers(values: dict[str, Any], mask: np.ndarray) -> np.ndarray:
            weights = mask[..., None].astype(np.float32)
            return np.stack(
                [(values[n] * weights).sum(1) / np.maximum(weights.sum(1), 1) for n in names], axis=1
            )

        sentence = features["sentence_embedding"].copy()
        stacked = pooled_layers(features, features["attention_mask"]) if layers else None
        encoder, window = self.backbone, window_size(self.backbone)
        for i, n in enumerate(_token_lengths(encoder, texts)):
            if n <= window:
                continue
            tokens = encoder.tokenizer.batch(_chunks(encoder, texts[i], window))
            parts = encoder.forward(tokens, sorted({"token_embeddings", *names}))
            parts = {k: v.astype(np.float32, copy=False) for k, v in parts.items()}
            vectors = pool(parts["token_embeddings"], tokens.attention_mask, encoder.files.pooling)
            if encoder.files.normalize:
                vectors = normalize_rows(vectors)
            mean = vectors.mean(0, keepdims=True)
            sentence[i] = (normalize_rows(mean) if encoder.files.normalize else mean)[0]
            if stacked is not None:
                stacked[i] = pooled_layers(parts, tokens.attention_mask).mean(0)
        out = {"window_sentence_embedding": sentence}
        if stacked is not None:
            out["window_pooled_layers"] = {index: stacked[:, k] for k, index in enumerate(layers)}
        return out

    def _passes(self, items: list, heads: dict[str, NumpyHead], batch_size: int) -> Iterator[tuple]:
        """Per batch: indices, texts, spans, words read, and each head's probabilities.

        numpy's BLAS runs on one thread meanwhile: the heads' matrices are small, and BLAS threads
        that spin between calls would take the cores from the runtime's own threads.
        """
        with _blas_controller().limit(limits=1, user_api="blas"):
            yield from self._passes_inner(items, heads, batch_size)

    def _passes_inner(self, items: list, heads: dict[str, NumpyHead], batch_size: int) -> Iterator[tuple]:
        all_texts, all_spans = texts_and_spans(items)
        for batch, tokens in self.backbone.batches(all_texts, batch_size):  # tokenized once
            texts, spans = [all_texts[i] for i in batch], [all_spans[i] for i in batch]
            features = self._features(texts, spans, tokens, heads)
            piece_word = features["piece_word"]
            read = np.zeros((len(batch), features["n_words"] + 1), dtype=bool)
            rows, cols = np.nonzero(piece_word >= 0)
            read[rows, piece_word[rows, cols]] = True
            probas = {name: head.probabilities(head.logits(features)) for name, head in heads.items()}
            yield batch, texts, spans, read, probas, features["sentence_embedding"]

    def _warn_untrained(self, heads: dict[str, NumpyHead]) -> None:
        untrained = [name for name, head in heads.items() if not head.is_trained]
        if untrained:
            logger.warning("Head(s) %s have not been trained: predictions are random.", ", ".join(untrained))

    def predict_proba(
        self,
        texts: str | Sequence[str | Sequence[str]],
        tasks: Sequence[str] | str | None = None,
        batch_size: int = 32,
    ) -> list[dict[str, np.ndarray]]:
        """Per text, ``{task: probabilities}``: (labels,) for sentence heads, (words, labels) for token heads."""
        heads = self._select(tasks)
        items = check_items(texts)
        results: list[dict[str, Any]] = [{} for _ in items]
        for batch, _, spans, _, probas, _ in self._passes(items, heads, batch_size):
            for name, head in heads.items():
                for row, index in enumerate(batch):
                    value = probas[name][row]
                    results[index][name] = value if head.level == "sentence" else value[: len(spans[row])]
        return results

    def predict(
        self,
        texts: str | Sequence[str | Sequence[str]],
        tasks: Sequence[str] | str | None = None,
        batch_size: int = 32,
        min_score: float | None = None,
    ) -> list[dict[str, Any]]:
        """As :meth:`MultiTaskModel.predict`: labels with scores for sentence heads, entities with
        character offsets for token heads; ``min_score`` as there."""
        return self.predict_and_embed(texts, tasks, batch_size, min_score)[0]

    def predict_and_embed(
        self,
        texts: str | Sequence[str | Sequence[str]],
        tasks: Sequence[str] | str | None = None,
        batch_size: int = 32,
        min_score: float | None = None,
    ) -> tuple[list[dict[str, Any]], np.ndarray]:
        """As :meth:`MultiTaskModel.predict_and_embed`: :meth:`predict` and the (n, dim) sentence
        embeddings from the same graph pass (``tasks=[]``: embeddings only)."""
        check_min_score(min_score)
        heads = self._select(tasks)
        items = check_items(texts)
        self._warn_untrained(heads)
        results: list[dict[str, Any]] = [{} for _ in items]
        vectors = np.zeros((len(items), self.dim), dtype=np.float32)
        for batch, texts_, spans, read, probas, sentence in self._passes(items, heads, batch_size):
            vectors[batch] = sentence
            for name, head in heads.items():
                proba = probas[name]
                if head.level == "sentence":
                    for row, index in enumerate(batch):
                        results[index][name] = head.decode(proba[row], min_score)
                    continue
                ids, scores, seen = proba.argmax(-1).tolist(), proba.max(-1).tolist(), read.tolist()
                for row, index in enumerate(batch):
                    n = len(spans[row])
                    results[index][name] = decode_words(
                        head.labels, ids[row][:n], scores[row][:n], seen[row], spans[row], texts_[row]
                    )
        return results, vectors

    def predict_labels(self, items: Sequence[str | Sequence[str]], task: str, batch_size: int = 64) -> list:
        """Per item, the label (sentence head) or the repaired IOB2 tags of its words (token head);
        words past the model window are ``O``. What evaluation scores."""
        heads = self._select([task])
        head = heads[task]
        items = list(items)
        out: list[Any] = [None] * len(items)
        for batch, _, spans, read, probas, _ in self._passes(items, heads, batch_size):
            proba = probas[task]
            for row, index in enumerate(batch):
                if head.level == "sentence":
                    out[index] = head.decode(proba[row])["label"]
                else:
                    n = len(spans[row])
                    ids = proba[row, :n].argmax(-1).tolist()
                    out[index] = repair_bio(word_tags(head.labels, ids, read[row].tolist()))
        return out
