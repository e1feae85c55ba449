"""Vector codes for the index: unit-length fp32, calibrated int8, and packed sign bits.

The same codes as sentence-transformers' ``quantize_embeddings`` (``int8`` from per-dimension
ranges, ``ubinary`` = ``np.packbits(x > 0)``), in numpy only. int8 here is symmetric (one scale a
dimension, zero stays zero), so a dot product of a float query with dequantized codes is close to
the cosine of the original vectors.

    >>> x = np.array([[0.6, -0.8], [1.0, 0.0]], dtype=np.float32)
    >>> scale = int8_scale(x)
    >>> to_int8(x, scale).tolist()
    [[76, -127], [127, 0]]
    >>> print(from_int8(to_int8(x, scale), scale).round(2))
    [[ 0.6 -0.8]
     [ 1.   0. ]]
    >>> to_binary(x).tolist()
    [[128], [128]]
"""

from __future__ import annotations

import numpy as np

from ..vectors import unit_rows

__all__ = ["from_int8", "int8_scale", "to_binary", "to_int8", "unit_rows"]


def int8_scale(calibration: np.ndarray) -> np.ndarray:
    """Per-dimension scale (the largest magnitude seen) from calibration vectors: shape (dim,)."""
    return np.maximum(np.abs(calibration).max(axis=0), 1e-6).astype(np.float32)


def to_int8(x: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """int8 codes of ``x``; values past the calibrated range are clipped."""
    return np.clip(np.rint(x / scale * 127.0), -127, 127).astype(np.int8)


def from_int8(codes: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Approximate float32 vectors back from int8 codes."""
    return codes.astype(np.float32) * (scale / 127.0)


def to_binary(x: np.ndarray) -> np.ndarray:
    """One bit a dimension (1 where the value is positive), packed 8 to a byte: (n, dim / 8) uint8."""
    return np.packbits(x > 0, axis=-1)
