from __future__ import annotations

import csv
import io
import json

import pytest
import torch

from st_multitask import MultiTaskModel
from st_multitask.cli.predict import inline_entities
from st_multitask.heads import MLPHead, TokenHead

TEXT = "Apple is buying a U.K. startup for $1 billion"


@pytest.fixture(scope="module")
def model_dir(backbone, tmp_path_factory):
    torch.manual_seed(0)
    m = MultiTaskModel(backbone)
    m.add_head("sentiment", MLPHead(m.dim, ["negative", "positive"]))
    m.add_head("ner", TokenHead(m.dim, ["O", "B-ORG", "I-ORG"]))
    with torch.no_grad():  # tag every word B-ORG: deterministic entities
        m.heads["ner"].mlp[-1].weight.zero_()
        m.heads["ner"].mlp[-1].bias.copy_(torch.tensor([0.0, 5.0, 0.0]))
    for head in m.heads.values():
        head.mark_trained()
    return str(m.save(tmp_path_factory.mktemp("models") / "m", backbone="reference"))


def test_inline_entities():
    entities = [
        {"text": "Apple", "label": "ORG", "start": 0, "end": 5},
        {"text": "U.K.", "label": "LOC", "start": 18, "end": 22},
    ]
    assert inline_entities(TEXT, entities) == "[Apple](ORG) is buying a [U.K.](LOC) startup for $1 billion"


def test_predict_table(run, model_dir):
    result = run("predict", "--model", model_dir, TEXT)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["text", "sentiment"]
    assert lines[2].startswith("[Apple](ORG) [is](ORG)")
    assert "(0." in lines[2] or "(1.00)" in lines[2]


def test_predict_json_jsonl_csv(run, model_dir):
    data = json.loads(run("predict", "--model", model_dir, TEXT, "--format", "json").stdout)
    assert data[0]["text"] == TEXT and data[0]["sentiment"]["label"] in ("negative", "positive")
    assert all(TEXT[e["start"] : e["end"]] == e["text"] for e in data[0]["ner"])
    lines = run("predict", "--model", model_dir, "one", "two", "--format", "jsonl").stdout.splitlines()
    assert [json.loads(line)["text"] for line in lines] == ["one", "two"]
    rows = list(
        csv.DictReader(io.StringIO(run("predict", "--model", model_dir, TEXT, "--format", "csv").stdout))
    )
    assert set(rows[0]) == {"text", "sentiment", "sentiment_score", "ner"}


def test_predict_from_file_stdin_and_tasks(run, model_dir, write):
    path = write("in.txt", "first text\n\nsecond text\n")
    result = run(
        "predict", "--model", model_dir, "--input", path, "--format", "jsonl", "--tasks", "sentiment"
    )
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["text"] for r in records] == ["first text", "second text"] and set(records[0]) == {
        "text",
        "sentiment",
    }
    assert "skipped 1 blank line" in result.stderr
    result = run("predict", "--model", model_dir, "--format", "jsonl", input="from stdin\n")
    assert json.loads(result.stdout)["text"] == "from stdin"
    csv_path = write("in.csv", "review,stars\nGood film,5\n")
    result = run(
        "predict", "--model", model_dir, "--input", csv_path, "--column", "review", "--format", "json"
    )
    assert json.loads(result.stdout)[0]["text"] == "Good film"


def test_predict_bad_input(run, model_dir, tmp_path, backbone):
    def fails(*args, message, input=None):
        result = run("predict", *args, input=input)
        assert result.exit_code == 2, result.output
        assert message in result.stderr and "Traceback" not in result.output

    fails(
        "--model", model_dir, "x", "--tasks", "topic", message="Unknown task 'topic'. Valid: sentiment, ner"
    )
    fails("--model", model_dir, "", message="Text 1 is blank")
    fails("--model", model_dir, "x", "--input", "f.txt", message="not both")
    fails("--model", str(tmp_path / "none"), "x", message="is not a directory")
    fails("--model", str(tmp_path), "x", message="st_multitask.json is missing")
    fails("--model", model_dir, "--input", str(tmp_path), message="is a directory")
    plain = tmp_path / "plain"
    backbone.save(str(plain))
    fails("--model", str(plain), "x", message="plain sentence-transformers model")


def test_predict_notes_long_and_untrained(run, model_dir, backbone, tmp_path):
    result = run("predict", "--model", model_dir, "word " * 300)
    assert "longer than the model window (256 tokens)" in result.stderr
    untrained = MultiTaskModel(backbone, heads={"s": MLPHead(384, ["a", "b"])}).save(
        tmp_path / "u", backbone="reference"
    )
    result = run("predict", "--model", str(untrained), "x")
    assert result.exit_code == 0 and "head s is untrained: predictions are random" in result.stderr


def test_info(run, model_dir):
    result = run("info", "--model", model_dir)
    assert result.exit_code == 0
    assert "backbone: all-MiniLM-L6-v2 (384-d" in result.stdout
    assert "head ner: token (token level" in result.stdout and "labels: O, B-ORG, I-ORG" in result.stdout
    data = json.loads(run("info", "--model", model_dir, "--format", "json").stdout)
    assert data["heads"]["sentiment"]["labels"] == ["negative", "positive"]
    default = run("info")
    assert default.exit_code == 0 and "head ner: token_context" in default.stdout


def test_predict_zero_shot_labels(run):
    labels = "sports,health,tech,finance,education,other"
    result = run("predict", "--labels", labels, "--format", "json", "The striker scored twice in the derby.")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)[0]
    assert sorted(record) == ["text", "zero_shot"] and record["zero_shot"]["label"] == "sports"
    table = run("predict", "--labels", labels, "--tasks", "topic", "Stocks fell after the bank raised rates.")
    assert table.exit_code == 0 and "zero_shot" in table.stdout and "finance" in table.stdout
    assert "topic" in table.stdout


@pytest.mark.parametrize(
    "labels, message",
    [
        ("sports,,other", "Label 2 of 'sports,,other' is empty"),
        ("tech,tech", "repeated: tech"),
        ("", "empty"),
    ],
)
def test_predict_bad_labels_one_line_exit_2(run, labels, message):
    result = run("predict", "--labels", labels, "some text")
    assert result.exit_code == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
