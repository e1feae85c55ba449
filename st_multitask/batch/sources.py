"""Where a batch job's texts come from: a file, a folder or a glob of Parquet, JSONL, CSV/TSV or
plain-text files, read as Arrow record batches (the local engine) or as a Ray dataset.

    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "a.jsonl").write_text('{"id": 1, "text": "A cat."}\\n{"id": 2, "text": "A dog."}\\n')
    >>> source = resolve_source(str(folder / "*.jsonl"))
    >>> source.fmt, [b.num_rows for b in source.batches(chunk_size=10)]
    ('json', [2])
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from ..errors import InputError

__all__ = ["FORMATS", "Source", "check_columns", "resolve_source"]

# file extension -> format; anything else is read as plain text, one text a line
_EXTENSIONS = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "json",
    ".ndjson": "json",
    ".json": "json",
    ".csv": "csv",
    ".tsv": "tsv",
}
FORMATS = ("parquet", "json", "csv", "tsv", "text")


def _fmt(path: str) -> str:
    return _EXTENSIONS.get(Path(path).suffix.lower(), "text")


def _visible(path: Path) -> bool:
    return not any(part.startswith((".", "_")) for part in path.parts[-1:])


@dataclass(frozen=True)
class Source:
    """The input files of a batch job (sorted), and their one format."""

    name: str
    paths: tuple[str, ...]
    fmt: str

    def batches(
        self, chunk_size: int = 4096, columns: Sequence[str] | None = None
    ) -> Iterator[pa.RecordBatch]:
        """Stream the rows as record batches of at most ``chunk_size`` rows (Parquet, CSV and
        text stream; a JSONL file is read whole, one file at a time)."""
        for path in self.paths:
            yield from self._file_batches(path, chunk_size, columns)

    def _file_batches(
        self, path: str, chunk_size: int, columns: Sequence[str] | None
    ) -> Iterator[pa.RecordBatch]:
        if self.fmt == "parquet":
            import pyarrow.parquet as pq

            yield from pq.ParquetFile(path).iter_batches(batch_size=chunk_size, columns=columns)
        elif self.fmt in ("csv", "tsv"):
            import pyarrow.csv as pcsv

            reader = pcsv.open_csv(
                path, parse_options=pcsv.ParseOptions(delimiter="," if self.fmt == "csv" else "\t")
            )
            for batch in reader:
                yield from _sliced(batch, chunk_size, columns)
        elif self.fmt == "json":
            import pyarrow.json as pjson

            for batch in pjson.read_json(path).to_batches():
                yield from _sliced(batch, chunk_size, columns)
        else:
            yield from _text_batches(path, chunk_size)

    def schema(self) -> pa.Schema:
        """The columns of the first file (read from its first rows only)."""
        for batch in self._file_batches(self.paths[0], 64, None):
            return batch.schema
        return pa.schema([("text", pa.string())])


def _sliced(batch: pa.RecordBatch, size: int, columns: Sequence[str] | None) -> Iterator[pa.RecordBatch]:
    if columns is not None:
        batch = batch.select(list(columns))
    for start in range(0, batch.num_rows, size):
        yield batch.slice(start, size)


def _text_batches(path: str, size: int) -> Iterator[pa.RecordBatch]:
    """One text a line (as Ray's ``read_text``: line ends stripped, empty lines dropped)."""
    lines: list[str] = []
    with open(path, encoding="utf-8", errors="strict", newline="") as f:
        try:
            for line in f:
                line = line.rstrip("\r\n")
                if line:
                    lines.append(line)
                if len(lines) == size:
                    yield pa.record_batch([pa.array(lines, pa.string())], names=["text"])
                    lines = []
        except UnicodeDecodeError as exc:
            raise InputError(f"{path} is not valid UTF-8 text ({exc.reason}).") from None
    if lines:
        yield pa.record_batch([pa.array(lines, pa.string())], names=["text"])


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
                raise InputError(f"{text} is an empty folder; expected Parquet, JSONL, CSV or text files.")
            paths.extend(found)
        elif path.is_file():
            paths.append(str(path))
        else:
            raise InputError(f"{text} does not exist.")
    formats = sorted({_fmt(p) for p in paths})
    if len(formats) > 1:
        raise InputError(
            f"{', '.join(map(str, items))} mixes file formats ({', '.join(formats)}); give files of one format."
        )
    return Source(", ".join(map(os.fspath, items)), tuple(paths), formats[0])


def check_columns(
    names: Sequence[str],
    wanted: Sequence[str],
    where: str,
    flag: str = "--text-column",
    taken: Sequence[str] = (),
) -> None:
    """Raise :class:`InputError` naming the first column of ``wanted`` missing from ``names``,
    with the columns found and a likely fix (a column not ``taken`` for something else).

    >>> check_columns(["id", "body"], ["text"], "in.csv", taken=["id"])
    Traceback (most recent call last):
    ...
    st_multitask.errors.InputError: Expected a column 'text' in in.csv; found 'id', 'body'. Pass --text-column body?
    """
    missing = [c for c in wanted if c not in names]
    if not missing:
        return
    found = ", ".join(repr(n) for n in names) or "none"
    strings = [n for n in names if n not in wanted and n not in taken]
    hint = f" Pass {flag} {strings[0]}?" if strings and flag else ""
    raise InputError(f"Expected a column {missing[0]!r} in {where}; found {found}.{hint}")
