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

from ..errors import InputError
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
    (and ``progress``, off by default). ``branch={"layers": K, "share": "all" | "task"}`` first puts
    the tasks' heads that read the backbone on task branches (one shared, or one per task), as a
    recipe's ``model.branch`` does.

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
    branch = settings.pop("branch", None)
    if branch is not None:
        _add_branches(model, [task.name for task in tasks], branch)
    config = TrainingConfig.from_dict(settings)
    return Trainer(model, config, output_dir=output_dir, progress=progress).fit(tasks)


def _add_branches(model: MultiTaskModel, tasks: list[str], branch: Any) -> None:
    """Put the heads of ``tasks`` that read the backbone on new task branches."""
    if not isinstance(branch, dict) or not set(branch) <= {"layers", "share"}:
        raise InputError(
            f"branch takes layers and share (all or task), e.g. {{'layers': 2}}; got {branch!r}."
        )
    share = branch.get("share", "all")
    if share not in ("all", "task"):
        raise InputError(f"branch share must be 'all' or 'task', not {share!r}.")
    free = [t for t in tasks if t in model.heads and t not in model.branch_of]
    for task in free:
        name = "shared" if share == "all" else task
        if name not in model.branches:
            model.add_branch(name, branch.get("layers", 2))
        model.branch_of[task] = name
