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

One job a module: ``config`` (settings, tasks, result), ``plan`` (stages, streams, batch order),
``sampling`` (which task next), ``optim`` (freezing, parameter groups, schedule), ``cache`` (the
frozen-backbone embedding cache), ``callbacks`` (metrics log, best weights, early stopping,
calibration, final save), ``checkpointing`` (save and resume), ``trainer`` (the loop).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from ..model import MultiTaskModel
from .config import STRATEGIES, TaskData, TrainingConfig, TrainingResult, load_config_file
from .sampling import SAMPLINGS, TaskSampler
from .trainer import Trainer

__all__ = [
    "SAMPLINGS",
    "STRATEGIES",
    "TaskData",
    "TaskSampler",
    "Trainer",
    "TrainingConfig",
    "TrainingResult",
    "fit",
    "load_config_file",
]


def fit(
    model: MultiTaskModel,
    tasks: Sequence[TaskData] | dict[str, Any],
    output_dir: str | os.PathLike[str] | None = None,
    **settings: Any,
) -> TrainingResult:
    """Train ``model`` in one call: ``tasks`` is a list of :class:`TaskData` or a dict
    ``{name: train}`` / ``{name: (train, dev)}``; ``settings`` are :class:`TrainingConfig` fields
    (and ``progress``, off by default).

    >>> from st_multitask import MultiTaskModel, fit
    >>> from st_multitask.data import SentenceExamples
    >>> from st_multitask.heads import MLPHead
    >>> model = MultiTaskModel().add_head("mood", MLPHead(384, ["happy", "sad"], hidden=[]))
    >>> data = SentenceExamples(["What a lovely day!", "I lost my keys."] * 8, ["happy", "sad"] * 8)
    >>> result = fit(model, {"mood": (data, data)}, epochs=3, freeze=["backbone"], head_learning_rate=0.05)
    >>> model.predict(["Such a lovely day!"])[0]["mood"]["label"]
    'happy'
    """
    if isinstance(tasks, dict):
        tasks = [
            TaskData(name, *(value if isinstance(value, tuple) else (value,)))
            for name, value in tasks.items()
        ]
    progress = settings.pop("progress", False)
    config = TrainingConfig.from_dict(settings)
    return Trainer(model, config, output_dir=output_dir, progress=progress).fit(tasks)
