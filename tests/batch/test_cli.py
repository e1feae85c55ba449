"""``stmt embed`` / ``stmt predict`` as batch jobs on each engine, and their bad input: one line, exit 2."""

from __future__ import annotations

import socket
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

TEXTS = ["A cat sat on the mat.", "Stocks fell sharply in Tokyo.", "The band played all night."]


@pytest.fixture
def small_parquet(tmp_path):
    path = tmp_path / "small.parquet"
    pq.write_table(pa.table({"id": [1, 2, 3], "body": TEXTS}), path)
    return path


def _one_line_error(result, *parts: str) -> None:
    assert result.exit_code == 2, result.output
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1 and "Traceback" not in message, message
    for part in parts:
        assert part in message, message


def test_embed_local_engine_writes_the_dataset(run, small_parquet, tmp_path):
    out = tmp_path / "vectors"
    result = run(
        "embed", "--input", str(small_parquet), "--text-column", "body", "--id-column", "id", "-o", str(out)
    )
    assert result.exit_code == 0, result.output
    table = pq.read_table(out)
    assert table.column_names == ["id", "body", "embedding"] and table.num_rows == 3
    assert "Wrote 3 embeddings" in result.stderr


@pytest.mark.slow
def test_embed_and_predict_on_ray(run, ray_cluster, small_parquet, tmp_path):
    from st_multitask.model import MultiTaskModel

    base = ["--input", str(small_parquet), "--text-column", "body", "--id-column", "id", "--engine", "ray"]
    result = run("embed", *base, "--actors", "1", "--output", str(tmp_path / "vectors"))
    assert result.exit_code == 0, result.output
    assert pq.read_table(tmp_path / "vectors").num_rows == 3
    result = run("predict", *base, "--actors", "1", "--output", str(tmp_path / "labels"))
    assert result.exit_code == 0, result.output
    table = pq.read_table(tmp_path / "labels").sort_by("id")
    model = MultiTaskModel.default(backend="auto")
    sentence = [name for name, head in model.heads.items() if head.level == "sentence"]
    want = model.predict(TEXTS)
    for name in sentence:
        assert table.column(f"{name}_label").to_pylist() == [w[name]["label"] for w in want]


def test_bad_input_is_one_line_and_exit_2(run, small_parquet, tmp_path):
    out = str(tmp_path / "out")
    _one_line_error(
        run("embed", "--input", str(tmp_path / "missing.parquet"), "-o", out),
        "missing.parquet does not exist",
    )
    _one_line_error(
        run("embed", "--input", str(small_parquet), "-o", out),
        "Expected a column 'text'",
        "found 'id', 'body'",
        "Pass --text-column body?",
    )
    _one_line_error(
        run(
            "predict",
            "--input",
            str(small_parquet),
            "--text-column",
            "body",
            "--id-column",
            "nope",
            "-o",
            out,
        ),
        "Expected a column 'nope'",
    )
    assert run("embed", "--input", str(small_parquet), "--text-column", "body", "-o", out).exit_code == 0
    _one_line_error(
        run("embed", "--input", str(small_parquet), "--text-column", "body", "-o", out),
        "exists already",
        "--overwrite",
    )
    _one_line_error(run("embed", "--input", str(small_parquet), "--engine", "ray"), "pass --output DIR")


def test_ray_not_installed_names_the_pip_command(run, small_parquet, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as if it were not installed
    _one_line_error(
        run(
            "embed",
            "--input",
            str(small_parquet),
            "--text-column",
            "body",
            "--engine",
            "ray",
            "-o",
            str(tmp_path / "o"),
        ),
        "pip install 'st-multitask[ray]'",
    )


def test_unreachable_address_is_named(run, small_parquet, tmp_path):
    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    _one_line_error(
        run(
            "predict",
            "--input",
            str(small_parquet),
            "--text-column",
            "body",
            "--engine",
            "ray",
            "--address",
            f"127.0.0.1:{port}",
            "-o",
            str(tmp_path / "o"),
        ),
        f"Cannot reach a Ray cluster at 127.0.0.1:{port}",
        "ray start --head",
    )
    assert not (tmp_path / "o").exists()
