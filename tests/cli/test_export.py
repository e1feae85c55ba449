"""`stmt export` and the --backend / --precision options of the inference commands."""

from __future__ import annotations

import json
import os

import pytest

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "examples")
A, B = os.path.join(EXAMPLES, "a.txt"), os.path.join(EXAMPLES, "b.txt")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The bundled default model exported to ONNX int8 by `stmt export`."""
    from click.testing import CliRunner

    from st_multitask.cli import main

    out = tmp_path_factory.mktemp("export") / "default-int8"
    result = CliRunner().invoke(main, ["export", "--backend", "onnx", "--precision", "int8", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert f"Wrote {out} (onnx int8)" in result.stderr
    return out


def test_export_writes_a_complete_verified_model(exported, run):
    manifest = json.loads((exported / "st_multitask.json").read_text())
    assert manifest["backbone"]["type"] == "directory" and set(manifest["heads"]) == {
        "topic",
        "sentiment",
        "ner",
    }
    assert list(manifest["graphs"]["onnx/int8"]["files"]) == ["onnx/model_qint8.onnx"]
    assert (exported / "model.safetensors").is_file() and (
        exported / "heads" / "ner" / "config.json"
    ).is_file()
    result = run(
        "predict",
        "--model",
        str(exported),
        "--backend",
        "onnx",
        "--precision",
        "int8",
        "--format",
        "json",
        "Apple is buying a U.K. startup for $1 billion",
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["topic"]["label"] == "business"
    info = run("info", "--model", str(exported))
    assert "exported graph onnx/int8: onnx/model_qint8.onnx (onnxruntime" in info.stdout


def test_export_errors_are_one_line(exported, run, write):
    existing = run("export", "--backend", "onnx", "-o", str(exported))
    assert existing.exit_code == 2 and "exists already; pass --overwrite to replace it" in existing.stderr
    for name, content, message in (("c.txt", "\n\n", "has no text"), ("c.bin", b"\x00\x01\xff", "binary")):
        calibration = write(name, content)
        result = run("export", "--backend", "openvino", "--precision", "int8", "--calibration", calibration,
                     "-o", str(exported.parent / name))  # fmt: skip
        assert result.exit_code == 2 and message in result.stderr and "Traceback" not in result.output
    wrong = run(
        "export",
        "--backend",
        "onnx",
        "--calibration",
        write("c2.txt", "a text\n"),
        "-o",
        str(exported.parent / "z"),
    )
    assert (
        wrong.exit_code == 2
        and "--calibration applies to --backend openvino --precision int8" in wrong.stderr
    )
    bf16 = run("export", "--backend", "onnx", "--precision", "bf16", "-o", str(exported.parent / "w"))
    assert bf16.exit_code == 2 and "no bf16 kernels; export bf16 with --backend openvino" in bf16.stderr
    assert sorted(p.name for p in exported.parent.iterdir()) == [exported.name]


def test_a_tampered_export_is_named(exported, run, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(exported, copy)
    graph = copy / "onnx" / "model_qint8.onnx"
    graph.write_bytes(graph.read_bytes()[: graph.stat().st_size // 2])
    result = run("predict", "--model", str(copy), "--backend", "onnx", "--precision", "int8", "some text")
    assert result.exit_code == 2
    assert "model_qint8.onnx does not match its sha256" in result.stderr and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--backend", "onnx", "--precision", "bf16"], "no bf16 kernels; use --backend openvino"),
        (["--backend", "torch", "--precision", "int8"], "torch backend runs fp32 only"),
        (["--backend", "gpu"], "Invalid value for '--backend'"),
    ],
)
def test_bad_backend_choices_exit_2(run, args, message):
    for command in (["similarity", A, B], ["predict", "a text"], ["embed", A]):
        result = run(*command, *args)
        assert result.exit_code == 2 and message in result.stderr, result.output


def test_environment_variables_choose_the_engine(run, monkeypatch):
    monkeypatch.setenv("STMT_PRECISION", "int8")
    monkeypatch.setenv("STMT_BACKEND", "torch")
    result = run("similarity", A, B)
    assert result.exit_code == 2 and "torch backend runs fp32 only" in result.stderr


def test_every_engine_gives_the_same_best_matches(run):
    outputs = {}
    for backend in ("torch", "onnx", "openvino"):
        result = run("similarity", A, B, "--backend", backend, "--format", "json")
        assert result.exit_code == 0, result.output
        outputs[backend] = json.loads(result.stdout)
    for backend in ("onnx", "openvino"):
        for mine, theirs in zip(outputs[backend], outputs["torch"]):
            assert mine["line_b"] == theirs["line_b"] and abs(mine["score"] - theirs["score"]) < 1e-4


def test_a_missing_runtime_gives_the_pip_command(run, monkeypatch):
    import st_multitask.runtime as runtime

    monkeypatch.setattr(runtime, "backend_installed", lambda backend: backend != "openvino")
    result = run("embed", A, "--backend", "openvino")
    assert result.exit_code == 2 and "pip install 'st-multitask[openvino]'" in result.stderr


@pytest.mark.parametrize(("task", "data"), [("sentiment", "sentiment-dev.csv"), ("ner", "ner-dev.conll")])
def test_evaluate_gives_the_same_metrics_on_every_engine(run, task, data):
    path = os.path.join(EXAMPLES, "data", data)
    metrics = {}
    for backend in ("torch", "onnx", "openvino"):
        result = run("evaluate", "--task", task, "--data", path, "--backend", backend, "--format", "json")
        assert result.exit_code == 0, result.output
        metrics[backend] = {k: v for k, v in json.loads(result.stdout).items() if k != "data"}
    assert metrics["onnx"] == metrics["torch"] == metrics["openvino"]
