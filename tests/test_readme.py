"""The README's Python examples run, and print what the README says they print."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def _expected_output(code: str) -> str:
    """Comment lines that follow a print() line are that print's expected output."""
    out, in_output = [], False
    for line in code.splitlines():
        if line.startswith("print("):
            in_output = True
        elif in_output and line.startswith("# "):
            out.append(line[2:])
        else:
            in_output = False
    return "\n".join(out)


def test_readme_has_python_examples():
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_example(code, backbone, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that save write here
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        exec(compile(code, str(README), "exec"), {})
    assert buffer.getvalue().strip() == _expected_output(code).strip()
