"""Plain text, the level every text format is read at: which format a file name means, how
messages name a source, and a file's lines, checked for binary data and invalid UTF-8.

    >>> detect_format("x.CSV"), source_name("-")
    ('csv', '<stdin>')
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal

from ..errors import Hint, InputError

__all__ = [
    "DECODE_ERRORS",
    "EXTENSIONS",
    "FORMATS",
    "DecodeErrors",
    "Format",
    "ReadReport",
    "RecordFormat",
    "Row",
    "Source",
    "count_lines",
    "detect_format",
    "iter_lines",
    "open_source",
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
DecodeErrors = Literal["strict", "replace"]  # what to do with invalid UTF-8: an error, or U+FFFD
DECODE_ERRORS: tuple[DecodeErrors, ...] = ("strict", "replace")
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


def open_source(source: Source) -> tuple[BinaryIO, bool]:
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
    stream, _ = open_source(source)
    with stream:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: stream.read(1 << 20), b""))


def iter_lines(
    source: Source,
    errors: DecodeErrors = "strict",
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
    stream, owned = open_source(source)
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
