from __future__ import annotations

import numpy as np
import pytest
import torch

from st_multitask import cosine_similarity, embed, pairwise_similarity, paraphrases, search
from st_multitask.errors import InputError


def _ref_cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return a @ b.T


@pytest.fixture
def vectors():
    rng = np.random.default_rng(0)
    return rng.normal(size=(7, 16)).astype(np.float32), rng.normal(size=(5, 16)).astype(np.float32)


def test_cosine_matrix_matches_numpy(vectors):
    a, b = vectors
    np.testing.assert_allclose(cosine_similarity(a, b), _ref_cos(a, b), atol=1e-6)
    np.testing.assert_allclose(cosine_similarity(torch.from_numpy(a), b), _ref_cos(a, b), atol=1e-6)
    assert cosine_similarity(a[0], b).shape == (1, 5)  # a single vector is one row


def test_pairwise_matches_numpy(vectors):
    a, b = vectors
    np.testing.assert_allclose(pairwise_similarity(a[:5], b), np.diag(_ref_cos(a[:5], b)), atol=1e-6)
    with pytest.raises(InputError, match="as many items"):
        pairwise_similarity(a, b)


def test_search_matches_brute_force(vectors):
    a, b = vectors
    hits = search(a, b, top_k=3)
    expected = np.argsort(-_ref_cos(a, b), axis=1)[:, :3]
    assert [[h["corpus_id"] for h in row] for row in hits] == expected.tolist()
    assert all(h["text"] is None for row in hits for h in row)
    scores = [h["score"] for h in hits[0]]
    assert scores == sorted(scores, reverse=True)


def test_paraphrases_match_brute_force(vectors):
    a, _ = vectors
    sims = _ref_cos(a, a)
    pairs = paraphrases(a, top_k=10)
    assert len(pairs) == 7 * 6 // 2
    for p in pairs:
        assert p["i"] < p["j"] and p["score"] == pytest.approx(sims[p["i"], p["j"]], abs=1e-5)
    assert [p["score"] for p in pairs] == sorted((p["score"] for p in pairs), reverse=True)


def test_texts_and_embeddings_agree(backbone):
    a = ["The dog ran across the grass.", "Why is the sky blue?"]
    b = ["The cat jumped into the weeds.", "A dog barked.", "Stocks fell."]
    from_texts = cosine_similarity(a, b, model=backbone)
    from_vectors = cosine_similarity(embed(a, model=backbone), embed(b, model=backbone))
    np.testing.assert_allclose(from_texts, from_vectors, atol=1e-6)
    hits = search(["a pet animal"], b, top_k=2, model=backbone)
    assert [h["text"] for h in hits[0]] == ["A dog barked.", "The cat jumped into the weeds."]
    assert paraphrases(["A man eats food.", "A man is eating a meal.", "The sky is blue."])[0]["i"] == 0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: cosine_similarity([], ["x"]), "a is empty"),
        (lambda: cosine_similarity(np.ones((2, 3)), np.ones((2, 4))), "widths differ"),
        (lambda: cosine_similarity([1, 2], ["x"]), "list of strings"),
        (lambda: search(np.ones((1, 3)), np.ones((2, 3)), top_k=0), "top_k"),
        (lambda: paraphrases(np.ones((1, 3))), "at least two"),
        (lambda: cosine_similarity(np.ones((0, 3)), np.ones((2, 3))), "non-empty"),
    ],
)
def test_bad_input(call, message):
    with pytest.raises(InputError, match=message):
        call()


def test_similarity_records_are_what_the_cli_and_the_server_return(vectors):
    from st_multitask.similarity import similarity_records

    a, b = vectors
    texts_a, texts_b = [f"a{i}" for i in range(len(a))], [f"b{j}" for j in range(len(b))]
    matrix = _ref_cos(a, b)
    best = similarity_records(
        texts_a, texts_b, "best", 2, embeddings_a=a, embeddings_b=b, lines_b=range(10, 15)
    )
    assert [r["rank"] for r in best] == [1, 2] * len(a)
    for i in range(len(a)):
        order = np.argsort(-matrix[i], kind="stable")[:2]
        got = best[2 * i : 2 * i + 2]
        assert [r["line_b"] for r in got] == [10 + j for j in order] and got[0]["line_a"] == i + 1
        assert [r["b"] for r in got] == [texts_b[j] for j in order] and got[0]["a"] == texts_a[i]
        np.testing.assert_allclose([r["score"] for r in got], matrix[i, order], atol=1e-6)
    assert list(best[0]) == ["line_a", "a", "rank", "line_b", "b", "score"]
    # one match a text: no rank, whether top_k is 1 or b holds one text (the CLI's rule)
    for k, bb in ((1, b), (3, b[:1])):
        records = similarity_records(texts_a, texts_b[: len(bb)], top_k=k, embeddings_a=a, embeddings_b=bb)
        assert list(records[0]) == ["line_a", "a", "line_b", "b", "score"] and len(records) == len(a)
    pairs = similarity_records(texts_a[:5], texts_b, "pairwise", embeddings_a=a[:5], embeddings_b=b)
    assert [r["line"] for r in pairs] == [1, 2, 3, 4, 5] and [r["b"] for r in pairs] == texts_b
    np.testing.assert_allclose([r["score"] for r in pairs], np.diag(matrix[:5]), atol=1e-6)
    grid = similarity_records(texts_a, texts_b, "matrix", embeddings_a=a, embeddings_b=b)
    assert (grid["a"], grid["b"]) == (texts_a, texts_b)
    np.testing.assert_allclose(grid["scores"], matrix, atol=1e-6)
    with pytest.raises(InputError, match="Unknown similarity mode 'all'. Valid: best, pairwise, matrix"):
        similarity_records(texts_a, texts_b, "all", embeddings_a=a, embeddings_b=b)
    with pytest.raises(InputError, match="a has 6 texts and 7 embeddings"):
        similarity_records(texts_a[:6], texts_b, embeddings_a=a, embeddings_b=b)
