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


def test_library_errors_name_flags_on_the_command_line():
    from st_multitask.cli._common import cli_terms

    assert cli_terms("out exists already; pass overwrite=True to replace it.") == (
        "out exists already; pass --overwrite to replace it."
    )
    assert (
        cli_terms("Found 'sentence'. Pass text_column='sentence'?")
        == "Found 'sentence'. Pass --text-column sentence?"
    )
    assert cli_terms("use backend='torch' or device='cpu'; or pass model=None") == (
        "use --backend torch or --device cpu; or leave --model out"
    )
