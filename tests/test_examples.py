"""Every example runs: the Python scripts, and each training config (for one epoch)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
STMT = Path(sys.executable).parent / "stmt"


def _run(*command: str, cwd: Path) -> str:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=True).stdout


@pytest.mark.slow
def test_embeddings_example(tmp_path):
    out = _run(sys.executable, str(EXAMPLES / "embeddings.py"), cwd=tmp_path)
    assert "0.376" in out and "0.070" in out and "0.022" in out


@pytest.mark.slow
def test_predict_example(tmp_path):
    out = _run(sys.executable, str(EXAMPLES / "predict.py"), cwd=tmp_path)
    assert "topic:" in out and "sentiment:" in out and "entity:" in out


@pytest.mark.slow
def test_zero_shot_example_prints_its_captured_output(tmp_path):
    """The captured output is real: the script still gives every label in it (scores aside)."""
    out = _run(sys.executable, str(EXAMPLES / "zero_shot.py"), cwd=tmp_path)
    captured = (EXAMPLES / "zero_shot_output.txt").read_text(encoding="utf-8")

    def labels(text: str) -> list[str]:
        return [re.sub(r"\b\d\.\d\d\b", "", line) for line in text.splitlines()]

    assert labels(out) == labels(captured) and "21 of 24 as expected" in captured


@pytest.mark.slow
@pytest.mark.parametrize("config", ["joint.yaml", "sequential.yaml", "frozen.yaml"])
def test_training_configs(config, tmp_path):
    out = tmp_path / "model"
    _run(
        str(STMT),
        "train",
        "--config",
        str(EXAMPLES / "configs" / config),
        "-o",
        str(out),
        "--epochs",
        "1",
        "--quiet",
        cwd=tmp_path,
    )
    assert (out / "st_multitask.json").is_file() and (out / "metrics.jsonl").is_file()


@pytest.mark.parametrize(
    "config", ["joint.yaml", "sequential.yaml", "frozen.yaml", "default.yaml", "default-sentiment.yaml"]
)
def test_config_settings_are_valid(config):
    from st_multitask import TrainingConfig

    settings = TrainingConfig.from_file(EXAMPLES / "configs" / config)
    if config.startswith("default"):  # the bundled model keeps the backbone frozen (heads may ride a branch)
        assert settings.freeze == ["backbone"] and settings.cache_embeddings == "memory"


@pytest.mark.data
def test_the_default_sentiment_recipe_builds_its_one_layer_branch():
    from st_multitask.recipe import load_recipe

    model, tasks, _ = load_recipe(EXAMPLES / "configs" / "default-sentiment.yaml")
    assert model.branch_of == {"sentiment": "sentiment"} and model.branches["sentiment"].depth == 1
    assert [t.name for t in tasks] == ["sentiment"] and len(tasks[0].train) > 20_000
