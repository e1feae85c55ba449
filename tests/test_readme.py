"""The Python examples of the README and of the guides in docs/ run, and print what they say they print.

Every ```` ```python ```` block runs on its own (a fresh namespace, in a temporary working
directory). Comment lines right after a ``print(...)`` line are that print's expected output. A
block that must not run here (it needs a running server, a GPU, a cluster) says so on the line
right before its fence, with the reason::

    <!-- not run: needs a running stmt serve -->
    ```python
    ...
    ```
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
NOT_RUN = re.compile(r"<!-- not run: \S.*? -->")
FENCE = re.compile(r"(?:^([^\n]*)\n)?^```python\n(.*?)^```", flags=re.S | re.M)


def python_blocks(path: Path) -> list[tuple[str, str]]:
    """``(id, code)`` of every block of ``path`` that runs; a block marked ``not run`` is left out."""
    blocks = []
    for number, match in enumerate(FENCE.finditer(path.read_text(encoding="utf-8"))):
        before, code = match.group(1) or "", match.group(2)
        if not NOT_RUN.fullmatch(before.strip()):
            blocks.append((f"{path.stem}-block{number}", code))
    return blocks


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


BLOCKS = [(path, *block) for path in [README, *DOCS] for block in python_blocks(path)]


def test_readme_has_python_examples():
    assert len(python_blocks(README)) >= 2


def test_not_run_marker_is_recognised(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "```python\nprint(1)\n# 1\n```\n\n<!-- not run: needs a server -->\n```python\nraise SystemExit\n```\n",
        encoding="utf-8",
    )
    assert [code for _, code in python_blocks(page)] == ["print(1)\n# 1\n"]


@pytest.mark.parametrize(("path", "block_id", "code"), BLOCKS, ids=[block_id for _, block_id, _ in BLOCKS])
def test_documented_example(path, block_id, code, backbone, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that save write here
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        exec(compile(code, str(path), "exec"), {})
    assert buffer.getvalue().strip() == _expected_output(code).strip()
