"""The install layout: `cli/` ships as `st_multitask.cli`, never as a top-level `cli` module."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PIP = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation"]


def _check(python: list[str], env: dict[str, str], cwd: Path, stmt: Path) -> None:
    version = subprocess.run(
        [str(stmt), "--version"], env=env, cwd=cwd, capture_output=True, text=True, check=True
    )
    assert version.stdout.startswith("stmt, version")
    module = subprocess.run(
        [*python, "-m", "st_multitask", "--version"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    assert module.stdout == version.stdout
    top = subprocess.run([*python, "-c", "import cli"], env=env, cwd=cwd, capture_output=True, text=True)
    assert top.returncode != 0 and "No module named 'cli'" in top.stderr


@pytest.mark.slow
def test_pip_install_regular(tmp_path):
    target = tmp_path / "site"
    subprocess.run([*PIP, "--target", str(target), str(ROOT)], check=True, cwd=tmp_path)
    assert (target / "st_multitask" / "cli" / "similarity.py").is_file()
    assert (target / "st_multitask" / "heads" / "context.py").is_file()
    assert (target / "st_multitask" / "runtime" / "calibration.txt").is_file()
    assert (target / "st_multitask" / "py.typed").is_file()
    bundled = target / "st_multitask" / "default_model"
    assert (bundled / "st_multitask.json").is_file() and (
        bundled / "heads" / "ner" / "model.safetensors"
    ).is_file()
    assert not (target / "cli").exists()
    env = {**os.environ, "PYTHONPATH": str(target)}
    where = subprocess.run(
        [sys.executable, "-c", "import st_multitask.cli as c; print(c.__file__)"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.strip().startswith(str(target))
    _check([sys.executable], env, tmp_path, target / "bin" / "stmt")


@pytest.mark.slow
def test_pip_install_editable(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # the new environment sees this one's packages (torch, sentence-transformers, pip) through a .pth file
    Path(site, "outer.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([str(python), *PIP[1:], "-e", str(ROOT)], check=True, cwd=tmp_path)
    assert any(p.name.startswith("__editable__") and "st_multitask" in p.name for p in Path(site).iterdir())
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    where = subprocess.run(
        [str(python), "-c", "import st_multitask.cli as c; print(c.__file__)"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.strip() == str(ROOT / "cli" / "__init__.py")
    _check([str(python)], env, tmp_path, venv / "bin" / "stmt")
