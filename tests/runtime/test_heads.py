"""The numpy twins of the heads compute the torch heads' logits from the same saved files."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from st_multitask.heads import HybridHead, MLPHead, TokenHead
from st_multitask.heads.context import ContextTokenHead
from st_multitask.runtime.heads import get_numpy_head_class, load_numpy_head, pool_words

LAYERS = 3  # hidden states 0..3
DIM = 8


def _features(batch: int = 3, seq: int = 9, words: tuple[int, ...] = (4, 2, 1)) -> dict:
    generator = torch.Generator().manual_seed(0)
    hidden = [torch.randn(batch, seq, DIM, generator=generator) for _ in range(LAYERS + 1)]
    mask = torch.zeros(batch, seq, dtype=torch.long)
    piece_word = torch.full((batch, seq), -1, dtype=torch.long)
    for row, n in enumerate(words):  # [CLS] w0 w0 w1 ... [SEP]: two pieces for the first word
        pieces = [0, *range(n)]
        mask[row, : len(pieces) + 2] = 1
        piece_word[row, 1 : 1 + len(pieces)] = torch.tensor(pieces)
    pooled = (hidden[-1] * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True)
    n_words = max(words)
    shapes = torch.randint(0, 2, (batch, n_words, 10), generator=generator).float()
    return {
        "token_embeddings": hidden[-1],
        "all_layer_embeddings": tuple(hidden),
        "attention_mask": mask,
        "sentence_embedding": torch.nn.functional.normalize(pooled, dim=-1),
        "piece_word": piece_word,
        "n_words": n_words,
        "word_shape": shapes,
        "word_count": torch.tensor(words),
        "texts": ["a great film", "dull , dull film never seen", "x"][:batch],
        "word_chars": torch.randint(0, 258, (batch, n_words, 16), generator=generator),
    }


def _hybrid(unknown_norm: bool = False, **settings) -> HybridHead:
    features = {"min_df": 1, "unknown_norm": unknown_norm}
    head = HybridHead(DIM, ["neg", "pos"], features=features, **settings)
    head.fit_features(["a great film", "a dull film", "great fun", "dull and long film"])
    return head


def _numpy_features(features: dict) -> dict:
    out = {
        k: v.numpy() if isinstance(v, torch.Tensor) else v
        for k, v in features.items()
        if k != "all_layer_embeddings"
    }
    for i, state in enumerate(features["all_layer_embeddings"]):
        out[f"hidden_state_{i}"] = state.numpy()
    return out


@pytest.mark.parametrize(
    "head",
    [
        MLPHead(DIM, ["a", "b", "c"], hidden=[16]),
        MLPHead(DIM, ["a", "b"], hidden=[], layers=[1, 3]),
        MLPHead(DIM, ["x", "y", "z"], hidden=[5, 4], activation="torch.nn.ReLU", multi_label=True),
        MLPHead(DIM, ["a", "b", "c"], hidden=[4], temperature=2.5),
        TokenHead(DIM, ["O", "B-PER", "I-PER"], hidden=[6]),
        TokenHead(DIM, ["O", "B-PER", "I-PER"], alignment="mean", layers=[0, 2, -1]),
        ContextTokenHead(DIM, ["O", "B-LOC", "I-LOC"], layers=[1, 2], lstm_hidden=5),
        ContextTokenHead(
            DIM, ["O", "B-LOC", "I-LOC"], shape_features=False, lstm_hidden=4, lstm_layers=2, hidden=[3]
        ),
        ContextTokenHead(DIM, ["O", "B-LOC", "I-LOC"], lstm_hidden=4, char_dim=5, char_filters=7),
        _hybrid(hidden=[4]),
        _hybrid(hidden=[], layers=[1, 3], temperature=1.7),
        _hybrid(hidden=[4], unknown_norm=True),
    ],
    ids=[
        "mlp",
        "mlp-layers",
        "mlp-multilabel-relu",
        "mlp-temperature",
        "token",
        "token-mean-layers",
        "context",
        "context-2-layers",
        "context-chars",
        "hybrid",
        "hybrid-layers",
        "hybrid-unknown-norm",
    ],
)
def test_numpy_twin_gives_the_torch_logits(head, tmp_path):
    torch.manual_seed(1)
    for parameter in head.parameters():  # not the initial zeros: a real test of the mixes
        torch.nn.init.normal_(parameter, std=0.5)
    if isinstance(head, HybridHead):  # the wide part must weigh in
        assert head.wide.abs().sum() > 0
    head.mark_trained()
    head.eval()
    features = _features()
    with torch.no_grad():
        expected = head.probabilities(head(features)).numpy()
    head.save(tmp_path)
    twin = load_numpy_head(tmp_path, num_layers=LAYERS)
    got = twin.probabilities(twin.logits(_numpy_features(features)))
    assert twin.is_trained and twin.labels == head.labels and twin.level == head.level
    if head.level == "token":  # words past a row's length are padding in both
        for row, n in enumerate(features["word_count"].tolist()):
            np.testing.assert_allclose(got[row, :n], expected[row, :n], atol=1e-5)
    else:
        np.testing.assert_allclose(got, expected, atol=1e-5)


def test_pool_words_matches_torch():
    from st_multitask.alignment import pool_words as torch_pool

    features = _features()
    for mode in ("first", "mean"):
        expected = torch_pool(features["token_embeddings"], features["piece_word"], 4, mode).numpy()
        got = pool_words(features["token_embeddings"].numpy(), features["piece_word"].numpy(), 4, mode)
        np.testing.assert_allclose(got, expected, atol=1e-6)


def test_a_kind_without_a_twin_is_named(tmp_path):
    assert get_numpy_head_class("no-such-kind") is None
    head = MLPHead(DIM, ["a", "b"], activation="torch.nn.Softplus")
    head.save(tmp_path)
    from st_multitask.errors import ModelLoadError

    with pytest.raises(ModelLoadError, match="Softplus.*backend='torch'"):
        load_numpy_head(tmp_path, num_layers=LAYERS)
