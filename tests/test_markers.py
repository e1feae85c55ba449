"""What the test markers promise: the gpu tests are deselected (not skipped) where there is no GPU,
and run where one is present or a device is named for them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def _collect(env: dict[str, str]) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "tests/gpu"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode in (0, 5), proc.stdout + proc.stderr  # 5: every test deselected
    return proc.stdout


def test_gpu_tests_are_deselected_without_a_gpu_and_collected_with_a_named_device():
    env = {k: v for k, v in os.environ.items() if k != "STMT_TEST_GPU_DEVICE"}
    plain = _collect(env)
    if torch.cuda.is_available():
        assert "tests/gpu/test_cuda.py::" in plain
    else:
        assert "deselected" in plain and "tests/gpu/test_cuda.py::" not in plain
    named = _collect({**env, "STMT_TEST_GPU_DEVICE": "cpu"})
    assert "test_the_default_model_on_the_gpu_agrees_with_the_cpu" in named
