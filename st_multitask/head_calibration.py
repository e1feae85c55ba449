"""Calibrate a model's heads on held-out data: the temperature of each single-label sentence head,
and the out-of-scope threshold of a head with an ``other`` label. The arithmetic is
:mod:`st_multitask.calibration`'s; this module runs the model to get the logits.

``MultiTaskModel.calibrate`` is this module's :func:`calibrate_heads`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, cast

import numpy as np
import torch

from .calibration import calibrate_logits
from .data import SentenceExamples, TokenExamples
from .errors import InputError

__all__ = ["calibrate_heads"]


class _Calibrated(Protocol):
    """What calibration sets on a head whose ``calibrates`` is True (an MLPHead kind)."""

    temperature: float
    other_label: str | None
    other_threshold: float | None


def calibrate_heads(
    model: Any, data: Mapping[str, SentenceExamples | TokenExamples], batch_size: int = 64
) -> dict[str, dict[str, float]]:
    """Calibrate the heads of ``model`` (a ``MultiTaskModel``) named by ``data``, in eval mode
    (the model's train/eval mode is restored); ``{task: report}`` as
    :func:`~st_multitask.calibration.calibrate_logits` gives it."""
    report: dict[str, dict[str, float]] = {}
    was_training = model.training
    model.eval()
    try:
        for task, examples in data.items():
            report[task] = _calibrate_head(model, task, examples, batch_size)
    finally:
        model.train(was_training)
    return report


def _calibrate_head(
    model: Any, task: str, examples: SentenceExamples | TokenExamples, batch_size: int
) -> dict[str, float]:
    heads = model.heads
    if task not in heads:
        raise InputError(f"Unknown task {task!r}. Valid: {', '.join(heads) or 'none (no heads)'}.")
    head = heads[task]
    if head.level != "sentence" or not head.calibrates:
        raise InputError(f"Task {task!r}: only single-label sentence heads are calibrated by temperature.")
    if not isinstance(examples, SentenceExamples):
        raise InputError(f"Task {task!r}: calibration needs labelled sentences, not tagged words.")
    ids = head.encode_labels(examples.labels).numpy()
    chunks = []
    with torch.no_grad():
        for start in range(0, len(examples.texts), batch_size):
            inputs, _ = model.head_inputs(examples.texts[start : start + batch_size], [task])
            chunks.append(head(inputs[task]).float().cpu().numpy())
    logits = np.concatenate(chunks)
    scaled = cast(_Calibrated, head)
    label = getattr(head, "other_label", None)
    other = None if label is None else head.label2id[label]
    report = calibrate_logits(logits, ids, other)
    scaled.temperature = report["temperature"]
    if "other_threshold" in report:
        scaled.other_threshold = report["other_threshold"]
    return report
