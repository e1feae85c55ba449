"""``embed_dataset`` and ``predict_dataset``: a batch job from files to a Parquet dataset, on the
local engine (one process, the default) or on Ray Data. Both write the same schema
(:mod:`st_multitask.batch.schema`), so their outputs are interchangeable.

    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "in.csv").write_text("id,text\\n1,A cat sat.\\n2,Stocks fell.\\n")
    >>> job = embed_dataset(folder / "in.csv", folder / "vectors", id_columns=["id"])
    >>> job.rows, job.engine
    (2, 'local')
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InputError
from .core import BatchSpec, check_input
from .sources import resolve_source

if TYPE_CHECKING:
    from ..pipeline import LongMode

__all__ = ["ENGINES", "BatchJob", "embed_dataset", "predict_dataset"]

ENGINES = ("local", "ray")


@dataclass(frozen=True)
class BatchJob:
    """What a finished job wrote."""

    output: Path
    rows: int
    engine: str


def _run(
    src: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    dst: str | os.PathLike[str],
    spec: BatchSpec,
    engine: str,
    overwrite: bool,
    chunk_size: int,
    actors: int | None,
    cpus_per_actor: int,
    address: str | None,
) -> BatchJob:
    if engine not in ENGINES:
        raise InputError(f"Unknown engine {engine!r}. Valid: {', '.join(ENGINES)}.")
    output = Path(dst)
    if output.exists() and not overwrite:
        raise InputError(f"{output} exists already; pass overwrite=True to replace it.")
    if output.exists() and not output.is_dir():
        raise InputError(f"{output} is a file; give a directory name for the Parquet dataset.")
    source = resolve_source(src)
    if engine == "local":
        check_input(spec, source.schema(), source.name)  # before the model loads
        from .local import run_local

        return BatchJob(output, run_local(source, output, spec, overwrite, chunk_size), "local")
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
    src: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    dst: str | os.PathLike[str],
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
    return _run(src, dst, spec, engine, overwrite, chunk_size, actors, cpus_per_actor, address)


def predict_dataset(
    src: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    dst: str | os.PathLike[str],
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
    return _run(src, dst, spec, engine, overwrite, chunk_size, actors, cpus_per_actor, address)
