from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch
from sentence_transformers import SentenceTransformer

from st_multitask import MultiTaskModel, embed
from st_multitask.alignment import split_words
from st_multitask.errors import InputError, ModelLoadError
from st_multitask.heads import MLPHead, TokenHead

NER_LABELS = ["O", "B-MISC", "I-MISC"]


@pytest.fixture
def model(backbone):
    torch.manual_seed(0)
    m = MultiTaskModel(backbone)
    m.add_head("topic", MLPHead(m.dim, ["business", "sport", "tech"], hidden=[32]))
    m.add_head("sentiment", MLPHead(m.dim, ["negative", "positive"], hidden=[]))
    m.add_head("ner", TokenHead(m.dim, NER_LABELS, hidden=[16]))
    for head in m.heads.values():
        head.mark_trained()
    return m


def _every_word_is_an_entity(model: MultiTaskModel) -> None:
    """Make the token head tag every word B-MISC, so entities == words (tests alignment, not learning)."""
    head = model.heads["ner"]
    with torch.no_grad():
        last = head.mlp[-1]
        last.weight.zero_()
        last.bias.copy_(torch.tensor([0.0, 5.0, 0.0]))


def test_predict_structure(model):
    text = "Apple is buying a U.K. startup for $1 billion"
    (result,) = model.predict([text])
    assert set(result) == {"topic", "sentiment", "ner"}
    topic = result["topic"]
    assert topic["label"] in ("business", "sport", "tech")
    assert sum(topic["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    assert topic["score"] == max(topic["probabilities"].values())
    for entity in result["ner"]:
        assert text[entity["start"] : entity["end"]] == entity["text"]
        assert entity["label"] == "MISC" and 0 <= entity["score"] <= 1


def test_one_backbone_pass_per_batch(model):
    calls = []
    hook = model.backbone.register_forward_hook(lambda *args: calls.append(1))
    try:
        model.predict([f"Text number {i} about things." for i in range(10)], batch_size=4)
    finally:
        hook.remove()
    assert len(calls) == 3  # ceil(10 / 4): every head is fed by the same pass


def test_encode_equals_embed(model, backbone):
    texts = ["The dog ran across the grass.", "Why is the sky blue?"]
    np.testing.assert_allclose(model.encode(texts), embed(texts, model=backbone), atol=1e-6)


def test_predict_proba_matches_predict(model):
    texts = ["Great match last night.", "Shares fell"]
    proba = model.predict_proba(texts)
    labels = model.predict(texts)
    for p, r in zip(proba, labels):
        assert p["topic"].shape == (3,) and p["ner"].shape[1] == 3
        assert r["topic"]["label"] == model.heads["topic"].labels[int(np.argmax(p["topic"]))]


def test_order_is_kept_despite_length_sorting(model):
    texts = ["short", "a much much longer text than the first one", "mid length text"]
    together = model.predict_proba(texts, tasks="topic")
    one_by_one = [model.predict_proba([t], tasks="topic")[0] for t in texts]
    for a, b in zip(together, one_by_one):
        np.testing.assert_allclose(a["topic"], b["topic"], atol=1e-5)


@pytest.mark.parametrize(
    "text",
    [
        "Héllo from Zürich, São Paulo and Kraków!",  # accents
        'Dr. Smith (the CEO) said: "No."',  # punctuation
        "Antidisestablishmentarianism pneumonoultramicroscopic",  # many pieces a word
        "New York New York New York",  # repeated words
        "東京 は 日本 の 首都 です",  # non-Latin script
    ],
)
def test_entities_offsets_on_hard_text(model, text):
    _every_word_is_an_entity(model)
    (result,) = model.predict([text], tasks="ner")
    words = [text[s:e] for s, e in split_words(text)]
    assert [e["text"] for e in result["ner"]] == words
    assert all(text[e["start"] : e["end"]] == e["text"] for e in result["ner"])


def test_pre_split_words(model):
    _every_word_is_an_entity(model)
    words = ["EU", "rejects", "German", "call", "to", "boycott", "British", "lamb", "."]
    (result,) = model.predict([words], tasks="ner")
    assert [e["text"] for e in result["ner"]] == words
    assert result["ner"][2]["start"] == len("EU rejects ")


def test_text_past_the_window_has_no_entities_there(model):
    """Words past the model window are not read: they are never tagged (documented in the README)."""
    _every_word_is_an_entity(model)
    text = " ".join(f"w{i}" for i in range(400))
    (result,) = model.predict([text], tasks="ner")
    assert 100 < len(result["ner"]) < 254
    last = result["ner"][-1]
    assert text[last["start"] : last["end"]] == last["text"] and last["end"] < len(text) // 2


def test_task_selection_and_errors(model):
    assert set(model.predict(["x y"], tasks=["sentiment"])[0]) == {"sentiment"}
    assert set(model.predict(["x y"], tasks="topic,ner")[0]) == {"topic", "ner"}
    with pytest.raises(InputError, match="Unknown task 'size'. Valid: topic, sentiment, ner"):
        model.predict(["x"], tasks="size")
    with pytest.raises(InputError, match="Text 1 is blank"):
        model.predict(["x", "  "])
    with pytest.raises(InputError, match="No texts"):
        model.predict([])
    with pytest.raises(InputError, match="exists already"):
        model.add_head("topic", MLPHead(model.dim, ["a"]))
    with pytest.raises(InputError, match="takes 10-d input; the backbone gives 384-d"):
        model.add_head("small", MLPHead(10, ["a"]))
    removed = model.remove_head("sentiment")
    assert isinstance(removed, MLPHead) and "sentiment" not in model.heads
    with pytest.raises(InputError, match="no heads"):
        MultiTaskModel(model.backbone).predict(["x"])


def test_untrained_heads_warn(backbone, caplog):
    m = MultiTaskModel(backbone, heads={"s": MLPHead(384, ["a", "b"])})
    with caplog.at_level(logging.WARNING, logger="st_multitask"):
        m.predict(["x"])
    assert "Head s has not been trained: predictions are random." in caplog.text


def test_save_load_roundtrip(model, tmp_path):
    texts = ["Apple is buying a U.K. startup for $1 billion", "The match ended 2-1."]
    path = model.save(tmp_path / "m")
    loaded = MultiTaskModel.load(path, device="cpu")
    assert list(loaded.heads) == ["topic", "sentiment", "ner"]
    for a, b in zip(model.predict_proba(texts), loaded.predict_proba(texts)):
        for task in a:
            assert torch.allclose(torch.from_numpy(a[task]), torch.from_numpy(b[task]), atol=1e-6)
    assert model.predict(texts) == loaded.predict(texts)
    # the directory is still a plain sentence-transformers model
    plain = SentenceTransformer(str(path), device="cpu")
    np.testing.assert_allclose(plain.encode(texts), model.encode(texts), atol=1e-5)
    manifest = json.loads((path / "st_multitask.json").read_text())
    assert manifest["format_version"] == 1 and manifest["heads"]["ner"]["labels"] == NER_LABELS


def test_save_referencing_the_packaged_backbone(model, tmp_path):
    path = model.save(tmp_path / "small", backbone="reference")
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    assert size < 2_000_000 and not (path / "model.safetensors").exists()
    loaded = MultiTaskModel.load(path)
    assert model.predict(["Shares fell"]) == loaded.predict(["Shares fell"])


def test_save_never_overwrites_silently(model, tmp_path):
    path = model.save(tmp_path / "m", backbone="reference")
    with pytest.raises(InputError, match="exists already; pass overwrite=True"):
        model.save(path)
    model.remove_head("ner")
    model.save(path, overwrite=True, backbone="reference")
    assert list(MultiTaskModel.load(path).heads) == ["topic", "sentiment"]
    assert [p.name for p in tmp_path.iterdir()] == ["m"]  # no temporary folders left


def test_load_rejects_damaged_directories(model, tmp_path):
    path = model.save(tmp_path / "m", backbone="reference")
    weights = path / "heads" / "topic" / "model.safetensors"
    original = weights.read_bytes()
    weights.write_bytes(original[:-10])
    with pytest.raises(ModelLoadError, match=r"heads/topic/model.safetensors does not match the hash"):
        MultiTaskModel.load(path)
    weights.unlink()
    with pytest.raises(ModelLoadError, match=r"heads/topic/model.safetensors is missing"):
        MultiTaskModel.load(path)
    weights.write_bytes(original)
    (path / "heads" / "evil.pkl").write_bytes(b"\x80\x04")
    with pytest.raises(ModelLoadError, match="Refusing to load .*evil.pkl"):
        MultiTaskModel.load(path)
    (path / "heads" / "evil.pkl").unlink()
    (path / "st_multitask.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="not a valid manifest"):
        MultiTaskModel.load(path)
    (path / "st_multitask.json").unlink()
    with pytest.raises(ModelLoadError, match="st_multitask.json is missing"):
        MultiTaskModel.load(path)
    with pytest.raises(ModelLoadError, match="is not a directory"):
        MultiTaskModel.load(tmp_path / "nope")


def test_default_model_ships_and_predicts():
    model = MultiTaskModel.default()
    assert list(model.heads) == ["topic", "sentiment", "ner"] and all(
        h.is_trained for h in model.heads.values()
    )
    business, people = model.predict(
        [
            "Apple is buying a U.K. startup for $1 billion",
            "Angela Merkel met Tim Cook in Berlin to discuss Apple's new factory.",
        ]
    )
    assert business["topic"]["label"] == "business"
    assert (business["ner"][0]["text"], business["ner"][0]["label"]) == ("Apple", "ORG")
    assert [(e["text"], e["label"]) for e in people["ner"]] == [
        ("Angela Merkel", "PER"),
        ("Tim Cook", "PER"),
        ("Berlin", "LOC"),
        ("Apple", "ORG"),  # the possessive stays outside the span
    ]
    # the backbone is the unchanged packaged MiniLM: embeddings are exactly all-MiniLM-L6-v2's
    assert model.has_packaged_backbone()
    # three-class sentiment, and a topic head that says "other" past a threshold fitted on dev
    assert model.heads["sentiment"].labels == ["negative", "neutral", "positive"]
    topic = model.heads["topic"]
    assert "other" in topic.labels and topic.other_label == "other" and 0 < topic.other_threshold < 1


def test_info(model):
    info = model.info()
    assert info["backbone"]["dimension"] == 384
    assert info["heads"]["ner"]["kind"] == "token" and info["heads"]["ner"]["labels"] == NER_LABELS


def test_token_head_mixing_hidden_layers(backbone):
    m = MultiTaskModel(backbone, heads={"ner": TokenHead(384, NER_LABELS, layers=[2, 4, 6])})
    m.heads["ner"].mark_trained()
    config = backbone[0].auto_model.config
    before = config.output_hidden_states
    (proba,) = m.predict_proba(["Angela Merkel visited Paris"])
    assert proba["ner"].shape == (4, 3)
    assert config.output_hidden_states == before  # restored after the pass


def test_sentence_head_mixing_hidden_layers(backbone):
    m = MultiTaskModel(backbone, heads={"s": MLPHead(384, ["a", "b"], layers=[3, 6])})
    m.heads["s"].mark_trained()
    (proba,) = m.predict_proba(["A fine day."])
    assert proba["s"].shape == (2,) and abs(float(proba["s"].sum()) - 1) < 1e-5
