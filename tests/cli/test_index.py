"""stmt index build/add/info and stmt search --index: outputs, bad input (one line, exit 2), kill safety."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

CORPUS = "The cat sat on the mat.\nStocks fell sharply on Monday.\n\nA dog barked at the mailman.\n"


@pytest.fixture
def corpus(write):
    return write("corpus.txt", CORPUS)


@pytest.fixture
def index_dir(run, corpus, tmp_path):
    out = str(tmp_path / "idx")
    result = run("index", "build", corpus, "-o", out)
    assert result.exit_code == 0, result.output
    assert "Indexed 3 texts (flat, fp32)" in result.stderr and "skipped 1 blank line" in result.stderr
    return out


def _jsonl(result):
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_search_index_gives_what_search_corpus_gives(run, corpus, index_dir):
    queries = ("a pet animal", "share prices dropped")
    with_corpus = run("search", "--corpus", corpus, *queries, "-k", "2", "--format", "jsonl")
    with_index = run("search", "--index", index_dir, *queries, "-k", "2", "--format", "jsonl")
    assert with_index.exit_code == 0, with_index.output
    a, b = _jsonl(with_corpus), _jsonl(with_index)
    assert [(r["query"], r["rank"], r["line"], r["text"]) for r in a] == [
        (r["query"], r["rank"], r["line"], r["text"]) for r in b
    ]
    assert all(abs(x["score"] - y["score"]) < 1e-5 for x, y in zip(a, b))
    assert b[2]["line"] == 2  # line numbers of the file, blank line counted
    table = run("search", "--index", index_dir, input="a pet animal\n")
    assert table.stdout.splitlines()[0].split() == ["query", "rank", "score", "line", "text"]


def test_info_and_add(run, index_dir, write):
    info = run("index", "info", index_dir, "--format", "json")
    facts = json.loads(info.stdout)
    assert facts["count"] == 3 and facts["model"] == "all-MiniLM-L6-v2" and facts["kind"] == "flat"
    assert facts["storage"] == "fp32" and facts["bytes"] > 0
    assert "size on disk" in run("index", "info", index_dir).stdout
    result = run("index", "add", index_dir, write("more.txt", "A kitten sleeps.\n\nThe market crashed.\n"))
    assert result.exit_code == 0, result.output
    assert "Added 2 texts" in result.stderr
    hits = _jsonl(run("search", "--index", index_dir, "The market crashed.", "-k", "1", "--format", "jsonl"))
    assert hits[0]["line"] == 3 and hits[0]["source"].endswith("more.txt")


def test_build_options(run, write, tmp_path):
    csv = write("reviews.csv", "id,review\n1,A lovely film.\n2,\n3,Dull and far too long.\n")
    out = str(tmp_path / "reviews")
    result = run(
        "index", "build", csv, "--column", "review", "-o", out, "--kind", "hnsw", "--storage", "binary"
    )
    assert result.exit_code == 0, result.output
    facts = json.loads(run("index", "info", out, "--format", "json").stdout)
    assert (facts["kind"], facts["storage"], facts["rescore"], facts["column"]) == (
        "hnsw",
        "binary",
        "int8",
        "review",
    )
    hits = _jsonl(run("search", "--index", out, "Dull, far too long.", "-k", "1", "--format", "jsonl"))
    assert hits[0]["line"] == 4 and hits[0]["text"] == "Dull and far too long."
    more = write("more.csv", "id,text\n1,Great.\n")
    result = run("index", "add", out, more, "--column", "text")
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "more.csv" in result.stderr and "'review'" in result.stderr


def test_existing_index_needs_overwrite(run, corpus, index_dir):
    result = run("index", "build", corpus, "-o", index_dir)
    assert result.exit_code == 2 and "exists already; pass --overwrite" in result.stderr
    assert run("index", "build", corpus, "-o", index_dir, "--overwrite").exit_code == 0


def _one_line_error(result, *fragments):
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


def test_bad_index_directories(run, index_dir, tmp_path):
    _one_line_error(run("search", "--index", str(tmp_path), "x"), "manifest.json is missing")
    _one_line_error(run("index", "info", str(tmp_path / "nope")), "does not exist")
    _one_line_error(run("search", "--index", index_dir, "--corpus", "x.txt", "q"), "either --corpus")
    texts = Path(index_dir) / "texts.sqlite"
    texts.write_bytes(texts.read_bytes()[:-100])
    _one_line_error(run("search", "--index", index_dir, "x"), str(texts), "truncated")
    _one_line_error(run("index", "add", index_dir, str(texts)), str(texts), "truncated")
    texts.unlink()
    _one_line_error(run("index", "info", index_dir), str(texts), "missing")


def test_altered_file_is_named(run, index_dir):
    faiss_file = Path(index_dir) / "index.faiss"
    data = bytearray(faiss_file.read_bytes())
    data[-5] ^= 0xFF
    faiss_file.write_bytes(bytes(data))
    _one_line_error(run("search", "--index", index_dir, "x"), str(faiss_file), "does not match its sha256")


def test_another_model_is_refused(run, corpus, tiny_model_dir, tmp_path):
    out = str(tmp_path / "tiny")
    assert run("index", "build", corpus, "-o", out, "--model", str(tiny_model_dir)).exit_code == 0
    _one_line_error(
        run("search", "--index", out, "x", "--model", "all-MiniLM-L6-v2"),
        f"built by the model {tiny_model_dir.resolve()}",
    )
    assert run("search", "--index", out, "a dog", "-k", "1").exit_code == 0  # the builder is used


def test_search_index_without_torch(index_dir, tmp_path):
    from st_multitask.embedding import embed

    embed(["warm the graph cache"], backend="onnx")  # the export (which needs torch) happens once, here
    code = (
        "import json, sys\n"
        "from st_multitask.cli import main\n"
        "main(['search', '--index', sys.argv[1], 'a pet'], standalone_mode=False)\n"
        "print(json.dumps([m for m in ('torch', 'sentence_transformers') if m in sys.modules]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, index_dir], capture_output=True, text=True, check=True, env=os.environ
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


# ---------------------------------------------------------------------------------------------
# SIGKILL at any moment: a build leaves nothing or a whole index, an add leaves the index as it was


def _stmt(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "st_multitask", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=os.environ,
    )


def _kill_after(process: subprocess.Popen, delay: float) -> bool:
    """SIGKILL ``process`` after ``delay`` seconds; True if it was still running."""
    try:
        process.wait(timeout=delay)
        return False
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        return True


@pytest.fixture(scope="module")
def big_corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("kill") / "big.txt"
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"]
    path.write_text(
        "\n".join(f"{words[i % 10]} {words[i // 10 % 10]} text number {i}" for i in range(3000)) + "\n"
    )
    return path


@pytest.mark.slow
def test_killed_build_leaves_nothing_or_a_whole_index(big_corpus, tmp_path):
    from st_multitask.index import Index

    timeline = time.monotonic()
    done = _stmt("index", "build", str(big_corpus), "-o", str(tmp_path / "whole"))
    assert done.wait() == 0
    whole = time.monotonic() - timeline
    killed = 0
    for i, fraction in enumerate((0.15, 0.4, 0.65, 0.9, 0.98)):
        target = tmp_path / f"idx{i}"
        killed += _kill_after(_stmt("index", "build", str(big_corpus), "-o", str(target)), whole * fraction)
        if target.exists():
            assert Index.load(target).count == 3000
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(f"idx{i}")] in ([], [f"idx{i}"])
    assert killed >= 1  # timings vary on a busy machine; at least one kill landed while it ran


@pytest.mark.slow
def test_killed_add_leaves_the_index_as_it_was(big_corpus, tmp_path, write):
    from st_multitask.index import Index

    target = tmp_path / "idx"
    assert (
        _stmt("index", "build", write("small.txt", "one text\nanother text\n"), "-o", str(target)).wait() == 0
    )
    before = (target / "manifest.json").read_text()
    start = time.monotonic()
    assert _stmt("index", "add", str(target), str(big_corpus)).wait() == 0
    whole = time.monotonic() - start
    assert Index.load(target).count == 3002
    for fraction in (0.3, 0.8, 0.95, 0.99):
        # back to two texts, then add again and kill it part way
        assert (
            _stmt("index", "build", str(tmp_path / "small.txt"), "-o", str(target), "--overwrite").wait() == 0
        )
        before = (target / "manifest.json").read_text()
        killed = _kill_after(_stmt("index", "add", str(target), str(big_corpus)), whole * fraction)
        index = Index.load(target)  # every file checked against its hash
        if killed and (target / "manifest.json").read_text() == before:
            assert index.count == 2
        else:
            assert index.count == 3002


def test_search_hits_return_their_ids(run, write, tmp_path):
    posts = '{"post_id": 17, "text": "The cat sat on the mat."}\n{"post_id": 23, "text": "Stocks fell sharply."}\n'
    stored = str(tmp_path / "out.parquet")
    result = run("embed", write("posts.jsonl", posts), "--id-column", "post_id", "-o", stored)
    assert result.exit_code == 0, result.output
    out = str(tmp_path / "posts-index")
    assert run("index", "build", "--embeddings", stored, "-o", out).exit_code == 0
    hits = _jsonl(
        run("search", "--index", out, "a pet animal", "share prices", "-k", "1", "--format", "jsonl")
    )
    assert [(h["ids"], h["text"]) for h in hits] == [
        ({"post_id": 17}, "The cat sat on the mat."),
        ({"post_id": 23}, "Stocks fell sharply."),
    ]
    table = run("search", "--index", out, "a pet animal", "-k", "1").stdout.splitlines()
    assert table[0].split() == ["query", "rank", "score", "post_id", "line", "text"] and "17" in table[2]
    csv = run("search", "--index", out, "a pet animal", "-k", "1", "--format", "csv").stdout.splitlines()
    assert csv[0] == "query,rank,score,post_id,line,text" and ",17," in csv[1]
    facts = json.loads(run("index", "info", out, "--format", "json").stdout)
    assert facts["id_columns"] == ["post_id"]
    assert "post_id" in run("index", "info", out).stdout


def test_build_from_a_table_keeps_its_ids(run, write, tmp_path):
    posts = write("posts.csv", "post_id,slug,body\n17,cat,The cat sat on the mat.\n23,stocks,Stocks fell.\n")
    out = str(tmp_path / "idx")
    result = run(
        "index",
        "build",
        posts,
        "--column",
        "body",
        "--id-column",
        "post_id",
        "--id-column",
        "slug",
        "-o",
        out,
    )
    assert result.exit_code == 0, result.output
    hits = _jsonl(run("search", "--index", out, "a pet animal", "-k", "1", "--format", "jsonl"))
    assert hits[0]["ids"] == {"post_id": 17, "slug": "cat"} and hits[0]["text"] == "The cat sat on the mat."
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".stmt-")]  # no work files left


def test_an_id_column_not_in_the_file_is_named(run, write, tmp_path):
    posts = write("posts.csv", "post_id,text\n17,The cat sat.\n")
    _one_line_error(
        run("index", "build", posts, "--id-column", "id", "-o", str(tmp_path / "a")),
        "Expected a column 'id'",
        "found 'post_id', 'text'",
    )
    stored = str(tmp_path / "out.parquet")
    assert run("embed", posts, "--id-column", "post_id", "-o", stored).exit_code == 0
    _one_line_error(
        run("index", "build", "--embeddings", stored, "--id-column", "id", "-o", str(tmp_path / "b")),
        "Expected a column 'id'",
        "found 'post_id', 'text', 'embedding'",
    )
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
