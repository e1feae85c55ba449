"""benchmarks/_default_model.py: one seed's topic run and sentiment-branch run become one model."""

from __future__ import annotations

import numpy as np

from benchmarks._default_model import assemble
from st_multitask import MultiTaskModel, fit
from st_multitask.data import SentenceExamples
from st_multitask.heads import MLPHead

TEXTS = ["the match ended 2-1", "I hate this refund mess", "shares fell sharply"]
MOOD = SentenceExamples(
    ["I love it", "great film", "awful film", "I hate it"] * 2, ["pos", "pos", "neg", "neg"] * 2
)
TOPIC = SentenceExamples(["a late goal won it", "the bank cut rates"] * 4, ["sport", "money"] * 4)


def test_assemble_takes_the_topic_head_and_the_sentiment_branch(tiny_model_dir, tmp_path):
    frozen = MultiTaskModel(str(tiny_model_dir))
    frozen.add_head("topic", MLPHead(frozen.dim, ["money", "sport"]))
    frozen.add_head("sentiment", MLPHead(frozen.dim, ["neg", "pos"]))
    fit(
        frozen,
        {"topic": (TOPIC, TOPIC), "sentiment": (MOOD, MOOD)},
        epochs=1,
        freeze=["backbone"],
        batch_size=4,
    )
    branched = MultiTaskModel(str(tiny_model_dir)).add_branch("sentiment", 1)
    branched.add_head("sentiment", MLPHead(branched.dim, ["neg", "pos"]), branch="sentiment")
    fit(
        branched, {"sentiment": (MOOD, MOOD)}, epochs=1, freeze=["backbone"], batch_size=4, learning_rate=1e-3
    )
    frozen.record(metrics={"topic": {"accuracy": 1.0}, "sentiment": {"accuracy": 0.5}})
    branched.record(
        metrics={"sentiment": {"accuracy": 0.75}}, training={"steps": 2, "data": {"sentiment": {}}}
    )
    frozen.save(tmp_path / "topic")
    branched.save(tmp_path / "sentiment")

    model = MultiTaskModel.load(
        assemble(tmp_path / "topic", tmp_path / "sentiment", tmp_path / "joined"), "cpu"
    )
    assert model.branch_of == {"sentiment": "sentiment"} and sorted(model.heads) == ["sentiment", "topic"]
    for task, source in (("topic", frozen), ("sentiment", branched)):
        ours, theirs = model.predict_proba(TEXTS, [task]), source.predict_proba(TEXTS, [task])
        assert all(np.allclose(a[task], b[task], atol=1e-6) for a, b in zip(ours, theirs))
    assert np.array_equal(model.encode(TEXTS), frozen.encode(TEXTS))
    assert model._manifest["metrics"] == {"topic": {"accuracy": 1.0}, "sentiment": {"accuracy": 0.75}}
    assert model._manifest["training"]["steps"] == 2
