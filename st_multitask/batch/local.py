"""The local engine: one process streams the input through :class:`~st_multitask.batch.core.BatchPredictor`
into a sink (:mod:`st_multitask.batch.sinks`: a Parquet dataset or file, ``.npy``, JSON lines,
CSV/TSV), chunk by chunk, so memory stays flat however many texts there are.

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
from collections.abc import Callable

import pyarrow as pa

from .core import BatchPredictor, BatchSpec
from .sinks import Sink, open_sink
from .sources import NumberedTexts, Source

__all__ = ["run_local"]


def run_local(
    source: Source | NumberedTexts,
    output: str | os.PathLike[str] | Sink,
    spec: BatchSpec,
    overwrite: bool = False,
    chunk_size: int = 4096,
    predictor: BatchPredictor | None = None,
    progress: Callable[[pa.RecordBatch], None] | None = None,
) -> int:
    """Run ``spec`` over ``source`` into ``output`` (a sink, or a path for :func:`~st_multitask.batch.sinks.open_sink`),
    atomically; ``progress`` is called with each input chunk once its results are written.
    Returns the rows written."""
    sink = output if isinstance(output, Sink) else open_sink(output, overwrite)
    input_schema = source.schema()
    predictor = predictor or BatchPredictor(spec)
    columns = [*spec.id_columns, spec.text_column]
    with sink:
        sink.start(predictor.schema(input_schema))
        for batch in source.batches(chunk_size, columns if source.fmt != "lines" else None):
            predictor.check(batch.schema.names, source.name)
            sink.write(predictor(batch))
            if progress is not None:
                progress(batch)
    return sink.rows
