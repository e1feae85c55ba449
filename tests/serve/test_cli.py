"""``stmt serve`` on the command line: its help, and mistakes that exit 2 with one line."""

from __future__ import annotations

import subprocess
import sys


def test_serve_is_listed_and_documented(run):
    assert "serve" in run("--help").stdout
    result = run("serve", "--help")
    assert result.exit_code == 0
    for flag in ("--model", "--index", "--host", "--port", "--api-key", "--served-model-name", "--max-queue"):
        assert flag in result.stdout
    assert "127.0.0.1" in result.stdout and "STMT_API_KEY" in result.stdout


def test_a_wrong_engine_or_limit_is_one_line_and_exit_2(run):
    wrong = run("serve", "--backend", "onnx", "--precision", "bf16")
    assert wrong.exit_code == 2 and "bf16" in wrong.stderr and "Traceback" not in wrong.stderr
    limits = run("serve", "--max-queue", "10", "--max-client-batch", "20")
    assert limits.exit_code == 2 and "max_queue (10) must be at least max_client_batch (20)" in limits.stderr


def test_a_model_that_does_not_load_exits_2(tmp_path, port):
    command = [
        sys.executable,
        "-m",
        "st_multitask",
        "serve",
        "--model",
        str(tmp_path),
        "--port",
        str(port),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: could not load the model:") and str(tmp_path) in last
    assert "Traceback" not in done.stderr
