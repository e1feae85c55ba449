"""Writing command outputs: tables, CSV/TSV/JSON/JSONL, embeddings files (inputs are read by
``st_multitask.readers`` through ``st_multitask.data``, as the library reads them).

Every file is written atomically: into a temporary file beside the target, renamed over it only
once complete, so an interrupted command never leaves half a file behind.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import struct
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import click
import numpy as np

from ._common import UserError

TABLE_FORMATS = ("table", "csv", "tsv", "json", "jsonl")
EMBEDDING_EXTENSIONS = (".npy", ".parquet", ".csv", ".jsonl")


def atomic_path(target: str | os.PathLike[str], suffix: str = "") -> contextlib.AbstractContextManager[Path]:
    """A temporary path beside ``target``; renamed to ``target`` if the block succeeds, else removed
    (the library's one atomic writer: the file gets the permissions of a plain write)."""
    from st_multitask._atomic import atomic_file

    return atomic_file(target, suffix)


def progress_rows(rows: Iterator[tuple[int, str]], path: str) -> Iterator[tuple[int, str]]:
    """Pass ``(line, text)`` rows through, with a progress bar by line on stderr when it is a terminal."""
    from tqdm.auto import tqdm

    from st_multitask.readers import count_lines

    show = sys.stderr.isatty()
    with tqdm(
        total=count_lines(path) if show else None, unit="line", disable=not show, file=sys.stderr
    ) as bar:
        for line, text in rows:
            yield line, text
            bar.update(line - bar.n)


def shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], max_width: int = 48) -> str:
    """Columns aligned for a terminal; long texts are shortened with an ellipsis, numbers right-aligned."""

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.4f}"
        return shorten(str(value), max_width)

    cells = [[cell(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    numeric = [bool(rows) and all(isinstance(r[i], (int, float)) for r in rows) for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)]
        return "  ".join(parts).rstrip()

    out = [line(list(headers)), line(["-" * w for w in widths])]
    out.extend(line(r) for r in cells)
    return "\n".join(out)


def emit_records(records: list[dict[str, Any]], fmt: str, headers: Sequence[str] | None = None) -> None:
    """Write records to stdout as a table, CSV, TSV, a JSON array or JSON lines."""
    headers = list(headers or (records[0].keys() if records else []))
    out = sys.stdout
    if fmt == "table":
        click.echo(format_table(headers, [[r[h] for h in headers] for r in records]))
    elif fmt in ("csv", "tsv"):
        writer = csv.DictWriter(
            out, fieldnames=headers, delimiter="," if fmt == "csv" else "\t", lineterminator="\n"
        )
        writer.writeheader()
        writer.writerows({h: _plain(r[h]) for h in headers} for r in records)
    elif fmt == "json":
        json.dump(records, out, ensure_ascii=False, indent=2)
        out.write("\n")
    elif fmt == "jsonl":
        for r in records:
            out.write(json.dumps(r, ensure_ascii=False) + "\n")
    else:  # pragma: no cover - click.Choice guards this
        raise UserError(f"Unknown format {fmt!r}. Valid: {', '.join(TABLE_FORMATS)}.")
    out.flush()


def _plain(value: Any) -> Any:
    return f"{value:.6f}" if isinstance(value, float) else value


def format_option(default: str = "table"):
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(TABLE_FORMATS),
        default=default,
        show_default=True,
        help="table reads well in a terminal; csv, tsv, json and jsonl pipe into other tools.",
    )


# ---------------------------------------------------------------------------------------------
# embeddings writers: streamed, so memory stays flat however many texts there are


def _npy_header(rows: int, dim: int) -> bytes:
    """A version 1.0 .npy header for a C-order float32 (rows, dim) array, padded to 128 bytes."""
    header = f"{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {dim}), }}"
    header = header.ljust(128 - 10 - 1) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1")


class EmbeddingWriter:
    """Streams (line, text, vector) rows into .npy, .parquet, .csv or .jsonl, or JSONL on stdout."""

    def __init__(self, path: str | None, dim: int, metadata: dict[bytes, bytes] | None = None):
        self.path = path
        self.metadata = metadata  # .parquet: the schema's metadata (the model's fingerprint)
        self.dim = dim
        self.rows = 0
        self.kind = "jsonl" if path in (None, "-") else Path(path).suffix.lower().lstrip(".")
        if path not in (None, "-") and f".{self.kind}" not in EMBEDDING_EXTENSIONS:
            raise UserError(
                f"Unknown output extension {Path(path).suffix or '(none)'!r} for {path}. "
                f"Valid: {', '.join(EMBEDDING_EXTENSIONS)}."
            )
        if self.kind == "parquet":
            try:
                import pyarrow  # noqa: F401
            except ImportError:
                raise UserError(
                    "Writing .parquet needs pyarrow: pip install 'st-multitask[parquet]'."
                ) from None
        self._stack = contextlib.ExitStack()
        self._file: IO[Any] | None = None
        self._parquet: Any = None

    def __enter__(self) -> EmbeddingWriter:
        if self.path in (None, "-"):
            self._file = sys.stdout
            return self
        tmp = self._stack.enter_context(atomic_path(self.path))
        if self.kind == "npy":
            self._file = self._stack.enter_context(open(tmp, "wb"))
            self._file.write(_npy_header(0, self.dim))
        elif self.kind == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            self._schema = pa.schema(
                [
                    ("line", pa.int64()),
                    ("text", pa.string()),
                    ("embedding", pa.list_(pa.float32(), self.dim)),
                ],
                metadata=self.metadata,
            )
            self._parquet = pq.ParquetWriter(tmp, self._schema)
            self._stack.callback(self._parquet.close)
        else:
            self._file = self._stack.enter_context(open(tmp, "w", encoding="utf-8", newline=""))
            if self.kind == "csv":
                self._csv = csv.writer(self._file, lineterminator="\n")
                self._csv.writerow(["line", "text", *[f"e{i}" for i in range(self.dim)]])
        return self

    def write(self, lines: Sequence[int], texts: Sequence[str], vectors: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if self.kind == "npy":
            self._file.write(vectors.tobytes())
        elif self.kind == "parquet":
            import pyarrow as pa

            flat = pa.array(vectors.reshape(-1), type=pa.float32())
            column = pa.FixedSizeListArray.from_arrays(flat, self.dim)
            table = pa.Table.from_arrays(
                [pa.array(lines, pa.int64()), pa.array(texts, pa.string()), column], schema=self._schema
            )
            self._parquet.write_table(table)
        elif self.kind == "csv":
            for line, text, vec in zip(lines, texts, vectors):
                self._csv.writerow([line, text, *(f"{v:.7g}" for v in vec)])
        else:
            for line, text, vec in zip(lines, texts, vectors):
                self._file.write(
                    json.dumps({"line": line, "text": text, "embedding": vec.tolist()}, ensure_ascii=False)
                    + "\n"
                )
        self.rows += len(texts)

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None and self.kind == "npy":
            self._file.seek(0)
            self._file.write(_npy_header(self.rows, self.dim))
        if self._file is sys.stdout:
            sys.stdout.flush()
        if exc_type is None:
            self._stack.close()
        else:
            self._stack.__exit__(exc_type, exc, tb)
