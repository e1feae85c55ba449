"""The training loop: Trainer.fit runs the plan's stages, epochs and steps, and calls the named
parts (plan, optim, cache, callbacks, checkpointing) for everything else."""

from __future__ import annotations

import functools
import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..data import SentenceExamples, TokenExamples
from ..errors import InputError
from ..evaluation import evaluate_task, main_metric
from ..model import MultiTaskModel
from .cache import EmbeddingCache, TrunkCache, cached_inputs
from .callbacks import BestWeights, HeadAverage, MetricsLog, TaskBest, calibrate, save_final
from .checkpointing import latest_checkpoint, load_checkpoint, prepare_output, save_checkpoint, set_rng_state
from .config import TaskData, TrainingConfig, TrainingResult
from .optim import Freezing, autocast, make_optimizer, make_schedule
from .plan import Plan, Stage, Stream, check_tasks, data_sources, make_plan, next_batch
from .sampling import TaskSampler

__all__ = ["Trainer"]

logger = logging.getLogger(__name__)


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
        self.freezing = Freezing(model, self.config)
        self.history: list[dict[str, Any]] = []
        if self.config.mixed_precision != "no" and self.model.device.type != "cuda":
            raise InputError("mixed_precision needs a CUDA device; set it to 'no' on CPU.")
        if resume and self.output_dir is None:
            raise InputError("resume needs an output directory holding checkpoints.")

    # -- the loop ---------------------------------------------------------------------------------
    def fit(self, tasks: Sequence[TaskData]) -> TrainingResult:
        """Train; returns final metrics (dev split, or train when a task has no dev split)."""
        start_time, cfg = time.perf_counter(), self.config
        plan = self._setup(tasks)
        optimizer = self._optimizer()
        scheduler = make_schedule(optimizer, self._schedule_steps(plan, 0), cfg)
        scaler = torch.amp.GradScaler("cuda", enabled=cfg.mixed_precision == "fp16")
        state: dict[str, Any] = {  # the loop's position and memory: all a checkpoint needs to resume
            "stage": 0,  # index into plan.stages
            "epoch": 0,  # epochs done in this stage
            "micro": 0,  # micro-batches done in this epoch
            "step": 0,  # optimizer steps done in the run
            "positions": {},  # stream -> (pass, position) in its batch order, this epoch
            "sampler": None,  # the task sampler's state
            "running": [0.0, 0],  # this epoch's training loss: sum, micro-batches
            "best": None,  # best score in this stage
            "bad_epochs": 0,  # epochs since it
            "stopped": False,  # early stopping fired in this stage
            "forgetting": {},  # sequential: stage -> {task: main metric}
        }
        if self.resume:
            scheduler = self._resume(optimizer, plan, state)
        self._make_callbacks(tasks)
        from tqdm.auto import tqdm

        bar = tqdm(
            total=plan.total_steps,
            initial=state["step"],
            unit="step",
            desc="training",
            disable=not self.progress or self.rank != 0,
        )
        for stage_index in range(state["stage"], len(plan.stages)):
            stage = plan.stages[stage_index]
            if cfg.strategy == "sequential" and stage_index > 0 and state["epoch"] == state["micro"] == 0:
                scheduler = make_schedule(optimizer, stage.steps, cfg)  # a fresh warmup and decay
            sampler = self._start_stage(plan, stage_index, state)
            for epoch in range(state["epoch"], cfg.epochs):
                if state["stopped"]:
                    break
                self._train_epoch(
                    stage, stage_index, epoch, sampler, (optimizer, scheduler, scaler), state, bar
                )
                self._end_epoch(plan, stage_index, epoch, state)
                state.update(
                    micro=0, positions={}, running=[0.0, 0], epoch=epoch + 1, sampler=sampler.state_dict()
                )
                self._checkpoint(optimizer, scheduler, state)
            if cfg.strategy == "sequential":
                last = self.history[-1]["metrics"]
                state["forgetting"][stage.tasks[0]] = {
                    t: m[main_metric(self.model.heads[t])] for t, m in last.items()
                }
            state.update(stage=stage_index + 1, epoch=0, sampler=None, stopped=False, best=None, bad_epochs=0)
        bar.close()
        return self._finish(tasks, state, start_time)

    def _train_epoch(
        self,
        stage: Stage,
        stage_index: int,
        epoch: int,
        sampler: TaskSampler,
        parts: tuple,
        state: dict[str, Any],
        bar: Any,
    ) -> None:
        """Micro-batches from the sampled streams until the epoch's count; a step every
        ``gradient_accumulation_steps`` of them and at the epoch's end."""
        cfg = self.config
        optimizer, scheduler, scaler = parts
        units = epoch if cfg.unfreeze_unit == "epoch" else state["step"]
        self.freezing.set_unfrozen(self.freezing.unfrozen_layers(units))
        streams = {s.name: s for s in stage.streams}
        epoch_start = time.perf_counter()
        while state["micro"] < stage.micro_batches:
            stream = streams[next(sampler)]
            indices = next_batch(stream, state["positions"], cfg, epoch, stage_index)
            mine = indices[self.rank :: self.world]
            loss = self._loss(stream, mine) if mine else torch.zeros(())
            if loss.requires_grad:
                scaler.scale(loss / cfg.gradient_accumulation_steps).backward()
            state["running"] = [state["running"][0] + float(loss.detach()), state["running"][1] + 1]
            state["micro"] += 1
            if state["micro"] % cfg.gradient_accumulation_steps and state["micro"] != stage.micro_batches:
                continue
            self._step(optimizer, scheduler, scaler)
            state["step"] += 1
            bar.update(1)
            bar.set_postfix(loss=f"{state['running'][0] / max(state['running'][1], 1):.4f}")
            if cfg.unfreeze_unit == "step":
                self.freezing.set_unfrozen(self.freezing.unfrozen_layers(state["step"]))
            if cfg.checkpoint_every and state["step"] % cfg.checkpoint_every == 0:
                state["sampler"] = sampler.state_dict()
                self._checkpoint(optimizer, scheduler, state)
        self._train_seconds = time.perf_counter() - epoch_start

    def _step(self, optimizer: torch.optim.Optimizer, scheduler: Any, scaler: Any) -> None:
        self._sync_gradients()
        scaler.unscale_(optimizer)
        if self.config.max_grad_norm is not None:
            trainable = [p for p in self.model.parameters() if p.requires_grad]
            torch.nn.utils.clip_grad_norm_(trainable, self.config.max_grad_norm)
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)

    def _loss(self, stream: Stream, indices: list[int]) -> Tensor:
        """The weighted sum of the stream's task losses on one batch; each head encodes its
        targets and masks what it cannot learn from."""
        grad = self.freezing.features_train()
        cached = cached_inputs(
            self._cache, self._trunk, stream.name, stream.items, stream.tasks, "train", grad
        )
        with autocast(self.config):
            if cached is not None:
                inputs, read = cached(indices)
            else:
                inputs, read = self.model.head_inputs(
                    [stream.items[i] for i in indices], stream.tasks, grad=grad
                )
        total = torch.zeros((), device=self.model.device)
        for task in stream.tasks:
            head = self.model.heads[task]
            frozen = not any(p.requires_grad for p in head.parameters())
            if frozen and not (self.freezing.backbone_trains() or self.freezing.branch_trains(task)):
                continue
            targets = head.encode_targets([stream.targets[task][i] for i in indices]).to(self.model.device)
            with autocast(self.config):
                logits = head(inputs[task])
            loss = head.training_loss(logits.float(), targets, read)
            if loss is not None:
                total = total + self.config.loss_weights.get(task, 1.0) * loss
        return total

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

    # -- before the loop --------------------------------------------------------------------------
    def _setup(self, tasks: Sequence[TaskData]) -> Plan:
        """Check the tasks, prepare the output folder, seed, fit text features, freeze: the plan."""
        cfg = self.config
        check_tasks(self.model, tasks, cfg)
        self._data_sources = data_sources(tasks)
        if self.output_dir is not None and self.rank == 0:
            prepare_output(self.output_dir, self.overwrite, self.resume)
        from transformers import set_seed

        set_seed(cfg.seed)  # python, numpy, torch: dropout draws from here
        for task in tasks:  # heads with a text vocabulary (hybrid) fit it on their training texts
            head = self.model.heads[task.name]
            if head.uses_text and not head.is_fitted:
                train = task.train
                head.fit_features(train.texts if isinstance(train, SentenceExamples) else train.words)
                head.to(self.model.device)
        self.freezing.apply([t.name for t in tasks])
        self.freezing.check_per_head_settings()
        self.model.backbone.train(not self.freezing.backbone_frozen)
        for head in self.model.heads.values():
            head.train(True)
        for branch in self.model.branches.values():
            branch.train(True)
        self._cache = EmbeddingCache(self.model, cfg, self.freezing.backbone_frozen, self.output_dir)
        self._trunk = TrunkCache(self.model, cfg, self.freezing.backbone_frozen)
        return make_plan(self.model, tasks, cfg)

    def _optimizer(self) -> torch.optim.Optimizer:
        return make_optimizer(self.model, self.config)

    def _schedule_steps(self, plan: Plan, stage: int) -> int:
        """Joint: one warmup and decay over the run. Sequential: each stage gets its own."""
        return plan.stages[stage].steps if self.config.strategy == "sequential" else plan.total_steps

    def _resume(self, optimizer: torch.optim.Optimizer, plan: Plan, state: dict[str, Any]) -> Any:
        """Weights, optimizer, schedule, loop state, history and RNG from the newest checkpoint."""
        assert self.output_dir is not None  # __init__ checks that resume has one
        path = latest_checkpoint(self.output_dir / "checkpoints")
        if path is None:
            raise InputError(f"resume: no checkpoint in {self.output_dir / 'checkpoints'}.")
        weights, saved, rng = load_checkpoint(path)
        missing = self.model.load_state_dict(weights, strict=False)
        if missing.unexpected_keys:
            raise InputError(f"Checkpoint {path} does not match this model: {missing.unexpected_keys[:3]}...")
        stage = min(saved["loop"]["stage"], len(plan.stages) - 1)  # the schedule of its stage
        scheduler = make_schedule(optimizer, self._schedule_steps(plan, stage), self.config)
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        self.history = saved["history"]
        state.update(saved["loop"])
        set_rng_state(saved["rng"], rng)
        logger.info("Resumed from %s (step %d).", path, state["step"])
        return scheduler

    def _start_stage(self, plan: Plan, stage_index: int, state: dict[str, Any]) -> TaskSampler:
        """Freeze for the stage and draw its tasks (continuing a resumed sampler)."""
        cfg = self.config
        stage = plan.stages[stage_index]
        everything = [n for s in plan.stages for n in s.tasks]
        self.freezing.apply(stage.tasks if cfg.strategy == "sequential" else everything)
        if cfg.strategy == "sequential" and not cfg.freeze_finished_heads:
            for done in plan.stages[:stage_index]:
                for name in done.tasks:
                    if name not in self.freezing.frozen_heads:
                        self.model.heads[name].requires_grad_(True)
        sizes = {s.name: len(s) for s in stage.streams}
        sampler = TaskSampler(
            sizes, cfg.sampling, cfg.sampling_temperature, seed=cfg.seed + 1000 * stage_index
        )
        if state["sampler"] is not None:
            sampler.load_state_dict(state["sampler"])
        return sampler

    # -- after each epoch and the run -------------------------------------------------------------
    def _make_callbacks(self, tasks: Sequence[TaskData]) -> None:
        """The metrics log, the best weights and each head's best epoch (read back when resuming)."""
        folder = self.output_dir / "checkpoints" if self.output_dir is not None and self.rank == 0 else None
        self._tasks = {t.name: t for t in tasks}
        self._log = MetricsLog(
            self.output_dir / "metrics.jsonl" if folder and self.output_dir else None, self.history
        )
        self._best = BestWeights(self.model, self.config, folder, resume=self.resume)
        self._task_best = TaskBest(self.model, folder, resume=self.resume)
        counts = self.config.averaged_tasks([t.name for t in tasks])
        source = self.output_dir / "checkpoints" if self.resume and self.output_dir is not None else None
        self._average = HeadAverage(self.model, counts, self.config.epochs, folder, resume_from=source)
        self._last_metrics: dict[str, dict[str, Any]] = {}

    def _end_epoch(self, plan: Plan, stage_index: int, epoch: int, state: dict[str, Any]) -> None:
        """Evaluate every task seen so far, log, keep the best weights, maybe stop early."""
        seen = [n for stage in plan.stages[: stage_index + 1] for n in stage.tasks]
        metrics = {name: self._dev_metrics(name) for name in seen}
        running, count = state["running"]
        self._log.add(
            {
                "stage": stage_index,
                "epoch": epoch + 1,
                "step": state["step"],
                "train_loss": round(running / max(count, 1), 6),
                "train_seconds": round(self._train_seconds, 3),
                "metrics": {
                    t: {k: v for k, v in m.items() if not isinstance(v, (dict, list))}
                    for t, m in metrics.items()
                },
            }
        )
        self._last_metrics = metrics
        if self.config.best_per_task:  # an averaged head ends on its mean, not on a best epoch
            self._task_best.update({t: m for t, m in metrics.items() if t not in self._average.counts})
        self._average.update(epoch)
        scored = {t: m for t, m in metrics.items() if t in plan.stages[stage_index].tasks}
        self._best.update(state, scored, metrics, self._trainable_state())

    def _finish(self, tasks: Sequence[TaskData], state: dict[str, Any], start_time: float) -> TrainingResult:
        """End on the kept weights, mark the heads trained, calibrate, save."""
        metrics = self._last_metrics or self.history[-1]["metrics"]
        metrics = self._best.restore(metrics)
        if self.config.best_per_task:
            metrics = self._task_best.restore(metrics)
        for name, count in self._average.restore().items():
            metrics = {**metrics, name: {**self._dev_metrics(name), "averaged_epochs": count}}
        for task in tasks:
            self.model.heads[task.name].mark_trained()
        self.model.eval()
        if self.config.calibrate:
            metrics = calibrate(self.model, tasks, metrics, self.config.eval_batch_size)
        self._cache.close()
        self._trunk.close()
        result = TrainingResult(
            metrics=metrics,
            history=self.history,
            forgetting=state["forgetting"] or None,
            steps=state["step"],
            seconds=time.perf_counter() - start_time,
        )
        if self.output_dir is not None and self.rank == 0:
            frozen = self.freezing.backbone_frozen
            save_final(self.model, self.output_dir, result, self.config, self._data_sources, frozen)
        if self.world > 1:
            self.state.wait_for_everyone()
        return result

    def _dev_metrics(self, name: str) -> dict[str, Any]:
        """A task's metrics on its dev split (on train when it has none), from the cache."""
        task = self._tasks[name]
        data, split = (task.dev, "dev") if task.dev is not None else (task.train, "train-eval")
        items = data.texts if isinstance(data, SentenceExamples) else data.words
        inputs = cached_inputs(self._cache, self._trunk, name, items, [name], split, grad=False)
        return evaluate_task(self.model, name, data, self.config.eval_batch_size, inputs)

    def evaluate(
        self, task: str, data: SentenceExamples | TokenExamples, cache: dict | None = None
    ) -> dict[str, Any]:
        """Metrics of one task on one split (from the embedding cache when there is one)."""
        inputs = None if cache is None else functools.partial(self._cache.batch, cache, tasks=[task])
        return evaluate_task(self.model, task, data, self.config.eval_batch_size, inputs)

    def _trainable_state(self) -> dict[str, Tensor]:
        """Weights worth checkpointing: the heads always, the backbone only when it can train."""
        frozen = self.freezing.backbone_frozen
        return {
            k: v for k, v in self.model.state_dict().items() if not (frozen and k.startswith("backbone."))
        }

    def _checkpoint(self, optimizer: torch.optim.Optimizer, scheduler: Any, state: dict[str, Any]) -> None:
        if self.output_dir is None or self.rank != 0:
            return
        saved = {
            "loop": json.loads(json.dumps(state)),
            "history": self.history,
            "scheduler": scheduler.state_dict(),
            "config": self.config.to_dict(),
        }
        folder, keep = self.output_dir / "checkpoints", self.config.keep_checkpoints
        save_checkpoint(folder, state["step"], self._trainable_state(), optimizer, saved, keep=keep)
