"""Settings for every test and doctest: no network, and a private cache for exported graphs."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

import pytest
from _pytest.doctest import DoctestItem

# Tests never touch the network: set before transformers / huggingface_hub are imported.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Graphs exported during the tests go to a private cache, not the user's ~/.cache/st_multitask.
if "STMT_CACHE" not in os.environ:
    os.environ["STMT_CACHE"] = tempfile.mkdtemp(prefix="stmt-test-cache-")
    atexit.register(shutil.rmtree, os.environ["STMT_CACHE"], True)
os.environ.pop("STMT_BACKEND", None)
os.environ.pop("STMT_PRECISION", None)


# What some tests cost, marked here for whole files: the doctests that read the real data sets
# (`make data`), and the test files whose every test exports a model's graph.
DATA_FILES = ("st_multitask/corpora.py",)
EXPORT_FILES = (
    "tests/runtime/test_graphs.py",
    "tests/cli/test_export.py",
    "tests/test_exported_model.py",
    # the two doctests that show the fast path itself (the session's one graph cache serves them)
    "st_multitask/exported_model.py",
    "st_multitask/runtime/load.py",
)


def _gpu_present() -> bool:
    """A CUDA GPU, or a device named for the gpu tests (STMT_TEST_GPU_DEVICE=cpu: a smoke run)."""
    if os.environ.get("STMT_TEST_GPU_DEVICE"):
        return True
    import torch

    return torch.cuda.is_available()


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.nodeid.startswith("tests/gpu/"):
            item.add_marker(pytest.mark.gpu)
    gpu = [item for item in items if item.get_closest_marker("gpu")]
    if gpu and not _gpu_present():  # deselected, not skipped: CI fails on a skip
        config.hook.pytest_deselected(items=gpu)
        items[:] = [item for item in items if not item.get_closest_marker("gpu")]
    for item in items:
        # the batch tests' shared corpus is STS-B (a data package): every test that reads it needs make data
        reads_corpus = {"corpus", "corpus_parquet", "reference_vectors"} & set(
            getattr(item, "fixturenames", ())
        )
        if item.nodeid.startswith(DATA_FILES) or (item.nodeid.startswith("tests/batch/") and reads_corpus):
            item.add_marker(pytest.mark.data)
        if item.nodeid.startswith(EXPORT_FILES):
            item.add_marker(pytest.mark.export)


@pytest.fixture(autouse=True)
def _doctests_run_in_torch(request, monkeypatch):
    """Doctests show the API, not the fast path: with ``STMT_BACKEND=torch`` an example that leaves
    the engine to ``auto`` exports no graph (only the fast path's own, marked ``export``, do)."""
    if isinstance(request.node, DoctestItem) and not request.node.nodeid.startswith(EXPORT_FILES):
        monkeypatch.setenv("STMT_BACKEND", "torch")


def pytest_sessionfinish(session, exitstatus):
    """In CI (CI=true) a skipped test fails the run: CI runs every test, and a skip hides one."""
    if os.environ.get("CI", "").lower() != "true":
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if skipped:
        if reporter is not None:
            reporter.write_line(f"CI: {len(skipped)} test(s) skipped; a skip in CI is a failure.", red=True)
        session.exitstatus = 1
