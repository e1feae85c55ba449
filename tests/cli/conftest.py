from __future__ import annotations

import pytest
from click.testing import CliRunner

from st_multitask.cli import main


@pytest.fixture
def run():
    """run("similarity", a, b, input=...) -> click Result with .exit_code, .stdout, .stderr."""

    def _run(*args: str, input: str | bytes | None = None):
        return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)

    return _run
