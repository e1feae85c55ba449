"""What a run will do, worked out before it starts: the tasks checked against the model, the
stages (one for joint training, one per task for sequential), each stage's streams (tasks that
share their training rows train from one pass), the steps, and the order of the batches."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..data import SentenceExamples, TokenExamples, check_labels_known
from ..errors import InputError
from ..model import MultiTaskModel
from .config import TaskData, TrainingConfig

__all__ = [
    "Plan",
    "Stage",
    "Stream",
    "check_tasks",
    "data_sources",
    "make_plan",
    "next_batch",
    "streams_of",
]


class Stream:
    """Examples that share texts and train one or more tasks from one pass."""

    def __init__(self, tasks: list[str], items: list, targets: dict[str, list]):
        self.tasks = tasks
        self.items = items  # str or list of words
        self.targets = targets  # task -> per-example target
        self.name = "+".join(tasks)
        self._order: tuple[Any, np.ndarray] = (None, np.zeros(0, dtype=np.int64))  # the pass's batch order
        self._lengths: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.items)

    def lengths(self) -> np.ndarray:
        """Each example's length (characters of a text, words of a word list), for grouping."""
        if self._lengths is None:
            self._lengths = np.array([len(item) for item in self.items], dtype=np.int64)
        return self._lengths


def _grouped(order: np.ndarray, lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> np.ndarray:
    """``order`` cut into chunks of 50 batches, each sorted by length (so a batch pads little),
    then the batches shuffled: HF Trainer's ``group_by_length``, seeded as the order is."""
    chunk = 50 * batch_size
    grouped = [
        part[np.argsort(-lengths[part], kind="stable")]
        for part in np.split(order, range(chunk, len(order), chunk))
    ]
    flat = np.concatenate(grouped) if grouped else order
    batches = [flat[i : i + batch_size] for i in range(0, len(flat), batch_size)]
    return np.concatenate([batches[i] for i in rng.permutation(len(batches))]) if batches else flat


@dataclass
class Stage:
    tasks: list[str]  # the tasks this stage trains
    streams: list[Stream]
    micro_batches: int  # per epoch
    steps: int  # optimizer steps over all its epochs


@dataclass
class Plan:
    stages: list[Stage]

    @property
    def total_steps(self) -> int:
        return sum(stage.steps for stage in self.stages)


def check_tasks(model: MultiTaskModel, tasks: Sequence[TaskData], config: TrainingConfig) -> None:
    """Each task has a head, data of that head's level, no empty split and only known labels."""
    if not tasks:
        raise InputError("No tasks to train.")
    names = [t.name for t in tasks]
    if len(set(names)) != len(names):
        raise InputError(f"Task names must be unique: {names}.")
    for task in tasks:
        head = model.heads.get(task.name)
        if head is None:
            raise InputError(f"Task {task.name!r} has no head; heads: {', '.join(model.heads) or 'none'}.")
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
    unknown = [t for t in config.loss_weights if t not in names]
    if unknown:
        raise InputError(f"loss_weights names unknown task {unknown[0]!r}. Tasks: {', '.join(names)}.")
    if isinstance(config.average_epochs, dict):
        unknown = [t for t in config.average_epochs if t not in names]
        if unknown:
            raise InputError(f"average_epochs names unknown task {unknown[0]!r}. Tasks: {', '.join(names)}.")
    order = config.task_order
    if order is not None and sorted(order) != sorted(names):
        raise InputError(f"task_order {order} must list each task once: {', '.join(names)}.")


def data_sources(tasks: Sequence[TaskData]) -> dict[str, dict[str, str]]:
    """Task -> split -> "source (size)": what the model card says it was trained on."""
    return {
        t.name: {
            split: f"{getattr(data, 'source', '<data>')} ({len(data)})"
            for split, data in (("train", t.train), ("dev", t.dev), ("test", t.test))
            if data is not None
        }
        for t in tasks
    }


def streams_of(model: MultiTaskModel, tasks: Sequence[TaskData]) -> list[Stream]:
    """Group sentence tasks whose training texts are the same rows into one stream."""
    streams: list[Stream] = []
    for task in tasks:
        head = model.heads[task.name]
        data = task.train
        items = data.texts if isinstance(data, SentenceExamples) else data.words
        targets = data.labels if isinstance(data, SentenceExamples) else data.tags
        for stream in streams:
            if (
                head.level == "sentence"
                and stream.items == items
                and all(model.heads[t].level == "sentence" for t in stream.tasks)
            ):
                stream.tasks.append(task.name)
                stream.targets[task.name] = targets
                stream.name = "+".join(stream.tasks)
                break
        else:
            streams.append(Stream([task.name], list(items), {task.name: list(targets)}))
    return streams


def make_plan(model: MultiTaskModel, tasks: Sequence[TaskData], config: TrainingConfig) -> Plan:
    """Joint: one stage of every task. Sequential: one stage per task, in ``task_order``."""
    by_name = {t.name: t for t in tasks}
    if config.strategy == "joint":
        stage_names = [[t.name for t in tasks]]
    else:
        stage_names = [[name] for name in (config.task_order or [t.name for t in tasks])]
    stages = []
    for names in stage_names:
        streams = streams_of(model, [by_name[n] for n in names])
        micro = sum(math.ceil(len(s) / config.batch_size) for s in streams)
        steps = math.ceil(micro * config.epochs / config.gradient_accumulation_steps)
        stages.append(Stage(names, streams, micro, steps))
    return Plan(stages)


def next_batch(stream: Stream, positions: dict, config: TrainingConfig, epoch: int, stage: int) -> list[int]:
    """The next batch of a stream: a fresh permutation each pass, seeded by (seed, stage, epoch,
    pass), so a resumed run reads the same batches. ``positions`` (stream -> (pass, position))
    is updated in place."""
    cycle, pos = positions.get(stream.name, (0, 0))
    if pos >= len(stream):
        cycle, pos = cycle + 1, 0
    key = (
        stream.name,
        len(stream),
        config.seed,
        stage,
        epoch,
        cycle,
        config.batch_size,
        config.group_by_length,
    )
    if stream._order[0] != key:  # one order a pass, kept for its batches
        rng = np.random.default_rng([config.seed, stage, epoch, cycle, len(stream)])
        order = rng.permutation(len(stream))
        if config.group_by_length:
            order = _grouped(order, stream.lengths(), config.batch_size, rng)
        stream._order = (key, order)
    batch = stream._order[1][pos : pos + config.batch_size].tolist()
    positions[stream.name] = (cycle, pos + len(batch))
    return batch
