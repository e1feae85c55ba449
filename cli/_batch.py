"""The options of a batch job (``stmt embed`` / ``stmt predict`` with ``--engine`` or ``--output DIR``),
shared by both commands: the engine, the id columns, Ray's actors, CPUs and address."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ._common import UserError

ENGINES = ("local", "ray")


def batch_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--engine, --id-column, --actors, --cpus-per-actor, --address, --overwrite."""
    options = [
        click.option(
            "--engine",
            type=click.Choice(ENGINES),
            default="local",
            show_default=True,
            help="local: this process; ray: a Ray Data job (actors load the model once each). "
            "Both write a Parquet dataset folder with --output DIR.",
        ),
        click.option(
            "--id-column",
            "id_columns",
            multiple=True,
            help="Input column(s) passed through to the output (repeat the option for several).",
        ),
        click.option(
            "--actors",
            type=click.IntRange(min=1),
            help="Ray: model actors [default: the cluster's CPUs / --cpus-per-actor].",
        ),
        click.option(
            "--cpus-per-actor",
            type=click.IntRange(min=1),
            default=1,
            show_default=True,
            help="Ray: CPUs (and runtime threads) each actor gets.",
        ),
        click.option(
            "--address",
            help="Ray: the cluster, auto or HOST:PORT [default: start a local Ray with this machine's CPUs].",
        ),
        click.option("--overwrite", is_flag=True, help="Replace an existing --output folder."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def job_output(engine: str, input_path: str | None, output: str | None, id_columns: tuple[str, ...]) -> str:
    """The ``--output`` of a batch job, checked: a job into a Parquet dataset folder (with
    ``--engine ray``, ``--id-column``, Parquet input or a folder of inputs, or an --output without a
    file extension, or an existing folder) needs ``--output DIR``, and so does every job without one."""
    from st_multitask.batch.sources import resolve_source

    wanted = engine != "local" or bool(id_columns)
    if output not in (None, "-") and (not Path(output).suffix or Path(output).is_dir()):
        wanted = True
    if input_path not in (None, "-") and not wanted:
        wanted = resolve_source(input_path).fmt == "parquet" or Path(input_path).is_dir()
    if output is None or (wanted and output == "-"):
        raise UserError("A batch job writes a Parquet dataset folder: pass --output DIR.")
    return output


def quiet_engine(engine: str) -> None:
    """Ray Data's own progress logs stay off the terminal: the command reports what it wrote."""
    if engine != "ray":
        return
    import logging
    import sys

    try:
        import ray.data
    except ImportError:  # the library names the pip command
        return
    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(logging.ERROR)
    ray.data.DataContext.get_current().enable_progress_bars = sys.stderr.isatty()


def report_job(job: Any, what: str) -> None:
    click.echo(f"Wrote {job.rows} {what} to {job.output} (engine {job.engine}).", err=True)
