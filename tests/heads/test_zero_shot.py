"""ZeroShotHead: the same scores as the torch-free classifier, save/load, and the exported graph."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
import torch

from st_multitask.errors import InputError
from st_multitask.heads import Head, ZeroShotHead, get_head_class
from st_multitask.zero_shot import ZeroShotClassifier

SPEC = "sports,health,tech,finance,education,other"
TEXTS = [
    "The striker scored twice in the derby.",
    "The clinic doubled its opening hours for flu shots.",
    "I had pasta for dinner with my cousin.",
]


def _embed(texts: list[str]) -> np.ndarray:
    rng = np.random.default_rng(zlib.crc32("|".join(texts).encode()))
    return rng.normal(size=(len(texts), 8)).astype(np.float32)


def test_registered_and_equal_to_the_classifier():
    assert get_head_class("zero_shot") is ZeroShotHead
    zs = ZeroShotClassifier.build(SPEC, _embed, temperature=1.4, other_cosine=0.1)
    head = ZeroShotHead.from_classifier(zs)
    x = np.random.default_rng(0).normal(size=(5, 8)).astype(np.float32)
    with torch.no_grad():
        proba = head.probabilities(head({"sentence_embedding": torch.from_numpy(x)})).numpy()
    assert np.allclose(proba, zs.predict_proba(x), atol=1e-5)
    assert head.is_trained and head.calibrates
    again = head.classifier()
    assert np.allclose(again.predict_proba(x), zs.predict_proba(x), atol=1e-6)


def test_save_load_roundtrip(tmp_path):
    zs = ZeroShotClassifier.build(["sports: football and tennis", "finance", "other"], _embed)
    head = ZeroShotHead.from_classifier(zs)
    head.save(tmp_path / "h")
    loaded = Head.load(tmp_path / "h")
    assert isinstance(loaded, ZeroShotHead) and loaded.get_config_dict() == head.get_config_dict()
    assert loaded.descriptions == {"sports": "football and tennis"} and loaded.is_trained
    assert torch.equal(loaded.prototypes, head.prototypes)
    x = torch.randn(4, 8)
    assert torch.allclose(loaded({"sentence_embedding": x}), head({"sentence_embedding": x}))


def test_bad_settings():
    with pytest.raises(InputError, match="temperature"):
        ZeroShotHead(8, ["a", "b"], temperature=0)
    with pytest.raises(InputError, match="descriptions"):
        ZeroShotHead(8, ["a", "b"], descriptions={"c": "x"})


def test_exported_beside_the_default_heads(tmp_path):
    """A default model plus a zero-shot head: saved, reloaded, the ONNX graph gives what torch does."""
    from st_multitask import MultiTaskModel, load

    model = MultiTaskModel.default()
    fast_default = load(backend="onnx")
    zs = ZeroShotClassifier.build(SPEC, lambda t: fast_default.embed(t))
    model.add_head("spec", ZeroShotHead.from_classifier(zs))
    model.save(tmp_path / "m", backbone="reference")
    fast = load(tmp_path / "m", backend="onnx")
    assert list(fast.heads) == ["topic", "sentiment", "ner", "spec"]
    torch_model = MultiTaskModel.load(tmp_path / "m")
    for e, g in zip(torch_model.predict_proba(TEXTS), fast.predict_proba(TEXTS)):
        for task in e:
            assert np.abs(g[task] - e[task]).max() <= 1e-4
    head_answers = [r["spec"] for r in fast.predict(TEXTS, tasks=["spec"])]
    ad_hoc = [r["zero_shot"] for r in fast.predict(TEXTS, labels=SPEC)]
    assert [a["label"] for a in head_answers] == [a["label"] for a in ad_hoc] == ["sports", "health", "other"]
    assert fast.info()["heads"]["spec"]["kind"] == "zero_shot"


def test_model_calibrate_fits_its_temperature(backbone):
    """MultiTaskModel.calibrate treats it as any head: the logits are 20 x cosine, T starts at 1."""
    from st_multitask import MultiTaskModel
    from st_multitask.data import SentenceExamples

    model = MultiTaskModel(backbone)
    zs = ZeroShotClassifier.build("sports,finance", lambda t: model.encode(t))
    model.add_head("zs", ZeroShotHead.from_classifier(zs))
    dev = SentenceExamples(
        ["The striker scored.", "Shares fell sharply.", "The match ended 2-1.", "The bank cut rates."],
        ["sports", "finance", "sports", "finance"],
    )
    report = model.calibrate({"zs": dev})["zs"]
    assert report["temperature"] != 1.0 and model.heads["zs"].temperature == report["temperature"]
    assert report["ece_after"] <= report["ece_before"]
