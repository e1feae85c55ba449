"""``stmt embed``: texts in, vectors out, streamed in chunks so memory stays flat."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ._batch import batch_options, quiet_engine, report_job
from ._common import (
    ModelChoice,
    UserError,
    errors_option,
    long_option,
    model_options,
    report_reading,
    report_truncation,
)
from ._io import progress_bar

if TYPE_CHECKING:
    from st_multitask.pipeline import LongMode
    from st_multitask.readers import DecodeErrors


@click.command()
@click.argument("input_path", metavar="INPUT", required=False, type=click.Path(allow_dash=True))
@click.option(
    "-i",
    "--input",
    "input_option",
    metavar="PATH_OR_GLOB",
    help="Input file, folder or glob (Parquet, JSONL, JSON, CSV/TSV or text), in place of INPUT.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(allow_dash=True),
    help="Output file: .npy, .parquet, .csv or .jsonl [default: JSON lines on stdout]; "
    "a folder (no extension) for a Parquet dataset.",
)
@click.option(
    "--column",
    "--text-column",
    "column",
    help="Column (CSV/TSV/Parquet) or key (JSON/JSONL) that holds the text [default: text].",
)
@click.option("--normalize/--no-normalize", default=True, show_default=True, help="Unit-length vectors.")
@click.option(
    "--chunk-size",
    type=click.IntRange(min=1),
    default=4096,
    show_default=True,
    help="Texts read, embedded and written at a time.",
)
@long_option
@errors_option
@batch_options
@model_options
def embed(
    input_path: str | None,
    input_option: str | None,
    output: str | None,
    column: str | None,
    normalize: bool,
    chunk_size: int,
    long: LongMode,
    errors: DecodeErrors,
    choice: ModelChoice,
    engine: str,
    id_columns: tuple[str, ...],
    actors: int | None,
    cpus_per_actor: int,
    address: str | None,
    overwrite: bool,
) -> None:
    """Embed the texts of INPUT, one text a line (or a CSV/TSV/JSON/JSONL column); '-' reads stdin.

    Rows keep their input line numbers; blank lines are skipped with a note. .npy holds the
    vectors alone, in input order; .parquet, .csv and .jsonl hold line, text and embedding.

    With --output DIR (or --engine ray) it runs as a batch job: Parquet, JSONL, JSON, CSV or text
    files in (a file, a folder or a glob), a Parquet dataset folder out with the --id-column
    columns, the text and the embedding, and the model's fingerprint in its metadata.

    \b
    Examples:
      stmt embed examples/a.txt -o a.npy
      stmt embed reviews.csv --column review -o reviews.parquet
      cat texts.txt | stmt embed - | head -n 1
      stmt embed --input 'corpus/*.parquet' --id-column id --output vectors/
      stmt embed --engine ray --input 'corpus/*.parquet' --id-column id --output vectors/ --actors 8
    """
    if input_path and input_option:
        raise UserError("Give the input as INPUT or with --input, not both.")
    input_path = input_path or input_option
    if not input_path:
        raise UserError("Give the texts to embed: INPUT, --input PATH_OR_GLOB, or '-' for stdin.")
    from st_multitask.batch import embed_dataset, open_sink, open_source
    from st_multitask.batch.sinks import Sink
    from st_multitask.batch.sources import NumberedTexts, Source
    from st_multitask.data import ReadReport

    local = engine == "local"
    report = ReadReport()
    source: Source | NumberedTexts | str
    sink: Sink | str
    if local:
        source = open_source(input_path, column, id_columns, errors, report)
        sink = open_sink(output, overwrite)
        source.schema()  # read (and check) the input before the model loads
    elif input_path == "-":
        raise UserError("A Ray job reads files, not stdin; pass --input PATH_OR_GLOB.")
    elif output is None or output == "-":
        raise UserError("A Ray job writes a Parquet dataset folder: pass --output DIR.")
    else:
        source, sink = input_path, output
    model = choice.load() if local else None
    quiet_engine(engine)
    numbered = isinstance(source, NumberedTexts)
    with progress_bar(input_path if numbered else None, show=local) as advance:
        job = embed_dataset(
            source,
            sink,
            engine=engine,
            model=choice.name,
            text_column=column or "text",
            id_columns=id_columns,
            batch_size=choice.batch_size,
            normalize=normalize,
            long=long,
            backend=choice.backend,
            precision=choice.precision,
            overwrite=overwrite,
            chunk_size=chunk_size,
            actors=actors,
            cpus_per_actor=cpus_per_actor,
            address=address,
            pipeline=model,
            progress=advance,
        )
    if numbered:
        report_reading(click.format_filename(input_path), report)
    if model is not None and job.over_window is not None:
        report_truncation(job.over_window, model, long)
    if output not in (None, "-"):
        report_job(job, "embeddings")
