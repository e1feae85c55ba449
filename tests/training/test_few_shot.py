"""train_few_shot: SetFit-style contrastive training of a task branch, then a linear head started
from the zero-shot prototypes; the embeddings never move."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from st_multitask import MultiTaskModel, load
from st_multitask.data import SentenceExamples
from st_multitask.errors import InputError
from st_multitask.training.few_shot import FewShotConfig, train_few_shot
from st_multitask.zero_shot import ZeroShotClassifier

LABELS = ["sports", "finance", "other"]
TRAIN = SentenceExamples(
    [
        "The striker scored twice in the final.",
        "She won the marathon in record time.",
        "Shares fell sharply after the earnings report.",
        "The central bank raised interest rates.",
        "I had pasta for dinner.",
        "My cat sleeps on the sofa all day.",
    ],
    ["sports", "sports", "finance", "finance", "other", "other"],
)
TEXTS = ["The goalkeeper saved a penalty.", "Bond yields climbed again.", "We painted the kitchen blue."]
SMALL = FewShotConfig(layers=1, batch_size=4, max_steps=4, head_iterations=20)


def _trained(backbone, config: FewShotConfig = SMALL, train=TRAIN) -> MultiTaskModel:
    model = MultiTaskModel(backbone)
    train_few_shot(model, "topic", LABELS, train, config)
    return model


def test_without_examples_the_head_is_the_zero_shot_head(backbone):
    model = MultiTaskModel(backbone)
    result = train_few_shot(model, "topic", LABELS, None, SMALL)
    assert result.steps == 0 and result.pairs == 0 and model.branch_of == {"topic": "topic"}
    zero_shot = ZeroShotClassifier.build(LABELS, lambda t: backbone.encode(t, convert_to_numpy=True))
    expected = zero_shot.predict_proba(backbone.encode(TEXTS, convert_to_numpy=True))
    got = np.stack([p["topic"] for p in model.predict_proba(TEXTS)])
    assert np.abs(got - expected).max() < 1e-4
    assert [p["topic"]["label"] for p in model.predict(TEXTS)] == ["sports", "finance", "other"]


def test_few_shot_moves_the_branch_never_the_embeddings(backbone):
    reference = backbone.encode(TEXTS, convert_to_numpy=True)  # plain sentence-transformers
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    model = MultiTaskModel(backbone)
    plain = model.encode(TEXTS)  # the toolkit's embed() of all-MiniLM-L6-v2, no head
    untouched = [p.detach().clone() for p in model.add_branch("fresh", 1).branches["fresh"].parameters()]
    result = train_few_shot(model, "topic", LABELS, TRAIN, SMALL)
    assert result.steps == 4 and result.pairs > 0 and result.metrics["train_accuracy"] == 1.0
    moved = list(model.branches["topic"].parameters())
    assert any(not torch.equal(a, b) for a, b in zip(untouched, moved))
    assert all(torch.equal(before[k], v) for k, v in backbone.state_dict().items())
    assert np.array_equal(model.encode(TEXTS), plain)  # embed() is all-MiniLM-L6-v2 to the bit
    _, vectors = model.predict_and_embed(TEXTS)
    assert np.abs(vectors - reference).max() <= 1e-6 and np.abs(plain - reference).max() <= 1e-6
    assert [p["topic"]["label"] for p in model.predict(TEXTS)] == ["sports", "finance", "other"]


def test_few_shot_is_bit_reproducible(backbone):
    first, second = _trained(backbone), _trained(backbone)
    one, two = first.state_dict(), second.state_dict()
    assert one.keys() == two.keys() and all(torch.equal(one[k], two[k]) for k in one)
    third = _trained(backbone, FewShotConfig(layers=1, batch_size=4, max_steps=4, head_iterations=20, seed=7))
    assert not torch.equal(
        third.branches["topic"].layers[0].output.dense.weight,
        first.branches["topic"].layers[0].output.dense.weight,
    )


@pytest.mark.export
def test_a_few_shot_head_exports_into_the_one_graph(backbone, tmp_path):
    from st_multitask.runtime.export import export_model

    model = _trained(backbone)
    path = model.save(tmp_path / "m", backbone="reference")
    out = export_model(path, tmp_path / "exported", "onnx")
    expected = model.predict_proba(TEXTS)
    for pipe in (load(path, backend="onnx"), load(out, backend="onnx")):
        got = pipe.predict_proba(TEXTS)
        assert max(np.abs(a["topic"] - b["topic"]).max() for a, b in zip(expected, got)) < 1e-4
        assert [p["topic"]["label"] for p in pipe.predict(TEXTS)] == ["sports", "finance", "other"]
        assert np.abs(pipe.embed(TEXTS) - backbone.encode(TEXTS, convert_to_numpy=True)).max() < 1e-5


def test_bad_few_shot_input(backbone):
    with pytest.raises(InputError, match="Label 'music' of the examples is not among the labels"):
        train_few_shot(
            MultiTaskModel(backbone), "t", ["sports", "finance"], SentenceExamples(["a"], ["music"])
        )
    for bad, message in [
        ({"layers": 0}, "layers must be a positive integer"),
        ({"prior": -1}, "prior must be a number >= 0"),
        ({"pair_strategy": "all"}, "Unknown pair_strategy 'all'. Valid: oversampling"),
        ({"max_steps": -2}, "max_steps must be a non-negative integer"),
    ]:
        with pytest.raises(InputError, match=message):
            FewShotConfig(**bad)
    with pytest.raises(InputError, match="Unknown few-shot setting 'lr'. Valid: layers"):
        FewShotConfig.from_dict({"lr": 1})
