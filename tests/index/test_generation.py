"""A generation in memory: adding unit vectors with their texts, and the nearest ids, rescored."""

from __future__ import annotations

import numpy as np

from st_multitask.index.generation import Generation
from st_multitask.index.settings import IndexSettings


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_binary_candidates_are_rescored_by_the_kept_int8_vectors(tmp_path):
    rng = np.random.default_rng(0)
    corpus = _unit(rng.normal(size=(300, 64)))
    data = Generation.empty(tmp_path, IndexSettings(storage="binary"), {"name": "toy", "dim": 64}, None, ())
    assert data.settings.rescore == "int8" and data.scale is None
    data.add(list(range(1, 201)), [str(i) for i in range(200)], corpus[:200], "a.txt", None)
    scale = data.scale
    assert scale is not None  # calibrated on the first chunk, then kept
    data.add(list(range(1, 101)), [str(i) for i in range(200, 300)], corpus[200:], "b.txt", None)
    assert data.scale is scale and data.count == 300 and data.texts.count() == 300
    queries = corpus[[5, 250]]
    best = data.nearest(queries, 3)
    assert [row[0][0] for row in best] == [5, 250]
    exact = corpus @ queries.T  # rescored scores are cosines, up to int8 rounding
    for row, column in zip(best, exact.T):
        assert np.allclose([s for _, s in row], column[[i for i, _ in row]], atol=0.02)


def test_equal_scores_come_by_corpus_position(tmp_path):
    data = Generation.empty(tmp_path, IndexSettings(), {"name": "toy", "dim": 2}, None, ())
    same = np.array([[1.0, 0.0]] * 4, dtype=np.float32)
    data.add([1, 2, 3, 4], ["a", "b", "c", "d"], same, "<texts>", None)
    assert [i for i, _ in data.nearest(same[:1], 3)[0]] == [0, 1, 2]
