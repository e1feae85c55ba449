"""The record formats parsed in Python, each naming the line of every problem: CSV/TSV rows
(the header checked for the required columns), JSON lines, and one JSON array of records or strings.
Each takes the checked lines of :mod:`st_multitask.readers.lines`.

    >>> list(json_array_records(iter([(1, '["a",'), (2, ' {"text": "b"}]')]), "x.json"))
    [(1, {'text': 'a'}), (2, {'text': 'b'})]
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from typing import Any

from ..errors import Hint, InputError

__all__ = ["column_flag", "delimited_records", "json_array_records", "jsonl_records"]


def column_flag(wanted: str, required: Sequence[str]) -> str:
    """The argument that names a column: column for texts, text_column / label_column for data."""
    if len(required) == 1:
        return "column"
    return "text_column" if wanted == required[0] else "label_column"


def delimited_records(
    lines: Iterator[tuple[int, str]], name: str, delimiter: str, required: Sequence[str]
) -> Iterator[tuple[int, dict[str, str]]]:
    """(line where the row starts, {column: value}) for each row of a CSV/TSV file."""
    numbers: list[int] = []  # physical line numbers fed to the csv reader so far

    def feed() -> Iterator[str]:
        for number, line in lines:
            numbers.append(number)
            yield line + "\n"

    reader = csv.reader(feed(), delimiter=delimiter, strict=True)

    def next_row(what: str) -> list[str] | None:
        try:
            return next(reader)
        except StopIteration:
            return None
        except csv.Error as exc:
            raise InputError(f"{name} line {numbers[-1]}: malformed {what} ({exc}).") from None

    header = next_row("header")
    if header is None:
        return
    for wanted in required:
        if wanted not in header:
            found = ", ".join(repr(h) for h in header)
            others = [h for h in header if h not in required]
            hint = (" Pass ", Hint(column_flag(wanted, required), others[0]), "?") if others else ()
            raise InputError(f"Expected a column {wanted!r} in {name}; found {found}.", *hint)
    while True:
        seen = len(numbers)
        row = next_row("row")
        if row is None:
            return
        first = numbers[seen] if seen < len(numbers) else numbers[-1]  # a quoted field may span lines
        if not row:
            yield first, {}
        elif len(row) != len(header):
            raise InputError(
                f"{name} line {first}: expected {len(header)} fields as in the header, found {len(row)}."
            )
        else:
            yield first, dict(zip(header, row))


_DECODER = json.JSONDecoder()
_SPACE = " \t\n\r"


def _json_value(text: str, pos: int, name: str, first_line: int) -> tuple[Any, int]:
    """The JSON value starting at ``text[pos]`` and where it ends; errors name the line
    (``first_line`` is the line ``text`` starts on)."""
    try:
        return _DECODER.raw_decode(text, pos)
    except json.JSONDecodeError as exc:
        line = first_line + exc.lineno - 1
        raise InputError(f"{name} line {line} is not valid JSON ({exc.msg}).") from None
    except ValueError:  # an integer past Python's limit on digits (4,300)
        line = first_line + text.count("\n", 0, pos)
        raise InputError(f"{name} line {line} holds a number too long to read (over 4,300 digits).") from None
    except RecursionError:
        line = first_line + text.count("\n", 0, pos)
        raise InputError(f"{name} line {line} is nested too deeply to read as JSON.") from None


def jsonl_records(lines: Iterator[tuple[int, str]], name: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """One JSON object a line (blank lines give ``{}``)."""
    for number, line in lines:
        start = len(line) - len(line.lstrip(_SPACE))
        if start == len(line):
            yield number, {}
            continue
        record, end = _json_value(line, start, name, number)
        if line[end:].strip(_SPACE):
            raise InputError(f"{name} line {number} is not valid JSON (Extra data).")
        if not isinstance(record, dict):
            raise InputError(f"{name} line {number}: expected a JSON object, found {type(record).__name__}.")
        yield number, record


def json_array_records(lines: Iterator[tuple[int, str]], name: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """The items of one JSON array, each with the line it starts on; a string is ``{"text": it}``."""
    text = "\n".join(line for _, line in lines)
    line, counted = 1, 0

    def skip(pos: int) -> int:
        nonlocal line, counted
        while pos < len(text) and text[pos] in _SPACE:
            pos += 1
        line += text.count("\n", counted, pos)
        counted = pos
        return pos

    pos = skip(0)
    if pos == len(text):
        raise InputError(f"{name} holds no JSON; expected an array of records or strings.")
    if text[pos] != "[":
        value, _ = _json_value(text, pos, name, 1)
        raise InputError(
            f"{name}: expected a JSON array of records or strings, found {type(value).__name__}; "
            "one JSON object a line is JSON lines: name the file .jsonl."
        )
    pos = skip(pos + 1)
    if text[pos : pos + 1] == "]":
        pos = skip(pos + 1)
    else:
        while True:
            item_line = line
            item, pos = _json_value(text, pos, name, 1)
            if isinstance(item, str):
                item = {"text": item}
            elif not isinstance(item, dict):
                raise InputError(
                    f"{name} line {item_line}: expected a JSON object or string, found {type(item).__name__}."
                )
            yield item_line, item
            pos = skip(pos)
            if text[pos : pos + 1] == ",":
                pos = skip(pos + 1)
                continue
            if text[pos : pos + 1] == "]":
                pos = skip(pos + 1)
                break
            raise InputError(f"{name} line {line} is not valid JSON (expected ',' or ']' in the array).")
    if pos < len(text):
        raise InputError(f"{name} line {line} is not valid JSON (data after the array).")
