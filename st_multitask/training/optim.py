"""What trains and how fast: freezing (backbone, heads), gradual unfreezing of the encoder layers
from the top, AdamW parameter groups with layer-wise learning-rate decay, and the linear warmup
and decay schedule."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import torch

from ..errors import InputError
from ..model import MultiTaskModel
from ..runtime.branches import Branch
from ..runtime.branches import encoder_layers as backbone_layers
from .config import TrainingConfig

__all__ = ["Freezing", "autocast", "encoder_layers", "make_optimizer", "make_schedule"]


def encoder_layers(model: MultiTaskModel) -> list[torch.nn.Module]:
    """The backbone's transformer layers, bottom first."""
    return list(backbone_layers(model.backbone))


class Freezing:
    """Which weights train, from ``config.freeze`` and gradual unfreezing."""

    def __init__(self, model: MultiTaskModel, config: TrainingConfig):
        self.model = model
        self.config = config
        self._open_branches: list[Branch] = []  # the branches apply() let train

    @property
    def frozen_heads(self) -> set[str]:
        return {name for name in self.config.freeze if name in self.model.heads}

    @property
    def backbone_frozen(self) -> bool:
        return "all" in self.config.freeze or "backbone" in self.config.freeze

    def backbone_trains(self) -> bool:
        return any(p.requires_grad for p in self.model.backbone.parameters())

    def branch_trains(self, task: str | None = None) -> bool:
        """Whether the branch of ``task`` (None: any branch) trains."""
        branches = self.model.branches
        names = list(branches) if task is None else [self.model.branch_of.get(task)]
        return any(p.requires_grad for n in names if n in branches for p in branches[n].parameters())

    def features_train(self) -> bool:
        """Whether what the heads read can change: the backbone or a branch trains."""
        return self.backbone_trains() or self.branch_trains()

    def apply(self, trainable_heads: Sequence[str]) -> None:
        """Only ``trainable_heads`` (less the frozen ones) and, unless frozen, the backbone train."""
        heads = self.model.heads
        branches = self.model.branches
        unknown = [n for n in self.config.freeze if n not in ("all", "backbone", *heads, *branches)]
        if unknown:
            raise InputError(
                f"Cannot freeze {unknown[0]!r}: not 'backbone', 'all', a head ({', '.join(heads)})"
                + (f" or a branch ({', '.join(branches)})." if branches else ".")
            )
        if "all" in self.config.freeze:
            raise InputError("Everything is frozen ('all'): no weight would train. Remove 'all' from freeze.")
        for name, head in heads.items():
            head.requires_grad_(name in trainable_heads and name not in self.frozen_heads)
        self.model.backbone.requires_grad_(not self.backbone_frozen)
        for name, branch in branches.items():  # a branch trains with the heads that read it
            readers = [t for t, b in self.model.branch_of.items() if b == name]
            opened = any(t in trainable_heads and t not in self.frozen_heads for t in readers)
            branch.requires_grad_(opened and name not in self.config.freeze)
        self._open_branches = [b for b in branches.values() if any(p.requires_grad for p in b.parameters())]
        if not any(p.requires_grad for p in self.model.parameters()):
            raise InputError("Nothing trains: the backbone and every head of the tasks are frozen.")

    def check_per_head_settings(self) -> None:
        """``best_per_task`` and ``average_epochs`` need heads that train independently: joint
        training of a frozen backbone, no unfreezing, no branch that trains (after :meth:`apply`)."""
        cfg = self.config
        independent = (
            cfg.strategy == "joint"
            and self.backbone_frozen
            and cfg.unfreeze_every is None
            and not self.branch_trains()
        )
        for setting, why in (
            ("best_per_task", "so each can keep its own best epoch"),
            ("average_epochs", "so each can average its own weights"),
        ):
            if getattr(cfg, setting) and not independent:
                raise InputError(
                    f"{setting} needs joint training with a frozen backbone (freeze: [backbone], no "
                    f"unfreezing, no branch that trains): only then are the heads independent, {why}."
                )

    def unfrozen_layers(self, units_done: int) -> int | None:
        """How many encoder layers (from the top) train now under gradual unfreezing; None = all."""
        every = self.config.unfreeze_every
        if every is None or (self.backbone_frozen and not self.model.branches):
            return None
        return self.config.unfreeze_layers * (1 + units_done // every)

    def set_unfrozen(self, count: int | None) -> None:
        """Open the top ``count`` encoder layers; past the last one, the embeddings too. With the
        backbone frozen, the top ``count`` layers of each training branch."""
        if count is None:
            return
        if self.backbone_frozen:
            for branch in self._open_branches:
                for index, layer in enumerate(branch.layers):
                    layer.requires_grad_(index >= len(branch.layers) - count)
            return
        layers = encoder_layers(self.model)
        self.model.backbone.requires_grad_(False)
        for layer in layers[max(0, len(layers) - count) :]:
            layer.requires_grad_(True)
        if count > len(layers):  # everything above is open: the embeddings come last
            self.model.backbone.requires_grad_(True)


def _no_decay(name: str) -> bool:
    return name.endswith("bias") or "LayerNorm" in name or "layer_norm" in name


def make_optimizer(model: MultiTaskModel, config: TrainingConfig) -> torch.optim.Optimizer:
    """AdamW over named groups: each head (and any part it scales), then the backbone by depth,
    each layer below the top at ``lr_decay`` x the rate above; no decay on biases and norms."""
    groups: list[dict[str, Any]] = []

    def add(params: list[tuple[str, torch.nn.Parameter]], lr: float, label: str) -> None:
        decay = [p for n, p in params if not _no_decay(n)]
        no_decay = [p for n, p in params if _no_decay(n)]
        if decay:
            groups.append({"params": decay, "lr": lr, "weight_decay": config.weight_decay, "name": label})
        if no_decay:
            groups.append({"params": no_decay, "lr": lr, "weight_decay": 0.0, "name": f"{label}.no_decay"})

    for name, head in model.heads.items():
        # a head may ask for a larger step on some of its weights (the hybrid head's sparse part)
        scales = head.learning_rate_scales
        own = [(n, p) for n, p in head.named_parameters() if n.split(".")[0] not in scales]
        add(own, config.head_learning_rate, f"head.{name}")
        for prefix, scale in scales.items():
            scaled = [(n, p) for n, p in head.named_parameters() if n.split(".")[0] == prefix]
            add(scaled, config.head_learning_rate * scale, f"head.{name}.{prefix}")
    try:
        n_layers = len(encoder_layers(model))
    except InputError:
        n_layers = 0
    by_depth: dict[str, list] = {}
    for name, param in model.backbone.named_parameters():
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
        add(params, config.learning_rate * config.lr_decay**depth, f"backbone.{key}")
    for name, branch in model.branches.items():  # a branch's layers: learning_rate, decayed downwards
        for index, layer in enumerate(branch.layers):
            depth = len(branch.layers) - 1 - index
            params = [(n, p) for n, p in layer.named_parameters()]
            add(params, config.learning_rate * config.lr_decay**depth, f"branch.{name}.layer.{index}")
    return torch.optim.AdamW(groups, lr=config.learning_rate)


def make_schedule(
    optimizer: torch.optim.Optimizer, steps: int, config: TrainingConfig
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warmup over ``warmup_ratio`` of ``steps``, then linear decay to 0.

    The decay is ``transformers.get_linear_schedule_with_warmup``'s; the warmup starts at
    ``1 / warmup`` of the rate where transformers' starts at 0, so no step is spent at a zero
    learning rate and runs (and the bundled model's recipe) keep the results they had.
    """
    warmup = int(config.warmup_ratio * steps)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (steps - step) / max(1, steps - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def autocast(config: TrainingConfig) -> Any:
    """The mixed-precision context of ``config`` (a no-op unless fp16 or bf16 on CUDA)."""
    if config.mixed_precision == "no":
        import contextlib

        return contextlib.nullcontext()
    dtype = torch.float16 if config.mixed_precision == "fp16" else torch.bfloat16
    return torch.autocast("cuda", dtype=dtype)
