"""What a training run is told: the settings (TrainingConfig, validated on creation), the tasks
(TaskData) and what it returns (TrainingResult); load_config_file reads YAML or JSON."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..data import SentenceExamples, TokenExamples
from ..errors import InputError
from .sampling import SAMPLINGS, Sampling

logger = logging.getLogger(__name__)

__all__ = [
    "CACHE_MODES",
    "MIXED_PRECISIONS",
    "RENAMED_SETTINGS",
    "STRATEGIES",
    "UNITS",
    "TaskData",
    "TrainingConfig",
    "TrainingResult",
    "load_config_file",
]

STRATEGIES = ("joint", "sequential")
CACHE_MODES = ("auto", "memory", "disk", "off")
MIXED_PRECISIONS = ("no", "fp16", "bf16")
# old name -> new name: "temperature" was the sampling temperature, now apart from the heads'
# calibration temperature
RENAMED_SETTINGS = {"temperature": "sampling_temperature"}
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
    group_by_length: bool = False  # batches of texts of similar length (less padding), in random order
    sampling: Sampling = "proportional"  # joint: proportional, round_robin, uniform, temperature
    sampling_temperature: float = 2.0  # for sampling="temperature": p ∝ n^(1/T)
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
    # frozen backbone, joint: a head ends on the mean of its weights at the end of its last N epochs
    # (checkpoint averaging); an int for every task, or {task: N} for some (they skip best_per_task)
    average_epochs: int | dict[str, int] | None = None
    metric_for_best: str | None = None  # "task.metric" (e.g. "ner.f1") or "mean"; default mean
    checkpoint_every: int | None = None  # optimizer steps between checkpoints (plus every epoch)
    keep_checkpoints: int = 2
    cache_embeddings: Literal["auto", "memory", "disk", "off"] = "auto"  # frozen-backbone fast path
    # keep those cached head inputs in this folder across runs (seeds, variants), named by a hash of
    # the backbone, the heads' input settings and the texts; None keeps them for this run only
    cache_dir: str | None = None
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
        choice("mixed_precision", MIXED_PRECISIONS)
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
        for name in ("learning_rate", "head_learning_rate", "sampling_temperature"):
            positive(name, integer=False)
        positive("max_grad_norm", allow_none=True, integer=False)
        for name in ("best_per_task", "freeze_finished_heads", "calibrate", "group_by_length"):
            if not isinstance(getattr(self, name), bool):
                raise InputError(f"{name} must be true or false, got {getattr(self, name)!r}.")
        if self.cache_dir is not None and not isinstance(self.cache_dir, str):
            raise InputError(f"cache_dir must be a folder path, got {self.cache_dir!r}.")
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
        self._check_average_epochs()

    def _check_average_epochs(self) -> None:
        value = self.average_epochs
        if value is None:
            return
        counts = value.values() if isinstance(value, dict) else [value]
        for n in counts:
            if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= self.epochs:
                raise InputError(
                    f"average_epochs must be an epoch count from 1 to epochs ({self.epochs}), or a "
                    f"mapping of task names to such counts; got {value!r}."
                )
        if self.early_stopping_patience is not None:
            raise InputError(
                "average_epochs averages the last epochs of a run, which early stopping may never "
                "reach; drop early_stopping_patience or average_epochs."
            )

    def averaged_tasks(self, tasks: Sequence[str]) -> dict[str, int]:
        """Task -> the number of final epochs its head averages (``average_epochs``)."""
        value = self.average_epochs
        if value is None:
            return {}
        if isinstance(value, dict):
            return {t: n for t, n in value.items() if t in tasks}
        return dict.fromkeys(tasks, value)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainingConfig:
        """Build from a dict; an unknown key names the valid ones. A key that was renamed (in a
        recipe, a saved model or a checkpoint written before) is read under its new name, with a
        warning that names it.

        >>> TrainingConfig.from_dict({"sampling": "temperature", "sampling_temperature": 3.0}).sampling_temperature
        3.0
        """
        values = dict(values)
        for old, new in RENAMED_SETTINGS.items():
            if old in values and new not in values:
                logger.warning("Training setting %r is now called %r; reading it as that.", old, new)
                values[new] = values.pop(old)
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
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path} is not valid UTF-8 (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); "
            "save the recipe as UTF-8."
        ) from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read it ({exc.strerror}).") from None
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
