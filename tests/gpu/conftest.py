"""The device the ``gpu`` tests check: ``cuda`` [default], or ``$STMT_TEST_GPU_DEVICE`` (``cpu`` runs
them on a CPU as a smoke test of the tests themselves; every comparison is then CPU against CPU).

The repository's conftest.py deselects these tests where no GPU is present (not skipped: CI fails
on a skip), unless ``STMT_TEST_GPU_DEVICE`` names a device."""

from __future__ import annotations

import os

import pytest

# cuBLAS reproducibility (deterministic reductions) must be set before the first CUDA call.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


@pytest.fixture(scope="session")
def gpu() -> str:
    return os.environ.get("STMT_TEST_GPU_DEVICE", "cuda")
