"""plan_from_data: reading, label checks, the dev split and the mode (no model is loaded here)."""

from __future__ import annotations

import pandas as pd
import pytest

from st_multitask.data_recipe import FULL_FROM, plan_from_data
from st_multitask.errors import InputError


def frame(counts: dict[str, int]) -> pd.DataFrame:
    rows = [(f"{label} text {i}", label) for label, n in counts.items() for i in range(n)]
    return pd.DataFrame(rows, columns=["text", "label"])


def test_modes_and_dev_split():
    few = plan_from_data(frame({"a": 10, "b": 10}), task="t")
    assert few.mode == "few_shot" and len(few.dev) == 4 and sorted(set(few.dev.labels)) == ["a", "b"]
    assert not few.calibrates and few.recipe()["training"]["calibrate"] is False  # 4 dev texts: too few
    assert "20% of each label" in few.dev_note and not set(few.train.texts) & set(few.dev.texts)
    full = plan_from_data(frame({"a": FULL_FROM, "b": 80}))
    assert full.mode == "full" and full.recipe()["tasks"]["label"]["head"]["hidden"] == [256]
    assert full.calibrates and len(full.dev) == 23
    tiny = plan_from_data(frame({"a": 3, "b": 8}))
    assert tiny.dev is None and "'a' has 3 examples" in tiny.dev_note and len(tiny.train) == 11
    ordered = plan_from_data(frame({"a": 5, "b": 5}), labels="b,a")
    assert ordered.names == ["b", "a"] and ordered.recipe()["few_shot"]["labels"] == ["b", "a"]
    assert few.recipe()["few_shot"]["layers"] == 2 and few.recipe()["few_shot"]["task"] == "t"


def test_texts_only_is_zero_shot(write):
    path = write("texts.txt", "The match ended 2-1.\nShares fell.\n")
    plan = plan_from_data(path, task="spec", labels="sports,finance: money and markets,other")
    assert plan.mode == "zero_shot" and plan.texts == ["The match ended 2-1.", "Shares fell."]
    assert plan.labels[1].description == "money and markets" and plan.recipe()["zero_shot"]["self_training"]
    with pytest.raises(InputError, match="no 'label' column: give --label-column, or --labels"):
        plan_from_data(write("t.csv", "text\nhello\n"))


@pytest.mark.parametrize(
    "counts, labels, message",
    [
        ({"a": 9}, None, "holds one class only \\('a'\\)"),
        ({"a": 5, "b": 5}, "a,a,b", "repeated: a"),
        ({"a": 5, "b": 5}, "a,,b", "is empty"),
        ({"a": 5, "b": 5}, "a", "at least two labels"),
        (
            {"a": 5, "b": 5},
            "a,c",
            "in the data but not in --labels: b; labels in --labels with no example: c",
        ),
    ],
)
def test_bad_labels(counts, labels, message):
    with pytest.raises(InputError, match=message):
        plan_from_data(frame(counts), labels=labels)


def test_dev_file_must_match(write):
    dev = write("dev.csv", "text,label\nx,a\ny,c\n")
    with pytest.raises(InputError, match="labels unseen in training: c; labels with no dev example: b"):
        plan_from_data(frame({"a": 5, "b": 5}), dev=dev)
    ok = plan_from_data(frame({"a": 5, "b": 5}), dev=write("dev2.csv", "text,label\nx,a\ny,b\n"))
    assert len(ok.dev) == 2 and len(ok.train) == 10 and "dev2.csv (2 texts)" in ok.dev_note
