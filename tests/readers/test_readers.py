"""One reader per format: ``.json`` is one JSON array and ``.jsonl`` one object a line, for the
text readers, the example readers and the batch sources alike."""

from __future__ import annotations

import json

import pytest

from st_multitask.batch.sources import resolve_source
from st_multitask.data import iter_texts, read_sentence_examples, read_texts, read_token_examples
from st_multitask.errors import InputError
from st_multitask.readers import arrow_batches, detect_format, iter_rows

RECORDS = [{"id": 1, "text": "A cat sat."}, {"id": 2, "text": "Stocks fell."}]


def test_one_meaning_of_each_extension(write):
    assert [detect_format(f"x{ext}") for ext in (".json", ".JSONL", ".ndjson", ".pq", ".txt", "")] == [
        "json",
        "jsonl",
        "jsonl",
        "parquet",
        "lines",
        "lines",
    ]
    array = write("in.json", json.dumps(RECORDS, indent=2))
    lines = write("in.jsonl", "".join(json.dumps(r) + "\n" for r in RECORDS))
    texts = ["A cat sat.", "Stocks fell."]
    for path in (array, lines):
        assert read_texts(path) == texts, path
        source = resolve_source(path)
        assert source.fmt == detect_format(path), path
        assert [row for batch in source.batches() for row in batch.to_pylist()] == RECORDS, path


def test_json_array_rows_name_their_lines(write):
    path = write("in.json", '[\n  {"text": "a"},\n  "b",\n\n  {"text": "c", "x": [1,\n 2]}\n]\n')
    assert list(iter_texts(path)) == [(2, "a"), (3, "b"), (5, "c")]
    assert list(iter_rows(path, "json"))[1] == (3, {"text": "b"})
    assert [b.to_pylist() for b in arrow_batches(path, "json")] == [
        [{"text": "a", "x": None}, {"text": "b", "x": None}, {"text": "c", "x": [1, 2]}]
    ]
    with pytest.raises(InputError, match="has no text"):
        read_texts(write("empty.json", " [ ]\n"))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('[\n{"text": "a"},\n{oops}\n]', r"line 3 is not valid JSON"),
        ('[\n{"text": "a"}\n{"text": "b"}\n]', r"line 3 is not valid JSON \(expected ',' or ']'"),
        ('[{"text": "a"}]\n[]', r"line 2 is not valid JSON \(data after the array\)"),
        (
            '{"text": "a"}\n{"text": "b"}\n',
            r"expected a JSON array of records or strings, found dict.*\.jsonl",
        ),
        ('[\n{"text": "a"},\n3\n]', r"line 3: expected a JSON object or string, found int"),
        ('[\n{"body": "a"}\n]', r"line 2 has no key 'text' \(found 'body'\); pass column='NAME'"),
        ('[{"text": 3}]', r"line 1: 'text' is a int, not a string"),
        ("\n  \n", r"holds no JSON"),
        (b"", r"is empty"),
        (b'["a", "\xff"]', r"line 1 is not valid UTF-8"),
    ],
)
def test_bad_json_names_the_file_and_line(write, content, message):
    path = write("bad.json", content)
    with pytest.raises(InputError, match=message) as caught:
        read_texts(path)
    assert path in str(caught.value)


def test_errors_replace_and_column_apply_to_json(write):
    path = write("in.json", b'[{"body": "caf\xc3\xa9"},\n {"body": "bad \xff"}]')
    assert read_texts(path, column="body", errors="replace") == ["caf\u00e9", "bad \ufffd"]


def test_examples_from_a_json_array(write):
    data = read_sentence_examples(
        write("train.json", '[{"text": "good", "label": "pos"},\n{"text": "bad", "label": "neg"}]')
    )
    assert (data.texts, data.labels, data.lines) == (["good", "bad"], ["pos", "neg"], [1, 2])
    tokens = read_token_examples(write("ner.json", '[{"tokens": ["Apple", "rose"], "tags": ["B-ORG", "O"]}]'))
    assert tokens.words == [["Apple", "rose"]] and tokens.tags == [["B-ORG", "O"]]


def test_batch_text_files_are_checked_as_the_cli_checks_them(write):
    assert list(arrow_batches(write("empty.txt", ""), "lines")) == []
    with pytest.raises(InputError, match=r"binary file"):
        list(resolve_source(write("bin.txt", b"a\x00b\n")).batches())
    with pytest.raises(
        InputError, match=r"line 2 is not valid UTF-8 \(byte 0xff at column 1\); fix the file\.$"
    ):
        list(resolve_source(write("bad.txt", b"ok\n\xff\n")).batches())
    with pytest.raises(InputError, match=r"bad.csv cannot be read as csv"):
        list(resolve_source(write("bad.csv", 'id,text\n1,"a"\n2,"b",3\n')).batches())
