"""``iter_rows``: the rows of any input format, ``(line, row)``, each problem named by its line.

>>> import io
>>> list(iter_rows(io.BytesIO(b"text,label\\nA cat,pets\\n"), "csv", required=["text"]))
[(2, {'text': 'A cat', 'label': 'pets'})]
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Literal, overload

from ..errors import Hint, InputError
from .arrow import needs_pyarrow, parquet_records
from .lines import (
    FORMATS,
    DecodeErrors,
    Format,
    ReadReport,
    RecordFormat,
    Row,
    Source,
    iter_lines,
    source_name,
)
from .records import column_flag, delimited_records, json_array_records, jsonl_records

__all__ = ["iter_rows"]


@overload
def iter_rows(
    source: Source,
    fmt: Literal["lines"],
    errors: DecodeErrors = "strict",
    report: ReadReport | None = None,
    required: Sequence[str] = (),
) -> Iterator[tuple[int, str]]: ...


@overload
def iter_rows(
    source: Source,
    fmt: RecordFormat,
    errors: DecodeErrors = "strict",
    report: ReadReport | None = None,
    required: Sequence[str] = (),
) -> Iterator[tuple[int, dict[str, Any]]]: ...


@overload
def iter_rows(
    source: Source,
    fmt: Format,
    errors: DecodeErrors = "strict",
    report: ReadReport | None = None,
    required: Sequence[str] = (),
) -> Iterator[tuple[int, Row]]: ...


def iter_rows(
    source: Source,
    fmt: Format,
    errors: DecodeErrors = "strict",
    report: ReadReport | None = None,
    required: Sequence[str] = (),
) -> Iterator[tuple[int, Row]]:
    """Stream ``(line, row)`` from a file, ``"-"`` (stdin) or a binary stream: a string a line for
    ``lines``; a ``{column: value}`` dict for the other formats (``{}`` for a blank CSV row or JSON
    line), each with the line it starts on (the row number for Parquet).

    Raises :class:`InputError` naming the file and line for a missing, empty or binary file, invalid
    UTF-8 (``errors="strict"``), malformed CSV or JSON, or a record without one of the
    ``required`` columns (the columns found are listed).

    >>> import io
    >>> list(iter_rows(io.BytesIO(b'{"text": "a"}\\n\\n{"text": "b"}\\n'), "jsonl", required=["text"]))
    [(1, {'text': 'a'}), (2, {}), (3, {'text': 'b'})]
    """
    if fmt not in FORMATS:
        raise InputError(f"Unknown input format {fmt!r}. Valid: {', '.join(FORMATS)}.")
    name = source_name(source)
    if fmt == "parquet":
        needs_pyarrow(name)
        records: Iterator[tuple[int, dict[str, Any]]] = parquet_records(source, name)
    else:
        lines = iter_lines(source, errors, report)
        if fmt == "lines":
            yield from lines
            return
        if fmt in ("csv", "tsv"):  # the header names the columns: checked once, there
            yield from delimited_records(lines, name, "," if fmt == "csv" else "\t", required)
            return
        records = jsonl_records(lines, name) if fmt == "jsonl" else json_array_records(lines, name)
    for number, record in records:
        missing = [key for key in required if key not in record]
        if record and missing:
            found = ", ".join(repr(k) for k in record)
            raise InputError(
                f"{name} line {number} has no key {missing[0]!r} (found {found}); pass ",
                Hint(column_flag(missing[0], required), "NAME"),
                ".",
            )
        yield number, record
