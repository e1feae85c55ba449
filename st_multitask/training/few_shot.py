"""Few-shot sentence heads on a task branch, SetFit-style, that leave the embeddings bit-identical.

With a handful of examples per label, :func:`train_few_shot` does what SetFit does, but on a task
branch (a trainable copy of the backbone's top ``layers`` layers) instead of the whole body:

1. **contrastive phase**: pairs of the examples (:mod:`~st_multitask.training.pairs`, SetFit's
   oversampling) fine-tune the branch with SetFit's loss, the mean squared error between the
   cosine of the two pooled embeddings and 1 (same label) or 0 (different labels). The frozen
   trunk's states are computed once per example (:class:`~st_multitask.training.cache.TrunkCache`),
   so a step runs the branch's layers only;
2. **head phase**: a linear head over the branch's pooled (normalised) embedding, started from the
   zero-shot label prototypes (:mod:`st_multitask.zero_shot`, embedded through the trained
   branch): weights ``20 x prototype``, and for a label ``other`` a zero row and the bias
   ``20 x other_cosine``, so that before any example it *is* the zero-shot head. With examples it
   is fitted like SetFit's logistic regression (L2 with ``C = 1 / prior``), but the penalty pulls
   the weights toward ``prior_scale`` x the prototypes instead of toward zero (the same argmax as
   the zero-shot head until the examples move it): 0, 8, 16 and 64 examples give a smooth curve.

The backbone is never touched: ``embed()`` stays all-MiniLM-L6-v2 to the bit. Everything is
seeded (pairs, dropout, the head's solver is deterministic), so a run is bit-reproducible.

    >>> from st_multitask import MultiTaskModel
    >>> from st_multitask.data import SentenceExamples
    >>> model = MultiTaskModel()
    >>> train = SentenceExamples(["What a lovely day!", "I lost my keys again.", "Great fun.", "Awful."],
    ...                          ["happy", "sad", "happy", "sad"])
    >>> result = train_few_shot(model, "mood", ["happy", "sad"], train, FewShotConfig(layers=1))
    >>> model.branch_of["mood"], result.pairs, model.predict(["Such a lovely day!"])[0]["mood"]["label"]
    ('mood', 12, 'happy')
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from ..data import SentenceExamples
from ..errors import InputError
from ..heads import MLPHead
from ..model import MultiTaskModel
from ..zero_shot import OTHER, SCALE, LabelSpec, ZeroShotClassifier, parse_labels
from .cache import TrunkCache
from .config import TrainingConfig
from .pairs import PAIR_STRATEGIES, PairStrategy, contrastive_pairs

__all__ = ["FewShotConfig", "FewShotResult", "train_few_shot"]


@dataclass
class FewShotConfig:
    """The settings of :func:`train_few_shot`. The contrastive phase's defaults are SetFit 1.2.0's
    (one epoch of oversampled pairs, batches of 16, learning rate 2e-5, 10% warmup); the head's L2
    strength is that of SetFit's logistic regression (``C = 1``)."""

    layers: int = 2  # K: the branch copies the backbone's top K layers
    epochs: int = 1  # passes over the pairs
    batch_size: int = 16  # pairs per step
    learning_rate: float = 2e-5  # the branch's (AdamW, linear warmup then decay)
    warmup_ratio: float = 0.1
    max_steps: int | None = None  # a cap on the contrastive steps (None: every pair, each epoch)
    pair_strategy: PairStrategy = "oversampling"
    max_grad_norm: float = 1.0
    prior: float = 1.0  # the head's L2 pull toward the zero-shot prototypes (1 / C)
    # the pull's centre is prior_scale x the unit prototypes: 1 was best on the dev splits of Rotten
    # Tomatoes, BBC and VADER against 5 and 20 (the zero-shot logits' scale, the first choice,
    # which 8 examples a label could barely move): python -m benchmarks.few_shot --choose-prior
    prior_scale: float = 1.0
    head_iterations: int = 100  # L-BFGS iterations of the head's fit (full batch)
    seed: int = 42
    templates: list[str] | None = None  # zero-shot templates (default: zero_shot.DEFAULT_TEMPLATES)
    eval_batch_size: int = 64

    def __post_init__(self) -> None:
        for name in ("layers", "epochs", "batch_size", "head_iterations", "eval_batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"few-shot {name} must be a positive integer, got {value!r}.")
        if self.max_steps is not None and (
            isinstance(self.max_steps, bool) or not isinstance(self.max_steps, int) or self.max_steps < 0
        ):
            raise InputError(
                f"few-shot max_steps must be a non-negative integer or None, got {self.max_steps!r}."
            )
        for name in ("learning_rate", "max_grad_norm"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise InputError(f"few-shot {name} must be a positive number, got {value!r}.")
        for name in ("prior", "prior_scale"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise InputError(f"few-shot {name} must be a number >= 0, got {value!r}.")
        if not 0 <= self.warmup_ratio < 1:
            raise InputError(f"few-shot warmup_ratio must be in [0, 1), got {self.warmup_ratio!r}.")
        if self.pair_strategy not in PAIR_STRATEGIES:
            raise InputError(
                f"Unknown pair_strategy {self.pair_strategy!r}. Valid: {', '.join(PAIR_STRATEGIES)}."
            )

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> FewShotConfig:
        """Build from a dict; an unknown key names the valid ones."""
        valid = [f.name for f in dataclasses.fields(cls)]
        unknown = [k for k in values if k not in valid]
        if unknown:
            raise InputError(f"Unknown few-shot setting {unknown[0]!r}. Valid: {', '.join(valid)}.")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class FewShotResult:
    """What :func:`train_few_shot` did: pairs made, contrastive steps run, seconds, train metrics."""

    pairs: int
    steps: int
    seconds: float
    metrics: dict[str, float] = field(default_factory=dict)


def _check_examples(train: SentenceExamples | None, names: list[str]) -> SentenceExamples | None:
    if train is None or len(train) == 0:
        return None
    if any(not isinstance(label, str) for label in train.labels):
        raise InputError("Few-shot training takes one label per text; found a list of labels.")
    unknown = sorted(set(train.labels) - set(names))
    if unknown:
        raise InputError(
            f"Label {unknown[0]!r} of the examples is not among the labels ({', '.join(names)}); "
            "add it to the labels or drop those examples."
        )
    return train


def train_few_shot(
    model: MultiTaskModel,
    task: str,
    labels: str | Sequence[str | LabelSpec],
    train: SentenceExamples | None,
    config: FewShotConfig | None = None,
    branch: str | None = None,
) -> FewShotResult:
    """Add the branch ``branch`` (default: named after ``task``) and the linear head ``task`` on
    it to ``model``, and train them from ``train`` (see the module doc). ``labels`` are names, or
    ``"name: description"`` items, in the head's order; ``train`` may be ``None`` or empty (the
    head is then the zero-shot head, on an untouched branch)."""
    from transformers import get_linear_schedule_with_warmup, set_seed

    config = config or FewShotConfig()
    specs = parse_labels(labels)
    names = [spec.name for spec in specs]
    examples = _check_examples(train, names)
    start = time.perf_counter()
    set_seed(config.seed)
    name = branch or task
    model.add_branch(name, config.layers)
    head = MLPHead(model.dim, names, hidden=[], dropout=0.0)
    model.add_head(task, head, branch=name)
    trained = model.branches[name]
    texts = [] if examples is None else list(examples.texts)
    cache = TrunkCache(model, TrainingConfig(seed=config.seed, eval_batch_size=config.eval_batch_size), True)
    table = cache.get(task, texts, [task], "train") if texts else None

    def embed(indices: list[int], grad: bool) -> Tensor:  # (len(indices), dim), unit rows
        assert table is not None
        inputs, _ = cache.inputs(table, texts, indices, [task], grad=grad)
        return inputs[task]["sentence_embedding"]

    pairs, steps = [], 0
    if examples is not None and len(set(examples.labels)) > 1:
        pairs = contrastive_pairs(examples.labels, config.seed, config.pair_strategy)
        per_epoch = math.ceil(len(pairs) / config.batch_size)
        total = per_epoch * config.epochs
        total = total if config.max_steps is None else min(total, config.max_steps)
        optimizer = torch.optim.AdamW(trained.parameters(), lr=config.learning_rate, weight_decay=0.0)
        schedule = get_linear_schedule_with_warmup(optimizer, math.ceil(config.warmup_ratio * total), total)
        trained.train()
        while steps < total:
            epoch = steps // per_epoch
            order = (
                pairs
                if epoch == 0
                else contrastive_pairs(examples.labels, config.seed + epoch, config.pair_strategy)
            )
            offset = (steps % per_epoch) * config.batch_size
            batch = order[offset : offset + config.batch_size]
            rows = sorted({p.first for p in batch} | {p.second for p in batch})
            where = {index: row for row, index in enumerate(rows)}
            vectors = embed(rows, grad=True)  # (rows, dim), unit
            first = vectors[[where[p.first] for p in batch]]
            second = vectors[[where[p.second] for p in batch]]
            target = torch.tensor([p.target for p in batch], dtype=vectors.dtype, device=vectors.device)
            loss = torch.nn.functional.mse_loss((first * second).sum(-1), target)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trained.parameters(), config.max_grad_norm)
            optimizer.step()
            schedule.step()
            steps += 1
    trained.eval()
    trained.requires_grad_(False)  # the branch is done: it stays with its head

    def embed_texts(items: list[str]) -> Any:
        out = []
        for at in range(0, len(items), config.eval_batch_size):
            inputs, _ = model.head_inputs(items[at : at + config.eval_batch_size], [task])
            out.append(inputs[task]["sentence_embedding"].float().cpu())
        return torch.cat(out).numpy()

    zero_shot = ZeroShotClassifier.build(specs, embed_texts, config.templates)
    weight = SCALE * torch.from_numpy(zero_shot.prototypes).to(model.device)  # (labels, dim)
    bias = torch.zeros(len(names), device=model.device)
    if OTHER in names:
        bias[names.index(OTHER)] = SCALE * zero_shot.other_cosine
    metrics: dict[str, float] = {}
    if examples is not None:
        with torch.no_grad():
            vectors = torch.cat(
                [
                    embed(list(range(at, min(at + 256, len(texts)))), grad=False)
                    for at in range(0, len(texts), 256)
                ]
            )
        targets = torch.tensor([names.index(label) for label in examples.labels], device=model.device)
        shrink = config.prior_scale / SCALE  # the centre: prior_scale x the unit prototypes
        weight, bias = _fit_linear(
            vectors.float(), targets, weight * shrink, bias * shrink, config.prior, config.head_iterations
        )
        with torch.no_grad():
            metrics["train_accuracy"] = float(
                ((vectors @ weight.T + bias).argmax(-1) == targets).float().mean()
            )
    layer = head.mlp[-1]
    assert isinstance(layer, torch.nn.Linear)
    with torch.no_grad():
        layer.weight.copy_(weight)
        layer.bias.copy_(bias)
    head.mark_trained()
    cache.close()
    return FewShotResult(len(pairs), steps, round(time.perf_counter() - start, 2), metrics)


def _fit_linear(
    vectors: Tensor, targets: Tensor, weight: Tensor, bias: Tensor, prior: float, iterations: int
) -> tuple[Tensor, Tensor]:
    """Multinomial logistic regression on ``vectors`` (n, dim): summed cross-entropy plus
    ``prior / 2 x |W - W0|^2`` (the bias unpenalised, as scikit-learn's), by L-BFGS from ``W0``."""
    start = weight.detach().clone()
    w = weight.detach().clone().requires_grad_(True)
    b = bias.detach().clone().requires_grad_(True)
    solver = torch.optim.LBFGS(
        [w, b], lr=1.0, max_iter=iterations, line_search_fn="strong_wolfe", tolerance_grad=1e-6
    )

    def closure() -> Tensor:
        solver.zero_grad()
        logits = vectors @ w.T + b  # (n, labels)
        loss = torch.nn.functional.cross_entropy(logits, targets, reduction="sum")
        loss = loss + prior / 2 * ((w - start) ** 2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        solver.step(closure)
    return w.detach(), b.detach()
