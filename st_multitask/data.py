"""Read texts from plain-text, CSV, TSV and JSONL files (or a stream), with validation by line.

Files are streamed, so a million-line input costs no more memory than a thousand-line one. Every
problem is reported with the file name and line number and a way out:

    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "texts.txt"
    >>> _ = path.write_text("first text\\n\\nsecond text\\n")
    >>> list(iter_texts(path))
    [(1, 'first text'), (3, 'second text')]
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

from .errors import InputError

__all__ = [
    "BLANK_MODES",
    "DECODE_ERRORS",
    "TEXT_FORMATS",
    "ReadReport",
    "detect_format",
    "iter_texts",
    "read_texts",
]

TEXT_FORMATS = ("lines", "csv", "tsv", "jsonl")
DECODE_ERRORS = ("strict", "replace")
BLANK_MODES = ("skip", "error")
_EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
TextFormat = Literal["lines", "csv", "tsv", "jsonl"]


@dataclass
class ReadReport:
    """What reading skipped or repaired; filled in while :func:`iter_texts` runs."""

    texts: int = 0
    blank: int = 0  # blank lines (or empty cells) skipped
    replaced: int = 0  # lines with invalid UTF-8 bytes replaced by U+FFFD


def detect_format(source: str | os.PathLike[str]) -> TextFormat:
    """The input format implied by a file name: ``.csv``, ``.tsv``, ``.jsonl``, else one text a line."""
    return _EXTENSIONS.get(Path(os.fspath(source)).suffix.lower(), "lines")  # type: ignore[return-value]


def _name(source: str | os.PathLike[str] | BinaryIO) -> str:
    if isinstance(source, (str, os.PathLike)):
        return "<stdin>" if os.fspath(source) == "-" else os.fspath(source)
    return getattr(source, "name", "<stream>")


def _open(source: str | os.PathLike[str] | BinaryIO) -> tuple[BinaryIO, bool]:
    """A binary stream for ``source`` and whether we opened it (and must close it)."""
    if not isinstance(source, (str, os.PathLike)):
        return source, False
    if os.fspath(source) == "-":
        import sys

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


def _decoded_lines(stream: BinaryIO, name: str, errors: str, report: ReadReport) -> Iterator[tuple[int, str]]:
    """(line number, line without its newline), checking for binary data and invalid UTF-8."""
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
                    f"{exc.start + 1}); fix the file or pass --errors replace."
                ) from None
            line = raw.decode("utf-8", errors="replace")
            report.replaced += 1
        if number == 1:
            line = line.removeprefix("\ufeff")
        yield number, line.rstrip("\r\n")
    if not any_bytes:
        raise InputError(f"{name} is empty; expected one text a line.")


def _from_lines(lines: Iterator[tuple[int, str]]) -> Iterator[tuple[int, str]]:
    yield from lines


def _from_delimited(
    lines: Iterator[tuple[int, str]], name: str, column: str | None, delimiter: str
) -> Iterator[tuple[int, str]]:
    numbers: list[int] = []  # physical line numbers fed to the csv reader so far

    def feed() -> Iterator[str]:
        for number, line in lines:
            numbers.append(number)
            yield line + "\n"

    reader = csv.reader(feed(), delimiter=delimiter, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        raise InputError(f"{name} line {numbers[-1]}: malformed header ({exc}).") from None
    wanted = column or "text"
    if wanted not in header:
        found = ", ".join(repr(h) for h in header)
        hint = f" Pass --column {header[0]}?" if column is None and header else ""
        raise InputError(f"Expected a column {wanted!r} in {name}; found {found}.{hint}")
    index = header.index(wanted)
    while True:
        seen = len(numbers)
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise InputError(f"{name} line {numbers[-1]}: malformed row ({exc}).") from None
        first = numbers[seen] if seen < len(numbers) else numbers[-1]  # a quoted field may span lines
        if not row:
            yield first, ""
        elif len(row) != len(header):
            raise InputError(
                f"{name} line {first}: expected {len(header)} fields as in the header, found {len(row)}."
            )
        else:
            yield first, row[index]


def _from_jsonl(lines: Iterator[tuple[int, str]], name: str, column: str | None) -> Iterator[tuple[int, str]]:
    key = column or "text"
    for number, line in lines:
        if not line.strip():
            yield number, ""
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{name} line {number} is not valid JSON ({exc.msg}).") from None
        if not isinstance(record, dict):
            raise InputError(f"{name} line {number}: expected a JSON object, found {type(record).__name__}.")
        if key not in record:
            found = ", ".join(repr(k) for k in record)
            raise InputError(f"{name} line {number} has no key {key!r} (found {found}); pass --column NAME.")
        value = record[key]
        if not isinstance(value, str):
            raise InputError(f"{name} line {number}: {key!r} is a {type(value).__name__}, not a string.")
        yield number, value


def iter_texts(
    source: str | os.PathLike[str] | BinaryIO,
    *,
    column: str | None = None,
    fmt: TextFormat | None = None,
    errors: Literal["strict", "replace"] = "strict",
    blank: Literal["skip", "error"] = "skip",
    report: ReadReport | None = None,
) -> Iterator[tuple[int, str]]:
    """Stream ``(line number, text)`` from a file, ``"-"`` (stdin) or a binary stream.

    Args:
        source: path, ``"-"`` or an open binary stream.
        column: column (CSV/TSV) or key (JSONL) holding the text; default ``"text"``.
        fmt: ``lines``, ``csv``, ``tsv`` or ``jsonl``; default from the file extension.
        errors: ``strict`` fails on invalid UTF-8 naming the line; ``replace`` substitutes U+FFFD.
        blank: ``skip`` blank texts (counted in ``report.blank``) or raise an ``error`` naming the line.
        report: a :class:`ReadReport` to fill in.

    Raises:
        InputError: missing file, directory, empty or binary file, invalid UTF-8, malformed CSV or
            JSON, missing column, blank line (with ``blank="error"``), no text at all.
    """
    if errors not in DECODE_ERRORS:
        raise InputError(f"Unknown errors mode {errors!r}. Valid: {', '.join(DECODE_ERRORS)}.")
    if blank not in BLANK_MODES:
        raise InputError(f"Unknown blank mode {blank!r}. Valid: {', '.join(BLANK_MODES)}.")
    name = _name(source)
    if fmt is None:
        fmt = "lines" if not isinstance(source, (str, os.PathLike)) else detect_format(source)
    if fmt not in TEXT_FORMATS:
        raise InputError(f"Unknown input format {fmt!r}. Valid: {', '.join(TEXT_FORMATS)}.")
    if column is not None and fmt == "lines":
        raise InputError(f"--column applies to CSV, TSV and JSONL input; {name} is read as one text a line.")
    report = report if report is not None else ReadReport()
    stream, owned = _open(source)
    try:
        lines = _decoded_lines(stream, name, errors, report)
        if fmt == "lines":
            rows = _from_lines(lines)
        elif fmt == "jsonl":
            rows = _from_jsonl(lines, name, column)
        else:
            rows = _from_delimited(lines, name, column, "," if fmt == "csv" else "\t")
        for number, text in rows:
            if not text.strip():
                if blank == "error":
                    raise InputError(
                        f"{name} line {number} is blank; in this mode every line must hold a text "
                        "(a skipped line would shift the pairing)."
                    )
                report.blank += 1
                continue
            report.texts += 1
            yield number, text
    finally:
        if owned:
            stream.close()
    if report.texts == 0:
        raise InputError(
            f"{name} has no text: only blank lines" + (" or empty cells." if fmt != "lines" else ".")
        )


def read_texts(source: str | os.PathLike[str] | BinaryIO | io.BufferedIOBase, **kwargs) -> list[str]:
    """All texts of a source as a list (see :func:`iter_texts` for the options)."""
    return [text for _, text in iter_texts(source, **kwargs)]
