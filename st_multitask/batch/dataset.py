"""``embed_dataset`` and ``predict_dataset``: a batch job from files to a Parquet dataset, on the
local engine (one process, the default) or on Ray Data. Both write the same schema
(:mod:`st_multitask.batch.schema`), so their outputs are interchangeable; the local engine writes
a Parquet, ``.npy``, JSON-lines or CSV/TSV file as well (:mod:`st_multitask.batch.sinks`).

    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "in.csv").write_text("id,text\\n1,A cat sat.\\n2,Stocks fell.\\n")
    >>> job = embed_dataset(folder / "in.csv", folder / "vectors", id_columns=["id"])
    >>> job.rows, job.engine
    (2, 'local')
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InputError
from .core import BatchPredictor, BatchSpec, check_input
from .sinks import ParquetDatasetSink, Sink
from .sources import LINE, NumberedTexts, Source, resolve_source

if TYPE_CHECKING:
    import pyarrow as pa

    from ..pipeline import Pipeline

# a path, a folder or a glob (or a list of them), or a source opened already (open_source)
Src = str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | Source | NumberedTexts

if TYPE_CHECKING:
    from ..pipeline import LongMode

__all__ = ["ENGINES", "BatchJob", "embed_dataset", "predict_dataset"]

ENGINES = ("local", "ray")


@dataclass(frozen=True)
class BatchJob:
    """What a finished job wrote."""

    output: Path  # "-": stdout
    rows: int
    engine: str
    over_window: int | None = None  # texts past the model window (the local engine counts them)


def _run(
    src: Src,
    dst: str | os.PathLike[str] | Sink,
    spec: BatchSpec,
    engine: str,
    overwrite: bool,
    chunk_size: int,
    actors: int | None,
    cpus_per_actor: int,
    address: str | None,
    pipeline: Pipeline | None = None,
    progress: Callable[[pa.RecordBatch], None] | None = None,
) -> BatchJob:
    if engine not in ENGINES:
        raise InputError(f"Unknown engine {engine!r}. Valid: {', '.join(ENGINES)}.")
    if engine == "local":
        sink = dst if isinstance(dst, Sink) else ParquetDatasetSink(dst, overwrite)
        source = src if isinstance(src, (Source, NumberedTexts)) else resolve_source(src)
        if isinstance(source, NumberedTexts):  # its texts keep their line numbers
            spec = replace(spec, text_column=source.text_column, id_columns=(LINE, *spec.id_columns))
        check_input(spec, source.schema(), source.name)  # before the model loads
        from .local import run_local

        predictor = BatchPredictor(spec, pipeline)
        rows = run_local(source, sink, spec, chunk_size=chunk_size, predictor=predictor, progress=progress)
        return BatchJob(Path(sink.target), rows, "local", predictor.over_window)
    if isinstance(dst, Sink) or isinstance(src, (Source, NumberedTexts)) or pipeline is not None:
        raise InputError("The ray engine reads files and writes a dataset folder: pass their paths.")
    output = Path(dst)
    ParquetDatasetSink(output, overwrite)  # the same checks of the folder
    source = resolve_source(src)
    from .ray import run_ray

    rows = run_ray(
        source,
        output,
        spec,
        overwrite=overwrite,
        actors=actors,
        cpus_per_actor=cpus_per_actor,
        chunk_size=chunk_size,
        address=address,
    )
    return BatchJob(output, rows, "ray")


def embed_dataset(
    src: Src,
    dst: str | os.PathLike[str] | Sink,
    *,
    engine: str = "local",
    model: str | os.PathLike[str] | None = None,
    text_column: str = "text",
    id_columns: Sequence[str] = (),
    keep_text: bool = True,
    batch_size: int = 64,
    normalize: bool = True,
    long: LongMode = "truncate",
    backend: str | None = None,
    precision: str | None = None,
    overwrite: bool = False,
    chunk_size: int = 4096,
    threads: int | None = None,
    actors: int | None = None,
    cpus_per_actor: int = 1,
    address: str | None = None,
    pipeline: Pipeline | None = None,
    progress: Callable[[pa.RecordBatch], None] | None = None,
) -> BatchJob:
    """Embed the texts of ``src`` (a Parquet, JSONL, CSV/TSV or text file, a folder or a glob)
    into the Parquet dataset folder ``dst``: the id columns, the text and ``embedding``.

    Args:
        engine: ``"local"`` (this process, ``threads`` runtime threads) or ``"ray"`` (``actors``
            actors of ``cpus_per_actor`` CPUs each on the cluster at ``address``; ``None`` starts
            a local Ray with this machine's CPUs, or uses the one this process started).
        model: a model path or name (``None``: the packaged all-MiniLM-L6-v2).
        chunk_size: rows handed to the predictor at a time (the local engine reads and writes that
            many; Ray's blocks of that many go to the actors). Within a chunk the texts are
            batched by length, so a larger chunk pads less.
        dst: the Parquet dataset folder, or for the local engine any sink
            (:func:`~st_multitask.batch.sinks.open_sink`: a ``.parquet``, ``.npy``, ``.jsonl``,
            ``.csv`` or ``.tsv`` file, or JSON lines on stdout).
        pipeline: a model loaded already, for the local engine (``model`` then only names it).
        progress: the local engine calls it with each input chunk once its results are written.
        Other arguments as in :func:`st_multitask.embed`.
    """
    spec = BatchSpec(
        "embed",
        model=None if model is None else os.fspath(model),
        text_column=text_column,
        id_columns=tuple(id_columns),
        keep_text=keep_text,
        backend=backend,
        precision=precision,
        batch_size=batch_size,
        normalize=normalize,
        long=long,
        threads=threads if engine == "local" else cpus_per_actor,
    )
    return _run(
        src, dst, spec, engine, overwrite, chunk_size, actors, cpus_per_actor, address, pipeline, progress
    )


def predict_dataset(
    src: Src,
    dst: str | os.PathLike[str] | Sink,
    *,
    engine: str = "local",
    model: str | os.PathLike[str] | None = None,
    tasks: Sequence[str] | None = None,
    text_column: str = "text",
    id_columns: Sequence[str] = (),
    keep_text: bool = True,
    embedding: bool = False,
    min_score: float | None = None,
    batch_size: int = 32,
    backend: str | None = None,
    precision: str | None = None,
    overwrite: bool = False,
    chunk_size: int = 4096,
    threads: int | None = None,
    actors: int | None = None,
    cpus_per_actor: int = 1,
    address: str | None = None,
    pipeline: Pipeline | None = None,
    progress: Callable[[pa.RecordBatch], None] | None = None,
) -> BatchJob:
    """Run every head (or ``tasks``) of a multi-task model (``None``: the bundled default) over
    the texts of ``src`` into the Parquet dataset folder ``dst``: per sentence head
    ``<task>_label`` and ``<task>_score``, per token head ``<task>`` entities, and with
    ``embedding`` the embedding too. Engines and the other arguments as in :func:`embed_dataset`.
    """
    spec = BatchSpec(
        "predict",
        model=None if model is None else os.fspath(model),
        text_column=text_column,
        id_columns=tuple(id_columns),
        keep_text=keep_text,
        tasks=None if tasks is None else tuple(tasks),
        embedding=embedding,
        backend=backend,
        precision=precision,
        batch_size=batch_size,
        min_score=min_score,
        threads=threads if engine == "local" else cpus_per_actor,
    )
    return _run(
        src, dst, spec, engine, overwrite, chunk_size, actors, cpus_per_actor, address, pipeline, progress
    )
