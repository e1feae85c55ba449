"""MultiTaskModel: the trainable torch module, one SentenceTransformer backbone plus named heads.

It trains, calibrates, saves and exports; it runs through a torch
:class:`~st_multitask.pipeline.Pipeline` (:meth:`MultiTaskModel.pipeline`), the same pipeline
:func:`st_multitask.load` gives for every engine, and its ``predict`` methods are that pipeline's.

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
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch
from torch import Tensor

from .atomic import atomic_directory
from .backbone import DEFAULT_MODEL_NAME, bundled_model_dir, embedding_dim, is_packaged, load_backbone
from .errors import Hint, InputError
from .heads import Head
from .heads.base import Features
from .manifest import FORMAT_VERSION, MANIFEST_NAME
from .pipeline import Pipeline
from .runtime import EngineSpec
from .runtime.branches import Branch, pad_states
from .runtime.feeds import build_feeds, words_read
from .runtime.runners.torch import TorchRunner
from .runtime.tokenizer import TextTokenizer
from .runtime.torch_graph import ModelGraph
from .storage import RECORD_KEYS, read_branches, read_heads, read_manifest, write_model_directory
from .texts import Item, texts_and_spans

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from .data import SentenceExamples, TokenExamples
    from .heads.hybrid import HybridHead

__all__ = ["FORMAT_VERSION", "MANIFEST_NAME", "MultiTaskModel"]

logger = logging.getLogger(__name__)


class MultiTaskModel(torch.nn.Module):
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
        self._branches = torch.nn.ModuleDict()
        self.branch_of: dict[str, str] = {}  # task -> the branch its head reads
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

    def add_branch(self, name: str, layers: int = 2, *, branch: Branch | None = None) -> MultiTaskModel:
        """Add a task branch ``name``: a trainable copy of the backbone's top ``layers`` layers.

        Heads added with ``branch=name`` read it instead of the backbone; training them fine-tunes
        the branch and never the backbone, so :meth:`encode` stays the backbone's to the bit. ``branch``
        attaches an existing branch (another model's, same backbone) instead of a fresh copy.

        >>> from st_multitask.heads import MLPHead
        >>> model = MultiTaskModel().add_branch("tasks", layers=2)
        >>> model = model.add_head("sentiment", MLPHead(model.dim, ["neg", "pos"]), branch="tasks")
        >>> model.branch_of
        {'sentiment': 'tasks'}
        """
        if not isinstance(name, str) or not name.replace("_", "").replace("-", "").isalnum():
            raise InputError(f"Branch name {name!r} must be letters, digits, '-' or '_' (it names a folder).")
        if name in self._branches:
            raise InputError(f"A branch named {name!r} exists already.")
        branch = (
            branch.check_fits(self.backbone, name) if branch else Branch.from_backbone(self.backbone, layers)
        )
        self._branches[name] = branch.train(self.training)
        return self

    @property
    def branches(self) -> dict[str, Branch]:
        """The task branches by name (a copy of the mapping; the branches are live)."""
        return cast("dict[str, Branch]", dict(self._branches.items()))  # a ModuleDict of Branch

    def remove_branch(self, name: str) -> Branch:
        """Detach and return the branch ``name``; no head may read it."""
        if name not in self._branches:
            raise InputError(f"No branch named {name!r}. Branches: {', '.join(self._branches) or 'none'}.")
        if readers := sorted(head for head, branch in self.branch_of.items() if branch == name):
            raise InputError(f"Branch {name!r} is read by {', '.join(readers)}; remove_head() those first.")
        return cast("Branch", self._branches.pop(name))

    def add_head(self, name: str, head: Head, branch: str | None = None) -> MultiTaskModel:
        """Attach ``head`` as task ``name``, reading the backbone or, with ``branch``, that task
        branch (:meth:`add_branch`)."""
        if branch is not None and branch not in self._branches:
            raise InputError(
                f"No branch named {branch!r}. Branches: {', '.join(self._branches) or 'none'}; add_branch() first."
            )
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
        if branch is not None:
            self.branch_of[name] = branch
        return self

    def remove_head(self, name: str) -> Head:
        """Detach and return the head ``name``."""
        if name not in self._heads:
            raise InputError(f"No head named {name!r}. Heads: {', '.join(self._heads) or 'none'}.")
        head = self.heads[name]
        del self._heads[name]
        self.branch_of.pop(name, None)
        return head

    # -- inference: the torch pipeline ----------------------------------------------------------
    @property
    def heads(self) -> dict[str, Head]:
        """The heads by name (a copy of the mapping; the heads themselves are live)."""
        return cast("dict[str, Head]", dict(self._heads.items()))  # a ModuleDict of Head

    def _text_tokenizer(self) -> TextTokenizer:
        cached = self.__dict__.get("_tokenizer")
        if cached is None or cached[0] is not self.backbone:
            cached = self.__dict__["_tokenizer"] = (self.backbone, TextTokenizer.from_backbone(self.backbone))
        return cached[1]

    def pipeline(self) -> Pipeline:
        """This model, as it is now (its live heads), on the torch engine: the
        :class:`~st_multitask.pipeline.Pipeline` every engine gives (``embed``, ``predict``, ...)."""
        manifest = getattr(self, "_manifest", {})
        live = cast("Mapping[str, Head]", self._heads)  # the live ModuleDict of Head
        spec = EngineSpec("torch", "fp32", str(self.device))
        branches = cast("Mapping[str, Branch]", self._branches)  # live, as the heads
        runner = TorchRunner(self.backbone, live, spec, self, branches, self.branch_of)
        decoders = {name: head.decoder() for name, head in live.items()}
        sparse = {n: cast("HybridHead", h)._sparse for n, h in live.items() if getattr(h, "uses_text", False)}
        name = manifest.get("backbone", {}).get("name") or self._backbone_source or DEFAULT_MODEL_NAME
        return Pipeline(runner, self._text_tokenizer(), decoders, sparse, str(name), manifest)

    def encode(
        self, texts: str | Sequence[str], batch_size: int = 64, normalize: bool = True, **kwargs: Any
    ) -> np.ndarray:
        """Sentence embeddings: the same vectors as :func:`st_multitask.embed` with this backbone."""
        return self.pipeline().embed(texts, batch_size=batch_size, normalize=normalize, **kwargs)

    def predict(
        self,
        texts: Item | Sequence[Item],
        tasks: Sequence[str] | str | None = None,
        batch_size: int = 32,
        min_score: float | None = None,
    ) -> list[dict[str, Any]]:
        """:meth:`Pipeline.predict <st_multitask.pipeline.Pipeline.predict>` in torch."""
        return self.pipeline().predict(texts, tasks, batch_size, min_score)

    def predict_proba(
        self, texts: Item | Sequence[Item], tasks: Sequence[str] | str | None = None, batch_size: int = 32
    ) -> list[dict[str, np.ndarray]]:
        """:meth:`Pipeline.predict_proba <st_multitask.pipeline.Pipeline.predict_proba>` in torch."""
        return self.pipeline().predict_proba(texts, tasks, batch_size)

    def predict_and_embed(
        self,
        texts: Item | Sequence[Item],
        tasks: Sequence[str] | str | None = None,
        batch_size: int = 32,
        min_score: float | None = None,
    ) -> tuple[list[dict[str, Any]], np.ndarray]:
        """:meth:`Pipeline.predict_and_embed <st_multitask.pipeline.Pipeline.predict_and_embed>` in torch.

        >>> from st_multitask import MultiTaskModel
        >>> results, vectors = MultiTaskModel.default().predict_and_embed(["Apple is great."], ["sentiment"])
        >>> sorted(results[0]), vectors.shape
        (['sentiment'], (1, 384))
        """
        return self.pipeline().predict_and_embed(texts, tasks, batch_size, min_score)

    def predict_labels(self, items: Sequence[Item], task: str, batch_size: int = 64) -> list[Any]:
        """:meth:`Pipeline.predict_labels <st_multitask.pipeline.Pipeline.predict_labels>` in torch."""
        return self.pipeline().predict_labels(items, task, batch_size)

    def graph(self, heads: Mapping[str, Head] | None = None) -> ModelGraph:
        """The backbone, branches and ``heads`` (default all) as one
        :class:`~st_multitask.runtime.torch_graph.ModelGraph`."""
        return ModelGraph(
            self.backbone, dict(self.heads if heads is None else heads), self.branches, self.branch_of
        )

    def features(
        self,
        items: Sequence[str | Sequence[str]],
        grad: bool = False,
        embedding: bool = True,
        trunk: Sequence[Mapping[int, Tensor]] | None = None,
        tasks: Sequence[str] | None = None,
    ) -> tuple[Features, list[str], list[list[tuple[int, int]]]]:
        """One backbone pass over a batch (raw strings or pre-split word lists): the features every
        head reads (``piece_word`` maps word pieces to words; a branch's heads read
        ``features["branches"][name]``), the texts, and each text's word spans. The inputs are the
        exported graph's (:mod:`st_multitask.runtime.feeds`); ``trunk`` holds, per item, the trunk's
        states the branches read, so a training cache skips the trunk; ``tasks`` limits the pass to
        what those heads read (default: every head's)."""
        texts, spans = texts_and_spans(items)
        graph = self.graph(None if tasks is None else {task: self.heads[task] for task in tasks})
        feeds, piece_word = build_feeds(graph.plan, self._text_tokenizer(), texts, spans)
        tensors = graph.tensors(feeds)
        states = None if trunk is None else pad_states(trunk, tensors["attention_mask"].shape[1])
        with contextlib.nullcontext() if grad else torch.no_grad():
            out = graph.features(tensors, texts, embedding=embedding, trunk=states)
        out["piece_word"] = torch.from_numpy(piece_word).to(self.device)
        out["n_words"] = max((len(s) for s in spans), default=0)
        out["word_count"] = torch.tensor([len(s) for s in spans], dtype=torch.long)
        return out, texts, spans

    def head_inputs(
        self,
        items: Sequence[str | Sequence[str]],
        tasks: Sequence[str],
        grad: bool = False,
        trunk: Sequence[Mapping[int, Tensor]] | None = None,
    ) -> tuple[dict[str, dict[str, Tensor]], Tensor]:
        """What each head of ``tasks`` reads, from one backbone pass over ``items`` (or, with
        ``trunk``, from the trunk's states a training cache kept: ``TrunkCache``), as
        ``({task: head.inputs(features)}, read)``; ``read`` (batch, words) marks the words the window read.
        """
        with torch.enable_grad() if grad else torch.no_grad():
            features, _, _ = self.features(items, grad=grad, embedding=False, trunk=trunk, tasks=tasks)
            read = torch.from_numpy(words_read(features["piece_word"].cpu().numpy(), features["n_words"]))
            heads, graph = self.heads, self.graph({task: self.heads[task] for task in tasks})
            inputs = {task: heads[task].inputs(graph.features_of(task, features)) for task in tasks}
        return inputs, read

    def calibrate(
        self, data: Mapping[str, SentenceExamples | TokenExamples], batch_size: int = 64
    ) -> dict[str, dict[str, float]]:
        """Fit each single-label sentence head's temperature on held-out data, so that its scores
        are calibrated (labels do not change), and, for a head with an ``other_label``, the
        out-of-scope threshold that keeps 98% of the in-scope held-out texts
        (:func:`~st_multitask.calibration.fit_other_threshold`).

        ``data`` maps task names to :class:`~st_multitask.data.SentenceExamples` (dev data, never
        the test split). Returns ``{task: {"temperature", "ece_before", "ece_after"}}`` with the
        expected calibration error (15 bins) on that data before and after (and
        ``"other_threshold"`` where one was fitted).
        """
        from .head_calibration import calibrate_heads

        return calibrate_heads(self, data, batch_size)

    # -- save / load ----------------------------------------------------------------------------
    def record(self, **entries: Any) -> None:
        """Keep facts about how the model was made (``metrics``, ``test_metrics``, ``training``):
        :meth:`save` writes them into the manifest and the model card."""
        if unknown := [k for k in entries if k not in RECORD_KEYS]:
            raise InputError(f"Unknown record {unknown[0]!r}. Valid: {', '.join(RECORD_KEYS)}.")
        self._manifest = {**getattr(self, "_manifest", {}), **entries}

    def has_packaged_backbone(self) -> bool:
        """True when the backbone's weights are exactly those of the packaged all-MiniLM-L6-v2."""
        return is_packaged(self.backbone)

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
            raise InputError(f"{path} exists already; pass ", Hint("overwrite"), " to replace it.")
        if backbone == "reference" and not self.has_packaged_backbone():
            raise InputError(
                "backbone='reference' needs the unchanged packaged all-MiniLM-L6-v2; use 'copy'."
            )
        with atomic_directory(path, overwrite) as tmp:
            write_model_directory(
                tmp,
                self.heads,
                self.dim,
                self.backbone if backbone == "copy" else None,
                records=getattr(self, "_manifest", {}),  # a loaded model keeps its stored metrics
                title=path.name,
                branches=self.branches,
                branch_of=self.branch_of,
            )
        return path

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        device: str | None = None,
        backend: str | None = None,
        precision: str | None = None,
    ) -> MultiTaskModel:
        """Load a directory written by :meth:`save` as this trainable torch model. Never
        unpickles, never runs code from it.

        Checks the manifest, every head file's hash, the heads' shapes and labels, and that the
        heads' width matches the backbone; a missing, truncated or altered file is named. To run a
        model on any engine (ONNX Runtime, OpenVINO, torch) use :func:`st_multitask.load`, which
        gives a :class:`~st_multitask.pipeline.Pipeline`; ``backend`` here is deprecated and hands
        over to it.
        """
        if backend not in (None, "torch") or precision not in (None, "fp32"):
            from .loader import deprecated_load

            return deprecated_load(path, device, backend, precision)  # type: ignore[return-value]
        return cls._load_torch(path, device)

    @classmethod
    def _load_torch(cls, path: str | os.PathLike[str], device: str | None) -> MultiTaskModel:
        path = Path(path)
        manifest = read_manifest(path)
        backbone_info = manifest["backbone"]
        if backbone_info.get("type") == "packaged":
            backbone = load_backbone(None, device)
        else:
            backbone = load_backbone(path, device)
        model = cls(backbone)
        model._backbone_source = str(path) if backbone_info["type"] == "directory" else DEFAULT_MODEL_NAME
        branches, branch_of = read_branches(path, manifest, model.backbone)
        model._branches.update(branches)
        for name, head in read_heads(path, manifest, model.dim).items():
            model.add_head(name, head, branch_of.get(name))
        model._manifest = manifest
        return model

    @classmethod
    def default(
        cls, device: str | None = None, backend: str | None = None, precision: str | None = None
    ) -> MultiTaskModel:
        """The bundled default model (topic, sentiment and NER heads on the packaged MiniLM), as
        the trainable torch model; ``st_multitask.load()`` runs it on any engine."""
        return cls.load(bundled_model_dir(), device, backend, precision)

    def info(self) -> dict[str, Any]:
        """:meth:`Pipeline.info <st_multitask.pipeline.Pipeline.info>`, with the parameter counts."""
        summary = self.pipeline().info()
        summary["backbone"]["parameters"] = sum(p.numel() for p in self.backbone.parameters())
        for name, head in self.heads.items():
            summary["heads"][name]["parameters"] = sum(p.numel() for p in head.parameters())
        return summary
