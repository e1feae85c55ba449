"""Arrow record batches of one input file, for the batch engines (pyarrow's own CSV, JSON-lines
and Parquet readers, typed as pyarrow infers them), and the rows of a Parquet file as records.
pyarrow is imported on first use."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import InputError
from .lines import FORMATS, Format, Source, iter_lines, open_source, source_name
from .records import json_array_records

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["arrow_batches", "needs_pyarrow", "parquet_records"]


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
        records = [record for _, record in json_array_records(iter_lines(path), source_name(path))]
        keys = dict.fromkeys(key for record in records for key in record)  # every record's, in order
        yield from pa.table({key: [record.get(key) for record in records] for key in keys}).to_batches()
    else:
        raise InputError(f"Unknown input format {fmt!r}. Valid: {', '.join(FORMATS)}.")


def needs_pyarrow(what: str) -> None:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise InputError(f"Reading {what} needs pyarrow: pip install 'st-multitask[parquet]'.") from None


def parquet_records(source: Source, name: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """The rows of a Parquet file, numbered from 1."""
    if not isinstance(source, (str, os.PathLike)) or os.fspath(source) == "-":
        raise InputError(f"{name}: Parquet is read from a file, not a stream.")
    open_source(source)[0].close()  # the same missing-file and directory messages as the text formats
    number = 0
    for batch in arrow_batches(source, "parquet"):
        for record in batch.to_pylist():
            number += 1
            yield number, record
