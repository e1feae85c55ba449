from __future__ import annotations

import io

import pytest

from st_multitask.data import ReadReport, detect_format, iter_texts, read_texts
from st_multitask.errors import InputError


def test_lines_skip_blank_and_keep_line_numbers(write):
    path = write("a.txt", "one\n\n  \ntwo\r\nthree")
    report = ReadReport()
    assert list(iter_texts(path, report=report)) == [(1, "one"), (4, "two"), (5, "three")]
    assert (report.texts, report.blank) == (3, 2)


def test_blank_is_an_error_when_asked(write):
    with pytest.raises(InputError, match=r"line 2 is blank"):
        read_texts(write("a.txt", "one\n\ntwo\n"), blank="error")


def test_bom_is_dropped(write):
    assert read_texts(write("a.txt", "\ufeffhello\n")) == ["hello"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"\n \n\t\n", "only blank lines"),
        (b"ok\nbad \xff byte\n", r"line 2 is not valid UTF-8 \(byte 0xff at column 5\).*errors='replace'"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00", "looks like a binary file"),
    ],
)
def test_bad_files(write, content, message):
    with pytest.raises(InputError, match=message):
        read_texts(write("bad.txt", content))


def test_invalid_utf8_replace(write):
    report = ReadReport()
    assert read_texts(write("a.txt", b"ok\nbad \xff byte\n"), errors="replace", report=report) == [
        "ok",
        "bad \ufffd byte",
    ]
    assert report.replaced == 1


def test_missing_and_directory(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_texts(tmp_path / "missing.txt")
    with pytest.raises(InputError, match="is a directory"):
        read_texts(tmp_path)


def test_stream_input():
    assert read_texts(io.BytesIO(b"a\nb\n")) == ["a", "b"]


def test_csv_and_tsv_columns(write):
    path = write("d.csv", 'id,review\n1,"Great, really great"\n2,"multi\nline"\n3,\n4,last\n')
    assert list(iter_texts(path, column="review")) == [
        (2, "Great, really great"),
        (3, "multi\nline"),
        (6, "last"),
    ]
    assert read_texts(write("d.tsv", "text\tlabel\nhello\tx\n")) == ["hello"]
    assert detect_format("x.CSV") == "csv" and detect_format("x.txt") == "lines"


def test_csv_missing_column_suggests_one(write):
    with pytest.raises(
        InputError, match=r"Expected a column 'text' in .*found 'sentence', 'label'. Pass column='sentence'\?"
    ):
        read_texts(write("d.csv", "sentence,label\nhi,1\n"))


def test_csv_malformed_row(write):
    with pytest.raises(InputError, match="line 3: expected 2 fields"):
        read_texts(write("d.csv", "text,label\nok,1\nbad,1,extra\n"))


def test_jsonl(write):
    good = write("d.jsonl", '{"text": "a"}\n\n{"text": "b", "x": 1}\n')
    assert list(iter_texts(good)) == [(1, "a"), (3, "b")]
    with pytest.raises(InputError, match="line 2 is not valid JSON"):
        read_texts(write("e.jsonl", '{"text": "a"}\n{oops\n'))
    with pytest.raises(InputError, match="line 1 has no key 'text'"):
        read_texts(write("f.jsonl", '{"body": "a"}\n'))
    with pytest.raises(InputError, match="'text' is a int"):
        read_texts(write("g.jsonl", '{"text": 3}\n'))
    with pytest.raises(InputError, match="expected a JSON object"):
        read_texts(write("h.jsonl", "[1, 2]\n"))


def test_column_needs_a_table_format(write):
    with pytest.raises(InputError, match="--column applies to CSV"):
        read_texts(write("a.txt", "x\n"), column="text")
