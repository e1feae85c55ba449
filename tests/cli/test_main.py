from __future__ import annotations

import subprocess
import sys

from st_multitask import __version__


def test_version_and_help(run):
    assert run("--version").stdout.strip() == f"stmt, version {__version__}"
    result = run("-h")
    assert result.exit_code == 0
    for name in ("embed", "similarity", "search"):
        assert name in result.stdout


def test_help_does_not_import_torch():
    code = (
        "import sys; from st_multitask.cli import main; assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    out = subprocess.run(
        [sys.executable, "-m", "st_multitask", "similarity", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--mode [best|pairwise|matrix]" in out.stdout


def test_unknown_command(run):
    result = run("nope")
    assert result.exit_code == 2 and "No such command 'nope'" in result.stderr


def test_library_hints_are_named_as_flags_on_the_command_line():
    from st_multitask.cli._common import flag
    from st_multitask.errors import Hint, InputError

    error = InputError(
        "use ",
        Hint("backend", "torch"),
        " or ",
        Hint("device", "cpu"),
        "; or ",
        Hint("model", None, verb="pass"),
    )
    assert str(error) == "use backend='torch' or device='cpu'; or pass model=None"
    assert error.render(flag) == "use --backend torch or --device cpu; or leave --model out"
    assert (
        flag(Hint("overwrite")) == "--overwrite" and flag(Hint("text_column", "body")) == "--text-column body"
    )
