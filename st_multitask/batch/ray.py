"""The Ray Data engine: ``read_* -> map_batches(RayPredictor, compute=ActorPoolStrategy(...)) ->
write_parquet``. Each actor loads the model once (:class:`~st_multitask.batch.core.BatchPredictor`)
and runs the runtime on the CPUs Ray gives it; the dataset streams, so memory stays flat.

For example (a local Ray starts when none runs; ``address`` names a cluster)::

    from st_multitask.batch.core import BatchSpec
    from st_multitask.batch.sources import resolve_source

    rows = run_ray(resolve_source("corpus/*.parquet"), "vectors", BatchSpec("embed", id_columns=("id",)), actors=2)
"""

from __future__ import annotations

import os
import socket
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..atomic import atomic_directory
from ..errors import Hint, InputError, RuntimeUnavailableError
from .core import BatchPredictor, BatchSpec, check_input
from .sources import Source

__all__ = ["RayPredictor", "ensure_ray", "map_dataset", "pool_size", "read_dataset", "run_ray"]

PIP = "pip install 'st-multitask[ray]'"


def _import_ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError:
        raise RuntimeUnavailableError(
            f"The ray engine needs Ray Data, which is not installed: {PIP}."
        ) from None
    return ray


def _reachable(address: str, timeout: float = 5.0) -> str | None:
    """Why ``HOST:PORT`` cannot be reached, or ``None`` when a TCP connection opens."""
    host, _, port = address.rpartition(":")
    if address.startswith("ray://"):
        host, _, port = address[len("ray://") :].rpartition(":")
    if not host or not port.isdigit():
        return "expected auto or HOST:PORT"
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return None
    except OSError as exc:
        return exc.strerror or type(exc).__name__


def ensure_ray(address: str | None = None) -> Any:
    """Connect to Ray: the cluster at ``address`` (``auto`` or ``HOST:PORT``), the one this process
    started already, or (``None``) a new local one with this machine's CPUs. Returns the module."""
    ray = _import_ray()
    if address not in (None, "auto"):
        problem = _reachable(address)
        if problem is not None:
            raise InputError(
                f"Cannot reach a Ray cluster at {address} ({problem}); start one there with "
                "`ray start --head`, or ",
                Hint("address", None, verb="pass"),
                " to run a local Ray.",
            )
    if ray.is_initialized():
        return ray
    if address is None:
        ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
        return ray
    try:
        ray.init(address=address, log_to_driver=False, configure_logging=False)
    except ConnectionError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(
            f"Cannot connect to a Ray cluster at {address} ({first}); start one with `ray start --head`, or ",
            Hint("address", None, verb="pass"),
            " to run a local Ray.",
        ) from None
    return ray


class RayPredictor:
    """The actor class ``map_batches`` runs: the model loaded once per actor, a pyarrow batch in
    and out."""

    def __init__(self, spec: BatchSpec):
        self.predictor = BatchPredictor(spec)

    def __call__(self, table: Any) -> Any:
        return self.predictor(table)


# Reading and writing are light I/O next to the model: their tasks reserve no CPU, or on a cluster
# whose CPUs the actor pool holds (2 actors x 1 CPU on 2 CPUs) they would wait for one forever.
# Tasks of no CPU are not limited by the CPUs, though: without a cap Ray starts a worker process
# (about 200 MB) for every file read and every block written at once, and a job's memory grows
# with its input's file count. So at most one read and one write task run per actor.
_IO_ARGS = {"num_cpus": 0}  # write_parquet takes them as ray_remote_args


def read_dataset(source: Source, concurrency: int | None = None) -> Any:
    """The input files as a Ray dataset: read tasks reserve no CPU, at most ``concurrency`` at once."""
    ray = _import_ray()
    paths = list(source.paths)
    io = {**_IO_ARGS, "concurrency": concurrency}
    if source.fmt == "parquet":
        # Ray's V2 Parquet reader lists files in a task of 1 CPU that no setting lowers
        context = ray.data.DataContext.get_current()
        before = context.use_datasource_v2
        context.use_datasource_v2 = False  # the dataset keeps a copy of the context it was made in
        try:
            return ray.data.read_parquet(paths, **io)
        finally:
            context.use_datasource_v2 = before
    if source.fmt == "jsonl":
        return ray.data.read_json(paths, lines=True, **io)
    if source.fmt == "json":  # whole JSON documents: read on the driver by the one reader of .json
        import pyarrow as pa

        batches = list(source.batches())
        return ray.data.from_arrow(
            [pa.Table.from_batches([b]) for b in batches] or [source.schema().empty_table()]
        )
    if source.fmt in ("csv", "tsv"):
        import pyarrow.csv as pcsv

        delimiter = "," if source.fmt == "csv" else "\t"
        return ray.data.read_csv(paths, parse_options=pcsv.ParseOptions(delimiter=delimiter), **io)
    return ray.data.read_text(paths, **io)


def _cluster_cpus(ray: Any) -> int:
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def pool_size(actors: int | None, cpus_per_actor: int) -> int:
    """The actor pool's size: ``actors``, or by default the cluster's CPUs / ``cpus_per_actor``."""
    for name, value in (("actors", actors), ("cpus_per_actor", cpus_per_actor)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise InputError(f"{name} must be a positive integer, got {value!r}.")
    return actors or max(1, _cluster_cpus(_import_ray()) // cpus_per_actor)


def map_dataset(
    dataset: Any,
    spec: BatchSpec,
    actors: int | None = None,
    cpus_per_actor: int = 1,
    actor_class: type = RayPredictor,
    chunk_size: int = 4096,
) -> Any:
    """``dataset.map_batches`` over a fixed pool of ``actors`` (default: the cluster's CPUs /
    ``cpus_per_actor``) of ``actor_class``, each with ``cpus_per_actor`` CPUs and runtime threads,
    ``chunk_size`` rows a call (as the local engine's chunks: the texts of a call are batched by
    length, and a small call pads more)."""
    from ray.data import ActorPoolStrategy

    size = pool_size(actors, cpus_per_actor)
    columns = [*spec.id_columns, spec.text_column]
    return dataset.select_columns(columns).map_batches(
        actor_class,
        fn_constructor_kwargs={"spec": replace(spec, threads=cpus_per_actor)},
        compute=ActorPoolStrategy(size=size),
        num_cpus=cpus_per_actor,
        batch_size=chunk_size,
        batch_format="pyarrow",
    )


def run_ray(
    source: Source,
    output: str | os.PathLike[str],
    spec: BatchSpec,
    overwrite: bool = False,
    actors: int | None = None,
    cpus_per_actor: int = 1,
    address: str | None = None,
    actor_class: type = RayPredictor,
    chunk_size: int = 4096,
) -> int:
    """Run ``spec`` over ``source`` on Ray into the dataset folder ``output`` (atomically: the
    files are written beside it and swapped in once every one is complete); returns the rows."""
    import pyarrow.parquet as pq

    ensure_ray(address)
    size = pool_size(actors, cpus_per_actor)
    dataset = read_dataset(source, concurrency=size)
    input_schema = dataset.schema().base_schema  # pyarrow
    check_input(spec, input_schema, source.name)  # before any model loads
    driver = BatchPredictor(replace(spec, threads=None))  # checks the model and gives the schema
    schema = driver.schema(input_schema)
    del driver
    mapped = map_dataset(dataset, spec, size, cpus_per_actor, actor_class, chunk_size)
    with atomic_directory(Path(output), overwrite) as tmp:
        mapped.write_parquet(str(tmp), schema=schema, ray_remote_args=_IO_ARGS, concurrency=size)
        files = sorted(tmp.rglob("*.parquet"))
        rows = sum(pq.read_metadata(f).num_rows for f in files)
    return rows
