"""Calibrated scores: temperature scaling fitted on dev data, and the expected calibration error.

A classifier's softmax is often over-confident. Temperature scaling (Guo et al., 2017) divides the
logits by one number T, fitted to minimise the negative log-likelihood on held-out data: labels do
not change, scores become honest. Torch-free (numpy and scipy), so the fast path shares it.

    >>> import numpy as np
    >>> logits = np.array([[4.0, 0.0], [3.0, 0.0], [0.0, 3.0], [2.5, 0.0]])
    >>> labels = np.array([0, 1, 1, 0])            # one confident mistake: T rises above 1
    >>> fit_temperature(logits, labels) > 1.0
    True
    >>> round(expected_calibration_error(np.array([[0.9, 0.1], [0.8, 0.2]]), np.array([0, 1])), 3)
    0.45
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .errors import InputError

__all__ = [
    "ECE_BINS",
    "OTHER_KEEP",
    "calibrate_logits",
    "expected_calibration_error",
    "fit_other_threshold",
    "fit_temperature",
    "softmax",
]

ECE_BINS = 15
OTHER_KEEP = 0.98  # share of in-scope held-out texts an out-of-scope threshold keeps at least


def fit_other_threshold(
    p_other: Sequence[float] | np.ndarray, is_other: Sequence[bool] | np.ndarray, keep: float = OTHER_KEEP
) -> float:
    """The out-of-scope threshold on held-out data: a probability of the ``other`` class below which
    at least ``keep`` of the in-scope texts stay (halfway between the highest in-scope score that
    must stay below it and the next held-out score), so that as many out-of-scope texts as
    possible reach it. ``p_other`` is each text's probability of ``other``, ``is_other``
    whether its gold label is ``other``.

    >>> fit_other_threshold([0.01, 0.02, 0.3, 0.9, 0.8], [False, False, False, True, True], keep=0.6)
    0.16
    """
    p_other = np.asarray(p_other, dtype=np.float64)
    is_other = np.asarray(is_other, dtype=bool)
    if not 0.5 <= keep < 1.0:
        raise InputError(f"keep must be in [0.5, 1), got {keep!r}.")
    inside = np.sort(p_other[~is_other])
    if len(inside) < 2 or not is_other.any():
        raise InputError(
            "Fitting an out-of-scope threshold needs held-out texts of both kinds: in-scope ones "
            "and ones labelled with the head's other_label."
        )
    # the in-scope texts at or above the threshold are lost: at most (1 - keep) of them
    lost = int(np.floor((1.0 - keep) * len(inside)))
    cutoff = inside[len(inside) - lost - 1]  # the highest in-scope score that must stay below
    above = p_other[p_other > cutoff]
    if not len(above):
        return 1.0
    return round((float(cutoff) + float(above.min())) / 2, 6)  # halfway to the next held-out score


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``logits / temperature``."""
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    scaled -= scaled.max(axis=-1, keepdims=True)
    exp = np.exp(scaled)
    return exp / exp.sum(axis=-1, keepdims=True)


def fit_temperature(logits: np.ndarray, labels: Sequence[int] | np.ndarray) -> float:
    """The temperature T (0.05-20) that minimises the mean negative log-likelihood of ``labels``
    under ``softmax(logits / T)``; ``logits`` is (n, classes), ``labels`` class ids."""
    from scipy.optimize import minimize_scalar

    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if logits.ndim != 2 or len(logits) != len(labels) or len(labels) < 2:
        raise InputError("Temperature scaling needs logits (n, classes) and n >= 2 labels of held-out data.")

    def nll(log_t: float) -> float:
        probs = softmax(logits, float(np.exp(log_t)))
        return float(-np.log(np.maximum(probs[np.arange(len(labels)), labels], 1e-12)).mean())

    best = minimize_scalar(
        nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded", options={"xatol": 1e-4}
    )
    return round(float(np.exp(best.x)), 4)


def expected_calibration_error(
    probabilities: np.ndarray, labels: Sequence[int] | np.ndarray, bins: int = ECE_BINS
) -> float:
    """ECE: the gap between confidence (top probability) and accuracy, averaged over ``bins``
    equal-width confidence bins weighted by their share of the texts."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels)
    if len(probabilities) == 0:
        return 0.0
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        members = which == b
        if members.any():
            total += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return float(total)


def calibrate_logits(logits: np.ndarray, labels: np.ndarray, other: int | None = None) -> dict[str, float]:
    """A head's temperature fitted on held-out ``logits`` (n, labels) and gold ``labels``, with the
    expected calibration error before and after; and, with ``other`` (the out-of-scope label's
    index), its threshold (:func:`fit_other_threshold`).

    >>> report = calibrate_logits(np.array([[4.0, 0.0], [0.0, 4.0], [3.0, 1.0]]), np.array([0, 1, 1]))
    >>> sorted(report)
    ['ece_after', 'ece_before', 'temperature']
    """
    before = expected_calibration_error(softmax(logits, 1.0), labels)
    temperature = fit_temperature(logits, labels)
    probabilities = softmax(logits, temperature)
    report = {
        "temperature": temperature,
        "ece_before": round(before, 4),
        "ece_after": round(expected_calibration_error(probabilities, labels), 4),
    }
    if other is not None:
        report["other_threshold"] = fit_other_threshold(probabilities[:, other], labels == other)
    return report
