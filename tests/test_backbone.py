from __future__ import annotations

import logging
import unicodedata

import numpy as np
import pytest

from st_multitask import embed, embed_tokens, load_backbone
from st_multitask.backbone import embedding_dim, resolve_device
from st_multitask.embedding import count_over_window, resolve_model, window_size
from st_multitask.errors import InputError, ModelLoadError
from st_multitask.runtime.feeds import chunk_text

SENTENCES = ["The dog ran across the grass.", "The cat jumped into the weeds.", "Why is the sky blue?"]


def test_default_backbone_is_minilm(backbone):
    assert embedding_dim(backbone) == 384
    assert backbone.max_seq_length == 256
    assert window_size(backbone) == 254


def test_embed_matches_sentence_transformers_encode(backbone):
    ours = embed(SENTENCES, model=backbone)
    plain = backbone.encode(SENTENCES, normalize_embeddings=True)
    assert ours.shape == (3, 384) and ours.dtype == np.float32
    assert np.abs(ours - plain).max() <= 1e-5


def test_embed_default_model_gives_published_similarities(backbone):
    vectors = embed(SENTENCES)  # model=None: the packaged default
    sims = vectors @ vectors.T
    assert sims[0, 1] == pytest.approx(0.376, abs=1e-3)
    assert sims[0, 2] == pytest.approx(0.070, abs=1e-3)
    assert sims[1, 2] == pytest.approx(0.022, abs=1e-3)


def test_embed_single_string_and_unnormalized(backbone):
    one = embed("Why is the sky blue?", model=backbone)
    assert one.shape == (1, 384)
    raw = embed(["Why is the sky blue?"], model=backbone, normalize=False)
    assert np.linalg.norm(one[0]) == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(raw / np.linalg.norm(raw), one, atol=1e-5)


@pytest.mark.parametrize(
    ("texts", "kwargs", "message"),
    [
        ([], {}, "No texts"),
        (["ok", 3], {}, "Text 1 is a int"),
        (["ok"], {"batch_size": 0}, "batch_size"),
        (["ok"], {"long": "split"}, "Valid: truncate, chunk"),
        (42, {}, "Expected a list of strings"),
    ],
)
def test_embed_rejects_bad_input(backbone, texts, kwargs, message):
    with pytest.raises(InputError, match=message):
        embed(texts, model=backbone, **kwargs)


def test_long_text_truncated_with_warning(backbone, caplog):
    long_text = "word " * 600
    assert count_over_window([long_text, "short"], backbone) == 1
    with caplog.at_level(logging.WARNING, logger="st_multitask"):
        embed([long_text, "short"], model=backbone)
    assert "1 of 2 texts are longer than the model window" in caplog.text
    # truncation is what the model does: the text equals its first 254 word pieces
    head = " ".join(["word"] * 254)
    np.testing.assert_allclose(embed([long_text], model=backbone), embed([head], model=backbone), atol=1e-5)


def test_chunk_mode(backbone):
    long_text = " ".join(f"Sentence number {i} talks about topic {i % 7}." for i in range(120))
    short = "A short text stays as it is."
    chunked = embed([long_text, short], model=backbone, long="chunk")
    truncated = embed([long_text, short], model=backbone)
    np.testing.assert_allclose(chunked[1], truncated[1], atol=1e-6)  # short texts unchanged
    assert np.linalg.norm(chunked[0]) == pytest.approx(1.0, abs=1e-5)
    assert np.abs(chunked[0] - truncated[0]).max() > 1e-3  # the tail of the text counts now
    pipe = resolve_model(backbone)
    pieces = chunk_text(long_text, pipe.tokenizer.offsets(long_text), window_size(backbone))
    assert len(pieces) > 2
    assert pieces[0] == long_text[: len(pieces[0])] and long_text.endswith(pieces[-1])
    assert all(count_over_window([p], backbone) == 0 for p in pieces)


def test_embed_tokens_offsets_and_values(backbone):
    text = "Héllo wörld, Apple Inc. bought naïve Zürich-based startups!!"
    item = embed_tokens([text], model=backbone)[0]
    assert item.embeddings.shape == (len(item.tokens), 384)
    for token, (start, end) in zip(item.tokens, item.offsets):
        piece = unicodedata.normalize("NFD", text[start:end].lower())
        piece = "".join(c for c in piece if not unicodedata.combining(c))
        assert piece == token.removeprefix("##")
    reference = backbone.encode([text], output_value="token_embeddings")[0].numpy()
    np.testing.assert_allclose(item.embeddings, reference[1:-1], atol=1e-5)  # [CLS] and [SEP] dropped
    assert not item.truncated


def test_embed_tokens_marks_truncation(backbone):
    item = embed_tokens(["word " * 400 + "END"], model=backbone)[0]
    assert len(item.tokens) == 254 and item.truncated


def test_load_backbone_from_directory(tiny_model_dir):
    model = load_backbone(tiny_model_dir, device="cpu")
    assert embedding_dim(model) == 32
    assert embed(["hello"], model=model).shape == (1, 32)
    assert embed(["hello"], model=str(tiny_model_dir)).shape == (1, 32)


def test_load_backbone_errors(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_backbone(tmp_path / "missing")
    with pytest.raises(ModelLoadError, match="not a model directory"):
        load_backbone(tmp_path)
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(ModelLoadError, match="is a file"):
        load_backbone(tmp_path / "weights.bin")
    with pytest.raises(ModelLoadError, match="packaged default all-MiniLM-L6-v2"):
        load_backbone("no-such-org/no-such-model-xyz")


def test_resolve_device():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device(None) in ("cpu", "cuda")
    with pytest.raises(InputError, match="Unknown device 'gpu0'"):
        resolve_device("gpu0")
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="CUDA is not available"):
            resolve_device("cuda")


def test_forward_batch_tokenizes_once_after_checking_the_first_batch(backbone):
    import torch

    from st_multitask.backbone import forward_batch

    texts = ["  Leading spaces and Ünïcode.", "A second, longer sentence about Paris and Berlin."]
    fresh = load_backbone(device="cpu")
    first = forward_batch(fresh, texts)  # checked against the model's own preprocessing
    assert fresh._stmt_feature_plan is not None
    second = forward_batch(fresh, texts)  # tokenizer output reused
    reference = fresh.encode(texts, convert_to_tensor=True, normalize_embeddings=False)
    for out in (first, second):
        assert torch.allclose(out["sentence_embedding"], reference, atol=1e-5)
        assert out["offset_mapping"].shape[:2] == out["input_ids"].shape
