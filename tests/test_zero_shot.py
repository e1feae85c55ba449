"""Zero-shot labels, torch-free: parsing, prototypes, the other threshold, calibration, self-training;
and the ad hoc path of a pipeline (``predict(texts, labels=...)``) on the fast engine."""

from __future__ import annotations

import numpy as np
import pytest

from st_multitask.errors import InputError
from st_multitask.zero_shot import OTHER, LabelSpec, ZeroShotClassifier, parse_labels

AXES = {"sports": 0, "health": 1, "finance": 2}


def fake_embed(texts: list[str]) -> np.ndarray:
    """Each text points along the axis of the label it names (a 4th axis for anything else)."""
    out = np.zeros((len(texts), 4), dtype=np.float32)
    for row, text in enumerate(texts):
        hits = [axis for name, axis in AXES.items() if name in text.lower()]
        out[row, hits[0] if hits else 3] = 1.0
    return out


def test_parse_labels_with_descriptions():
    specs = parse_labels(" sports , finance: money, markets")  # a comma in a string splits labels
    assert [s.name for s in specs] == ["sports", "finance", "markets"]
    assert specs[1] == LabelSpec("finance", "money")
    assert parse_labels(["tech: phones, laptops", "health"])[0].description == "phones, laptops"


@pytest.mark.parametrize(
    "labels, message",
    [
        ("", "Label 1 of '' is empty"),
        ([], "labels is empty"),
        ("sports,,other", "Label 2 of 'sports,,other' is empty"),
        ("sports, sports ,health", "repeated: sports"),
        ("sports", "at least two labels"),
        ("other,other", "repeated: other"),
        (["other", ": no name"], "Label 2"),
        ([3, "a"], "Label 1 is 3"),
    ],
)
def test_bad_labels_are_named(labels, message):
    with pytest.raises(InputError, match=message):
        parse_labels(labels)


def test_prototypes_are_unit_means_and_other_is_a_threshold():
    zs = ZeroShotClassifier.build("sports,health,other", fake_embed, templates=["{label}", "about {label}"])
    assert np.allclose(zs.prototypes[0], [1, 0, 0, 0]) and np.allclose(zs.prototypes[2], 0)
    x = np.array([[2.0, 0.1, 0, 0], [0, 1.0, 0, 0.2], [0, 0, 0, 1.0]], dtype=np.float32)
    labels = [p["label"] for p in zs.predict(x)]
    assert labels == ["sports", "health", OTHER]
    zs.other_cosine = -0.5  # nothing is below: other is never chosen
    assert [p["label"] for p in zs.predict(x)][:2] == ["sports", "health"]
    assert zs.predict(x)[2]["label"] != OTHER
    proba = zs.predict_proba(x)
    assert proba.shape == (3, 3) and np.allclose(proba.sum(1), 1, atol=1e-6)


def test_descriptions_move_the_prototype():
    plain = ZeroShotClassifier.build("sports,finance", fake_embed, templates=["{label}"])
    described = ZeroShotClassifier.build(
        ["sports: health of athletes", "finance"], fake_embed, templates=["{label}"]
    )
    assert plain.prototypes[0, 1] == 0 and described.prototypes[0, 1] > 0
    with pytest.raises(InputError, match="must contain '\\{label\\}'"):
        ZeroShotClassifier.build("a,b", fake_embed, templates=["no slot"])


def test_calibrate_fits_temperature_and_other_cosine():
    rng = np.random.default_rng(0)
    zs = ZeroShotClassifier.build("sports,health,other", fake_embed, templates=["{label}"])
    inside = np.eye(4, dtype=np.float32)[[0, 1] * 20] + rng.normal(0, 0.3, (40, 4)).astype(np.float32)
    outside = np.eye(4, dtype=np.float32)[[3] * 20] + rng.normal(0, 0.3, (20, 4)).astype(np.float32)
    x = np.concatenate([inside, outside])
    gold = ["sports", "health"] * 20 + ["other"] * 20
    report = zs.calibrate(x, gold)
    assert set(report) == {"temperature", "other_cosine"} and report["temperature"] != 1.0
    assert 0.0 < zs.other_cosine < 0.9
    accuracy = np.mean([p["label"] == g for p, g in zip(zs.predict(x), gold)])
    assert accuracy >= 0.9
    with pytest.raises(InputError, match="Unknown label 'tech'"):
        zs.calibrate(x[:2], ["tech", "sports"])


def test_self_training_moves_prototypes_to_the_texts():
    # the label names point slightly off the real clusters; unlabelled texts pull them there
    def embed(texts: list[str]) -> np.ndarray:
        return np.array([[1.0, 0.8, 0, 0] if "sports" in t else [0.8, 1.0, 0, 0] for t in texts])

    rng = np.random.default_rng(1)
    centres = np.array([[1.0, 0.0, 0.5, 0], [0.0, 1.0, 0.5, 0]])
    gold = rng.integers(0, 2, 400)
    x = centres[gold] + rng.normal(0, 0.45, (400, 4))
    zs = ZeroShotClassifier.build("sports,health", embed, templates=["{label}"])
    names = np.array(["sports", "health"])
    before = np.mean([p["label"] for p in zs.predict(x)] == names[gold])
    tuned = zs.self_train(x, rounds=2)
    after = np.mean([p["label"] for p in tuned.predict(x)] == names[gold])
    assert after > before and not np.allclose(tuned.prototypes, zs.prototypes)
    assert np.allclose(np.linalg.norm(tuned.prototypes, axis=1), 1, atol=1e-5)
    with pytest.raises(InputError, match="rounds"):
        zs.self_train(x, rounds=0)


@pytest.fixture(scope="module")
def fast():
    from st_multitask import load

    return load(backend="onnx")


SPEC = "sports,health,tech,finance,education,other"


def test_pipeline_predict_with_labels(fast):
    texts = ["The striker scored twice in the derby.", "Stocks fell after the bank raised rates."]
    only = fast.predict(texts, labels=SPEC)
    assert [sorted(r) for r in only] == [["zero_shot"], ["zero_shot"]]
    assert [r["zero_shot"]["label"] for r in only] == ["sports", "finance"]
    assert set(only[0]["zero_shot"]["probabilities"]) == set(SPEC.split(","))
    both = fast.predict(texts, tasks=["topic"], labels=SPEC.split(","))
    assert sorted(both[0]) == ["topic", "zero_shot"] and both[0]["zero_shot"] == only[0]["zero_shot"]
    # the same as building it by hand from the pipeline's embeddings
    zs = ZeroShotClassifier.build(SPEC, lambda t: fast.embed(t))
    assert np.allclose(
        zs.predict_proba(fast.embed(texts)),
        [[*r["zero_shot"]["probabilities"].values()] for r in only],
        atol=1e-5,
    )
    assert fast.zero_shot(SPEC) is fast.zero_shot(SPEC)  # kept per label set
    with pytest.raises(InputError, match="repeated: tech"):
        fast.predict(texts, labels="tech,tech")
