"""Vector helpers shared by every part that returns or compares embeddings.

>>> import numpy as np
>>> unit_rows(np.array([[3.0, 4.0], [0.0, 0.0]])).tolist()
[[0.6000000238418579, 0.800000011920929], [0.0, 0.0]]
"""

from __future__ import annotations

import numpy as np

__all__ = ["unit_rows"]


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """(n, dim) float32 rows scaled to unit length (zero rows stay zero), as
    torch.nn.functional.normalize and sentence-transformers' cos_sim do (eps 1e-12)."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
