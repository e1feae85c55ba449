from __future__ import annotations

import json

import pytest

CORPUS = "The cat sat on the mat.\nStocks fell sharply on Monday.\n\nA dog barked at the mailman.\n"


@pytest.fixture
def corpus(write):
    return write("corpus.txt", CORPUS)


def test_queries_from_arguments(run, corpus):
    result = run(
        "search", "--corpus", corpus, "a pet animal", "share prices dropped", "-k", "2", "--format", "jsonl"
    )
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 4
    assert records[0]["query"] == "a pet animal" and records[0]["line"] in (1, 4)
    assert records[2]["query"] == "share prices dropped" and records[2]["line"] == 2
    assert "skipped 1 blank line" in result.stderr


def test_queries_from_stdin_table(run, corpus):
    result = run("search", "--corpus", corpus, input="a pet animal\n")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0].split() == ["query", "rank", "score", "line", "text"]
    assert len(result.stdout.splitlines()) == 2 + 3  # header, rule, 3 corpus texts (k=5 > 3)


def test_bad_search_input(run, corpus, write):
    assert run("search", "--corpus", corpus, "").exit_code == 2
    result = run("search", "--corpus", write("empty.txt", ""), "x")
    assert result.exit_code == 2 and "is empty" in result.stderr
    assert run("search", "--corpus", corpus, "-", "x").exit_code == 2
    result = run("search", "x")
    assert result.exit_code == 2 and "--corpus" in result.stderr
