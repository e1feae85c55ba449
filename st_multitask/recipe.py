"""A training recipe: one YAML/JSON file naming the backbone, the tasks (head + data) and the
training settings. ``stmt train --config`` runs one; Python can too::

    model, tasks, config = load_recipe("examples/configs/joint.yaml")
    Trainer(model, config, output_dir="out").fit(tasks)

The file::

    model:
      backbone: null                 # the packaged all-MiniLM-L6-v2, or a model directory
      branch: {layers: 2, share: all}  # optional task branches: one for all tasks, or share: task
    tasks:
      sentiment:
        head: {kind: mlp, hidden: [256]}
        train: data/sentiment-train.csv  # paths are relative to this file; a list of sources is joined
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
import types
import typing
from pathlib import Path
from typing import Any, cast

from .data import SentenceExamples, TokenExamples, concatenate, read_sentence_examples, read_token_examples
from .errors import InputError, StMultitaskError
from .heads import Head, get_head_class
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
    "branch",
)
_TOP_KEYS = ("model", "tasks", "training")


def read_split(
    path: str | os.PathLike[str], level: str, spec: dict[str, Any]
) -> SentenceExamples | TokenExamples:
    """Read one split for a head of the given level.

    ``path`` is a file, or ``corpus:NAME/SPLIT`` for a packaged corpus (``corpus:bbc/train``,
    ``corpus:rotten_tomatoes/dev``, ``corpus:conll2003/test``; see :mod:`st_multitask.corpora`).
    """
    text = os.fspath(path)
    if text.startswith("corpus:"):
        from .corpora import CORPORA, Split

        name, _, split = text.removeprefix("corpus:").partition("/")
        if name not in CORPORA:
            raise InputError(f"Unknown corpus {name!r} in {text!r}. Valid: {', '.join(CORPORA)}.")
        return CORPORA[name](cast("Split", split or "train"))  # each loader checks its split
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


def _type_name(hint: Any) -> str:
    return hint.__name__ if isinstance(hint, type) else str(hint).replace("typing.", "")


def _matches(value: Any, hint: Any) -> bool:
    """Whether a value read from a recipe has the type of a setting (``int``, ``list[str] | None``...)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in args)
    if hint is type(None):
        return value is None
    if origin is typing.Literal:  # the setting's own check names the valid choices
        return isinstance(value, str)
    if hint in (int, float):
        numbers = (int, float) if hint is float else (int,)
        return isinstance(value, numbers) and not isinstance(value, bool)
    if hint in (bool, str):
        return isinstance(value, hint)
    if origin is list:
        return isinstance(value, list) and all(_matches(v, args[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict) and all(
            _matches(k, args[0]) and _matches(v, args[1]) for k, v in value.items()
        )
    return True


def _training_config(values: dict[str, Any], where: str) -> TrainingConfig:
    """The training settings, each checked against its type, with any problem named by the recipe."""
    hints = typing.get_type_hints(TrainingConfig)
    for name, value in values.items():
        hint = hints.get(name) if isinstance(name, str) else None
        if name == "freeze" and isinstance(value, str):  # "backbone,sentiment" is split by the config
            continue
        if hint is not None and not _matches(value, hint):
            raise InputError(f"{where}: training setting {name} must be {_type_name(hint)}, not {value!r}.")
    try:
        return TrainingConfig.from_dict(values)
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None
    except (TypeError, ValueError, AttributeError) as exc:  # a setting of the wrong type: warmup_ratio: abc
        raise InputError(f"{where}: a training setting has the wrong type ({exc}).") from None


def _head_spec(spec: Any, where: str) -> tuple[type[Head], dict[str, Any]]:
    """The head class and its settings from a task's ``head`` mapping (default: an MLP)."""
    if spec is not None and not isinstance(spec, dict):
        raise InputError(f"{where}: 'head' must be a mapping such as {{kind: mlp}}, not {spec!r}.")
    settings = dict(spec or {})
    kind = settings.pop("kind", "mlp")
    if not isinstance(kind, str):
        raise InputError(f"{where}: the head kind must be a name such as 'mlp', not {kind!r}.")
    try:
        return get_head_class(kind), settings
    except StMultitaskError as exc:
        raise InputError(f"{where}: {exc}") from None


_STRING_KEYS = ("text_column", "label_column", "multi_label_separator", "format")


def _check_task_values(spec: dict[str, Any], where: str) -> None:
    """The types of a task's settings: strings, file names (or lists of them), a list of labels."""
    if spec.get("train") is None:
        raise InputError(f"{where} needs a 'train' file.")
    for key in _STRING_KEYS:
        if spec.get(key) is not None and not isinstance(spec[key], str):
            raise InputError(f"{where}: {key} must be a string, not {spec[key]!r}.")
    for split in ("train", "dev", "test"):
        value = spec.get(split)
        values = value if isinstance(value, list) else [value]
        if any(isinstance(v, (dict, list, bool)) for v in values):
            raise InputError(
                f"{where}: {split} must be a file, corpus:NAME/SPLIT or a list of them, not {value!r}."
            )
    labels = spec.get("labels")
    if labels is not None and not isinstance(labels, list):
        raise InputError(f"{where}: labels must be a list of label names, not {labels!r}.")


def _add_branches(model: MultiTaskModel, spec: dict[str, Any], tasks: list[str], where: str) -> Any:
    """Add the recipe's task branches to ``model``; returns task -> its default branch (or None).

    ``branch: {layers: K, share: all | task}`` is one branch for every task (named ``shared``) or
    one per task (named after it); ``branches: {name: {layers: K}}`` names them, and each task
    picks one with its own ``branch:`` setting."""
    short, named = spec.get("branch"), spec.get("branches") or {}
    if short is not None and named:
        raise InputError(f"{where}: give model.branch or model.branches, not both.")
    if not isinstance(named, dict) or not all(
        isinstance(v, dict) and set(v) <= {"layers"} for v in named.values()
    ):
        raise InputError(f"{where}: model.branches must map names to {{layers: K}}.")
    if short is not None and (not isinstance(short, dict) or not set(short) <= {"layers", "share"}):
        raise InputError(f"{where}: model.branch takes layers and share (all or task), e.g. {{layers: 2}}.")
    try:
        for name, settings in named.items():
            model.add_branch(name, settings.get("layers", 2))
        if short is None:
            return lambda task: None
        share = short.get("share", "all")
        if share not in ("all", "task"):
            raise InputError(f"model.branch.share must be 'all' or 'task', not {share!r}.")
        for name in ["shared"] if share == "all" else tasks:
            model.add_branch(name, short.get("layers", 2))
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None
    return (lambda task: "shared") if share == "all" else (lambda task: task)


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
    training = recipe.get("training") or {}
    if not isinstance(training, dict):
        raise InputError(
            f"{where}: 'training' must be a mapping of settings, not a {type(training).__name__}."
        )
    config = _training_config({**training, **(overrides or {})}, where)
    # seed before the heads are built: their initial weights are part of the run
    from transformers import set_seed

    set_seed(config.seed)
    model_spec = recipe.get("model") or {}
    if not isinstance(model_spec, dict) or any(
        k not in ("backbone", "branch", "branches") for k in model_spec
    ):
        raise InputError(f"{where}: the 'model' section takes 'backbone', 'branch' and 'branches'.")
    backbone = model_spec.get("backbone")
    if backbone is not None and not isinstance(backbone, str):
        raise InputError(f"{where}: model.backbone must be a model directory or name, not {backbone!r}.")
    if backbone is not None and not Path(str(backbone)).is_absolute() and (base / str(backbone)).exists():
        backbone = str(base / str(backbone))
    model = MultiTaskModel(backbone, device=device)
    default_branch = _add_branches(model, model_spec, list(tasks_spec), where)

    tasks: list[TaskData] = []
    for name, spec in tasks_spec.items():
        if not isinstance(spec, dict):
            raise InputError(f"{where}: task {name!r} must be a mapping with 'head' and 'train'.")
        bad = [k for k in spec if k not in TASK_KEYS]
        if bad:
            raise InputError(
                f"{where}: task {name!r} has unknown setting {bad[0]!r}. Valid: {', '.join(TASK_KEYS)}."
            )
        head_cls, head_spec = _head_spec(spec.get("head"), f"{where}: task {name!r}")
        kind = head_cls.kind
        _check_task_values(spec, f"{where}: task {name!r}")
        splits = {}
        for split in ("train", "dev", "test"):
            if spec.get(split) is not None:
                sources = spec[split] if isinstance(spec[split], list) else [spec[split]]
                if not sources:
                    raise InputError(f"{where}: task {name!r} has an empty list for {split!r}.")
                parts = []
                for value in map(str, sources):
                    if value.startswith("corpus:"):
                        try:
                            parts.append(read_split(value, head_cls.level, spec))
                        except InputError as exc:
                            raise InputError(f"{where}: task {name!r}: {exc}") from None
                        continue
                    path = Path(value)
                    parts.append(
                        read_split(path if path.is_absolute() else base / path, head_cls.level, spec)
                    )
                splits[split] = concatenate(parts)
        labels = spec.get("labels") or splits["train"].label_set()
        if head_cls.level == "token" and "long" in head_spec:
            raise InputError(
                f"{where}: task {name!r}: 'long' (reading long texts as windows) is a sentence-head "
                f"setting; a {kind!r} head tags the words of the first window. Remove it."
            )
        try:
            head = head_cls(in_features=model.dim, labels=labels, **head_spec)
            model.add_head(name, head, spec.get("branch", default_branch(name)))
        except (TypeError, ValueError, RuntimeError) as exc:  # a setting of the wrong type or size
            raise InputError(f"{where}: task {name!r}: bad head settings ({exc}).") from None
        except InputError as exc:
            raise InputError(f"{where}: task {name!r}: {exc}") from None
        tasks.append(TaskData(name, splits["train"], splits.get("dev"), splits.get("test")))
    return model, tasks, config
