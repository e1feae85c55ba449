from __future__ import annotations

import json
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def recipe(tmp_path, tiny_model_dir):
    """A recipe on the tiny test backbone and the example data (fast)."""

    def _recipe(**training) -> str:
        settings = {
            "epochs": 2,
            "batch_size": 16,
            "learning_rate": 1e-3,
            "head_learning_rate": 1e-2,
            **training,
        }
        config = {
            "model": {"backbone": str(tiny_model_dir)},
            "tasks": {
                "sentiment": {
                    "head": {"kind": "mlp", "hidden": [16]},
                    "train": str(EXAMPLES / "data" / "sentiment-train.csv"),
                    "dev": str(EXAMPLES / "data" / "sentiment-dev.csv"),
                },
                "ner": {
                    "head": {"kind": "token"},
                    "train": str(EXAMPLES / "data" / "ner-train.conll"),
                    "dev": str(EXAMPLES / "data" / "ner-dev.conll"),
                    "test": str(EXAMPLES / "data" / "ner-dev.conll"),
                },
            },
            "training": settings,
        }
        path = tmp_path / "recipe.json"
        path.write_text(json.dumps(config))
        return str(path)

    return _recipe


def test_train_then_evaluate_and_predict(run, recipe, tmp_path):
    out = tmp_path / "model"
    result = run("train", "--config", recipe(), "-o", str(out), "--plot", "--quiet")
    assert result.exit_code == 0, result.output
    assert "sentiment" in result.stdout and "ner" in result.stdout and "Test split:" in result.stdout
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2
    assert (out / "plots" / "training_curves.png").is_file() and (
        out / "plots" / "confusion_sentiment.png"
    ).is_file()
    data = json.loads(
        run(
            "evaluate",
            "--model",
            str(out),
            "--task",
            "ner",
            "--data",
            str(EXAMPLES / "data" / "ner-dev.conll"),
            "--format",
            "json",
        ).stdout
    )
    assert data["n"] == 20 and 0 <= data["f1"] <= 1
    # the recipe's test split (the same file) was scored after training and saved beside the model
    saved = json.loads((out / "test_metrics.json").read_text())
    assert saved["ner"]["f1"] == pytest.approx(data["f1"]) and saved["ner"]["n"] == 20
    table = run(
        "evaluate",
        "--model",
        str(out),
        "--task",
        "sentiment",
        "--data",
        str(EXAMPLES / "data" / "sentiment-dev.csv"),
    ).stdout
    assert "Confusion matrix" in table and "accuracy" in table
    assert run("predict", "--model", str(out), "Marie Curie flew to Paris .").exit_code == 0
    # an existing model directory is never replaced without --overwrite
    again = run("train", "--config", recipe(), "-o", str(out), "--quiet")
    assert again.exit_code == 2 and "pass --overwrite" in again.stderr
    assert (
        run(
            "train", "--config", recipe(), "-o", str(out), "--quiet", "--overwrite", "--epochs", "1"
        ).exit_code
        == 0
    )


def test_sequential_with_overrides(run, recipe, tmp_path):
    result = run(
        "train",
        "--config",
        recipe(),
        "-o",
        str(tmp_path / "m"),
        "--quiet",
        "--strategy",
        "sequential",
        "--epochs",
        "1",
        "--set",
        "task_order=[ner, sentiment]",
        "--freeze",
        "backbone",
    )
    assert result.exit_code == 0, result.output
    assert "Forgetting" in result.stdout and "after ner" in result.stdout


def test_resume_after_finish_and_nothing_to_resume(run, recipe, tmp_path):
    out = tmp_path / "m"
    assert run("train", "--config", recipe(epochs=1), "-o", str(out), "--quiet").exit_code == 0
    result = run("train", "--config", recipe(epochs=2), "-o", str(out), "--quiet", "--resume")
    assert result.exit_code == 0, result.output
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2  # only the second epoch was added
    result = run("train", "--config", recipe(), "-o", str(tmp_path / "fresh"), "--resume")
    assert result.exit_code == 2 and "Nothing to resume" in result.stderr


def _bad(run, tmp_path, config: dict | str, message: str, *args: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(config if isinstance(config, str) else json.dumps(config))
    result = run("train", "--config", str(path), "-o", str(tmp_path / "out"), *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and "Traceback" not in result.output


def test_bad_recipes(run, tmp_path, tiny_model_dir, write):
    data = EXAMPLES / "data"
    base = {
        "model": {"backbone": str(tiny_model_dir)},
        "tasks": {"s": {"train": str(data / "sentiment-train.csv")}},
    }
    _bad(
        run,
        tmp_path,
        {**base, "training": {"epoch": 2}},
        "Unknown training setting 'epoch'. Valid: strategy, epochs",
    )
    _bad(run, tmp_path, {**base, "trainer": {}}, "unknown section 'trainer'")
    _bad(run, tmp_path, {"tasks": {}}, "a 'tasks' section with at least one task")
    _bad(run, tmp_path, "tasks: [unclosed", "is not valid YAML")
    _bad(
        run,
        tmp_path,
        {**base, "tasks": {"s": {"train": str(tmp_path / "none.csv")}}},
        "none.csv: no such file",
    )
    _bad(
        run,
        tmp_path,
        {**base, "tasks": {"s": {"train": str(data / "sentiment-train.csv"), "label_column": "stars"}}},
        "Expected a column 'stars'",
    )
    _bad(
        run,
        tmp_path,
        {**base, "tasks": {"s": {"head": {"kind": "svm"}, "train": str(data / "sentiment-train.csv")}}},
        "Unknown head kind 'svm'. Valid: ",  # other tests may register kinds of their own
    )
    bad_conll = write("bad.conll", "EU B-ORG\nrejects\n")
    _bad(
        run,
        tmp_path,
        {**base, "tasks": {"n": {"head": {"kind": "token"}, "train": bad_conll}}},
        "bad.conll line 2: expected a token and a tag",
    )
    bad_tag = write("tag.conll", "EU ORG\n")
    _bad(
        run,
        tmp_path,
        {**base, "tasks": {"n": {"head": {"kind": "token"}, "train": bad_tag}}},
        "tag 'ORG' is not IOB2",
    )
    unseen = write("dev.csv", "text,label\nfine,neutral\n")
    _bad(
        run,
        tmp_path,
        {**base, "tasks": {"s": {"train": str(data / "sentiment-train.csv"), "dev": unseen}}},
        "dev.csv line 2: label 'neutral' never appears in the training data",
    )
    empty_text = write("e.csv", "text,label\n,positive\n")
    _bad(run, tmp_path, {**base, "tasks": {"s": {"train": empty_text}}}, "e.csv line 2: the text is empty")
    _bad(
        run,
        tmp_path,
        {**base, "tasks": {"s": {"train": "corpus:imdb/train"}}},
        "Unknown corpus 'imdb' in 'corpus:imdb/train'. Valid: bbc, ",
    )
    _bad(run, tmp_path, base, "Unknown training setting 'nope'", "--set", "nope=1")
    _bad(
        run,
        tmp_path,
        base,
        "average_epochs must be an epoch count from 1 to epochs",
        "--set",
        "average_epochs=0",
    )
    _bad(run, tmp_path, base, "Everything is frozen", "--freeze", "all")


def test_evaluate_bad_input(run, recipe, tmp_path):
    out = tmp_path / "m"
    run("train", "--config", recipe(epochs=1), "-o", str(out), "--quiet")
    result = run(
        "evaluate", "--model", str(out), "--task", "topic", "--data", str(EXAMPLES / "data" / "ner-dev.conll")
    )
    assert result.exit_code == 2 and "Unknown task 'topic'. Valid: sentiment, ner" in result.stderr
    result = run(
        "evaluate",
        "--model",
        str(out),
        "--task",
        "ner",
        "--data",
        str(EXAMPLES / "data" / "sentiment-dev.csv"),
    )
    assert result.exit_code == 2 and "expected a token and a tag" in result.stderr


@pytest.fixture
def base_model(tiny_model_dir, tmp_path):
    """A saved model (the tiny backbone) with one head, 'old', that a --data run must keep."""
    from st_multitask import MultiTaskModel
    from st_multitask.heads import MLPHead

    model = MultiTaskModel(str(tiny_model_dir))
    model.add_head("old", MLPHead(model.dim, ["x", "y"], hidden=[]))
    model.heads["old"].mark_trained()
    return str(model.save(tmp_path / "base"))


def test_train_from_data_keeps_the_old_heads(run, base_model, tmp_path):
    import numpy as np
    from fastapi.testclient import TestClient

    from st_multitask import MultiTaskModel, load
    from st_multitask.serve import ServeSettings, create_app

    out = tmp_path / "out"
    data = str(EXAMPLES / "data" / "sentiment-train.csv")
    result = run("train", "--data", data, "--task", "mood", "--model", base_model, "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "full head 'mood' (negative, positive)" in result.stderr and "stratified, seed 42" in result.stderr
    assert (
        "hidden:\n      - 256" in result.stdout and "macro_f1=" in result.stdout
    )  # the recipe, then metrics
    before = MultiTaskModel.load(base_model).heads["old"].state_dict()
    after = MultiTaskModel.load(out)
    assert list(after.heads) == ["old", "mood"] and after.heads["mood"].is_trained
    assert all(np.array_equal(before[k], after.heads["old"].state_dict()[k]) for k in before)
    texts = ["A joy from start to finish.", "Dull and far too long."]
    predicted = json.loads(run("predict", "--model", str(out), "--format", "json", *texts).stdout)
    assert sorted(predicted[0]) == ["mood", "old", "text"]
    fast = load(out, backend="onnx")  # the exported graph holds both heads
    for e, g in zip(after.predict_proba(texts), fast.predict_proba(texts)):
        assert set(e) == set(g) == {"old", "mood"}
        assert all(np.abs(e[t] - g[t]).max() <= 1e-4 for t in e)
    with TestClient(create_app(fast, ServeSettings())) as client:  # as stmt serve --model out loads it
        served = client.post("/predict", json={"inputs": texts}).json()["predictions"]
    assert sorted(served[0]) == ["mood", "old"]
    assert [p["mood"]["label"] for p in served] == [p["mood"]["label"] for p in predicted]
    assert "mood" in (out / "README.md").read_text(encoding="utf-8")


def test_train_from_data_few_shot_trains_a_branch(run, base_model, write, tmp_path):
    import numpy as np

    from st_multitask import MultiTaskModel, load

    happy = [
        "What a lovely day!",
        "I adore this.",
        "Best meal ever.",
        "So much fun.",
        "Great news!",
        "I love it.",
    ]
    sad = [
        "I lost my keys.",
        "This is awful.",
        "Worst trip ever.",
        "I hate Mondays.",
        "Terrible news.",
        "So boring.",
    ]
    rows = "".join(f"{t},happy\n" for t in happy) + "".join(f"{t},sad\n" for t in sad)
    out = tmp_path / "out"
    result = run(
        "train",
        "--data",
        write("mood.csv", "text,label\n" + rows),
        "--task",
        "mood",
        "--model",
        base_model,
        "-o",
        str(out),
    )
    assert result.exit_code == 0, result.output
    assert "few-shot head 'mood' (happy, sad) from 9 training texts" in result.stderr
    assert "few_shot:\n  task: mood" in result.stdout and "pair_strategy: oversampling" in result.stdout
    base, after = MultiTaskModel.load(base_model), MultiTaskModel.load(out)
    assert after.branch_of == {"mood": "mood"} and list(after.heads) == ["old", "mood"]
    texts = ["A joy from start to finish.", "Dull and far too long."]
    assert np.array_equal(after.encode(texts), base.encode(texts))  # the embeddings did not move
    fast = load(out, backend="onnx")  # the exported graph holds the branch and both heads
    for e, g in zip(after.predict_proba(texts), fast.predict_proba(texts)):
        assert all(np.abs(e[t] - g[t]).max() <= 1e-4 for t in ("old", "mood"))


def test_train_from_data_bad_input(run, base_model, write, tmp_path):
    out = str(tmp_path / "o")
    one = write("one.csv", "text,label\na,pos\nb,pos\n")
    cases = [
        (["--data", one], "holds one class only ('pos')"),
        (["--data", one, "--config", one], "one of them"),
        (["--data", write("d.csv", "text,label\na,p\nb,n\n"), "--labels", "p,x"], "--labels does not match"),
        (["--data", write("e.csv", "text,label\na,p\nb,n\n"), "--labels", "p,p,n"], "repeated: p"),
        (
            [
                "--data",
                write("f.csv", "text,label\na,p\nb,n\n"),
                "--dev",
                write("g.csv", "text,label\nc,q\n"),
            ],
            "labels unseen in training: q",
        ),
        (
            ["--data", write("h.csv", "text,label\na,p\nb,n\n"), "--task", "old", "--model", base_model],
            "has a head 'old' already",
        ),
    ]
    for args, message in cases:
        result = run("train", *args, "-o", out)
        assert result.exit_code == 2 and message in result.stderr, (args, result.output)
        assert len(result.stderr.strip().splitlines()) == 1
