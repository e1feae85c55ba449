"""Where a batch job's results go: a sink takes the result tables chunk by chunk and writes one output.

Every sink gets the one schema of :mod:`st_multitask.batch.schema`: a Parquet file or a Parquet
dataset folder keeps it whole, with the model's fingerprint in its metadata; ``.npy`` holds the
embeddings alone, in input order (a row of zeros for a null text); ``.jsonl`` holds a JSON object a
row; ``.csv`` / ``.tsv`` a row per text, the embedding spread over the columns ``e0``, ``e1``, ...
A sink writes under a hidden name beside its target and swaps it in only when the ``with`` block
ends without an error, so an interrupted job leaves the previous output (or none) in place.

    >>> import pathlib, tempfile
    >>> import numpy as np, pyarrow as pa
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "v.npy"
    >>> table = pa.table({"text": ["a"], "embedding": pa.array([[0.5, 0.5]], pa.list_(pa.float32(), 2))})
    >>> with open_sink(path) as sink:
    ...     sink.start(table.schema)
    ...     sink.write(table)
    >>> np.load(path).tolist(), sink.rows
    ([[0.5, 0.5]], 1)
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import sys
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow as pa

from ..atomic import atomic_directory, atomic_file
from ..errors import Hint, InputError
from .schema import EMBEDDING

__all__ = ["FILE_SINKS", "PART_NAME", "Sink", "open_sink"]

PART_NAME = "part-00000.parquet"  # the one file of a dataset folder written by the local engine


class Sink:
    """Takes result tables: ``start(schema)`` once, then ``write(table)`` per chunk, in a ``with``
    block; ``rows`` counts what was written. ``target`` names the output (``-``: stdout)."""

    def __init__(self, target: str | os.PathLike[str]):
        self.target = os.fspath(target)
        self.rows = 0
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> Sink:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            if exc_type is None:
                self.finish()
        except BaseException as error:
            self._stack.__exit__(type(error), error, error.__traceback__)
            raise
        self._stack.__exit__(exc_type, exc, tb)

    def start(self, schema: pa.Schema) -> None:
        """Open the output for tables of ``schema``."""

    def write(self, table: pa.Table) -> None:
        self._write(table)
        self.rows += table.num_rows

    def _write(self, table: pa.Table) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        """Complete the output (before it is swapped in)."""

    def _text_file(self) -> IO[str]:
        tmp = self._stack.enter_context(atomic_file(self.target))
        return self._stack.enter_context(open(tmp, "w", encoding="utf-8", newline=""))


class ParquetFileSink(Sink):
    """One Parquet file, the schema and its metadata as they are."""

    def start(self, schema: pa.Schema) -> None:
        import pyarrow.parquet as pq

        tmp = self._stack.enter_context(atomic_file(self.target))
        self._writer = self._stack.enter_context(pq.ParquetWriter(tmp, schema))

    def _write(self, table: pa.Table) -> None:
        self._writer.write_table(table)


class ParquetDatasetSink(ParquetFileSink):
    """A Parquet dataset folder of one file; an existing folder is replaced only with ``overwrite``."""

    def __init__(self, target: str | os.PathLike[str], overwrite: bool = False):
        super().__init__(target)
        path = Path(target)
        if path.exists() and not overwrite:
            raise InputError(f"{path} exists already; pass ", Hint("overwrite"), " to replace it.")
        if path.exists() and not path.is_dir():
            raise InputError(f"{path} is a file; give a directory name for the Parquet dataset.")
        self.overwrite = overwrite

    def start(self, schema: pa.Schema) -> None:
        import pyarrow.parquet as pq

        tmp = self._stack.enter_context(atomic_directory(Path(self.target), self.overwrite))
        self._writer = self._stack.enter_context(pq.ParquetWriter(tmp / PART_NAME, schema))


class NpySink(Sink):
    """The embeddings alone, a float32 (rows, dim) array; its header is written again at the end,
    once the number of rows is known (numpy pads it so that the row count can grow in place)."""

    def start(self, schema: pa.Schema) -> None:
        if EMBEDDING not in schema.names:
            raise InputError(f"{self.target}: .npy holds embeddings, and this job computes none.")
        self.dim = schema.field(EMBEDDING).type.list_size
        tmp = self._stack.enter_context(atomic_file(self.target))
        self._file = self._stack.enter_context(tmp.open("wb"))
        self._header()
        self._data = self._file.tell()  # where the rows start

    def _header(self) -> None:
        from numpy.lib import format as npy

        header = {"descr": "<f4", "fortran_order": False, "shape": (self.rows, self.dim)}
        npy.write_array_header_1_0(self._file, header)

    def _write(self, table: pa.Table) -> None:
        column = table.column(EMBEDDING).combine_chunks()
        vectors = np.zeros((len(column), self.dim), dtype=np.float32)
        flat = column.flatten().to_numpy(zero_copy_only=False).reshape(-1, self.dim)
        if len(flat) == len(column):
            vectors[:] = flat
        else:  # null rows (no text) give no values: they stay zeros
            vectors[column.is_valid().to_numpy(zero_copy_only=False)] = flat
        self._file.write(vectors.tobytes())

    def finish(self) -> None:
        self._file.seek(0)
        self._header()
        if self._file.tell() != self._data:  # pragma: no cover - numpy leaves room for 21 digits
            raise InputError(f"{self.target}: the .npy header outgrew its room.")


class JsonlSink(Sink):
    """A JSON object a row, into a file or (target ``-``) onto stdout."""

    def start(self, schema: pa.Schema) -> None:
        self._file = sys.stdout if self.target == "-" else self._text_file()

    def _write(self, table: pa.Table) -> None:
        self._file.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in table.to_pylist())

    def finish(self) -> None:
        self._file.flush()


class CsvSink(Sink):
    """CSV (or TSV for a ``.tsv`` target): a header, then a row per text; the embedding takes the
    columns ``e0`` ... and a list or record (a multi-label head, entities) is written as JSON."""

    def start(self, schema: pa.Schema) -> None:
        delimiter = "\t" if self.target.lower().endswith(".tsv") else ","
        self._csv = csv.writer(self._text_file(), delimiter=delimiter, lineterminator="\n")
        self._names = [name for name in schema.names if name != EMBEDDING]
        dim = schema.field(EMBEDDING).type.list_size if EMBEDDING in schema.names else 0
        self._csv.writerow([*self._names, *(f"e{i}" for i in range(dim))])

    def _write(self, table: pa.Table) -> None:
        columns = [table.column(name).to_pylist() for name in self._names]
        vectors = table.column(EMBEDDING).to_pylist() if EMBEDDING in table.column_names else None
        for i in range(table.num_rows):
            row = [_cell(column[i]) for column in columns]
            if vectors is not None:
                row += [f"{v:.7g}" for v in vectors[i]] if vectors[i] is not None else []
            self._csv.writerow(row)


def _cell(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.7g}"
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return "" if value is None else value


FILE_SINKS: dict[str, type[Sink]] = {
    ".npy": NpySink,
    ".parquet": ParquetFileSink,
    ".jsonl": JsonlSink,
    ".csv": CsvSink,
    ".tsv": CsvSink,
}


def open_sink(output: str | os.PathLike[str] | None, overwrite: bool = False) -> Sink:
    """The sink for ``output``: ``None`` or ``-`` is JSON lines on stdout; a file by its extension
    (:data:`FILE_SINKS`, replaced if it exists); a name without an extension, or a folder, a Parquet
    dataset folder (replaced only with ``overwrite``)."""
    if output is None or os.fspath(output) == "-":
        return JsonlSink("-")
    path = Path(output)
    suffix = path.suffix.lower()
    if not suffix or path.is_dir():
        return ParquetDatasetSink(path, overwrite)
    if suffix not in FILE_SINKS:
        raise InputError(
            f"Unknown output extension {path.suffix!r} for {path}. Valid: {', '.join(FILE_SINKS)}, "
            "or a folder (no extension) for a Parquet dataset."
        )
    return FILE_SINKS[suffix](path)
