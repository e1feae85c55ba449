"""python -m benchmarks: one entry point for every benchmark script, with a smoke-test size."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", *args], cwd=ROOT, capture_output=True, text=True, timeout=600
    )


def test_every_script_is_listed_with_what_it_measures():
    modules = {p.stem for p in (ROOT / "benchmarks").glob("*.py") if not p.name.startswith("_")}
    scripts = modules - {"render"}
    listed = _run("list")
    assert listed.returncode == 0
    names = {line.split()[0] for line in listed.stdout.splitlines() if line.strip()}
    assert names == scripts
    assert all(len(line.split()) > 2 for line in listed.stdout.splitlines() if line.strip())


def test_all_quick_names_each_command_and_an_unknown_name_is_an_error():
    dry = _run("run", "all", "--quick", "--dry-run")
    assert dry.returncode == 0 and "python -m benchmarks.backend_speed --rounds 1" in dry.stdout
    assert "gpu_speed" not in dry.stdout  # needs a CUDA machine: by name only
    wrong = _run("run", "nope")
    assert wrong.returncode != 0 and "Unknown benchmark 'nope'" in wrong.stderr


@pytest.mark.data  # STS-B sentences
@pytest.mark.export  # embed on the fast path
def test_a_quick_run_runs_the_script_and_stores_no_result():
    results = ROOT / "benchmarks" / "results"
    before = {p: p.stat().st_mtime_ns for p in results.rglob("*.json")}
    done = _run("run", "embed_speed", "--quick")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "embed_speed: exit 0" in done.stdout
    assert {p: p.stat().st_mtime_ns for p in results.rglob("*.json")} == before
