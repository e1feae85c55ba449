from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from st_multitask import cosine_similarity

A = "The dog ran across the grass.\nWhy is the sky blue?\n"
B = "The cat jumped into the weeds.\nThe sky looks blue because air scatters blue light.\nStocks fell.\n"


@pytest.fixture
def files(write):
    return write("a.txt", A), write("b.txt", B)


def _reference(backbone):
    return cosine_similarity(A.split("\n")[:2], B.split("\n")[:3], model=backbone)


def test_best_mode_table(run, files, backbone):
    result = run("similarity", *files)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["line_a", "a", "line_b", "b", "score"]
    assert "Why is the sky blue?" in lines[3] and "The sky looks blue" in lines[3]
    assert f"{_reference(backbone)[1, 1]:.4f}" in lines[3]


def test_best_mode_top_k_jsonl(run, files, backbone):
    result = run("similarity", *files, "--top-k", "2", "--format", "jsonl")
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["line_a"], r["rank"]) for r in records] == [(1, 1), (1, 2), (2, 1), (2, 2)]
    ref = _reference(backbone)
    for r in records:
        assert r["score"] == pytest.approx(ref[r["line_a"] - 1, r["line_b"] - 1], abs=1e-5)
    assert records[0]["score"] >= records[1]["score"]


def test_pairwise_csv(run, write, backbone):
    a = write("a.txt", "one cat\ntwo dogs\n")
    b = write("b.txt", "a kitten\nsome puppies\n")
    result = run("similarity", a, b, "--mode", "pairwise", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["line"] for r in rows] == ["1", "2"]
    expected = cosine_similarity(["one cat", "two dogs"], ["a kitten", "some puppies"], model=backbone)
    assert float(rows[1]["score"]) == pytest.approx(expected[1, 1], abs=1e-5)


def test_matrix_json_and_tsv(run, files, backbone):
    result = run("similarity", *files, "--mode", "matrix", "--format", "json")
    data = json.loads(result.stdout)
    np.testing.assert_allclose(np.array(data["scores"]), _reference(backbone), atol=1e-5)
    tsv = run("similarity", *files, "--mode", "matrix", "--format", "tsv").stdout.splitlines()
    assert len(tsv) == 3 and len(tsv[0].split("\t")) == 4
    table = run("similarity", *files, "--mode", "matrix").stdout
    assert "Why is the sky blue?" in table


def test_document_mode(run, files):
    result = run("similarity", *files, "--document", "--format", "json")
    (record,) = json.loads(result.stdout)
    assert 0.0 < record["score"] < 1.0 and record["a"].endswith("a.txt")


def test_plot(run, files, tmp_path):
    out = tmp_path / "heat.png"
    result = run("similarity", *files, "--mode", "matrix", "--plot", str(out))
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert run("similarity", *files, "--plot", str(tmp_path / "heat.jpg")).exit_code == 2


def test_stdin_for_one_side(run, files):
    result = run("similarity", "-", files[1], input=A)
    assert result.exit_code == 0 and "Why is the sky blue?" in result.stdout


def test_blank_lines_skipped_with_note(run, write, files):
    a = write("blank.txt", "\nThe dog ran across the grass.\n\n")
    result = run("similarity", a, files[1])
    assert result.exit_code == 0
    assert "skipped 2 blank lines" in result.stderr
    assert result.stdout.splitlines()[2].split()[0] == "2"  # original line number kept


def test_pairwise_blank_line_is_an_error(run, write):
    a = write("a.txt", "one\n\nthree\n")
    b = write("b.txt", "1\n2\n3\n")
    result = run("similarity", a, b, "--mode", "pairwise")
    assert result.exit_code == 2
    assert "line 2 is blank" in result.stderr and "Traceback" not in result.output


def test_pairwise_unequal_lengths(run, write):
    result = run("similarity", write("a.txt", "x\ny\n"), write("b.txt", "x\n"), "--mode", "pairwise")
    assert result.exit_code == 2 and "has 2" in result.stderr and "has 1" in result.stderr


def test_truncation_note(run, write, files):
    a = write("long.txt", "word " * 400 + "\n")
    result = run("similarity", a, files[1])
    assert result.exit_code == 0
    assert "1 text was longer than the model window (256 tokens)" in result.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"\n\n  \n", "only blank lines"),
        (b"fine\n\xc3\x28 broken\n", "line 2 is not valid UTF-8"),
        (b"GIF89a\x00\x01\x00", "binary file"),
    ],
)
def test_bad_input_one_line_exit_2(run, write, files, content, message):
    result = run("similarity", write("bad.txt", content), files[1])
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output


def test_missing_file_and_directory(run, files, tmp_path):
    result = run("similarity", str(tmp_path / "nope.txt"), files[1])
    assert result.exit_code == 2 and "no such file" in result.stderr
    result = run("similarity", str(tmp_path), files[1])
    assert result.exit_code == 2 and "is a directory" in result.stderr


def test_errors_replace_goes_on(run, write, files):
    result = run("similarity", write("bad.txt", b"fine\n\xff broken\n"), files[1], "--errors", "replace")
    assert result.exit_code == 0 and "replaced invalid UTF-8 bytes on 1 line" in result.stderr


def test_both_stdin_refused(run):
    assert run("similarity", "-", "-", input="x\n").exit_code == 2


def test_bad_model_and_device(run, files, tmp_path):
    result = run("similarity", *files, "--model", str(tmp_path))
    assert result.exit_code == 2 and "not a model directory" in result.stderr
    result = run("similarity", *files, "--device", "tpu9")
    assert result.exit_code == 2 and "Unknown device 'tpu9'" in result.stderr


def test_model_from_env(run, files, tiny_model_dir, monkeypatch):
    monkeypatch.setenv("STMT_MODEL", str(tiny_model_dir))
    result = run("similarity", *files, "--format", "json")
    assert result.exit_code == 0, result.output
    monkeypatch.setenv("STMT_MODEL", "/definitely/not/here")
    result = run("similarity", *files)
    assert result.exit_code == 2 and "does not exist" in result.stderr
