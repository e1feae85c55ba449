"""Temperature scaling and the expected calibration error; abstaining with min_score."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from st_multitask.calibration import expected_calibration_error, fit_temperature, softmax
from st_multitask.errors import InputError


def _synthetic(temperature: float, n: int = 4000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from softmax(true logits); the model's logits are the true ones x temperature."""
    rng = np.random.default_rng(seed)
    true = rng.normal(size=(n, 4)) * 2
    labels = np.array([rng.choice(4, p=p) for p in softmax(true)])
    return true * temperature, labels


def test_fit_temperature_recovers_the_overconfidence():
    logits, labels = _synthetic(3.0)
    t = fit_temperature(logits, labels)
    assert t == pytest.approx(3.0, rel=0.1)
    before = expected_calibration_error(softmax(logits), labels)
    after = expected_calibration_error(softmax(logits, t), labels)
    assert after < before / 3 and after < 0.03
    assert (softmax(logits, t).argmax(1) == softmax(logits).argmax(1)).all()  # labels never change


def test_calibrated_scores_have_a_small_ece():
    logits, labels = _synthetic(1.0, seed=1)
    assert expected_calibration_error(softmax(logits), labels) < 0.03
    assert fit_temperature(logits, labels) == pytest.approx(1.0, rel=0.1)


def test_fit_temperature_rejects_too_little_data():
    with pytest.raises(InputError, match="n >= 2 labels"):
        fit_temperature(np.zeros((1, 2)), [0])


def test_model_calibrate_sets_the_temperature_saves_it_and_keeps_labels(tiny_model_dir, tmp_path):
    from st_multitask import MultiTaskModel
    from st_multitask.data import SentenceExamples
    from st_multitask.heads import MLPHead

    torch.manual_seed(0)
    model = MultiTaskModel(str(tiny_model_dir))
    head = MLPHead(model.dim, ["a", "b"], hidden=[])
    with torch.no_grad():
        head.mlp[0].weight.mul_(40)  # an over-confident head
    head.mark_trained()
    model.add_head("mood", head)
    texts = [f"text number {i} about {'cats' if i % 2 else 'stocks'}" for i in range(40)]
    labels = ["a" if i % 3 else "b" for i in range(40)]
    before = model.predict(texts)
    report = model.calibrate({"mood": SentenceExamples(texts, labels)})["mood"]
    assert report["temperature"] == model.heads["mood"].temperature != 1.0
    assert report["ece_after"] <= report["ece_before"]
    after = model.predict(texts)
    assert [r["mood"]["label"] for r in after] == [r["mood"]["label"] for r in before]
    model.save(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "heads" / "mood" / "config.json").read_text())
    assert config["config"]["temperature"] == report["temperature"]
    fast = MultiTaskModel.load(tmp_path / "m", backend="onnx")  # the exported graph applies it too
    for e, g in zip(model.predict_proba(texts), fast.predict_proba(texts)):
        assert np.abs(e["mood"] - g["mood"]).max() <= 1e-4


def test_min_score_abstains(run):
    text = "The meeting is scheduled for Tuesday at 3 pm."  # in scope or not, the head is unsure
    result = run("predict", "--min-score", "0.99", "--tasks", "topic", "--format", "json", text)
    assert result.exit_code == 0, result.output
    topic = json.loads(result.stdout)[0]["topic"]
    assert topic["label"] is None and topic["score"] < 0.99
    table = run("predict", "--min-score", "0.99", "--tasks", "topic", text)
    assert f"- ({topic['score']:.2f})" in table.stdout
    bad = run("predict", "--min-score", "2", text)
    assert bad.exit_code == 2 and "--min-score" in bad.stderr


def test_min_score_is_checked_in_the_library():
    from st_multitask import MultiTaskModel

    model = MultiTaskModel.default(backend="onnx")
    with pytest.raises(InputError, match="min_score must be a probability between 0 and 1"):
        model.predict(["x"], min_score=1.5)
    assert model.predict(["The film was a joy."], min_score=0.0)[0]["sentiment"]["label"] == "positive"


@pytest.mark.parametrize("calibrate", [True, False])
def test_training_fits_the_temperature_on_dev(tiny_model_dir, calibrate):
    from st_multitask import MultiTaskModel, fit
    from st_multitask.data import SentenceExamples
    from st_multitask.heads import MLPHead

    torch.manual_seed(0)
    model = MultiTaskModel(str(tiny_model_dir)).add_head("mood", MLPHead(32, ["happy", "sad"], hidden=[]))
    data = SentenceExamples(["What a lovely day!", "I lost my keys.", "Great news!", "Awful weather."] * 6,
                            ["happy", "sad", "happy", "sad"] * 6)  # fmt: skip
    result = fit(model, {"mood": (data, data)}, epochs=2, freeze=["backbone"], head_learning_rate=0.05,
                 calibrate=calibrate, progress=False)  # fmt: skip
    temperature = model.heads["mood"].temperature
    if calibrate:
        assert result.metrics["mood"]["temperature"] == temperature and "ece" in result.metrics["mood"]
    else:
        assert temperature == 1.0 and "temperature" not in result.metrics["mood"]
