"""The local engine: one process streams the input through :class:`~st_multitask.batch.core.BatchPredictor`
into a Parquet dataset (one file), chunk by chunk, so memory stays flat however many texts there are.

    >>> import pathlib, tempfile
    >>> from st_multitask.batch.core import BatchSpec
    >>> from st_multitask.batch.sources import resolve_source
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "in.txt").write_text("A cat sat.\\nStocks fell.\\n")
    >>> run_local(resolve_source(str(folder / "in.txt")), folder / "out", BatchSpec("embed", threads=1))
    2
"""

from __future__ import annotations

import os
from pathlib import Path

from .._atomic import atomic_directory
from .core import BatchPredictor, BatchSpec
from .sources import Source

__all__ = ["run_local"]

PART_NAME = "part-00000.parquet"


def run_local(
    source: Source,
    output: str | os.PathLike[str],
    spec: BatchSpec,
    overwrite: bool = False,
    chunk_size: int = 4096,
    predictor: BatchPredictor | None = None,
) -> int:
    """Run ``spec`` over ``source`` into the dataset folder ``output`` (atomically); returns the rows written."""
    import pyarrow.parquet as pq

    input_schema = source.schema()
    predictor = predictor or BatchPredictor(spec)
    schema = predictor.schema(input_schema)
    columns = [*spec.id_columns, spec.text_column]
    rows = 0
    with (
        atomic_directory(Path(output), overwrite) as tmp,
        pq.ParquetWriter(tmp / PART_NAME, schema) as writer,
    ):
        for batch in source.batches(chunk_size, columns if source.fmt != "lines" else None):
            predictor.check(batch.schema.names, source.name)
            table = predictor(batch)
            writer.write_table(table)
            rows += table.num_rows
    return rows
