"""Where a batch job's texts come from: a file, a folder or a glob of Parquet, JSON lines, JSON,
CSV/TSV or plain-text files, read as Arrow record batches (the local engine) or as a Ray dataset.
The files are read by :mod:`st_multitask.readers`, so each extension means what it means everywhere.

    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "a.jsonl").write_text('{"id": 1, "text": "A cat."}\\n{"id": 2, "text": "A dog."}\\n')
    >>> source = resolve_source(str(folder / "*.jsonl"))
    >>> source.fmt, [b.num_rows for b in source.batches(chunk_size=10)]
    ('jsonl', [2])
"""

from __future__ import annotations

import glob
import itertools
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa

from ..errors import Hint, InputError
from ..readers import FORMATS, DecodeErrors, Format, ReadReport, arrow_batches, detect_format, source_name

__all__ = [  # FORMATS: from st_multitask.readers
    "FORMATS",
    "LINE",
    "NumberedTexts",
    "Source",
    "check_columns",
    "open_source",
    "resolve_source",
]

LINE = "line"  # the column of NumberedTexts: where each text starts in its file


def _visible(path: Path) -> bool:
    return not any(part.startswith((".", "_")) for part in path.parts[-1:])


@dataclass(frozen=True)
class Source:
    """The input files of a batch job (sorted), and their one format (see :mod:`st_multitask.readers`)."""

    name: str
    paths: tuple[str, ...]
    fmt: Format

    def batches(
        self, chunk_size: int = 4096, columns: Sequence[str] | None = None
    ) -> Iterator[pa.RecordBatch]:
        """Stream the rows as record batches of at most ``chunk_size`` rows (Parquet, CSV and
        text stream; a JSON or JSON-lines file is read whole, one file at a time)."""
        for path in self.paths:
            yield from arrow_batches(path, self.fmt, chunk_size, columns)

    def schema(self) -> pa.Schema:
        """The columns of the first file (read from its first rows only)."""
        for batch in arrow_batches(self.paths[0], self.fmt, 64):
            return batch.schema
        return pa.schema([("text", pa.string())])


class NumberedTexts:
    """The texts of one file or stdin (``-``), read by :func:`st_multitask.data.iter_texts` (which
    names the line of every problem and skips blank lines, counting them in ``report``), as record
    batches of ``line`` (where each text starts) and the text column.

    >>> import io
    >>> texts = NumberedTexts(io.BytesIO(b"one\\n\\ntwo\\n"))
    >>> [b.to_pydict() for b in texts.batches()]
    [{'line': [1, 3], 'text': ['one', 'two']}]
    """

    fmt: Format = "lines"

    def __init__(
        self,
        source: str | os.PathLike[str] | BinaryIO,
        column: str | None = None,
        errors: DecodeErrors = "strict",
        report: ReadReport | None = None,
    ):
        from ..data import iter_texts

        self.name = source_name(source)
        self.text_column = column or "text"
        self._rows = iter_texts(source, column=column, errors=errors, report=report)
        self._first: list[tuple[int, str]] = []

    def schema(self) -> pa.Schema:
        """``line`` and the text column; the first text is read (and checked) now."""
        if not self._first:
            self._first = list(itertools.islice(self._rows, 1))
        return pa.schema([(LINE, pa.int64()), (self.text_column, pa.string())])

    def batches(
        self, chunk_size: int = 4096, columns: Sequence[str] | None = None
    ) -> Iterator[pa.RecordBatch]:
        """Record batches of at most ``chunk_size`` texts (``columns`` are always these two)."""
        schema = self.schema()
        rows = itertools.chain(self._first, self._rows)
        while chunk := list(itertools.islice(rows, chunk_size)):
            lines, texts = zip(*chunk)
            yield pa.record_batch([pa.array(lines, pa.int64()), pa.array(texts, pa.string())], schema=schema)


def open_source(
    src: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    column: str | None = None,
    id_columns: Sequence[str] = (),
    errors: DecodeErrors = "strict",
    report: ReadReport | None = None,
) -> Source | NumberedTexts:
    """Where the texts of ``src`` come from: stdin (``-``) or one file of texts (not Parquet) read
    with no id columns are :class:`NumberedTexts`; a folder, a glob, Parquet or id columns, a
    :class:`Source` of Arrow batches (``errors`` and ``report`` apply to the former)."""
    if isinstance(src, (str, os.PathLike)) and not id_columns:
        text = os.fspath(src)
        if text == "-":
            return NumberedTexts("-", column, errors, report)
        path = Path(text).expanduser()
        if not glob.has_magic(text) and path.is_file() and detect_format(path) != "parquet":
            return NumberedTexts(path, column, errors, report)
    return resolve_source(src)


def resolve_source(source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> Source:
    """The files named by a path, a folder (its files, hidden ones and ``_``-names left out) or a
    glob, or by a list of those. Raises :class:`InputError` for a missing input, an empty folder,
    a glob that matches nothing, or files of mixed formats."""
    items = [source] if isinstance(source, (str, os.PathLike)) else list(source)
    if not items:
        raise InputError("No input given: pass a file, a folder or a glob.")
    paths: list[str] = []
    for item in items:
        text = os.fspath(item)
        path = Path(text).expanduser()
        if glob.has_magic(text):
            matched = sorted(
                p for p in glob.glob(os.path.expanduser(text), recursive=True) if Path(p).is_file()
            )
            if not matched:
                raise InputError(f"No file matches {text}.")
            paths.extend(matched)
        elif path.is_dir():
            found = sorted(str(p) for p in path.rglob("*") if p.is_file() and _visible(p))
            if not found:
                raise InputError(
                    f"{text} is an empty folder; expected Parquet, JSON, JSONL, CSV or text files."
                )
            paths.extend(found)
        elif path.is_file():
            paths.append(str(path))
        else:
            raise InputError(f"{text} does not exist.")
    formats = sorted({detect_format(p) for p in paths})
    if len(formats) > 1:
        raise InputError(
            f"{', '.join(map(str, items))} mixes file formats ({', '.join(formats)}); give files of one format."
        )
    return Source(", ".join(os.fspath(item) for item in items), tuple(paths), formats[0])


def check_columns(
    names: Sequence[str],
    wanted: Sequence[str],
    where: str,
    argument: str = "text_column",
    taken: Sequence[str] = (),
) -> None:
    """Raise :class:`InputError` naming the first column of ``wanted`` missing from ``names``,
    with the columns found and a likely fix: ``argument`` naming a column not ``taken`` for something else.

    >>> check_columns(["id", "body"], ["text"], "in.csv", taken=["id"])
    Traceback (most recent call last):
    ...
    st_multitask.errors.InputError: Expected a column 'text' in in.csv; found 'id', 'body'. Pass text_column='body'?
    """
    missing = [c for c in wanted if c not in names]
    if not missing:
        return
    found = ", ".join(repr(n) for n in names) or "none"
    strings = [n for n in names if n not in wanted and n not in taken]
    hint = (" Pass ", Hint(argument, strings[0]), "?") if strings and argument else ()
    raise InputError(f"Expected a column {missing[0]!r} in {where}; found {found}.", *hint)
