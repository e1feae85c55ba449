"""What happens around the loop, at the end of each epoch and of the run: the metrics log
(``metrics.jsonl``), the best weights and early stopping, each head's best epoch
(``best_per_task``) or the mean of its last epochs (``average_epochs``), temperature calibration,
and the final save into the output directory."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..errors import InputError
from ..evaluation import main_metric
from ..model import MultiTaskModel
from .checkpointing import read_beside, write_beside
from .config import TaskData, TrainingConfig, TrainingResult

__all__ = ["BestWeights", "HeadAverage", "MetricsLog", "TaskBest", "calibrate", "save_final"]


def _numbers(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float))}


def _cpu_copy(state: dict[str, Tensor]) -> dict[str, Tensor]:
    return {k: v.detach().cpu().clone() for k, v in state.items()}


class MetricsLog:
    """The history of epoch records, appended to ``metrics.jsonl`` when there is an output folder."""

    def __init__(self, path: Path | None, history: list[dict[str, Any]] | None = None):
        self.path = path
        self.history = history if history is not None else []

    def add(self, record: dict[str, Any]) -> None:
        self.history.append(record)
        if self.path is not None:
            with self.path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")


class BestWeights:
    """The epoch with the best score (``metric_for_best``): its weights, kept beside the
    checkpoints, and early stopping after ``early_stopping_patience`` epochs without a better one."""

    def __init__(
        self, model: MultiTaskModel, config: TrainingConfig, folder: Path | None, resume: bool = False
    ):
        self.model = model
        self.config = config
        self.folder = folder  # checkpoints/, or None (no output folder, or not the main process)
        self.weights: dict[str, Tensor] | None = None
        self.metrics: dict[str, dict[str, Any]] = {}
        if resume and folder is not None and (saved := read_beside(folder, "best")) is not None:
            self.weights, self.metrics = saved

    def score(self, metrics: dict[str, dict[str, Any]]) -> float:
        key = self.config.metric_for_best
        if key in (None, "mean"):
            return float(np.mean([m[main_metric(self.model.heads[t])] for t, m in metrics.items()]))
        task, metric = key.split(".", 1)
        if task not in metrics or metric not in metrics[task]:
            raise InputError(
                f"metric_for_best {key!r}: no such metric; tasks with dev data: {', '.join(metrics)}."
            )
        return float(metrics[task][metric])

    def update(
        self, state: dict[str, Any], scored: dict[str, dict], metrics: dict, weights: dict[str, Tensor]
    ) -> None:
        """After an epoch: keep ``weights`` if ``scored`` beats the best so far, else count a bad
        epoch and stop once patience runs out (``state`` holds best, bad_epochs, stopped)."""
        score = self.score(scored)
        if state["best"] is None or score > state["best"]:
            state["best"], state["bad_epochs"] = score, 0
            self.weights, self.metrics = _cpu_copy(weights), metrics
            if self.folder is not None:
                write_beside(self.folder, "best", self.weights, self.metrics)
            return
        state["bad_epochs"] += 1
        patience = self.config.early_stopping_patience
        if patience and state["bad_epochs"] >= patience:
            state["stopped"] = True

    def restore(self, metrics: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """With early stopping in joint training, end on the best epoch's weights and metrics."""
        cfg = self.config
        if not cfg.early_stopping_patience or self.weights is None or cfg.strategy != "joint":
            return metrics
        self.model.load_state_dict(self.weights, strict=False)
        return self.metrics


class TaskBest:
    """``best_per_task``: each head keeps its weights from the epoch of its best main dev metric."""

    def __init__(self, model: MultiTaskModel, folder: Path | None, resume: bool = False):
        self.model = model
        self.folder = folder
        self.weights: dict[str, dict[str, Tensor]] = {}
        self.metrics: dict[str, dict[str, Any]] = {}
        if resume and folder is not None and (saved := read_beside(folder, "best-heads")) is not None:
            flat, self.metrics = saved
            self.weights = {
                name: {k.split("::", 1)[1]: v for k, v in flat.items() if k.split("::", 1)[0] == name}
                for name in self.metrics
            }

    def update(self, epoch_metrics: dict[str, dict[str, Any]]) -> None:
        changed = False
        for name, metrics in epoch_metrics.items():
            main = main_metric(self.model.heads[name])
            previous = self.metrics.get(name)
            if previous is None or metrics[main] > previous[main]:
                self.weights[name] = _cpu_copy(self.model.heads[name].state_dict())
                self.metrics[name] = metrics
                changed = True
        if changed and self.folder is not None:
            flat = {f"{name}::{k}": v for name, w in self.weights.items() for k, v in w.items()}
            write_beside(self.folder, "best-heads", flat, self.metrics)

    def restore(self, metrics: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for name, weights in self.weights.items():
            self.model.heads[name].load_state_dict(weights)
        return {**metrics, **self.metrics}


class HeadAverage:
    """``average_epochs``: a head ends on the mean of its weights at the end of its last N epochs
    (checkpoint averaging: one point in the middle of where the decaying learning rate left the
    head, rather than the epoch that a noisy dev set happened to score highest).

    Each epoch's weights are kept by epoch number beside the checkpoints, so a resumed run that
    ends an epoch again replaces that epoch's snapshot rather than counting it twice, and the mean
    is summed in epoch order: the same bits as the uninterrupted run. Buffers that are not floating
    point (vocabulary sizes, counters) are taken from the last epoch.
    """

    def __init__(
        self,
        model: MultiTaskModel,
        counts: dict[str, int],
        epochs: int,
        folder: Path | None,
        resume_from: Path | None = None,
    ):
        self.model = model
        self.counts = counts  # task -> how many final epochs to average
        self.epochs = epochs
        self.folder = folder  # where to write (the main process only)
        self.snapshots: dict[str, dict[int, dict[str, Tensor]]] = {name: {} for name in counts}
        # every process reads them back on resume, so all end on the same weights
        if resume_from is not None and (saved := read_beside(resume_from, "average-heads")) is not None:
            flat, _ = saved
            for key, value in flat.items():
                name, epoch, param = key.split("::", 2)
                if self._in_window(name, int(epoch)):  # a resumed run may average fewer epochs
                    self.snapshots[name].setdefault(int(epoch), {})[param] = value

    def _in_window(self, name: str, epoch: int) -> bool:
        return name in self.counts and self.epochs - self.counts[name] <= epoch < self.epochs

    def update(self, epoch: int) -> None:
        """After epoch ``epoch`` (0-based): snapshot each head whose averaging window it is in."""
        changed = False
        for name in self.counts:
            if self._in_window(name, epoch):
                self.snapshots[name][epoch] = _cpu_copy(self.model.heads[name].state_dict())
                changed = True
        if changed and self.folder is not None:
            flat = {
                f"{name}::{epoch}::{k}": v
                for name, by_epoch in self.snapshots.items()
                for epoch, weights in by_epoch.items()
                for k, v in weights.items()
            }
            epochs = {name: sorted(by_epoch) for name, by_epoch in self.snapshots.items()}
            write_beside(self.folder, "average-heads", flat, epochs)

    def restore(self) -> dict[str, int]:
        """Load each head's mean weights; returns task -> how many epochs went into its mean."""
        averaged = {}
        for name, by_epoch in self.snapshots.items():
            if not by_epoch:
                continue
            order = sorted(by_epoch)
            last = by_epoch[order[-1]]
            mean = {}
            for key, value in last.items():
                if not value.is_floating_point():
                    mean[key] = value
                    continue
                total = torch.zeros_like(value, dtype=torch.float64)
                for epoch in order:
                    total += by_epoch[epoch][key].to(torch.float64)
                mean[key] = (total / len(order)).to(value.dtype)
            self.model.heads[name].load_state_dict(mean)
            averaged[name] = len(order)
        return averaged


def calibrate(
    model: MultiTaskModel, tasks: Sequence[TaskData], metrics: dict[str, dict[str, Any]], batch_size: int
) -> dict[str, dict[str, Any]]:
    """Fit the temperature of every head that calibrates and has dev data; the temperature and
    the dev ECE after it join that task's metrics."""
    dev = {t.name: t.dev for t in tasks if t.dev is not None and model.heads[t.name].calibrates}
    if not dev:
        return metrics
    report = model.calibrate(dev, batch_size)
    return {
        name: {
            **m,
            **(
                {
                    "temperature": report[name]["temperature"],
                    "ece": report[name]["ece_after"],
                    **(
                        {"other_threshold": report[name]["other_threshold"]}
                        if "other_threshold" in report[name]
                        else {}
                    ),
                }
                if name in report
                else {}
            ),
        }
        for name, m in metrics.items()
    }


def save_final(
    model: MultiTaskModel,
    out: Path,
    result: TrainingResult,
    config: TrainingConfig,
    data_sources: dict[str, Any],
    backbone_frozen: bool,
) -> None:
    """The trained model into ``out``, beside checkpoints/ and metrics.jsonl; the manifest last."""
    tmp = out / ".final.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    backbone = "reference" if backbone_frozen and model.has_packaged_backbone() else "copy"
    model.record(  # the model writes these into its manifest and model card
        metrics={t: _numbers(m) for t, m in result.metrics.items()},
        training={
            "config": config.to_dict(),
            "steps": result.steps,
            "seconds": round(result.seconds, 1),
            "data": data_sources,
        },
    )
    model.save(tmp, backbone=backbone)
    summary = {"metrics": result.metrics, "forgetting": result.forgetting, "steps": result.steps}
    (tmp / "training_result.json").write_text(json.dumps(summary, indent=2) + "\n")
    for entry in sorted(tmp.iterdir(), key=lambda p: p.name == "st_multitask.json"):  # manifest last
        target = out / entry.name
        if target.is_dir():
            shutil.rmtree(target)
        os.replace(entry, target)
    tmp.rmdir()
