"""``stmt embed``: texts in, vectors out, streamed in chunks so memory stays flat."""

from __future__ import annotations

import itertools
import sys

import click

from ._common import errors_option, load_model, long_option, model_options, report_reading, report_truncation
from ._io import EmbeddingWriter, count_lines


@click.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(allow_dash=True))
@click.option(
    "-o",
    "--output",
    type=click.Path(allow_dash=True),
    help="Output file: .npy, .parquet, .csv or .jsonl [default: JSON lines on stdout].",
)
@click.option("--column", help="Column (CSV/TSV) or key (JSONL) that holds the text [default: text].")
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
@model_options
def embed(
    input_path: str,
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
) -> None:
    """Embed the texts of INPUT, one text a line (or a CSV/TSV/JSONL column); '-' reads stdin.

    Rows keep their input line numbers; blank lines are skipped with a note. .npy holds the
    vectors alone, in input order; .parquet, .csv and .jsonl hold line, text and embedding.

    \b
    Examples:
      stmt embed examples/a.txt -o a.npy
      stmt embed reviews.csv --column review -o reviews.parquet
      cat texts.txt | stmt embed - | head -n 1
    """
    from st_multitask.backbone import embedding_dim
    from st_multitask.data import ReadReport, iter_texts
    from st_multitask.embedding import count_over_window
    from st_multitask.embedding import embed as embed_texts

    report = ReadReport()
    rows = iter_texts(input_path, column=column, errors=errors, report=report)
    first = list(itertools.islice(rows, chunk_size))  # read (and validate) before loading the model
    model = load_model(model_name, device, backend, precision)
    total = count_lines(input_path)
    show = sys.stderr.isatty()
    over = 0
    with EmbeddingWriter(output, embedding_dim(model)) as writer:
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
