"""``stmt similarity``: compare the lines of two files (best match, pairwise, matrix, whole document)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import numpy as np

from ._common import (
    ModelChoice,
    UserError,
    errors_option,
    long_option,
    model_options,
    note,
    report_reading,
    report_truncation,
)
from ._io import emit_records, format_option, format_table, shorten

if TYPE_CHECKING:
    from st_multitask.data import BlankMode
    from st_multitask.pipeline import LongMode
    from st_multitask.readers import DecodeErrors
    from st_multitask.similarity import SimilarityMode

MODES = ("best", "pairwise", "matrix")


@click.command()
@click.argument("file_a", metavar="A", type=click.Path(allow_dash=True))
@click.argument("file_b", metavar="B", type=click.Path(allow_dash=True))
@click.option(
    "--mode",
    type=click.Choice(MODES),
    default="best",
    show_default=True,
    help="best: each line of A with its closest lines of B; pairwise: line i of A with line i of B; "
    "matrix: every line of A with every line of B.",
)
@click.option(
    "-k",
    "--top-k",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Matches per line of A (best mode).",
)
@click.option("--document", is_flag=True, help="Compare the two whole files as single texts.")
@click.option("--plot", type=click.Path(dir_okay=False), help="Save a labelled heatmap of the scores (PNG).")
@format_option()
@long_option
@errors_option
@model_options
def similarity(
    file_a: str,
    file_b: str,
    mode: SimilarityMode,
    top_k: int,
    document: bool,
    plot: str | None,
    fmt: str,
    long: LongMode,
    errors: DecodeErrors,
    choice: ModelChoice,
) -> None:
    """Cosine similarity between the lines of A and the lines of B (one text a line; '-' is stdin).

    Blank lines are skipped with a note, except in pairwise mode, where a blank line would shift
    the pairing and is an error naming the line.

    \b
    Examples:
      stmt similarity examples/a.txt examples/b.txt
      stmt similarity a.txt b.txt --mode pairwise --format csv > scores.csv
      stmt similarity a.txt b.txt --mode matrix --plot heatmap.png
      stmt similarity report1.txt report2.txt --document
    """
    from st_multitask.embedding import count_over_window, embed
    from st_multitask.similarity import cosine_similarity, similarity_records

    if file_a == "-" and file_b == "-":
        raise UserError("A and B cannot both be '-' (stdin can be read only once).")
    if document:
        texts_a, texts_b = [_whole(file_a, errors)], [_whole(file_b, errors)]
        lines_a, lines_b = [1], [1]
        long = "chunk"
    else:
        blank: BlankMode = "error" if mode == "pairwise" else "skip"
        rows_a, rows_b = _read(file_a, errors, blank), _read(file_b, errors, blank)
        lines_a, texts_a = [n for n, _ in rows_a], [t for _, t in rows_a]
        lines_b, texts_b = [n for n, _ in rows_b], [t for _, t in rows_b]
        if mode == "pairwise" and len(texts_a) != len(texts_b):
            raise UserError(
                f"Pairwise mode needs as many lines in A as in B: {file_a} has {len(texts_a)}, "
                f"{file_b} has {len(texts_b)}. Use --mode best or --mode matrix for unequal files."
            )
    model = choice.load()
    if not document:
        report_truncation(count_over_window(texts_a + texts_b, model), model, long)
    emb_a = embed(texts_a, model=model, batch_size=choice.batch_size, long=long)
    emb_b = embed(texts_b, model=model, batch_size=choice.batch_size, long=long)

    if document:
        score = float(cosine_similarity(emb_a, emb_b)[0, 0])
        emit_records([{"a": file_a, "b": file_b, "score": score}], fmt)
        return
    records = similarity_records(
        texts_a,
        texts_b,
        mode,
        top_k,
        embeddings_a=emb_a,
        embeddings_b=emb_b,
        lines_a=lines_a,
        lines_b=lines_b,
    )
    if isinstance(records, dict):  # matrix mode
        _emit_matrix(records, fmt)
    else:
        emit_records(records, fmt)
    if plot:
        _plot(cosine_similarity(emb_a, emb_b), texts_a, texts_b, plot)
        note(f"wrote heatmap to {plot}.")


def _read(path: str, errors: DecodeErrors, blank: BlankMode) -> list[tuple[int, str]]:
    from st_multitask.data import ReadReport, iter_texts

    report = ReadReport()
    rows = list(iter_texts(path, errors=errors, blank=blank, fmt="lines", report=report))
    report_reading(click.format_filename(path), report)
    return rows


def _whole(path: str, errors: DecodeErrors) -> str:
    """The whole file as one text (validated like any other input)."""
    from st_multitask.data import iter_texts

    return "\n".join(text for _, text in iter_texts(path, errors=errors, fmt="lines"))


def _emit_matrix(records: dict[str, Any], fmt: str) -> None:
    """The matrix record of :func:`~st_multitask.similarity.similarity_records` in ``fmt``."""
    texts_a, texts_b, matrix = records["a"], records["b"], records["scores"]
    if fmt == "table":
        headers = ["", *[shorten(t, 16) for t in texts_b]]
        rows = [[shorten(a, 32), *row] for a, row in zip(texts_a, matrix)]
        click.echo(format_table(headers, rows))
    elif fmt == "json":
        import json

        click.echo(json.dumps(records, ensure_ascii=False, indent=2))
    elif fmt == "jsonl":
        import json

        for a, row in zip(texts_a, matrix):
            click.echo(json.dumps({"a": a, "scores": row}, ensure_ascii=False))
    else:
        import csv
        import sys

        writer = csv.writer(sys.stdout, delimiter="," if fmt == "csv" else "\t", lineterminator="\n")
        writer.writerow(["", *texts_b])
        for a, row in zip(texts_a, matrix):
            writer.writerow([a, *(f"{v:.6f}" for v in row)])


def _plot(matrix: np.ndarray, texts_a: list[str], texts_b: list[str], path: str) -> None:
    if Path(path).suffix.lower() != ".png":
        raise UserError(f"--plot writes PNG images; give a file name ending in .png, not {path!r}.")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UserError("--plot needs matplotlib: pip install 'st-multitask[plot]'.") from None
    rows, cols = matrix.shape
    fig, ax = plt.subplots(figsize=(min(4 + 0.5 * cols, 30), min(2 + 0.4 * rows, 30)))
    image = ax.imshow(matrix, cmap="viridis", vmin=min(0.0, float(matrix.min())), vmax=1.0, aspect="auto")
    fig.colorbar(image, ax=ax, label="cosine similarity")
    if cols <= 60:
        ax.set_xticks(range(cols), [shorten(t, 30) for t in texts_b], rotation=45, ha="right", fontsize=8)
    if rows <= 60:
        ax.set_yticks(range(rows), [shorten(t, 40) for t in texts_a], fontsize=8)
    if rows * cols <= 400:
        for i in range(rows):
            for j in range(cols):
                ax.text(
                    j,
                    i,
                    f"{matrix[i, j]:.2f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if matrix[i, j] < 0.6 else "black",
                )
    ax.set_xlabel("B")
    ax.set_ylabel("A")
    ax.set_title("Cosine similarity")
    fig.tight_layout()
    from st_multitask.atomic import atomic_file

    with atomic_file(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
