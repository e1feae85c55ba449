"""A head for your own labels from one data file, without a recipe (``stmt train --data FILE``).

:func:`plan_from_data` reads the file (CSV, TSV, JSON lines, JSON or Parquet: the one reader per
format), checks the labels, carves a dev split and picks a recipe from the data's size:

- ``zero_shot``: no labelled example (a file of texts, and ``labels``): label prototypes, refitted
  on the file's texts by self-training (:mod:`st_multitask.zero_shot`);
- ``few_shot``: fewer than :data:`FULL_FROM` examples of some label: SetFit-style training on a
  task branch (contrastive pairs fine-tune a copy of the top layers, then a linear head started
  from the zero-shot prototypes: :mod:`st_multitask.training.few_shot`); the embeddings stay
  bit-identical;
- ``full``: an MLP head on the frozen backbone's embeddings.

:func:`train_from_data` trains it into a base model (the bundled default model or any saved one,
whose other heads stay as they are), calibrates it on the dev split and saves the model with its
card. :meth:`DataPlan.recipe` is the same run as a recipe (YAML) for ``stmt train --config``.

    >>> import pandas as pd
    >>> rows = pd.DataFrame({"text": [f"text {i}" for i in range(20)], "label": ["a", "b"] * 10})
    >>> plan = plan_from_data(rows, task="mine")
    >>> plan.mode, len(plan.train), len(plan.dev)
    ('few_shot', 16, 4)
"""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .data import SentenceExamples, read_sentence_examples, read_texts
from .errors import InputError
from .readers import detect_format
from .zero_shot import LabelSpec, parse_labels

if TYPE_CHECKING:
    import pandas as pd

    from .model import MultiTaskModel

__all__ = [
    "CALIBRATE_FROM",
    "DEV_FROM",
    "DEV_SHARE",
    "FULL_FROM",
    "DataPlan",
    "check_target",
    "plan_from_data",
    "train_from_data",
]

DEV_SHARE = 0.2  # of each label's examples, carved as the dev split
DEV_FROM = 5  # examples of every label needed to carve a dev split (one at least in dev)
FULL_FROM = 32  # examples of every label from which the head is an MLP rather than linear
CALIBRATE_FROM = 20  # dev texts needed to fit a temperature (fewer, all right, would drive it to its floor)
Mode = Literal["zero_shot", "few_shot", "full"]
HEADS: dict[str, dict[str, Any]] = {"full": {"kind": "mlp", "hidden": [256]}}
TRAINING: dict[str, dict[str, Any]] = {
    "full": {"epochs": 10, "batch_size": 32, "head_learning_rate": 0.001},
}


@dataclass
class DataPlan:
    """What :func:`train_from_data` will do: the task, the mode, labels, splits and a sentence
    saying how the dev split was made."""

    task: str
    mode: Mode
    labels: list[LabelSpec]
    source: str
    train: SentenceExamples | None = None  # None: zero-shot
    dev: SentenceExamples | None = None
    texts: list[str] = field(default_factory=list)  # unlabelled texts (zero-shot self-training)
    dev_note: str = ""
    seed: int = 42

    @property
    def names(self) -> list[str]:
        return [spec.name for spec in self.labels]

    @property
    def calibrates(self) -> bool:
        """Whether the dev split is large enough to fit the head's temperature."""
        return self.dev is not None and len(self.dev) >= CALIBRATE_FROM

    def recipe(self, base: str | None = None) -> dict[str, Any]:
        """The same run as a recipe (``stmt train --config``); a recipe starts from a backbone, so
        the other heads of a base model are not in it."""
        if self.mode == "zero_shot":
            return {"zero_shot": {"task": self.task, "labels": self.names, "self_training": bool(self.texts)}}
        if self.mode == "few_shot":
            from .training.few_shot import FewShotConfig

            settings = {k: v for k, v in FewShotConfig(seed=self.seed).to_dict().items() if v is not None}
            return {
                "model": {"backbone": base},
                "few_shot": {"task": self.task, "train": self.source, "labels": self.names, **settings},
                "training": {"calibrate": self.calibrates},
            }
        task: dict[str, Any] = {
            "head": HEADS[self.mode],
            "train": self.source,
            "labels": self.names,
        }
        training = {
            **TRAINING[self.mode],
            "freeze": ["backbone"],
            "seed": self.seed,
            "calibrate": self.calibrates,
        }
        return {"model": {"backbone": base}, "tasks": {self.task: task}, "training": training}


def _labelled(source: Any, text_column: str, label_column: str) -> SentenceExamples | None:
    """The file's labelled rows; ``None`` when it has no label column at all (or is plain lines)."""
    if isinstance(source, (str, os.PathLike)) and detect_format(source) == "lines":
        return None
    try:
        return read_sentence_examples(source, text_column=text_column, label_column=label_column)
    except InputError as exc:
        if f"column {label_column!r}" in str(exc) and f"column {text_column!r}" not in str(exc):
            return None
        raise


def _split(data: SentenceExamples, seed: int) -> tuple[SentenceExamples, SentenceExamples]:
    from sklearn.model_selection import train_test_split

    rows = list(range(len(data.texts)))
    train, dev = train_test_split(rows, test_size=DEV_SHARE, stratify=data.labels, random_state=seed)
    pick = lambda keep: SentenceExamples(  # noqa: E731
        [data.texts[i] for i in sorted(keep)], [data.labels[i] for i in sorted(keep)], data.source
    )
    return pick(train), pick(dev)


def plan_from_data(
    source: str | os.PathLike[str] | pd.DataFrame,
    task: str = "label",
    labels: str | list[str] | None = None,
    text_column: str = "text",
    label_column: str = "label",
    dev: str | os.PathLike[str] | None = None,
    seed: int = 42,
) -> DataPlan:
    """Read and check the data, carve the dev split and pick the mode (see the module doc)."""
    name = "DataFrame" if not isinstance(source, (str, os.PathLike)) else os.fspath(source)
    specs = None if labels is None else parse_labels(labels)
    data = _labelled(source, text_column, label_column)
    if data is None:  # texts only: zero-shot from the label names
        if specs is None:
            raise InputError(
                f"{name} has no {label_column!r} column: give --label-column, or --labels for zero-shot."
            )
        if isinstance(source, (str, os.PathLike)):
            lines = detect_format(source) == "lines"
            texts = read_texts(source, column=None if lines else text_column)
        else:
            texts = [str(t) for t in source[text_column]]
        return DataPlan(task, "zero_shot", specs, name, texts=texts, dev_note="no dev split (no labels)")
    if any(isinstance(label, list) for label in data.labels):
        raise InputError(f"{name}: one label per text is expected; found a list of labels.")
    counts = Counter(data.labels)
    if len(counts) < 2:
        only = next(iter(counts))
        raise InputError(
            f"{name}: the {label_column!r} column holds one class only ({only!r}); a classifier needs "
            "at least two. Add examples of the others, or give --labels for a zero-shot head."
        )
    if specs is None:
        specs = [LabelSpec(label) for label in sorted(counts)]
    names = [spec.name for spec in specs]
    extra, missing = sorted(set(counts) - set(names)), [n for n in names if n not in counts]
    if extra or missing:
        parts = [f"labels in the data but not in --labels: {', '.join(extra)}"] if extra else []
        parts += [f"labels in --labels with no example: {', '.join(missing)}"] if missing else []
        raise InputError(f"{name}: --labels does not match the data ({'; '.join(parts)}).")
    fewest = min(counts.values())
    mode: Mode = "full" if fewest >= FULL_FROM else "few_shot"
    if dev is not None:
        held = read_sentence_examples(dev, text_column=text_column, label_column=label_column)
        unseen = sorted(set(held.label_set()) - set(names))
        absent = [n for n in names if n not in set(held.labels)]
        if unseen or absent:
            problem = f"labels unseen in training: {', '.join(unseen)}" if unseen else ""
            problem += ("; " if unseen and absent else "") + (
                f"labels with no dev example: {', '.join(absent)}" if absent else ""
            )
            raise InputError(f"{os.fspath(dev)}: the dev labels do not match the training data ({problem}).")
        return DataPlan(
            task, mode, specs, name, data, held, dev_note=f"dev: {os.fspath(dev)} ({len(held)} texts)"
        )
    if fewest < DEV_FROM:
        rare = min(counts, key=lambda label: counts[label])
        note = (
            f"no dev split: {rare!r} has {fewest} example{'s' * (fewest != 1)} (< {DEV_FROM}); no calibration"
        )
        return DataPlan(task, mode, specs, name, data, None, dev_note=note, seed=seed)
    train, held = _split(data, seed)
    note = f"dev: {DEV_SHARE:.0%} of each label's examples, stratified, seed {seed} ({len(held)} of {len(data)} texts)"
    return DataPlan(task, mode, specs, name, train, held, dev_note=note, seed=seed)


def check_target(
    task: str, output: str | os.PathLike[str], base: str | os.PathLike[str] | None, overwrite: bool
) -> None:
    """Before any work: the output is free (or ``overwrite``) and the base model has no head ``task``."""
    from .backbone import bundled_model_dir
    from .manifest import read_manifest

    out = Path(output)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise InputError(f"{out} exists already; pass --overwrite to replace it.")
    heads = list(read_manifest(Path(base) if base is not None else bundled_model_dir())["heads"])
    if task in heads:
        raise InputError(
            f"The base model has a head {task!r} already ({', '.join(heads)}): pick another --task."
        )


def train_from_data(
    plan: DataPlan,
    output: str | os.PathLike[str],
    base: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    device: str | None = None,
    progress: bool = False,
) -> tuple[MultiTaskModel, dict[str, Any]]:
    """Train (or build) the plan's head into the base model and save it to ``output``. Returns the
    model and the task's metrics (dev, or train without a dev split)."""
    from .model import MultiTaskModel

    check_target(plan.task, output, base, overwrite)
    out = Path(output)
    model = MultiTaskModel.default(device) if base is None else MultiTaskModel.load(base, device)
    if plan.mode == "zero_shot":
        return _zero_shot(model, plan, out, overwrite)
    if plan.mode == "few_shot":
        return _few_shot(model, plan, out, overwrite)
    from .heads import MLPHead
    from .training import Trainer
    from .training.config import TaskData, TrainingConfig

    assert plan.train is not None
    settings = {k: v for k, v in HEADS[plan.mode].items() if k != "kind"}
    model.add_head(plan.task, MLPHead(model.dim, plan.names, **settings))
    others = [name for name in model.heads if name != plan.task]
    config = TrainingConfig(
        **TRAINING[plan.mode], freeze=["backbone", *others], seed=plan.seed, calibrate=plan.calibrates
    )
    trainer = Trainer(model, config, output_dir=out, overwrite=overwrite, progress=progress)
    result = trainer.fit([TaskData(plan.task, plan.train, plan.dev)])
    return model, result.metrics.get(plan.task, {})


def _few_shot(
    model: MultiTaskModel, plan: DataPlan, out: Path, overwrite: bool
) -> tuple[MultiTaskModel, dict[str, Any]]:
    from .evaluation import evaluate_task
    from .training.few_shot import FewShotConfig, train_few_shot

    config = FewShotConfig(seed=plan.seed)
    result = train_few_shot(model, plan.task, plan.labels, plan.train, config)
    metrics: dict[str, Any] = dict(result.metrics)
    if plan.dev is not None:
        if plan.calibrates:
            metrics.update(model.calibrate({plan.task: plan.dev})[plan.task])
        metrics.update(evaluate_task(model, plan.task, plan.dev))
    model.record(
        metrics={**getattr(model, "_manifest", {}).get("metrics", {}), plan.task: metrics},
        training={
            "config": {"mode": "few_shot", **config.to_dict()},
            "steps": result.steps,
            "pairs": result.pairs,
            "seconds": result.seconds,
            "data": {plan.task: {"train": plan.source, "dev": plan.dev_note}},
        },
    )
    backbone = "reference" if model.has_packaged_backbone() else "copy"
    empty = out.is_dir() and not any(out.iterdir())
    model.save(out, overwrite=overwrite or empty, backbone=backbone)
    return model, metrics


def _zero_shot(
    model: MultiTaskModel, plan: DataPlan, out: Path, overwrite: bool
) -> tuple[MultiTaskModel, dict[str, Any]]:
    from .heads import ZeroShotHead
    from .zero_shot import ZeroShotClassifier

    start = time.perf_counter()
    pipe = model.pipeline()
    classifier = ZeroShotClassifier.build(plan.labels, lambda t: pipe.embed(t, normalize=False))
    if plan.texts:
        classifier = classifier.self_train(pipe.embed(plan.texts))
    model.add_head(plan.task, ZeroShotHead.from_classifier(classifier))
    settings = {"mode": "zero_shot", "self_training_texts": len(plan.texts), **classifier.config()}
    model.record(
        training={
            "config": settings,
            "steps": 0,
            "seconds": round(time.perf_counter() - start, 1),
            "data": {plan.task: {"unlabelled texts": plan.source}},
        }
    )
    backbone = "reference" if model.has_packaged_backbone() else "copy"
    empty = out.is_dir() and not any(out.iterdir())
    model.save(out, overwrite=overwrite or empty, backbone=backbone)
    return model, {"self_training_texts": len(plan.texts)}
