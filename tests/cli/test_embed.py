from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from st_multitask import embed

TEXTS = ["The dog ran across the grass.", "Why is the sky blue?", "A man is playing a guitar."]


@pytest.fixture
def text_file(write):
    return write("in.txt", TEXTS[0] + "\n\n" + "\n".join(TEXTS[1:]) + "\n")


def test_npy_output(run, text_file, tmp_path, backbone):
    out = tmp_path / "v.npy"
    result = run("embed", text_file, "-o", str(out))
    assert result.exit_code == 0, result.output
    vectors = np.load(out)
    np.testing.assert_allclose(vectors, embed(TEXTS, model=backbone), atol=1e-6)
    assert "skipped 1 blank line" in result.stderr and "Wrote 3 embeddings" in result.stderr
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_streaming_in_chunks_equals_one_shot(run, text_file, tmp_path):
    run("embed", text_file, "-o", str(tmp_path / "one.npy"))
    run("embed", text_file, "-o", str(tmp_path / "many.npy"), "--chunk-size", "1")
    # batches pad differently, so equal up to float rounding
    np.testing.assert_allclose(np.load(tmp_path / "one.npy"), np.load(tmp_path / "many.npy"), atol=1e-6)


def test_jsonl_stdout_and_csv(run, text_file, tmp_path, backbone):
    result = run("embed", text_file)
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["line"] for r in records] == [1, 3, 4]
    assert len(records[0]["embedding"]) == 384
    out = tmp_path / "v.csv"
    run("embed", text_file, "-o", str(out))
    rows = list(csv.reader(out.open()))
    assert rows[0][:3] == ["line", "text", "e0"] and len(rows[0]) == 2 + 384
    np.testing.assert_allclose(
        np.array(rows[2][2:], dtype=np.float32), embed(TEXTS[1:2], model=backbone)[0], atol=1e-6
    )


def test_parquet_output(run, text_file, tmp_path):
    import pyarrow.parquet as pq

    out = tmp_path / "v.parquet"
    assert run("embed", text_file, "-o", str(out), "--chunk-size", "2").exit_code == 0
    table = pq.read_table(out)
    assert table.column("line").to_pylist() == [1, 3, 4]
    assert np.array(table.column("embedding").to_pylist()).shape == (3, 384)


def test_csv_input_column_and_stdin(run, write, tmp_path):
    path = write("d.csv", "id,review\n1,Great movie\n2,Awful plot\n")
    out = tmp_path / "r.npy"
    assert run("embed", path, "--column", "review", "-o", str(out)).exit_code == 0
    assert np.load(out).shape == (2, 384)
    result = run("embed", path)
    assert result.exit_code == 2 and "Pass --column id?" in result.stderr
    result = run("embed", "-", input="one\ntwo\n")
    assert len(result.stdout.splitlines()) == 2


def test_long_texts(run, write):
    path = write("long.txt", "word " * 400 + "\nshort\n")
    result = run("embed", path)
    assert "1 text was longer than the model window" in result.stderr
    result = run("embed", path, "--long", "chunk")
    assert "embedded in overlapping windows" in result.stderr


def test_bad_output_extension_and_nothing_written(run, text_file, tmp_path):
    result = run("embed", text_file, "-o", str(tmp_path / "v.xlsx"))
    assert result.exit_code == 2 and "Unknown output extension '.xlsx'" in result.stderr
    result = run("embed", text_file, "-o", str(tmp_path / "missing-dir" / "v.npy"))
    assert result.exit_code == 2 and "does not exist" in result.stderr


def test_error_mid_file_leaves_no_output(run, write, tmp_path):
    path = write("in.txt", "ok\n" * 5 + "bad \xff\n".encode("latin1").decode("latin1"))
    bad = write("bad.txt", b"ok\nok\n\xff\n")
    out = tmp_path / "v.npy"
    out.write_bytes(b"previous")
    result = run("embed", bad, "-o", str(out), "--chunk-size", "1")
    assert result.exit_code == 2 and "line 3 is not valid UTF-8" in result.stderr
    assert out.read_bytes() == b"previous"  # untouched: outputs are replaced atomically
    assert run("embed", path, "-o", str(tmp_path / "w.npy")).exit_code == 0


def test_output_gets_the_permissions_of_a_plain_write(run, text_file, tmp_path):
    import os
    import stat

    previous = os.umask(0o022)
    try:
        result = run("embed", text_file, "-o", str(tmp_path / "v.npy"))
    finally:
        os.umask(previous)
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE((tmp_path / "v.npy").stat().st_mode) == 0o644  # not the temp file's 0600
