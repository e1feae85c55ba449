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
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from ..errors import InputError
from ..readers import FORMATS, Format, arrow_batches, detect_format

__all__ = ["FORMATS", "Source", "check_columns", "resolve_source"]  # FORMATS: from st_multitask.readers


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
