"""Read user inputs: one reader per format, the same for the data readers, the batch engines and the CLI.

The extension says the format, everywhere:

| extension                 | format    | what it holds                                              |
|---------------------------|-----------|------------------------------------------------------------|
| ``.csv`` / ``.tsv``       | csv / tsv | a header row, then one record a row                        |
| ``.jsonl``, ``.ndjson``   | jsonl     | one JSON object a line                                     |
| ``.json``                 | json      | one JSON array of objects, or of strings (each a ``text``) |
| ``.parquet``, ``.pq``     | parquet   | a Parquet table (needs ``pip install 'st-multitask[parquet]'``) |
| anything else, or ``-``   | lines     | one text a line                                            |

Each format is read two ways by the same module: :func:`iter_rows` streams ``(line, record)`` and
names the line of every problem (plain text, CSV/TSV, JSON and JSON lines need no pyarrow), and
:func:`arrow_batches` gives Arrow record batches to the batch engines (pyarrow's own CSV, JSON-lines
and Parquet readers, typed as pyarrow infers them).

    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "texts.json"
    >>> _ = path.write_text('[{"id": 7, "text": "A cat sat."},\\n "Stocks fell."]\\n')
    >>> detect_format(path), list(iter_rows(path, "json"))
    ('json', [(1, {'id': 7, 'text': 'A cat sat.'}), (2, {'text': 'Stocks fell.'})])
"""

from __future__ import annotations

import csv
import json
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal, overload

from .errors import Hint, InputError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "DECODE_ERRORS",
    "EXTENSIONS",
    "FORMATS",
    "Format",
    "ReadReport",
    "Source",
    "arrow_batches",
    "count_lines",
    "detect_format",
    "iter_lines",
    "iter_rows",
    "source_name",
]

Format = Literal["lines", "csv", "tsv", "jsonl", "json", "parquet"]
RecordFormat = Literal["csv", "tsv", "jsonl", "json", "parquet"]  # the formats read as {column: value}
FORMATS: tuple[Format, ...] = ("lines", "csv", "tsv", "jsonl", "json", "parquet")
EXTENSIONS: dict[str, Format] = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
}
DECODE_ERRORS = ("strict", "replace")
Source = str | os.PathLike[str] | BinaryIO
Row = dict[str, Any] | str


@dataclass
class ReadReport:
    """What reading skipped or repaired; filled in while the rows are read."""

    texts: int = 0
    blank: int = 0  # blank lines (or empty cells) skipped
    replaced: int = 0  # lines with invalid UTF-8 bytes replaced by U+FFFD


def detect_format(source: str | os.PathLike[str]) -> Format:
    """The format a file name implies (the table above); one text a line for any other name.

    >>> detect_format("x.CSV"), detect_format("x.json"), detect_format("x.jsonl"), detect_format("-")
    ('csv', 'json', 'jsonl', 'lines')
    """
    return EXTENSIONS.get(Path(os.fspath(source)).suffix.lower(), "lines")


def source_name(source: Source) -> str:
    """How messages name a source: its path, ``<stdin>`` for ``-``, or the stream's name."""
    if isinstance(source, (str, os.PathLike)):
        return "<stdin>" if os.fspath(source) == "-" else os.fspath(source)
    return getattr(source, "name", "<stream>")


def _open(source: Source) -> tuple[BinaryIO, bool]:
    """A binary stream for ``source`` and whether we opened it (and must close it)."""
    if not isinstance(source, (str, os.PathLike)):
        return source, False
    if os.fspath(source) == "-":
        return sys.stdin.buffer, False
    path = Path(source)
    if not path.exists():
        raise InputError(f"{path}: no such file.")
    if path.is_dir():
        raise InputError(f"{path} is a directory; expected a text file.")
    try:
        return path.open("rb"), True
    except OSError as exc:
        raise InputError(f"{path}: cannot read it ({exc.strerror}).") from exc


def count_lines(source: str | os.PathLike[str]) -> int | None:
    """Lines in a file (a progress bar's total); None for stdin."""
    if os.fspath(source) == "-":
        return None
    stream, _ = _open(source)
    with stream:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: stream.read(1 << 20), b""))


# ---------------------------------------------------------------------------------------------
# plain text: every text format is read through these lines (UTF-8, binary and empty checks)


def iter_lines(
    source: Source,
    errors: Literal["strict", "replace"] = "strict",
    report: ReadReport | None = None,
    *,
    empty_ok: bool = False,
    hint: bool = True,
) -> Iterator[tuple[int, str]]:
    """``(line number, line without its newline)``, checking for binary data and invalid UTF-8.

    ``errors="replace"`` substitutes U+FFFD (counted in ``report.replaced``); ``hint`` ends an
    invalid-UTF-8 message with that way out besides fixing the file, unless ``hint`` is false. An empty file is an error unless ``empty_ok``.

    >>> import io
    >>> list(iter_lines(io.BytesIO(b"\\xef\\xbb\\xbfone\\r\\ntwo")))
    [(1, 'one'), (2, 'two')]
    """
    if errors not in DECODE_ERRORS:
        raise InputError(f"Unknown errors mode {errors!r}. Valid: {', '.join(DECODE_ERRORS)}.")
    report = report if report is not None else ReadReport()
    name = source_name(source)
    stream, owned = _open(source)
    try:
        peek = getattr(stream, "peek", None)
        if peek is not None and b"\x00" in peek(8192)[:8192]:
            raise InputError(f"{name} looks like a binary file (it contains NUL bytes); expected UTF-8 text.")
        any_bytes = False
        for number, raw in enumerate(stream, start=1):
            any_bytes = True
            if b"\x00" in raw:
                raise InputError(
                    f"{name} looks like a binary file (line {number} contains NUL bytes); expected UTF-8 text."
                )
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                if errors != "replace":
                    raise InputError(
                        f"{name} line {number} is not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column "
                        f"{exc.start + 1}); fix the file",
                        *((" or pass ", Hint("errors", "replace")) if hint else ()),
                        ".",
                    ) from None
                line = raw.decode("utf-8", errors="replace")
                report.replaced += 1
            if number == 1:
                line = line.removeprefix("\ufeff")
            yield number, line.rstrip("\r\n")
        if not any_bytes and not empty_ok:
            raise InputError(f"{name} is empty; expected one text a line.")
    finally:
        if owned:
            stream.close()


# ---------------------------------------------------------------------------------------------
# records: CSV/TSV, JSON lines, a JSON array, Parquet


def _flag(wanted: str, required: Sequence[str]) -> str:
    """The argument that names a column: column for texts, text_column / label_column for data."""
    if len(required) == 1:
        return "column"
    return "text_column" if wanted == required[0] else "label_column"


def _delimited_records(
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
            hint = (" Pass ", Hint(_flag(wanted, required), others[0]), "?") if others else ()
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


def _jsonl_records(lines: Iterator[tuple[int, str]], name: str) -> Iterator[tuple[int, dict[str, Any]]]:
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


def _json_array_records(lines: Iterator[tuple[int, str]], name: str) -> Iterator[tuple[int, dict[str, Any]]]:
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


def _needs_pyarrow(what: str) -> None:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise InputError(f"Reading {what} needs pyarrow: pip install 'st-multitask[parquet]'.") from None


def _parquet_records(source: Source, name: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """The rows of a Parquet file, numbered from 1."""
    if not isinstance(source, (str, os.PathLike)) or os.fspath(source) == "-":
        raise InputError(f"{name}: Parquet is read from a file, not a stream.")
    _open(source)[0].close()  # the same missing-file and directory messages as the text formats
    number = 0
    for batch in arrow_batches(source, "parquet"):
        for record in batch.to_pylist():
            number += 1
            yield number, record


@overload
def iter_rows(
    source: Source,
    fmt: Literal["lines"],
    errors: Literal["strict", "replace"] = "strict",
    report: ReadReport | None = None,
    required: Sequence[str] = (),
) -> Iterator[tuple[int, str]]: ...


@overload
def iter_rows(
    source: Source,
    fmt: RecordFormat,
    errors: Literal["strict", "replace"] = "strict",
    report: ReadReport | None = None,
    required: Sequence[str] = (),
) -> Iterator[tuple[int, dict[str, Any]]]: ...


@overload
def iter_rows(
    source: Source,
    fmt: Format,
    errors: Literal["strict", "replace"] = "strict",
    report: ReadReport | None = None,
    required: Sequence[str] = (),
) -> Iterator[tuple[int, Row]]: ...


def iter_rows(
    source: Source,
    fmt: Format,
    errors: Literal["strict", "replace"] = "strict",
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
        _needs_pyarrow(name)
        records: Iterator[tuple[int, dict[str, Any]]] = _parquet_records(source, name)
    else:
        lines = iter_lines(source, errors, report)
        if fmt == "lines":
            yield from lines
            return
        if fmt in ("csv", "tsv"):  # the header names the columns: checked once, there
            yield from _delimited_records(lines, name, "," if fmt == "csv" else "\t", required)
            return
        records = _jsonl_records(lines, name) if fmt == "jsonl" else _json_array_records(lines, name)
    for number, record in records:
        missing = [key for key in required if key not in record]
        if record and missing:
            found = ", ".join(repr(k) for k in record)
            raise InputError(
                f"{name} line {number} has no key {missing[0]!r} (found {found}); pass ",
                Hint(_flag(missing[0], required), "NAME"),
                ".",
            )
        yield number, record


# ---------------------------------------------------------------------------------------------
# Arrow record batches, for the batch engines


def arrow_batches(
    path: str | os.PathLike[str],
    fmt: Format,
    chunk_size: int = 4096,
    columns: Sequence[str] | None = None,
) -> Iterator[pa.RecordBatch]:
    """The rows of one file as Arrow record batches of at most ``chunk_size`` rows (Parquet, CSV
    and text stream; a JSON or JSON-lines file is read whole). Text is one ``text`` column, empty
    lines dropped (as Ray's ``read_text``); an empty text file gives no batch.

    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "in.txt"
    >>> _ = path.write_text("one\\n\\ntwo\\n")
    >>> [b.to_pydict() for b in arrow_batches(path, "lines")]
    [{'text': ['one', 'two']}]
    """
    import pyarrow as pa

    name = os.fspath(path)
    if fmt == "lines":
        texts: list[str] = []
        for _, line in iter_lines(path, empty_ok=True, hint=False):
            if line:
                texts.append(line)
            if len(texts) == chunk_size:
                yield pa.record_batch([pa.array(texts, pa.string())], names=["text"])
                texts = []
        if texts:
            yield pa.record_batch([pa.array(texts, pa.string())], names=["text"])
        return
    try:
        for batch in _arrow_file(path, fmt, chunk_size, columns):
            if columns is not None:
                batch = batch.select(list(columns))
            for start in range(0, batch.num_rows, chunk_size):
                yield batch.slice(start, chunk_size)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise InputError(f"{name} cannot be read as {fmt} ({exc}).") from None


def _arrow_file(
    path: str | os.PathLike[str], fmt: Format, chunk_size: int, columns: Sequence[str] | None
) -> Iterator[pa.RecordBatch]:
    import pyarrow as pa

    if fmt == "parquet":
        import pyarrow.parquet as pq

        yield from pq.ParquetFile(path).iter_batches(batch_size=chunk_size, columns=columns)
    elif fmt in ("csv", "tsv"):
        import pyarrow.csv as pcsv

        options = pcsv.ParseOptions(delimiter="," if fmt == "csv" else "\t")
        yield from pcsv.open_csv(path, parse_options=options)
    elif fmt == "jsonl":
        import pyarrow.json as pjson

        yield from pjson.read_json(path).to_batches()
    elif fmt == "json":
        records = [record for _, record in iter_rows(path, "json")]
        keys = dict.fromkeys(key for record in records for key in record)  # every record's, in order
        yield from pa.table({key: [record.get(key) for record in records] for key in keys}).to_batches()
    else:
        raise InputError(f"Unknown input format {fmt!r}. Valid: {', '.join(FORMATS)}.")
