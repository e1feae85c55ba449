"""Reproducible to the bit, on the packaged MiniLM with its backbone training: one seed fixes the
heads' initial weights, the batch order, the task draws and dropout, on every entry point; and a
run killed with SIGKILL and resumed from its checkpoint ends on the same bits as one never stopped.

The runs are small, a few seconds each: 16 short texts and 16 short sentences, 2 epochs of 4 steps;
the top encoder layer trains in the first epoch and the top two in the second (gradual unfreezing
keeps the backward pass and the optimizer short), with dropout in every layer.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

DATA = Path(__file__).resolve().parents[1] / "examples" / "data"


def _sentences(n: int) -> list[str]:
    """The first ``n`` sentences of the example CoNLL file, as CoNLL text."""
    blocks = [b for b in DATA.joinpath("ner-train.conll").read_text().split("\n\n") if "DOCSTART" not in b]
    return blocks[:n]


@pytest.fixture(scope="module")
def recipe(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("recipe")
    rows = DATA.joinpath("sentiment-train.csv").read_text().splitlines()
    (folder / "sentiment.csv").write_text("\n".join(rows[:17]) + "\n")
    (folder / "ner.conll").write_text("\n\n".join(_sentences(16)) + "\n")
    recipe = {
        "model": {"backbone": None},  # the packaged all-MiniLM-L6-v2
        "tasks": {
            "sentiment": {"head": {"kind": "mlp", "hidden": [32]}, "train": "sentiment.csv"},
            "ner": {"head": {"kind": "token", "hidden": [16]}, "train": "ner.conll"},
        },
        "training": {
            "epochs": 2,
            "batch_size": 8,  # 2 + 2 batches an epoch: 4 steps
            "unfreeze_every": 1,  # epochs
            "unfreeze_layers": 1,
            "learning_rate": 1e-4,
            "head_learning_rate": 1e-2,
            "sampling": "proportional",  # the task of each batch is drawn
            "checkpoint_every": 3,  # step 3 falls inside the first epoch
            "keep_checkpoints": 1,
            "calibrate": False,
            "seed": 11,
        },
    }
    path = folder / "recipe.json"
    path.write_text(json.dumps(recipe))
    return path


def _stmt_train(recipe: Path, out: Path, *flags: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "st_multitask", "train", "--config", str(recipe), "-o", str(out)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.Popen([*command, "--quiet", *flags], env=env, stdout=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def reference(recipe, tmp_path_factory) -> Path:
    """One uninterrupted `stmt train` run of the recipe."""
    out = tmp_path_factory.mktemp("reference") / "model"
    assert _stmt_train(recipe, out).wait() == 0
    return out


def _assert_same_run(a: Path, b: Path) -> None:
    """Every saved tensor equal to the bit, and the same metrics and history."""
    files = sorted(p.relative_to(a) for p in a.rglob("*.safetensors") if "checkpoints" not in p.parts)
    assert Path("model.safetensors") in files and Path("heads/ner/model.safetensors") in files
    for name in files:
        left, right = load_file(a / name), load_file(b / name)
        assert left.keys() == right.keys(), name
        for key, tensor in left.items():
            assert tensor.dtype == right[key].dtype and tensor.equal(right[key]), f"{name}: {key}"
    result = [json.loads((p / "training_result.json").read_text()) for p in (a, b)]
    assert result[0] == result[1]
    history = [
        [{k: v for k, v in json.loads(line).items() if k != "train_seconds"} for line in lines]
        for lines in ((p / "metrics.jsonl").read_text().splitlines() for p in (a, b))
    ]
    assert history[0] == history[1] and len(history[0]) == 2


@pytest.mark.slow
def test_same_recipe_and_seed_give_the_same_bits(recipe, reference, tmp_path):
    """The recipe run in this process (load_recipe + Trainer) equals the `stmt train` run."""
    from st_multitask.recipe import load_recipe
    from st_multitask.training import Trainer

    model, tasks, config = load_recipe(recipe, device="cpu")
    Trainer(model, config, output_dir=tmp_path / "model", progress=False).fit(tasks)
    _assert_same_run(reference, tmp_path / "model")


@pytest.mark.slow
def test_sigkilled_run_resumes_to_the_same_bits(recipe, reference, tmp_path):
    out = tmp_path / "model"
    process = _stmt_train(recipe, out)
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None and not list(out.glob("checkpoints/step-*")):
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL, "the run ended before its first checkpoint could be caught"
    assert not (out / "st_multitask.json").exists()
    assert _stmt_train(recipe, out, "--resume").wait() == 0
    _assert_same_run(reference, out)
