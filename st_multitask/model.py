"""MultiTaskModel: one SentenceTransformer backbone plus named heads, served by one backbone pass.

>>> from st_multitask import MultiTaskModel
>>> from st_multitask.heads import MLPHead, TokenHead
>>> model = MultiTaskModel()                      # the packaged all-MiniLM-L6-v2
>>> model = model.add_head("sentiment", MLPHead(model.dim, ["negative", "positive"]))
>>> model = model.add_head("ner", TokenHead(model.dim, ["O", "B-ORG", "I-ORG"]))
>>> sorted(model.predict(["Apple is great."])[0])
['ner', 'sentiment']
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from ._atomic import atomic_directory
from .alignment import piece_to_word, word_char_rows, word_shapes
from .backbone import (
    DEFAULT_MODEL_NAME,
    bundled_model_dir,
    default_model_path,
    embedding_dim,
    forward_batch,
    load_backbone,
)
from .decoding import decode_words
from .embedding import embed
from .errors import InputError, ModelLoadError
from .heads import Head
from .inference import TaskSelection, check_items, check_min_score, texts_and_spans
from .manifest import FORMAT_VERSION, MANIFEST_NAME
from .storage import RECORD_KEYS, read_heads, read_manifest, write_model_directory

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from .exported_model import ExportedMultiTaskModel

__all__ = ["FORMAT_VERSION", "MANIFEST_NAME", "MultiTaskModel"]

logger = logging.getLogger(__name__)


class MultiTaskModel(TaskSelection, torch.nn.Module):
    """A backbone and named heads.

    Args:
        backbone: a loaded SentenceTransformer, a model path or name, or ``None`` for the packaged
            all-MiniLM-L6-v2 (loaded offline).
        heads: optional ``{name: head}`` to add at once.
        device: where to run; ``None`` picks cuda when available.
    """

    def __init__(
        self,
        backbone: SentenceTransformer | str | os.PathLike[str] | None = None,
        heads: dict[str, Head] | None = None,
        device: str | None = None,
    ):
        super().__init__()
        if backbone is None or isinstance(backbone, (str, os.PathLike)):
            self._backbone_source = None if backbone is None else os.fspath(backbone)
            backbone = load_backbone(backbone, device)
        else:
            self._backbone_source = "a SentenceTransformer object"
        self.backbone = backbone
        self._heads = torch.nn.ModuleDict()
        self.eval()  # inference by default, as from_pretrained models are; training calls .train()
        for name, head in (heads or {}).items():
            self.add_head(name, head)

    # -- heads ----------------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        """Width of the backbone's embeddings (what heads take as ``in_features``)."""
        return embedding_dim(self.backbone)

    @property
    def device(self) -> torch.device:
        return self.backbone.device

    def add_head(self, name: str, head: Head) -> MultiTaskModel:
        """Attach ``head`` as task ``name``."""
        if not isinstance(name, str) or not name.replace("_", "").replace("-", "").isalnum():
            raise InputError(f"Head name {name!r} must be letters, digits, '-' or '_' (it names a folder).")
        if name in self._heads:
            raise InputError(f"A head named {name!r} exists already; remove_head({name!r}) first.")
        if not isinstance(head, Head):
            raise InputError(f"{type(head).__name__} is not a st_multitask Head.")
        if head.in_features != self.dim:
            raise InputError(
                f"Head {name!r} takes {head.in_features}-d input; the backbone gives {self.dim}-d."
            )
        self._heads[name] = head.to(self.device).train(self.training)
        return self

    def remove_head(self, name: str) -> Head:
        """Detach and return the head ``name``."""
        if name not in self._heads:
            raise InputError(f"No head named {name!r}. Heads: {', '.join(self._heads) or 'none'}.")
        head = self._heads[name]
        del self._heads[name]
        return head

    # -- inference ------------------------------------------------------------------------------
    def encode(
        self, texts: str | Sequence[str], batch_size: int = 64, normalize: bool = True, **kwargs: Any
    ) -> np.ndarray:
        """Sentence embeddings: the same vectors as :func:`st_multitask.embed` with this backbone."""
        return embed(texts, model=self.backbone, batch_size=batch_size, normalize=normalize, **kwargs)

    @contextlib.contextmanager
    def _hidden_states(self, needed: bool) -> Iterator[None]:
        config = self.backbone[0].auto_model.config
        before = getattr(config, "output_hidden_states", False)
        config.output_hidden_states = bool(needed) or before
        try:
            yield
        finally:
            config.output_hidden_states = before

    def features(
        self, items: Sequence[str | Sequence[str]], grad: bool = False
    ) -> tuple[dict[str, Tensor], list[str], list[list[tuple[int, int]]]]:
        """One backbone pass over a batch: the features every head reads.

        ``items`` are raw strings or pre-split word lists. Returns the features (with
        ``piece_word`` (batch, seq) mapping word pieces to words), the texts, and each text's word
        spans.
        """
        texts, spans = texts_and_spans(items)
        with self._hidden_states(any(h.needs_hidden_states for h in self._heads.values())):
            out = forward_batch(self.backbone, texts, grad=grad)
        offsets = out["offset_mapping"].tolist()
        special = out["special_tokens_mask"].bool() | ~out["attention_mask"].bool().cpu()
        piece_word = []
        for row, word_spans in enumerate(spans):
            row_offsets = [(0, 0) if special[row, j] else tuple(o) for j, o in enumerate(offsets[row])]
            piece_word.append(piece_to_word(row_offsets, word_spans))
        out["piece_word"] = torch.tensor(piece_word, dtype=torch.long, device=self.device)
        out["n_words"] = max((len(s) for s in spans), default=0)
        if any(h.uses_word_shape for h in self._heads.values()):
            out["word_shape"] = word_shapes(texts, spans, out["n_words"]).to(
                self.device
            )  # (batch, words, shapes)
        if any(h.uses_word_chars for h in self._heads.values()):
            out["word_chars"] = torch.tensor(
                word_char_rows(texts, spans, out["n_words"]), dtype=torch.long, device=self.device
            ).reshape(len(texts), out["n_words"], -1)  # (batch, words, chars)
        out["word_count"] = torch.tensor([len(s) for s in spans], dtype=torch.long)
        out["texts"] = texts
        if any(h.reads_windows for h in self._heads.values()):
            out.update(self._window_features(texts, out, grad))
        return out, texts, spans

    def _window_features(self, texts: list[str], out: dict[str, Any], grad: bool) -> dict[str, Tensor]:
        """Features of whole texts: those longer than the window are read as overlapping windows
        (as ``embed(long="chunk")`` cuts them) whose states are mean-pooled. ``window_sentence_embedding``
        (batch, dim) and, with hidden states, ``window_pooled_layers`` (batch, layers + 1, dim)."""
        from .embedding import _chunks, _token_lengths, window_size
        from .heads.mlp import mean_pool_layers

        def pooled_layers(features: dict[str, Any]) -> Tensor | None:
            hidden = features.get("all_layer_embeddings")
            return None if hidden is None else mean_pool_layers(hidden, features["attention_mask"])

        sentence, layers = out["sentence_embedding"], pooled_layers(out)
        window = window_size(self.backbone)
        over = [i for i, n in enumerate(_token_lengths(self.backbone, texts)) if n > window]
        if over:
            sentence, layers = sentence.clone(), None if layers is None else layers.clone()
            for i in over:
                with self._hidden_states(layers is not None):
                    parts = forward_batch(self.backbone, _chunks(self.backbone, texts[i], window), grad=grad)
                mean = parts["sentence_embedding"].mean(0)
                sentence[i] = torch.nn.functional.normalize(mean, dim=0) if self._normalizes() else mean
                if layers is not None:
                    layers[i] = pooled_layers(parts).mean(0)
        windows = {"window_sentence_embedding": sentence}
        if layers is not None:
            windows["window_pooled_layers"] = layers
        return windows

    def _normalizes(self) -> bool:
        from sentence_transformers.models import Normalize

        return any(isinstance(module, Normalize) for module in self.backbone)

    def head_inputs(
        self, items: Sequence[str | Sequence[str]], tasks: Sequence[str], grad: bool = False
    ) -> tuple[dict[str, dict[str, Tensor]], Tensor]:
        """What each head of ``tasks`` reads, from one backbone pass over ``items``.

        Returns ``({task: head.inputs(features)}, read)`` where ``read`` (batch, words) marks the
        words inside the model window.
        """
        context = torch.enable_grad() if grad else torch.no_grad()
        with context:
            features, _, _ = self.features(items, grad=grad)
            piece_word = features["piece_word"].cpu()
            read = torch.zeros(len(items), features["n_words"] + 1, dtype=torch.bool)
            rows = torch.arange(len(items)).unsqueeze(1).expand_as(piece_word)
            read[rows[piece_word >= 0], piece_word[piece_word >= 0]] = True
            inputs = {task: self._heads[task].inputs(features) for task in tasks}
        return inputs, read[:, : features["n_words"]]

    def _batches(self, items: list, batch_size: int) -> Iterator[list[int]]:
        """Indices in batches of similar length (less padding), in a fixed order."""
        lengths = [len(x) if isinstance(x, str) else sum(len(w) + 1 for w in x) for x in items]
        order = sorted(range(len(items)), key=lambda i: -lengths[i])
        for start in range(0, len(order), batch_size):
            yield order[start : start + batch_size]

    def predict_proba(
        self,
        texts: str | Sequence[str | Sequence[str]],
        tasks: Sequence[str] | str | None = None,
        batch_size: int = 32,
    ) -> list[dict[str, np.ndarray]]:
        """Per text, ``{task: probabilities}``: (labels,) for sentence heads, (words, labels) for token heads."""
        return self._run(texts, tasks, batch_size, keep_proba=True)

    def predict(
        self,
        texts: str | Sequence[str | Sequence[str]],
        tasks: Sequence[str] | str | None = None,
        batch_size: int = 32,
        min_score: float | None = None,
    ) -> list[dict[str, Any]]:
        """Per text, ``{task: {"label", "score", "probabilities"}}`` for sentence heads and
        ``{task: [entity, ...]}`` for token heads (entities carry ``text``, ``label``, ``start``,
        ``end``, ``score``, with ``text == original[start:end]``). One backbone pass per batch
        feeds every head. Texts may be raw strings or pre-split word lists. With ``min_score``, a
        sentence head whose top probability is below it gives no label (``None``): it abstains.
        """
        return self._run(texts, tasks, batch_size, keep_proba=False, min_score=min_score)

    def predict_and_embed(
        self,
        texts: str | Sequence[str | Sequence[str]],
        tasks: Sequence[str] | str | None = None,
        batch_size: int = 32,
        min_score: float | None = None,
    ) -> tuple[list[dict[str, Any]], np.ndarray]:
        """:meth:`predict` and the (n, dim) sentence embeddings from the same backbone pass, as
        the backbone gives them (``embed(normalize=False)``); ``tasks=[]`` gives embeddings only.
        What a server runs for a batch that mixes embedding and prediction requests.

        >>> from st_multitask import MultiTaskModel
        >>> results, vectors = MultiTaskModel.default().predict_and_embed(["Apple is great."], ["sentiment"])
        >>> sorted(results[0]), vectors.shape
        (['sentiment'], (1, 384))
        """
        vectors = np.zeros((len(check_items(texts)), self.dim), dtype=np.float32)
        results = self._run(texts, tasks, batch_size, keep_proba=False, min_score=min_score, vectors=vectors)
        return results, vectors

    def _run(
        self,
        texts: Any,
        tasks: Any,
        batch_size: int,
        keep_proba: bool,
        min_score: float | None = None,
        vectors: np.ndarray | None = None,
    ) -> list[dict[str, Any]]:
        check_min_score(min_score)
        heads = self._select(tasks)
        items = check_items(texts)
        untrained = [name for name, head in heads.items() if not head.is_trained]
        if untrained:
            logger.warning(
                "Head%s %s %s not been trained: predictions are random.",
                "s" * (len(untrained) > 1),
                ", ".join(untrained),
                "have" if len(untrained) > 1 else "has",
            )
        was_training = self.training
        self.eval()
        results: list[dict[str, Any]] = [{} for _ in items]
        try:
            with torch.inference_mode():
                for batch in self._batches(items, batch_size):
                    features, batch_texts, spans = self.features([items[i] for i in batch])
                    if vectors is not None:
                        vectors[batch] = features["sentence_embedding"].float().cpu().numpy()
                    # words a token head may tag: those with a piece inside the model window
                    read = torch.zeros(len(batch), features["n_words"] + 1, dtype=torch.bool)
                    piece_word = features["piece_word"].cpu()
                    rows = torch.arange(len(batch)).unsqueeze(1).expand_as(piece_word)
                    read[rows[piece_word >= 0], piece_word[piece_word >= 0]] = True
                    for name, head in heads.items():
                        proba = (
                            head.probabilities(head(features)).float().cpu()
                        )  # one op per batch, not per text
                        if keep_proba:
                            for row, index in enumerate(batch):
                                value = (
                                    proba[row] if head.level == "sentence" else proba[row, : len(spans[row])]
                                )
                                results[index][name] = value.numpy()
                        elif head.level == "sentence":
                            for row, index in enumerate(batch):
                                results[index][name] = head.decode(proba[row], min_score)
                        else:
                            scores, ids = proba.max(dim=-1)
                            scores, ids, seen = scores.tolist(), ids.tolist(), read.tolist()
                            for row, index in enumerate(batch):
                                n = len(spans[row])
                                results[index][name] = decode_words(
                                    head.labels,
                                    ids[row][:n],
                                    scores[row][:n],
                                    seen[row],
                                    spans[row],
                                    batch_texts[row],
                                )
        finally:
            self.train(was_training)
        return results

    def calibrate(self, data: dict[str, Any], batch_size: int = 64) -> dict[str, dict[str, float]]:
        """Fit each single-label sentence head's temperature on held-out data, so that its scores
        are calibrated (labels do not change), and, for a head with an ``other_label``, the
        out-of-scope threshold that keeps 98% of the in-scope held-out texts
        (:func:`~st_multitask.calibration.fit_other_threshold`).

        ``data`` maps task names to :class:`~st_multitask.data.SentenceExamples` (dev data, never
        the test split). Returns ``{task: {"temperature", "ece_before", "ece_after"}}`` with the
        expected calibration error (15 bins) on that data before and after (and
        ``"other_threshold"`` where one was fitted).
        """
        report: dict[str, dict[str, float]] = {}
        was_training = self.training
        self.eval()
        try:
            for task, examples in data.items():
                report[task] = self._calibrate_head(task, examples, batch_size)
        finally:
            self.train(was_training)
        return report

    def _calibrate_head(self, task: str, examples: Any, batch_size: int) -> dict[str, float]:
        from .calibration import expected_calibration_error, fit_other_threshold, fit_temperature, softmax

        head = self._select([task])[task]
        if head.level != "sentence" or not head.calibrates:
            raise InputError(
                f"Task {task!r}: only single-label sentence heads are calibrated by temperature."
            )
        ids = head.encode_labels(examples.labels).numpy()
        chunks = []
        with torch.no_grad():
            for start in range(0, len(examples.texts), batch_size):
                inputs, _ = self.head_inputs(examples.texts[start : start + batch_size], [task])
                chunks.append(head(inputs[task]).float().cpu().numpy())
        logits = np.concatenate(chunks)
        before = expected_calibration_error(softmax(logits, 1.0), ids)
        head.temperature = fit_temperature(logits, ids)
        after_probs = softmax(logits, head.temperature)
        after = expected_calibration_error(after_probs, ids)
        report = {
            "temperature": head.temperature,
            "ece_before": round(before, 4),
            "ece_after": round(after, 4),
        }
        if getattr(head, "other_label", None) is not None:
            other = head.label2id[head.other_label]
            head.other_threshold = fit_other_threshold(after_probs[:, other], ids == other)
            report["other_threshold"] = head.other_threshold
        return report

    # -- save / load ----------------------------------------------------------------------------
    def record(self, **entries: Any) -> None:
        """Keep facts about how the model was made (``metrics``, ``test_metrics``, ``training``):
        :meth:`save` writes them into the manifest and the model card."""
        unknown = [k for k in entries if k not in RECORD_KEYS]
        if unknown:
            raise InputError(f"Unknown record {unknown[0]!r}. Valid: {', '.join(RECORD_KEYS)}.")
        self._manifest = {**getattr(self, "_manifest", {}), **entries}

    def has_packaged_backbone(self) -> bool:
        """True when the backbone's weights are exactly those of the packaged all-MiniLM-L6-v2."""
        from safetensors.torch import load_file

        reference = default_model_path() / "model.safetensors"
        if self.backbone.max_seq_length != 256 or embedding_dim(self.backbone) != 384:
            return False
        packaged = load_file(str(reference))
        mine = self.backbone[0].auto_model.state_dict()
        for key, value in mine.items():
            if key not in packaged or not torch.equal(value.detach().cpu(), packaged[key]):
                return False
        return True

    def save(self, path: str | os.PathLike[str], overwrite: bool = False, backbone: str = "copy") -> Path:
        """Save to a directory, atomically.

        The directory is a normal sentence-transformers model (``SentenceTransformer(path)`` loads
        the embedding model alone), plus ``heads/<name>/{config.json, model.safetensors}`` and the
        manifest ``st_multitask.json`` (format version, heads, labels, file hashes, backbone).

        Args:
            path: the directory to write.
            overwrite: replace an existing directory (otherwise that is an error).
            backbone: ``"copy"`` the backbone into the directory, or ``"reference"`` the packaged
                all-MiniLM-L6-v2 (only when its weights are unchanged; a few MB instead of 90).
        """
        path = Path(path)
        if backbone not in ("copy", "reference"):
            raise InputError(f"Unknown backbone mode {backbone!r}. Valid: copy, reference.")
        if path.exists() and not overwrite:
            raise InputError(f"{path} exists already; pass overwrite=True to replace it.")
        if backbone == "reference" and not self.has_packaged_backbone():
            raise InputError(
                "backbone='reference' needs the unchanged packaged all-MiniLM-L6-v2; use 'copy'."
            )
        with atomic_directory(path, overwrite) as tmp:
            write_model_directory(
                tmp,
                self._heads,
                self.dim,
                self.backbone if backbone == "copy" else None,
                records=getattr(self, "_manifest", {}),  # a loaded model keeps its stored metrics
                title=path.name,
            )
        return path

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        device: str | None = None,
        backend: str = "torch",
        precision: str | None = None,
    ) -> MultiTaskModel | ExportedMultiTaskModel:
        """Load a directory written by :meth:`save`. Never unpickles, never runs code from it.

        Checks the manifest, every head file's hash, the heads' shapes and labels, and that the
        heads' width matches the backbone; a missing, truncated or altered file is named.

        ``backend="torch"`` (the default) gives this trainable torch model. ``"auto"``, ``"onnx"``
        or ``"openvino"`` (with ``precision`` fp32, bf16 or int8) give an
        :class:`~st_multitask.exported_model.ExportedMultiTaskModel`: the same predictions from an
        exported graph and numpy heads, several times faster on a CPU and without torch.
        """
        if backend != "torch" or (precision or "fp32") != "fp32":
            from .runtime import resolve_backend

            choice = resolve_backend(backend, precision, device)
            if choice.fast:
                from .exported_model import ExportedMultiTaskModel

                return ExportedMultiTaskModel.load(path, choice.backend, choice.precision)
        path = Path(path)
        manifest = read_manifest(path)
        backbone_info = manifest["backbone"]
        if backbone_info.get("type") == "packaged":
            backbone = load_backbone(None, device)
        else:
            backbone = load_backbone(path, device)
        model = cls(backbone)
        model._backbone_source = str(path) if backbone_info["type"] == "directory" else DEFAULT_MODEL_NAME
        for name, head in read_heads(path, manifest, model.dim).items():
            model.add_head(name, head)
        model._manifest = manifest
        return model

    @classmethod
    def default(
        cls, device: str | None = None, backend: str = "torch", precision: str | None = None
    ) -> MultiTaskModel | ExportedMultiTaskModel:
        """The bundled default model (topic, sentiment and NER heads on the packaged MiniLM);
        ``backend`` and ``precision`` as in :meth:`load`."""
        bundled = bundled_model_dir()
        if not (bundled / MANIFEST_NAME).is_file():
            raise ModelLoadError(
                "No bundled default model ships with this version of st_multitask yet. Train one with "
                "MultiTaskModel.add_head(...) and save(), then load its directory: model='DIR'."
            )
        return cls.load(bundled, device, backend, precision)

    def info(self) -> dict[str, Any]:
        """A summary: backbone, heads with kinds, labels and sizes."""
        return {
            "backbone": {
                "name": getattr(self, "_manifest", {}).get("backbone", {}).get("name")
                or self._backbone_source
                or DEFAULT_MODEL_NAME,
                "dimension": self.dim,
                "max_seq_length": self.backbone.max_seq_length,
                "parameters": sum(p.numel() for p in self.backbone.parameters()),
            },
            "heads": {
                name: {
                    "kind": head.kind,
                    "level": head.level,
                    "labels": head.labels,
                    "parameters": sum(p.numel() for p in head.parameters()),
                    "trained": head.is_trained,
                    "config": {
                        k: v for k, v in head.get_config_dict().items() if k not in ("labels", "in_features")
                    },
                }
                for name, head in self._heads.items()
            },
            "metrics": getattr(self, "_manifest", {}).get("metrics", {}),
            "graphs": getattr(self, "_manifest", {}).get("graphs", {}),
        }
