"""Multi-task training: TrainingConfig (validated dataclass) and Trainer (joint or sequential).

    >>> from st_multitask import MultiTaskModel
    >>> from st_multitask.data import SentenceExamples
    >>> from st_multitask.heads import MLPHead
    >>> model = MultiTaskModel()
    >>> _ = model.add_head("mood", MLPHead(model.dim, ["happy", "sad"], hidden=[]))
    >>> train = SentenceExamples(["What a lovely day!", "I lost my keys again."] * 8, ["happy", "sad"] * 8)
    >>> config = TrainingConfig(epochs=3, freeze=["backbone"], head_learning_rate=0.05, batch_size=8)
    >>> result = Trainer(model, config, progress=False).fit([TaskData("mood", train, dev=train)])
    >>> result.metrics["mood"]["accuracy"]
    1.0

Features: task sampling (proportional, round robin, uniform, temperature) with per-task loss
weights; rows that carry labels for several tasks train all of them from one pass; sequential
stages with a forgetting table; freezing (backbone, heads, everything); gradual unfreezing;
layer-wise learning-rate decay; AdamW with warmup then linear decay; clipping; accumulation;
mixed precision on GPU; a cached-embedding fast path when no backbone weight trains; checkpoints
and exact resume; data parallel under ``accelerate launch``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import re
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from .checkpointing import latest_checkpoint, load_checkpoint, save_checkpoint, set_rng_state
from .data import SentenceExamples, TokenExamples, check_labels_known
from .errors import InputError
from .evaluation import evaluate_task
from .model import MultiTaskModel
from .sampling import SAMPLINGS, TaskSampler

__all__ = ["STRATEGIES", "TaskData", "Trainer", "TrainingConfig", "TrainingResult"]

logger = logging.getLogger(__name__)

STRATEGIES = ("joint", "sequential")
CACHE_MODES = ("auto", "memory", "disk", "off")
PRECISIONS = ("no", "fp16", "bf16")
UNITS = ("epoch", "step")


@dataclass
class TaskData:
    """A task's splits; its head is ``model.heads[name]``. Labels come from that head."""

    name: str
    train: SentenceExamples | TokenExamples
    dev: SentenceExamples | TokenExamples | None = None
    test: SentenceExamples | TokenExamples | None = None


@dataclass
class TrainingConfig:
    """Every training setting, validated on creation. Load from YAML/JSON with :meth:`from_file`."""

    strategy: Literal["joint", "sequential"] = "joint"
    epochs: int = 3  # per task stage in sequential training
    batch_size: int = 32
    learning_rate: float = 2e-5  # backbone (top encoder layer)
    head_learning_rate: float = 1e-3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1  # share of the steps with a linear warmup, then linear decay to 0
    max_grad_norm: float | None = 1.0  # gradient clipping; None turns it off
    gradient_accumulation_steps: int = 1
    sampling: str = "proportional"  # joint: proportional, round_robin, uniform, temperature
    temperature: float = 2.0  # for sampling="temperature": p ∝ n^(1/T)
    loss_weights: dict[str, float] = field(default_factory=dict)  # task -> weight (default 1)
    task_order: list[str] | None = None  # sequential: the order of the stages (default: as given)
    freeze_finished_heads: bool = True  # sequential: a finished task's head stops training
    freeze: list[str] = field(default_factory=list)  # "backbone", head names, or "all"
    unfreeze_every: int | None = None  # gradual unfreezing: unfreeze more layers every N units
    unfreeze_unit: Literal["epoch", "step"] = "epoch"
    unfreeze_layers: int = 1  # encoder layers unfrozen at a time, top first
    lr_decay: float = 1.0  # layer-wise: each layer below the top gets lr_decay x the rate above
    mixed_precision: Literal["no", "fp16", "bf16"] = "no"  # GPU only
    seed: int = 42
    early_stopping_patience: int | None = None  # epochs without improvement before stopping
    best_per_task: bool = False  # frozen backbone, joint: each head keeps its best-dev epoch's weights
    metric_for_best: str | None = None  # "task.metric" (e.g. "ner.f1") or "mean"; default mean
    checkpoint_every: int | None = None  # optimizer steps between checkpoints (plus every epoch)
    keep_checkpoints: int = 2
    cache_embeddings: Literal["auto", "memory", "disk", "off"] = "auto"  # frozen-backbone fast path
    eval_batch_size: int = 64
    calibrate: bool = True  # after training, fit each single-label sentence head's temperature on dev

    def __post_init__(self) -> None:
        def choice(name: str, valid: Sequence[str]) -> None:
            value = getattr(self, name)
            if value not in valid:
                raise InputError(f"Unknown {name} {value!r}. Valid: {', '.join(valid)}.")

        def positive(name: str, allow_none: bool = False, integer: bool = True) -> None:
            value = getattr(self, name)
            if value is None and allow_none:
                return
            ok = isinstance(value, int) if integer else isinstance(value, (int, float))
            if isinstance(value, bool) or not ok or value <= 0:
                raise InputError(
                    f"{name} must be a positive {'integer' if integer else 'number'}, got {value!r}."
                )

        choice("strategy", STRATEGIES)
        choice("sampling", SAMPLINGS)
        choice("cache_embeddings", CACHE_MODES)
        choice("mixed_precision", PRECISIONS)
        choice("unfreeze_unit", UNITS)
        for name in (
            "epochs",
            "batch_size",
            "gradient_accumulation_steps",
            "unfreeze_layers",
            "eval_batch_size",
        ):
            positive(name)
        for name in ("unfreeze_every", "checkpoint_every", "early_stopping_patience"):
            positive(name, allow_none=True)
        for name in ("learning_rate", "head_learning_rate", "temperature"):
            positive(name, integer=False)
        positive("max_grad_norm", allow_none=True, integer=False)
        for name in ("best_per_task", "freeze_finished_heads", "calibrate"):
            if not isinstance(getattr(self, name), bool):
                raise InputError(f"{name} must be true or false, got {getattr(self, name)!r}.")
        if not 0 <= self.warmup_ratio < 1:
            raise InputError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio!r}.")
        if not 0 < self.lr_decay <= 1:
            raise InputError(f"lr_decay must be in (0, 1], got {self.lr_decay!r}.")
        if self.weight_decay < 0:
            raise InputError(f"weight_decay must be >= 0, got {self.weight_decay!r}.")
        if isinstance(self.freeze, str):
            self.freeze = [x for x in self.freeze.split(",") if x]
        if (
            self.metric_for_best is not None
            and self.metric_for_best != "mean"
            and "." not in self.metric_for_best
        ):
            raise InputError(
                f"metric_for_best must be 'task.metric' (e.g. 'ner.f1') or 'mean', not {self.metric_for_best!r}."
            )
        if any(not isinstance(w, (int, float)) or w < 0 for w in self.loss_weights.values()):
            raise InputError("loss_weights must map task names to non-negative numbers.")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainingConfig:
        """Build from a dict; an unknown key names the valid ones."""
        valid = [f.name for f in dataclasses.fields(cls)]
        unknown = [k for k in values if k not in valid]
        if unknown:
            raise InputError(f"Unknown training setting {unknown[0]!r}. Valid: {', '.join(valid)}.")
        return cls(**values)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> TrainingConfig:
        """Load from a YAML or JSON file (the whole file, or its ``training:`` section)."""
        data = load_config_file(path)
        return cls.from_dict(data.get("training", data))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def load_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A YAML or JSON mapping from a file, with a clear error for anything else."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such config file.")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as exc:
        raise InputError(
            f"{path} is not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {exc}"
        ) from None
    if not isinstance(data, dict):
        raise InputError(f"{path} must hold a mapping of settings, not a {type(data).__name__}.")
    return data


@dataclass
class TrainingResult:
    """What :meth:`Trainer.fit` returns: final dev (or train) metrics per task, the history, and
    for sequential training the task x stage table of a chosen metric (forgetting)."""

    metrics: dict[str, dict[str, Any]]
    history: list[dict[str, Any]]
    forgetting: dict[str, dict[str, float]] | None = None
    steps: int = 0
    seconds: float = 0.0


# ---------------------------------------------------------------------------------------------


def _main_metric(level: str) -> str:
    return "macro_f1" if level == "sentence" else "f1"


class _Stream:
    """Examples that share texts and train one or more tasks from one pass."""

    def __init__(self, tasks: list[str], items: list, targets: dict[str, list]):
        self.tasks = tasks
        self.items = items  # str or list of words
        self.targets = targets  # task -> per-example target
        self.name = "+".join(tasks)

    def __len__(self) -> int:
        return len(self.items)


class Trainer:
    """Trains a :class:`MultiTaskModel` on tasks.

    Args:
        model: the model; each task needs a head of the same name.
        config: a :class:`TrainingConfig`.
        output_dir: where checkpoints, ``metrics.jsonl`` and the final model go (optional).
        overwrite: allow an existing, non-empty ``output_dir``.
        resume: continue from the newest checkpoint in ``output_dir/checkpoints``.
        progress: show progress bars.
    """

    def __init__(
        self,
        model: MultiTaskModel,
        config: TrainingConfig | None = None,
        output_dir: str | os.PathLike[str] | None = None,
        overwrite: bool = False,
        resume: bool = False,
        progress: bool = True,
    ):
        self.model = model
        self.config = config or TrainingConfig()
        self.output_dir = Path(output_dir) if output_dir is not None else None
        self.overwrite = overwrite
        self.resume = resume
        self.progress = progress
        from accelerate import PartialState

        self.state = PartialState(cpu=not torch.cuda.is_available())
        self.rank, self.world = self.state.process_index, self.state.num_processes
        self.history: list[dict[str, Any]] = []
        if self.config.mixed_precision != "no" and self.model.device.type != "cuda":
            raise InputError("mixed_precision needs a CUDA device; set it to 'no' on CPU.")
        if resume and self.output_dir is None:
            raise InputError("resume needs an output directory holding checkpoints.")

    # -- setup ------------------------------------------------------------------------------------
    def _check_tasks(self, tasks: Sequence[TaskData]) -> None:
        if not tasks:
            raise InputError("No tasks to train.")
        names = [t.name for t in tasks]
        if len(set(names)) != len(names):
            raise InputError(f"Task names must be unique: {names}.")
        for task in tasks:
            head = self.model.heads.get(task.name)
            if head is None:
                raise InputError(
                    f"Task {task.name!r} has no head; heads: {', '.join(self.model.heads) or 'none'}."
                )
            expected = SentenceExamples if head.level == "sentence" else TokenExamples
            for split in ("train", "dev", "test"):
                data = getattr(task, split)
                if data is None:
                    if split == "train":
                        raise InputError(f"Task {task.name!r} has no training data.")
                    continue
                if not isinstance(data, expected):
                    raise InputError(
                        f"Task {task.name!r} has a {head.level}-level head; its {split} data must be "
                        f"{expected.__name__}."
                    )
                if len(data) == 0:
                    raise InputError(f"Task {task.name!r}: the {split} split ({data.source}) is empty.")
                check_labels_known(
                    data, head.labels, task.train.source if split != "train" else "the head's labels"
                )
        unknown = [t for t in self.config.loss_weights if t not in names]
        if unknown:
            raise InputError(f"loss_weights names unknown task {unknown[0]!r}. Tasks: {', '.join(names)}.")
        order = self.config.task_order
        if order is not None and sorted(order) != sorted(names):
            raise InputError(f"task_order {order} must list each task once: {', '.join(names)}.")

    def _prepare_output(self) -> None:
        if self.output_dir is None or self.rank != 0:
            return
        out = self.output_dir
        if out.exists() and not out.is_dir():
            raise InputError(f"{out} is a file; give a directory for the model.")
        if self.resume:
            if latest_checkpoint(out / "checkpoints") is None:
                raise InputError(f"Nothing to resume in {out}: no checkpoint under {out / 'checkpoints'}.")
            return
        if out.exists() and any(out.iterdir()):
            if not self.overwrite:
                raise InputError(
                    f"{out} exists and is not empty; pass --overwrite to replace it, or --resume."
                )
            shutil.rmtree(out)
        out.mkdir(parents=True, exist_ok=True)

    def _streams(self, tasks: Sequence[TaskData]) -> list[_Stream]:
        """Group sentence tasks whose training texts are the same rows into one stream."""
        streams: list[_Stream] = []
        for task in tasks:
            head = self.model.heads[task.name]
            data = task.train
            items = data.texts if isinstance(data, SentenceExamples) else data.words
            targets = data.labels if isinstance(data, SentenceExamples) else data.tags
            for stream in streams:
                if (
                    head.level == "sentence"
                    and stream.items == items
                    and all(self.model.heads[t].level == "sentence" for t in stream.tasks)
                ):
                    stream.tasks.append(task.name)
                    stream.targets[task.name] = targets
                    stream.name = "+".join(stream.tasks)
                    break
            else:
                streams.append(_Stream([task.name], list(items), {task.name: list(targets)}))
        return streams

    # -- freezing and optimizer -------------------------------------------------------------------
    def _encoder_layers(self) -> list[torch.nn.Module]:
        auto = self.model.backbone[0].auto_model
        for path in ("encoder.layer", "layers", "transformer.layer", "encoder.layers"):
            module: Any = auto
            for part in path.split("."):
                module = getattr(module, part, None)
                if module is None:
                    break
            if isinstance(module, torch.nn.ModuleList):
                return list(module)
        raise InputError("Cannot find the backbone's encoder layers for gradual unfreezing or lr_decay.")

    def _frozen_heads(self) -> set[str]:
        return {name for name in self.config.freeze if name in self.model.heads}

    def _backbone_frozen(self) -> bool:
        return "all" in self.config.freeze or "backbone" in self.config.freeze

    def _apply_freezing(self, trainable_heads: Sequence[str]) -> None:
        unknown = [n for n in self.config.freeze if n not in ("all", "backbone", *self.model.heads)]
        if unknown:
            raise InputError(
                f"Cannot freeze {unknown[0]!r}: not 'backbone', 'all' or a head "
                f"({', '.join(self.model.heads)})."
            )
        if "all" in self.config.freeze:
            raise InputError("Everything is frozen ('all'): no weight would train. Remove 'all' from freeze.")
        for name, head in self.model.heads.items():
            head.requires_grad_(name in trainable_heads and name not in self._frozen_heads())
        self.model.backbone.requires_grad_(not self._backbone_frozen())
        if not any(p.requires_grad for p in self.model.parameters()):
            raise InputError("Nothing trains: the backbone and every head of the tasks are frozen.")

    def _unfrozen_layer_count(self, units_done: int) -> int | None:
        """How many encoder layers (from the top) train now under gradual unfreezing; None = all."""
        every = self.config.unfreeze_every
        if every is None or self._backbone_frozen():
            return None
        return self.config.unfreeze_layers * (1 + units_done // every)

    def _set_unfrozen(self, count: int | None) -> None:
        if count is None or self._backbone_frozen():
            return
        layers = self._encoder_layers()
        self.model.backbone.requires_grad_(False)
        for layer in layers[max(0, len(layers) - count) :]:
            layer.requires_grad_(True)
        if count > len(layers):  # everything above is open: the embeddings come last
            self.model.backbone.requires_grad_(True)

    def _optimizer(self) -> torch.optim.Optimizer:
        cfg = self.config
        groups: list[dict[str, Any]] = []

        def add(params: list[tuple[str, torch.nn.Parameter]], lr: float, label: str) -> None:
            decay = [
                p for n, p in params if not (n.endswith("bias") or "LayerNorm" in n or "layer_norm" in n)
            ]
            no_decay = [p for n, p in params if n.endswith("bias") or "LayerNorm" in n or "layer_norm" in n]
            if decay:
                groups.append({"params": decay, "lr": lr, "weight_decay": cfg.weight_decay, "name": label})
            if no_decay:
                groups.append(
                    {"params": no_decay, "lr": lr, "weight_decay": 0.0, "name": f"{label}.no_decay"}
                )

        for name, head in self.model.heads.items():
            # a head may ask for a larger step on some of its weights (the hybrid head's sparse part)
            scales: dict[str, float] = getattr(head, "learning_rate_scales", {})
            own = [(n, p) for n, p in head.named_parameters() if n.split(".")[0] not in scales]
            add(own, cfg.head_learning_rate, f"head.{name}")
            for prefix, scale in scales.items():
                scaled = [(n, p) for n, p in head.named_parameters() if n.split(".")[0] == prefix]
                add(scaled, cfg.head_learning_rate * scale, f"head.{name}.{prefix}")
        backbone = list(self.model.backbone.named_parameters())
        try:
            n_layers = len(self._encoder_layers())
        except InputError:
            n_layers = 0
        by_depth: dict[str, list] = {}
        for name, param in backbone:
            match = re.search(r"(?:^|\.)layers?\.(\d+)\.", name)
            if match:
                key = f"layer.{int(match.group(1))}"
            elif "embeddings" in name:
                key = "embeddings"
            else:
                key = "other"
            by_depth.setdefault(key, []).append((name, param))
        for key, params in by_depth.items():
            if key.startswith("layer."):
                depth = n_layers - 1 - int(key.split(".")[1])  # 0 for the top layer
            elif key == "embeddings":
                depth = n_layers
            else:
                depth = 0
            add(params, cfg.learning_rate * cfg.lr_decay**depth, f"backbone.{key}")
        return torch.optim.AdamW(groups, lr=cfg.learning_rate)

    @staticmethod
    def _schedule(
        optimizer: torch.optim.Optimizer, total: int, warmup: int
    ) -> torch.optim.lr_scheduler.LambdaLR:
        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / max(1, warmup)
            return max(0.0, (total - step) / max(1, total - warmup))

        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)

    # -- features, targets, cache -----------------------------------------------------------------
    def _targets(self, task: str, values: list) -> Tensor:
        head = self.model.heads[task]
        if head.level == "sentence":
            if getattr(head, "multi_label", False):
                matrix = torch.zeros(len(values), head.num_labels)
                for i, labels in enumerate(values):
                    matrix[i, head.encode_labels(labels if isinstance(labels, list) else [labels])] = 1.0
                return matrix
            return head.encode_labels(values)
        width = max(len(v) for v in values)
        ids = torch.full((len(values), width), -100, dtype=torch.long)
        for i, tags in enumerate(values):
            ids[i, : len(tags)] = head.encode_labels(tags)
        return ids

    def _head_inputs(self, items: list, tasks: list[str], grad: bool) -> tuple[dict[str, dict], Tensor]:
        with self._autocast():
            return self.model.head_inputs(items, tasks, grad=grad)

    def _build_cache(self, items: list, tasks: list[str]) -> dict[str, Any]:
        """Per example and task, what the head reads (computed once: the backbone is frozen)."""
        cache: dict[str, Any] = {task: {} for task in tasks}
        cache["_read"] = [None] * len(items)
        order = sorted(range(len(items)), key=lambda i: -self._n_words(items[i]))
        size = self.config.eval_batch_size
        for start in range(0, len(order), size):
            batch = order[start : start + size]
            inputs, read = self._head_inputs([items[i] for i in batch], tasks, grad=False)
            for row, index in enumerate(batch):
                n_words = self._n_words(items[index])
                cache["_read"][index] = read[row, :n_words].clone()
                for task in tasks:
                    for key, value in inputs[task].items():
                        pad = -1 if key.endswith("_ids") else 0
                        column = cache[task].setdefault(key, [None] * len(items))
                        if key.startswith("word_"):
                            piece = value[row, :n_words]
                        elif key.startswith("ragged_"):  # padded per batch: keep the row's own width
                            piece = value[row, : max(int((value[row] != pad).sum()), 1)]
                        else:
                            piece = value[row]
                        column[index] = piece.detach().cpu().clone()
        if self.config.cache_embeddings == "disk" or (
            self.config.cache_embeddings == "auto" and self._cache_bytes(cache) > 4 * 2**30
        ):
            cache = self._to_disk(cache)
        return cache

    @staticmethod
    def _columns(cache: dict[str, Any]) -> Iterator[tuple[str, list[Tensor]]]:
        for task, value in cache.items():
            if isinstance(value, dict):
                for key, column in value.items():
                    yield f"{task}.{key}", column
            else:
                yield task, value

    def _cache_bytes(self, cache: dict[str, Any]) -> int:
        return sum(t.numel() * t.element_size() for _, column in self._columns(cache) for t in column)

    def _to_disk(self, cache: dict[str, Any]) -> dict[str, Any]:
        """Move cached tensors into memory-mapped files (large data sets)."""
        import tempfile

        folder = Path(tempfile.mkdtemp(prefix="st_multitask-cache-", dir=self.output_dir))
        self._cache_dir = folder

        def spill(name: str, values: list[Tensor]) -> list[Tensor]:
            flat = torch.cat([v.reshape(-1) for v in values]).numpy()
            path = folder / f"{len(list(folder.iterdir()))}.npy"
            mm = np.lib.format.open_memmap(path, mode="w+", dtype=flat.dtype, shape=flat.shape)
            mm[:] = flat
            mm.flush()
            mm = np.load(path, mmap_mode="c")  # copy-on-write: tensors over it are writable
            views, offset = [], 0
            for v in values:
                views.append(torch.from_numpy(mm[offset : offset + v.numel()]).reshape(v.shape))
                offset += v.numel()
            return views

        return {
            task: {key: spill(f"{task}.{key}", column) for key, column in value.items()}
            if isinstance(value, dict)
            else spill(task, value)
            for task, value in cache.items()
        }

    @staticmethod
    def _n_words(item: str | list[str]) -> int:
        from .alignment import split_words

        return len(split_words(item)) if isinstance(item, str) else len(item)

    def _batch_from_cache(self, cache: dict[str, Any], indices: list[int], tasks: list[str]):
        inputs: dict[str, dict] = {}
        for task in tasks:
            inputs[task] = {}
            for key, column in cache[task].items():
                values = [column[i] for i in indices]
                if key.startswith(("word_", "ragged_")):
                    width = max(v.shape[0] for v in values)
                    pad = -1 if key.startswith("ragged_") and key.endswith("_ids") else 0
                    batch = values[0].new_full((len(values), width, *values[0].shape[1:]), pad)
                    for row, v in enumerate(values):
                        batch[row, : v.shape[0]] = v
                else:
                    batch = torch.stack(values)
                inputs[task][key] = batch.to(self.model.device)
        reads = [cache["_read"][i] for i in indices]
        width = max(r.shape[0] for r in reads)
        read = torch.zeros(len(reads), width, dtype=torch.bool)
        for row, r in enumerate(reads):
            read[row, : r.shape[0]] = r
        return inputs, read

    # -- one step ---------------------------------------------------------------------------------
    def _loss(self, stream: _Stream, indices: list[int], cache: dict | None) -> Tensor:
        items = [stream.items[i] for i in indices]
        if cache is not None:
            inputs, read = self._batch_from_cache(cache, indices, stream.tasks)
        else:
            inputs, read = self._head_inputs(items, stream.tasks, grad=self._backbone_trains())
        total = torch.zeros((), device=self.model.device)
        for task in stream.tasks:
            head = self.model.heads[task]
            if not any(p.requires_grad for p in head.parameters()) and not self._backbone_trains():
                continue
            targets = self._targets(task, [stream.targets[task][i] for i in indices]).to(self.model.device)
            with self._autocast():
                logits = head(inputs[task])
            if head.level == "token":
                width = logits.shape[1]
                targets = targets[:, :width]
                unread = ~read[:, :width].to(targets.device)
                targets = targets.masked_fill(unread[:, : targets.shape[1]], -100)
                if (targets != -100).sum() == 0:
                    continue
            loss = head.loss(logits.float(), targets)
            total = total + self.config.loss_weights.get(task, 1.0) * loss
        return total

    def _autocast(self):
        if self.config.mixed_precision == "no":
            import contextlib

            return contextlib.nullcontext()
        dtype = torch.float16 if self.config.mixed_precision == "fp16" else torch.bfloat16
        return torch.autocast("cuda", dtype=dtype)

    def _backbone_trains(self) -> bool:
        return any(p.requires_grad for p in self.model.backbone.parameters())

    def _sync_gradients(self) -> None:
        if self.world == 1:
            return
        import torch.distributed as dist

        for param in self.model.parameters():
            if not param.requires_grad:
                continue
            if param.grad is None:
                param.grad = torch.zeros_like(param)
            dist.all_reduce(param.grad, op=dist.ReduceOp.SUM)
            param.grad /= self.world

    # -- evaluation -------------------------------------------------------------------------------
    def evaluate(
        self, task: str, data: SentenceExamples | TokenExamples, cache: dict | None = None
    ) -> dict[str, Any]:
        """Metrics of one task on one split (from the embedding cache when there is one)."""
        batch_inputs = None
        if cache is not None:
            batch_inputs = lambda indices: self._batch_from_cache(cache, indices, [task])  # noqa: E731
        return evaluate_task(self.model, task, data, self.config.eval_batch_size, batch_inputs)

    def _score(self, metrics: dict[str, dict[str, Any]]) -> float:
        key = self.config.metric_for_best
        if key in (None, "mean"):
            return float(np.mean([m[_main_metric(self.model.heads[t].level)] for t, m in metrics.items()]))
        task, metric = key.split(".", 1)
        if task not in metrics or metric not in metrics[task]:
            raise InputError(
                f"metric_for_best {key!r}: no such metric; tasks with dev data: {', '.join(metrics)}."
            )
        return float(metrics[task][metric])

    # -- the loop ---------------------------------------------------------------------------------
    def fit(self, tasks: Sequence[TaskData]) -> TrainingResult:
        """Train; returns final metrics (dev split, or train when a task has no dev split)."""
        start_time = time.perf_counter()
        cfg = self.config
        self._check_tasks(tasks)
        self._data_sources = {
            t.name: {
                split: f"{getattr(data, 'source', '<data>')} ({len(data)})"
                for split, data in (("train", t.train), ("dev", t.dev), ("test", t.test))
                if data is not None
            }
            for t in tasks
        }
        self._prepare_output()
        by_name = {t.name: t for t in tasks}
        if cfg.strategy == "joint":
            stages = [[t.name for t in tasks]]
        else:
            stages = [[name] for name in (cfg.task_order or [t.name for t in tasks])]
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed)
        import random

        random.seed(cfg.seed)

        for task in tasks:  # heads with a text vocabulary (hybrid) fit it on their training texts
            head = self.model.heads[task.name]
            if getattr(head, "uses_text", False) and not getattr(head, "is_fitted", True):
                head.fit_features(task.train.texts)
                head.to(self.model.device)
        self._apply_freezing([t.name for t in tasks])
        if cfg.best_per_task and (
            cfg.strategy != "joint" or not self._backbone_frozen() or cfg.unfreeze_every is not None
        ):
            raise InputError(
                "best_per_task needs joint training with a frozen backbone (freeze: [backbone], no "
                "unfreezing): only then are the heads independent, so each can keep its own best epoch."
            )
        self._task_best: dict[str, dict[str, Tensor]] = {}
        self._task_best_metrics: dict[str, dict[str, Any]] = {}
        cached = self._backbone_frozen() and cfg.cache_embeddings != "off"
        self.model.backbone.train(not self._backbone_frozen())
        for head in self.model.heads.values():
            head.train(True)

        # the whole plan: per stage, the streams and the number of micro-batches per epoch
        plan = []
        for stage_tasks in stages:
            streams = self._streams([by_name[n] for n in stage_tasks])
            per_epoch = sum(math.ceil(len(s) / cfg.batch_size) for s in streams)
            plan.append((stage_tasks, streams, per_epoch))
        stage_steps = [math.ceil(p[2] * cfg.epochs / cfg.gradient_accumulation_steps) for p in plan]
        total_steps = sum(stage_steps)
        optimizer = self._optimizer()

        def schedule_for(stage: int | None) -> torch.optim.lr_scheduler.LambdaLR:
            """Joint: one warmup + decay over the run. Sequential: each stage gets its own."""
            steps = total_steps if stage is None else stage_steps[stage]
            return self._schedule(optimizer, steps, int(cfg.warmup_ratio * steps))

        sequential = cfg.strategy == "sequential"
        scheduler = schedule_for(0 if sequential else None)
        scaler = torch.amp.GradScaler("cuda", enabled=cfg.mixed_precision == "fp16")

        caches: dict[tuple[str, str], dict] = {}

        def cache_for(stream_or_task: str, items: list, task_names: list[str], split: str) -> dict | None:
            if not cached:
                return None
            key = (stream_or_task, split)
            if key not in caches:
                caches[key] = self._build_cache(items, task_names)
            return caches[key]

        # resume
        state: dict[str, Any] = {
            "stage": 0,
            "epoch": 0,
            "micro": 0,
            "step": 0,
            "positions": {},
            "sampler": None,
            "best": None,
            "bad_epochs": 0,
            "stopped": False,
            "forgetting": {},
        }
        if self.resume:
            path = latest_checkpoint(self.output_dir / "checkpoints")
            weights, saved, rng = load_checkpoint(path)
            missing = self.model.load_state_dict(weights, strict=False)
            if missing.unexpected_keys:
                raise InputError(
                    f"Checkpoint {path} does not match this model: {missing.unexpected_keys[:3]}..."
                )
            if sequential:  # the schedule of the stage the checkpoint is in
                scheduler = schedule_for(min(saved["loop"]["stage"], len(plan) - 1))
            optimizer.load_state_dict(saved["optimizer"])
            scheduler.load_state_dict(saved["scheduler"])
            self.history = saved["history"]
            state = saved["loop"]
            set_rng_state(saved["rng"], rng)
            self._load_best()
            logger.info("Resumed from %s (step %d).", path, state["step"])

        metrics_file = (
            self.output_dir / "metrics.jsonl" if self.output_dir is not None and self.rank == 0 else None
        )
        from tqdm.auto import tqdm

        bar = tqdm(
            total=total_steps,
            initial=state["step"],
            disable=not self.progress or self.rank != 0,
            unit="step",
            desc="training",
        )
        final_metrics: dict[str, dict[str, Any]] = {}
        for stage_index in range(state["stage"], len(plan)):
            stage_tasks, streams, per_epoch = plan[stage_index]
            if sequential and stage_index > 0 and state["epoch"] == 0 and state["micro"] == 0:
                scheduler = schedule_for(stage_index)  # a fresh warmup and decay for each stage
            self._apply_freezing(stage_tasks if cfg.strategy == "sequential" else [t.name for t in tasks])
            if cfg.strategy == "sequential" and not cfg.freeze_finished_heads:
                for done in stages[:stage_index]:
                    for name in done:
                        if name not in self._frozen_heads():
                            self.model.heads[name].requires_grad_(True)
            sampler = TaskSampler(
                {s.name: len(s) for s in streams},
                cfg.sampling,
                cfg.temperature,
                seed=cfg.seed + 1000 * stage_index,
            )
            if state["sampler"] is not None:
                sampler.load_state_dict(state["sampler"])
            stream_by_name = {s.name: s for s in streams}
            for epoch in range(state["epoch"], cfg.epochs):
                if state["stopped"]:
                    break
                units = epoch if cfg.unfreeze_unit == "epoch" else state["step"]
                self._set_unfrozen(self._unfrozen_layer_count(units))
                running, count = 0.0, 0
                epoch_start = time.perf_counter()
                while state["micro"] < per_epoch:
                    name = next(sampler)
                    stream = stream_by_name[name]
                    indices = self._next_indices(stream, state["positions"], epoch, stage_index)
                    mine = indices[self.rank :: self.world]
                    cache = cache_for(stream.name, stream.items, stream.tasks, "train")
                    loss = self._loss(stream, mine, cache) if mine else torch.zeros((), requires_grad=False)
                    if loss.requires_grad:
                        scaler.scale(loss / cfg.gradient_accumulation_steps).backward()
                    running += float(loss.detach())
                    count += 1
                    state["micro"] += 1
                    boundary = (
                        state["micro"] % cfg.gradient_accumulation_steps == 0 or state["micro"] == per_epoch
                    )
                    if not boundary:
                        continue
                    self._sync_gradients()
                    scaler.unscale_(optimizer)
                    if cfg.max_grad_norm is not None:
                        torch.nn.utils.clip_grad_norm_(
                            [p for p in self.model.parameters() if p.requires_grad], cfg.max_grad_norm
                        )
                    scaler.step(optimizer)
                    scaler.update()
                    scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                    state["step"] += 1
                    bar.update(1)
                    bar.set_postfix(loss=f"{running / max(count, 1):.4f}")
                    if cfg.unfreeze_unit == "step":
                        self._set_unfrozen(self._unfrozen_layer_count(state["step"]))
                    if cfg.checkpoint_every and state["step"] % cfg.checkpoint_every == 0:
                        state["sampler"] = sampler.state_dict()
                        self._checkpoint(optimizer, scheduler, state)
                # end of epoch: evaluate every task seen so far
                train_seconds = time.perf_counter() - epoch_start
                seen = [n for st in stages[: stage_index + 1] for n in st]
                epoch_metrics = {}
                for name in seen:
                    task = by_name[name]
                    split = task.dev if task.dev is not None else task.train
                    split_name = "dev" if task.dev is not None else "train"
                    items = split.texts if isinstance(split, SentenceExamples) else split.words
                    cache = (
                        cache_for(name, items, [name], split_name)
                        if split_name == "dev"
                        else (cache_for(name, items, [name], "train-eval"))
                    )
                    epoch_metrics[name] = self.evaluate(name, split, cache)
                record = {
                    "stage": stage_index,
                    "epoch": epoch + 1,
                    "step": state["step"],
                    "train_loss": round(running / max(count, 1), 6),
                    "train_seconds": round(train_seconds, 3),
                    "metrics": {
                        t: {k: v for k, v in m.items() if not isinstance(v, (dict, list))}
                        for t, m in epoch_metrics.items()
                    },
                }
                self.history.append(record)
                if metrics_file is not None:
                    with metrics_file.open("a", encoding="utf-8") as f:
                        f.write(json.dumps(record) + "\n")
                final_metrics = epoch_metrics
                if cfg.best_per_task:
                    self._update_task_best(epoch_metrics)
                score = self._score({t: m for t, m in epoch_metrics.items() if t in stage_tasks})
                if state["best"] is None or score > state["best"]:
                    state["best"], state["bad_epochs"] = score, 0
                    self._best_weights = {
                        k: v.detach().cpu().clone() for k, v in self._trainable_state().items()
                    }
                    self._best_metrics = epoch_metrics
                    self._save_best()
                else:
                    state["bad_epochs"] += 1
                    if cfg.early_stopping_patience and state["bad_epochs"] >= cfg.early_stopping_patience:
                        state["stopped"] = True
                state["micro"] = 0
                state["positions"] = {}
                state["epoch"] = epoch + 1
                state["sampler"] = sampler.state_dict()
                if self.output_dir is not None:
                    self._checkpoint(optimizer, scheduler, state)
            # end of stage
            if cfg.strategy == "sequential":
                main = {n: _main_metric(self.model.heads[n].level) for n in by_name}
                state["forgetting"][stage_tasks[0]] = {t: m[main[t]] for t, m in final_metrics.items()}
            state.update(
                {
                    "stage": stage_index + 1,
                    "epoch": 0,
                    "micro": 0,
                    "positions": {},
                    "sampler": None,
                    "stopped": False,
                    "best": None,
                    "bad_epochs": 0,
                }
            )
        bar.close()
        if (
            cfg.early_stopping_patience
            and getattr(self, "_best_weights", None) is not None
            and cfg.strategy == "joint"
        ):
            self.model.load_state_dict(self._best_weights, strict=False)
            final_metrics = self._best_metrics
        if cfg.best_per_task and self._task_best:
            for name, weights in self._task_best.items():
                self.model.heads[name].load_state_dict(weights)
            final_metrics = {**final_metrics, **self._task_best_metrics}
        for name in by_name:
            self.model.heads[name].mark_trained()
        self.model.eval()
        if cfg.calibrate:
            final_metrics = self._calibrate(tasks, final_metrics)
        self._cleanup_cache()
        result = TrainingResult(
            metrics=final_metrics,
            history=self.history,
            forgetting=state["forgetting"] or None,
            steps=state["step"],
            seconds=time.perf_counter() - start_time,
        )
        if self.output_dir is not None and self.rank == 0:
            self._save_final(result)
        if self.world > 1:
            self.state.wait_for_everyone()
        return result

    def _calibrate(
        self, tasks: Sequence[TaskData], metrics: dict[str, dict[str, Any]]
    ) -> dict[str, dict[str, Any]]:
        """Fit the temperature of every single-label sentence head that has dev data; the
        temperature and the dev ECE after it join that task's metrics."""
        dev = {
            t.name: t.dev
            for t in tasks
            if t.dev is not None
            and self.model.heads[t.name].level == "sentence"
            and not getattr(self.model.heads[t.name], "multi_label", False)
            and hasattr(self.model.heads[t.name], "temperature")
        }
        if not dev:
            return metrics
        report = self.model.calibrate(dev, self.config.eval_batch_size)
        return {
            name: {
                **m,
                **(
                    {"temperature": report[name]["temperature"], "ece": report[name]["ece_after"]}
                    if name in report
                    else {}
                ),
            }
            for name, m in metrics.items()
        }

    def _next_indices(self, stream: _Stream, positions: dict, epoch: int, stage: int) -> list[int]:
        """The next batch of a stream: a fresh permutation each pass, seeded by (seed, stage, epoch, pass)."""
        cycle, pos = positions.get(stream.name, (0, 0))
        if pos >= len(stream):
            cycle, pos = cycle + 1, 0
        rng = np.random.default_rng([self.config.seed, stage, epoch, cycle, len(stream)])
        order = rng.permutation(len(stream))
        batch = order[pos : pos + self.config.batch_size].tolist()
        positions[stream.name] = (cycle, pos + len(batch))
        return batch

    def _trainable_state(self) -> dict[str, Tensor]:
        """Weights worth checkpointing: the heads always, the backbone only when it can train."""
        keep_backbone = not self._backbone_frozen()
        return {
            k: v for k, v in self.model.state_dict().items() if keep_backbone or not k.startswith("backbone.")
        }

    def _checkpoint(self, optimizer, scheduler, state: dict) -> None:
        if self.output_dir is None or self.rank != 0:
            return
        saved = {
            "loop": json.loads(json.dumps(state)),
            "history": self.history,
            "scheduler": scheduler.state_dict(),
            "config": self.config.to_dict(),
        }
        save_checkpoint(
            self.output_dir / "checkpoints",
            state["step"],
            self._trainable_state(),
            optimizer,
            saved,
            keep=self.config.keep_checkpoints,
        )

    def _save_best(self) -> None:
        """Keep the best weights beside the checkpoints, so a resumed run still ends on them."""
        self._write_beside_checkpoints(
            "best.safetensors", "best-metrics.json", self._best_weights, self._best_metrics
        )

    def _write_beside_checkpoints(
        self, weights_name: str, metrics_name: str, weights: dict[str, Tensor], metrics: Any
    ) -> None:
        """Atomically write ``weights`` (safetensors) and ``metrics`` (JSON) into checkpoints/."""
        if self.output_dir is None or self.rank != 0:
            return
        from safetensors.torch import save_file

        folder = self.output_dir / "checkpoints"
        folder.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in weights.items()}, str(folder / f".{weights_name}.tmp"))
        (folder / f".{metrics_name}.tmp").write_text(json.dumps(metrics))
        os.replace(folder / f".{weights_name}.tmp", folder / weights_name)
        os.replace(folder / f".{metrics_name}.tmp", folder / metrics_name)

    def _load_best(self) -> None:
        from safetensors.torch import load_file

        folder = self.output_dir / "checkpoints"
        if (folder / "best.safetensors").is_file() and (folder / "best-metrics.json").is_file():
            self._best_weights = load_file(str(folder / "best.safetensors"))
            self._best_metrics = json.loads((folder / "best-metrics.json").read_text())
        if (folder / "best-heads.safetensors").is_file() and (folder / "best-heads.json").is_file():
            flat = load_file(str(folder / "best-heads.safetensors"))
            self._task_best_metrics = json.loads((folder / "best-heads.json").read_text())
            self._task_best = {
                name: {k.split("::", 1)[1]: v for k, v in flat.items() if k.split("::", 1)[0] == name}
                for name in self._task_best_metrics
            }

    def _update_task_best(self, epoch_metrics: dict[str, dict[str, Any]]) -> None:
        """best_per_task: keep each head's weights from the epoch of its best main dev metric."""
        changed = False
        for name, metrics in epoch_metrics.items():
            main = _main_metric(self.model.heads[name].level)
            previous = self._task_best_metrics.get(name)
            if previous is None or metrics[main] > previous[main]:
                self._task_best[name] = {
                    k: v.detach().cpu().clone() for k, v in self.model.heads[name].state_dict().items()
                }
                self._task_best_metrics[name] = metrics
                changed = True
        if changed:
            flat = {f"{name}::{k}": v for name, w in self._task_best.items() for k, v in w.items()}
            self._write_beside_checkpoints(
                "best-heads.safetensors", "best-heads.json", flat, self._task_best_metrics
            )

    def _cleanup_cache(self) -> None:
        folder = getattr(self, "_cache_dir", None)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)

    def _save_final(self, result: TrainingResult) -> None:
        """The trained model into output_dir, beside checkpoints/ and metrics.jsonl."""
        out = self.output_dir
        tmp = out / ".final.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        backbone = "reference" if self._backbone_frozen() and self.model._is_packaged_default() else "copy"
        record = {  # the model writes these into its manifest and model card
            "metrics": {
                t: {k: v for k, v in m.items() if isinstance(v, (int, float))}
                for t, m in result.metrics.items()
            },
            "training": {
                "config": self.config.to_dict(),
                "steps": result.steps,
                "seconds": round(result.seconds, 1),
                "data": self._data_sources,
            },
        }
        self.model._manifest = {**getattr(self.model, "_manifest", {}), **record}
        self.model.save(tmp, backbone=backbone)
        (tmp / "training_result.json").write_text(
            json.dumps(
                {"metrics": result.metrics, "forgetting": result.forgetting, "steps": result.steps}, indent=2
            )
            + "\n"
        )
        for entry in sorted(tmp.iterdir(), key=lambda p: p.name == "st_multitask.json"):  # manifest last
            target = out / entry.name
            if target.is_dir():
                shutil.rmtree(target)
            os.replace(entry, target)
        tmp.rmdir()
