"""``stmt embed``: texts in, vectors out, streamed in chunks so memory stays flat."""

from __future__ import annotations

import itertools
import sys

import click

from ._batch import batch_options, dataset_mode, quiet_engine, report_job
from ._common import (
    UserError,
    errors_option,
    load_pipeline,
    long_option,
    model_options,
    report_reading,
    report_truncation,
)
from ._io import EmbeddingWriter


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
    long: str,
    errors: str,
    model_name: str | None,
    device: str | None,
    batch_size: int,
    backend: str,
    precision: str,
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
    if dataset_mode(engine, input_path, output, id_columns):
        from st_multitask.batch import embed_dataset

        if input_path == "-":
            raise UserError("A batch job reads files, not stdin; pass --input PATH_OR_GLOB.")
        quiet_engine(engine)
        job = embed_dataset(
            input_path,
            output,
            engine=engine,
            model=model_name,
            text_column=column or "text",
            id_columns=id_columns,
            batch_size=batch_size,
            normalize=normalize,
            long=long,
            backend=backend,
            precision=precision,
            overwrite=overwrite,
            chunk_size=chunk_size,
            actors=actors,
            cpus_per_actor=cpus_per_actor,
            address=address,
        )
        report_job(job, "embeddings")
        return
    from st_multitask.backbone import embedding_dim
    from st_multitask.data import ReadReport, iter_texts
    from st_multitask.embedding import count_over_window
    from st_multitask.embedding import embed as embed_texts
    from st_multitask.readers import count_lines

    report = ReadReport()
    rows = iter_texts(input_path, column=column, errors=errors, report=report)
    first = list(itertools.islice(rows, chunk_size))  # read (and validate) before loading the model
    model = load_pipeline(model_name, device, backend, precision, heads=False)
    total = count_lines(input_path)
    show = sys.stderr.isatty()
    over = 0
    with EmbeddingWriter(
        output, embedding_dim(model), _parquet_metadata(output, model, model_name, normalize, long)
    ) as writer:
        from tqdm.auto import tqdm

        with tqdm(total=total, unit="line", disable=not show, file=sys.stderr) as bar:
            chunk = first
            while chunk:
                lines = [n for n, _ in chunk]
                texts = [t for _, t in chunk]
                over += count_over_window(texts, model)
                vectors = embed_texts(
                    texts, model=model, batch_size=batch_size, normalize=normalize, long=long
                )
                writer.write(lines, texts, vectors)
                bar.update(lines[-1] - bar.n)
                chunk = list(itertools.islice(rows, chunk_size))
    report_reading(click.format_filename(input_path), report)
    report_truncation(over, model, long)
    if output not in (None, "-"):
        click.echo(f"Wrote {writer.rows} embeddings of dimension {writer.dim} to {output}.", err=True)


def _parquet_metadata(
    output: str | None, model: object, model_name: str | None, normalize: bool, long: str
) -> dict | None:
    """A .parquet output's schema metadata: the model's fingerprint, as the batch engines write it,
    so that ``stmt index build --embeddings`` can check it."""
    if output in (None, "-") or not output.lower().endswith(".parquet"):
        return None
    try:
        import pyarrow as pa
    except ImportError:  # EmbeddingWriter names the pip command
        return None

    from st_multitask.batch.schema import embedding_metadata, with_metadata
    from st_multitask.index.manifest import model_identity

    body = embedding_metadata(
        model_identity(model, model_name), normalize=normalize, long=long, id_columns=["line"]
    )
    return with_metadata(pa.schema([]), body).metadata
