"""The record parsers: each row with the line it starts on, and one meaning of a JSON array for
the streaming rows and the Arrow batches alike."""

from __future__ import annotations

import pytest

from st_multitask.errors import InputError
from st_multitask.readers import arrow_batches, iter_rows
from st_multitask.readers.records import delimited_records, json_array_records, jsonl_records


def _lines(text: str):
    return iter(enumerate(text.split("\n"), start=1))


def test_a_quoted_field_over_two_lines_keeps_the_line_its_row_starts_on():
    rows = list(delimited_records(_lines('text,label\n"two\nlines",a\nthird,b'), "x.csv", ",", ["text"]))
    assert rows == [(2, {"text": "two\nlines", "label": "a"}), (4, {"text": "third", "label": "b"})]


def test_a_missing_column_names_the_columns_found_and_the_flag():
    with pytest.raises(InputError, match="Expected a column 'text' in x.csv; found 'body', 'label'"):
        list(delimited_records(_lines("body,label\nA cat,pets"), "x.csv", ",", ["text", "label"]))


def test_json_lines_must_be_objects():
    with pytest.raises(InputError, match="x.jsonl line 2: expected a JSON object, found list"):
        list(jsonl_records(_lines('{"text": "a"}\n[1]'), "x.jsonl"))


def test_a_json_array_item_has_the_line_it_starts_on():
    text = '[\n  {"text": "a",\n   "id": 1},\n  "b"\n]'
    assert list(json_array_records(_lines(text), "x.json")) == [
        (2, {"text": "a", "id": 1}),
        (4, {"text": "b"}),
    ]


def test_arrow_batches_read_a_json_array_as_the_rows_do(tmp_path):
    path = tmp_path / "in.json"
    path.write_text('[{"text": "a", "id": 1}, "b", {"id": 3, "text": "c", "extra": true}]\n')
    rows = [row for _, row in iter_rows(path, "json")]
    table = [row for batch in arrow_batches(path, "json") for row in batch.to_pylist()]
    assert table == [{key: row.get(key) for key in ("text", "id", "extra")} for row in rows]
