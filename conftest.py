"""Settings for every test and doctest: no network, and a private cache for exported graphs."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

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
EXPORT_FILES = ("tests/runtime/test_graphs.py", "tests/cli/test_export.py", "tests/test_exported_model.py")


def pytest_collection_modifyitems(config, items):
    import pytest

    for item in items:
        # the batch tests' shared corpus is STS-B (a data package): every test that reads it needs make data
        reads_corpus = {"corpus", "corpus_parquet", "reference_vectors"} & set(
            getattr(item, "fixturenames", ())
        )
        if item.nodeid.startswith(DATA_FILES) or (item.nodeid.startswith("tests/batch/") and reads_corpus):
            item.add_marker(pytest.mark.data)
        if item.nodeid.startswith(EXPORT_FILES):
            item.add_marker(pytest.mark.export)


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
