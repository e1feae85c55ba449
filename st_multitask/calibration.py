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

__all__ = ["ECE_BINS", "expected_calibration_error", "fit_temperature", "softmax"]

ECE_BINS = 15


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
