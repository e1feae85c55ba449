"""Sentence heads with an out-of-scope class: decoding with a fitted threshold on every engine,
the threshold fit, coverage in the metrics, class weights, and recipes that join sources."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from st_multitask.calibration import fit_other_threshold
from st_multitask.decoding import decode_sentence
from st_multitask.errors import InputError
from st_multitask.evaluation import sentence_metrics
from st_multitask.heads import Head, HybridHead, MLPHead

LABELS = ["business", "other", "sport"]


def test_decode_other_threshold_and_fallback():
    probs = [0.3, 0.45, 0.25]
    assert decode_sentence(LABELS, probs)["label"] == "other"  # plain argmax
    assert decode_sentence(LABELS, probs, other=("other", 0.5))["label"] == "business"
    out = decode_sentence(LABELS, probs, other=("other", 0.4))
    assert out["label"] == "other" and out["score"] == pytest.approx(0.45)
    # min_score still abstains, on the in-scope choice and on "other"
    assert decode_sentence(LABELS, probs, min_score=0.35, other=("other", 0.5))["label"] is None
    assert decode_sentence(LABELS, probs, min_score=0.5, other=("other", 0.4))["label"] is None


def test_fit_other_threshold_keeps_the_asked_share_of_in_scope_texts():
    rng = np.random.default_rng(0)
    inside, outside = rng.beta(1, 8, 1000), rng.beta(8, 1, 300)
    p = np.concatenate([inside, outside])
    is_other = np.r_[np.zeros(1000, bool), np.ones(300, bool)]
    t = fit_other_threshold(p, is_other, keep=0.98)
    assert (inside < t).mean() >= 0.98 and (inside < t).mean() < 0.99
    assert (outside >= t).mean() > 0.9
    with pytest.raises(InputError, match="both kinds"):
        fit_other_threshold(inside, np.zeros(1000, bool))
    with pytest.raises(InputError, match="keep must be"):
        fit_other_threshold(p, is_other, keep=1.0)


def test_head_settings_are_checked_and_saved(tmp_path):
    with pytest.raises(InputError, match="other_label 'none' is not one of the labels"):
        MLPHead(8, LABELS, other_label="none")
    with pytest.raises(InputError, match="other_threshold must be a probability"):
        MLPHead(8, LABELS, other_label="other", other_threshold=1.5)
    with pytest.raises(InputError, match="unknown label 'x'"):
        MLPHead(8, LABELS, class_weights={"x": 2.0})
    with pytest.raises(InputError, match="positive numbers"):
        MLPHead(8, LABELS, class_weights={"sport": 0})
    head = HybridHead(
        8, LABELS, hidden=[4], other_label="other", other_threshold=0.3, class_weights={"other": 2}
    )
    head.fit_features(["the cup final", "profit rose", "a cat sleeps"] * 3)
    head.save(tmp_path / "h")
    loaded = Head.load(tmp_path / "h")
    assert (loaded.other_label, loaded.other_threshold, loaded.class_weights) == (
        "other",
        0.3,
        {"other": 2.0},
    )
    assert loaded.decode(torch.tensor([0.5, 0.35, 0.15]))["label"] == "other"


def test_class_weights_change_the_loss_as_torch_does():
    head = MLPHead(8, LABELS, hidden=[], class_weights={"other": 3.0})
    logits, targets = torch.randn(5, 3), torch.tensor([0, 1, 2, 1, 0])
    expected = torch.nn.functional.cross_entropy(logits, targets, weight=torch.tensor([1.0, 3.0, 1.0]))
    assert torch.allclose(head.loss(logits, targets), expected)


def test_coverage_metrics():
    m = sentence_metrics(
        ["sport", "sport", "other", "business"],
        ["sport", "other", "other", "sport"],
        LABELS,
        other_label="other",
    )
    assert (m["coverage"], m["covered_accuracy"]) == (0.5, 0.5)
    assert "coverage" not in sentence_metrics(["sport"], ["sport"], LABELS)


@pytest.mark.slow
def test_calibrate_fits_the_threshold_and_every_engine_decodes_with_it(backbone, tmp_path):
    """A tiny hybrid head with an 'other' class: calibrate() fits its threshold on held-out texts,
    it is saved with the head, and the torch and the exported models give the same labels."""
    from st_multitask import MultiTaskModel
    from st_multitask.data import SentenceExamples
    from st_multitask.training import TaskData, Trainer, TrainingConfig

    sport = [
        "The striker scored twice in the cup final.",
        "The team won the league title.",
        "He ran the marathon in record time.",
    ]
    business = [
        "Shares fell after the profit warning.",
        "The bank raised interest rates.",
        "The firm bought its rival for $2bn.",
    ]
    other = [
        "A man is slicing a tomato.",
        "How do I reset my password?",
        "A cat sleeps on the sofa.",
        "lol this is so funny",
    ]
    texts = sport + business + other
    labels = ["sport"] * 3 + ["business"] * 3 + ["other"] * 4
    data = SentenceExamples(texts * 4, labels * 4, "tiny")
    model = MultiTaskModel(backbone)
    model.add_head("topic", HybridHead(model.dim, LABELS, hidden=[16], other_label="other"))
    config = TrainingConfig(epochs=3, batch_size=8, freeze=["backbone"], head_learning_rate=5e-3, seed=0)
    Trainer(model, config, output_dir=tmp_path / "run").fit(
        [TaskData("topic", data, dev=SentenceExamples(texts, labels))]
    )
    head = model.heads["topic"]
    assert head.other_threshold is not None
    loaded = MultiTaskModel.load(tmp_path / "run")
    assert loaded.heads["topic"].other_threshold == head.other_threshold
    probe = ["The goalkeeper saved a penalty.", "A dog runs on the beach.", "Profits rose by 5%."]
    torch_labels = [r["topic"]["label"] for r in loaded.predict(probe)]
    fast = MultiTaskModel.load(tmp_path / "run", backend="onnx")
    assert [r["topic"]["label"] for r in fast.predict(probe)] == torch_labels


def test_hidden_sizes_have_an_upper_bound():
    with pytest.raises(InputError, match="hidden sizes must be integers from 1 to 65,536"):
        MLPHead(8, LABELS, hidden=[100_000, 100_000])


def test_training_config_file_that_is_not_utf8_names_the_file(tmp_path):
    from st_multitask.training import TrainingConfig

    path = tmp_path / "bad.yaml"
    path.write_bytes(b"\xffepochs: 2\n")
    with pytest.raises(InputError, match=r"bad.yaml is not valid UTF-8 \(byte 0xff at offset 0\)"):
        TrainingConfig.from_file(path)
