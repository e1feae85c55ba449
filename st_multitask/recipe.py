"""A training recipe: one YAML/JSON file naming the backbone, the tasks (head + data) and the
training settings. ``stmt train --config`` runs one; Python can too::

    model, tasks, config = load_recipe("examples/configs/joint.yaml")
    Trainer(model, config, output_dir="out").fit(tasks)

The file::

    model:
      backbone: null                 # the packaged all-MiniLM-L6-v2, or a model directory
    tasks:
      sentiment:
        head: {kind: mlp, hidden: [256]}
        train: data/sentiment-train.csv  # paths are relative to this file
        dev: data/sentiment-dev.csv      # or a packaged corpus: corpus:rotten_tomatoes/dev
        text_column: text
        label_column: label
      ner:
        head: {kind: token}
        train: data/ner-train.conll
    training:                        # any TrainingConfig setting
      strategy: joint
      epochs: 3
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .data import SentenceExamples, TokenExamples, read_sentence_examples, read_token_examples
from .errors import InputError
from .heads import get_head_class
from .model import MultiTaskModel
from .training.config import TaskData, TrainingConfig, load_config_file

__all__ = ["TASK_KEYS", "load_recipe", "read_split"]

TASK_KEYS = (
    "head",
    "train",
    "dev",
    "test",
    "text_column",
    "label_column",
    "labels",
    "multi_label_separator",
    "format",
)
_TOP_KEYS = ("model", "tasks", "training")


CORPORA = {"bbc": "load_bbc", "rotten_tomatoes": "load_rotten_tomatoes", "conll2003": "load_conll2003"}


def read_split(
    path: str | os.PathLike[str], level: str, spec: dict[str, Any]
) -> SentenceExamples | TokenExamples:
    """Read one split for a head of the given level.

    ``path`` is a file, or ``corpus:NAME/SPLIT`` for a packaged corpus (``corpus:bbc/train``,
    ``corpus:rotten_tomatoes/dev``, ``corpus:conll2003/test``; see :mod:`st_multitask.corpora`).
    """
    text = os.fspath(path)
    if text.startswith("corpus:"):
        from . import corpora

        name, _, split = text.removeprefix("corpus:").partition("/")
        if name not in CORPORA:
            raise InputError(f"Unknown corpus {name!r} in {text!r}. Valid: {', '.join(CORPORA)}.")
        return getattr(corpora, CORPORA[name])(split or "train")
    if level == "sentence":
        return read_sentence_examples(
            path,
            text_column=spec.get("text_column", "text"),
            label_column=spec.get("label_column", "label"),
            multi_label_separator=spec.get("multi_label_separator"),
            fmt=spec.get("format"),
        )
    return read_token_examples(path, fmt=spec.get("format"))


def _read_recipe_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The mapping in a recipe file; bytes that are not UTF-8 or an unreadable file name the file."""
    try:
        return load_config_file(path)
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{os.fspath(path)} is not valid UTF-8 (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); "
            "save the recipe as UTF-8."
        ) from None
    except OSError as exc:
        raise InputError(f"{os.fspath(path)}: cannot read it ({exc.strerror}).") from None


def load_recipe(
    source: str | os.PathLike[str] | dict[str, Any],
    overrides: dict[str, Any] | None = None,
    device: str | None = None,
    base_dir: str | os.PathLike[str] | None = None,
) -> tuple[MultiTaskModel, list[TaskData], TrainingConfig]:
    """Build the model (backbone + a head per task, labels from the training data), the tasks and
    the training config from a recipe file or dict. ``overrides`` replace training settings."""
    if isinstance(source, dict):
        recipe, where = source, "the recipe"
        base = Path(base_dir or ".")
    else:
        recipe, where = _read_recipe_file(source), str(source)
        base = Path(base_dir) if base_dir is not None else Path(source).resolve().parent
    unknown = [k for k in recipe if k not in _TOP_KEYS]
    if unknown:
        raise InputError(f"{where}: unknown section {unknown[0]!r}. Valid: {', '.join(_TOP_KEYS)}.")
    tasks_spec = recipe.get("tasks")
    if not isinstance(tasks_spec, dict) or not tasks_spec:
        raise InputError(f"{where}: a 'tasks' section with at least one task is required.")
    training = dict(recipe.get("training") or {})
    training.update(overrides or {})
    config = TrainingConfig.from_dict(training)
    # seed before the heads are built: their initial weights are part of the run
    from transformers import set_seed

    set_seed(config.seed)
    model_spec = recipe.get("model") or {}
    if not isinstance(model_spec, dict) or any(k != "backbone" for k in model_spec):
        raise InputError(f"{where}: the 'model' section takes one key, 'backbone'.")
    backbone = model_spec.get("backbone")
    if backbone is not None and not Path(str(backbone)).is_absolute() and (base / str(backbone)).exists():
        backbone = str(base / str(backbone))
    model = MultiTaskModel(backbone, device=device)

    tasks: list[TaskData] = []
    for name, spec in tasks_spec.items():
        if not isinstance(spec, dict):
            raise InputError(f"{where}: task {name!r} must be a mapping with 'head' and 'train'.")
        bad = [k for k in spec if k not in TASK_KEYS]
        if bad:
            raise InputError(
                f"{where}: task {name!r} has unknown setting {bad[0]!r}. Valid: {', '.join(TASK_KEYS)}."
            )
        head_spec = dict(spec.get("head") or {})
        kind = head_spec.pop("kind", "mlp")
        head_cls = get_head_class(kind)
        if "train" not in spec:
            raise InputError(f"{where}: task {name!r} needs a 'train' file.")
        splits = {}
        for split in ("train", "dev", "test"):
            if spec.get(split) is not None:
                value = str(spec[split])
                path = Path(value)
                if not value.startswith("corpus:") and not path.is_absolute():
                    path = base / path
                splits[split] = read_split(
                    value if value.startswith("corpus:") else path, head_cls.level, spec
                )
        labels = spec.get("labels") or splits["train"].label_set()
        if head_cls.level == "token" and "long" in head_spec:
            raise InputError(
                f"{where}: task {name!r}: 'long' (reading long texts as windows) is a sentence-head "
                f"setting; a {kind!r} head tags the words of the first window. Remove it."
            )
        try:
            head = head_cls(in_features=model.dim, labels=labels, **head_spec)
        except TypeError as exc:
            raise InputError(f"{where}: task {name!r}: bad head settings ({exc}).") from None
        except InputError as exc:
            raise InputError(f"{where}: task {name!r}: {exc}") from None
        model.add_head(name, head)
        tasks.append(TaskData(name, splits["train"], splits.get("dev"), splits.get("test")))
    return model, tasks, config
