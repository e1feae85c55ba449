"""``stmt index``: build, grow and describe a persistent vector index that ``stmt search --index`` reads."""

from __future__ import annotations

import itertools
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ._common import (
    ModelChoice,
    StmtGroup,
    UserError,
    errors_option,
    long_option,
    model_options,
    report_reading,
)
from ._io import progress_rows

if TYPE_CHECKING:
    from st_multitask.pipeline import LongMode
    from st_multitask.readers import DecodeErrors, ReadReport

chunk_option = click.option(
    "--chunk-size",
    type=click.IntRange(min=1),
    default=4096,
    show_default=True,
    help="Texts read, embedded and added at a time (memory stays flat however long the file).",
)


@click.group(cls=StmtGroup)
def index() -> None:
    """Embed a corpus once into an index directory, then search it many times.

    \b
    Examples:
      stmt index build examples/b.txt -o pets-index
      stmt index add pets-index more.txt
      stmt index info pets-index
      stmt search --index pets-index "a pet animal"
    """


def _rows(
    path: str, column: str | None, errors: DecodeErrors, report: ReadReport
) -> Iterator[tuple[int, str]]:
    """The file's (line, text) rows, the first one read (and the file checked) before any model loads."""
    from st_multitask.data import iter_texts

    rows = iter_texts(path, column=column, errors=errors, report=report)
    first = next(rows)
    return progress_rows(itertools.chain([first], rows), path)


def _source(path: str) -> str:
    return "<stdin>" if path == "-" else click.format_filename(path)


@index.command()
@click.argument("corpus_path", metavar="CORPUS", required=False, type=click.Path(allow_dash=True))
@click.option(
    "--embeddings",
    "embeddings_path",
    metavar="DIR",
    help="Build from stored embeddings (the Parquet output of stmt embed, on any engine) in place of "
    "CORPUS, without embedding again; they must come from --model.",
)
@click.option("-o", "--output", required=True, type=click.Path(), help="The index directory to write.")
@click.option("--column", help="Column (CSV/TSV) or key (JSON/JSONL) of the corpus that holds the text.")
@click.option(
    "--id-column",
    "id_columns",
    multiple=True,
    help="Column(s) kept with each text and returned with every hit (repeat for several) [default "
    "with --embeddings: the --id-column columns of stmt embed].",
)
@click.option(
    "--kind",
    type=click.Choice(["flat", "hnsw"]),
    default="flat",
    show_default=True,
    help="flat: exact search; hnsw: approximate search (a graph), far faster on large corpora.",
)
@click.option(
    "--storage",
    type=click.Choice(["fp32", "int8", "binary"]),
    default="fp32",
    show_default=True,
    help="Vectors in the index: fp32, int8 (4x smaller) or binary (32x smaller, rescored with int8 "
    "vectors kept on disk).",
)
@click.option(
    "--rescore",
    type=click.Choice(["auto", "int8", "fp32", "none"]),
    default="auto",
    show_default=True,
    help="Vectors kept on disk to rescore candidates (auto: int8 for binary, none otherwise).",
)
@click.option(
    "--hnsw-m",
    type=click.IntRange(min=2),
    default=32,
    show_default=True,
    help="HNSW graph links a vector: more finds more, in more memory.",
)
@click.option(
    "--ef-construction",
    type=click.IntRange(min=1),
    default=200,
    show_default=True,
    help="HNSW candidate list while building: more builds a better graph, more slowly.",
)
@click.option(
    "--ef-search",
    type=click.IntRange(min=1),
    default=64,
    show_default=True,
    help="HNSW search breadth: more finds more, more slowly.",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing index at --output.")
@chunk_option
@long_option
@errors_option
@model_options
def build(
    corpus_path: str | None,
    embeddings_path: str | None,
    output: str,
    column: str | None,
    id_columns: tuple[str, ...],
    kind: str,
    storage: str,
    rescore: str,
    hnsw_m: int,
    ef_construction: int,
    ef_search: int,
    overwrite: bool,
    chunk_size: int,
    long: LongMode,
    errors: DecodeErrors,
    choice: ModelChoice,
) -> None:
    """Embed the texts of CORPUS (one a line, or a CSV/TSV/JSON/JSONL column) into the index directory -o.

    Blank lines are skipped; hits keep their line numbers. Hits return the --id-column values of
    their row too: those stmt embed --id-column kept in the --embeddings output, or columns of a
    CSV/TSV/JSONL/Parquet CORPUS (which is then embedded as stmt embed --id-column would). The
    directory appears whole or not at all, and an existing one is replaced only with --overwrite.

    \b
    Examples:
      stmt index build examples/b.txt -o pets-index
      stmt index build reviews.csv --column review -o reviews-index --kind hnsw --storage int8
      stmt embed posts.csv --id-column post_id -o vectors/
      stmt index build --embeddings vectors/ -o posts-index
      stmt index build posts.jsonl --id-column post_id -o posts-index
    """
    from st_multitask.data import ReadReport
    from st_multitask.index import Index

    out = Path(output)
    if out.exists() and not overwrite:
        raise UserError(f"{output} exists already; pass --overwrite to replace it.")
    one_of = "Give the texts as CORPUS or stored embeddings with --embeddings DIR (one of them)."
    settings: dict[str, Any] = dict(
        kind=kind,
        storage=storage,
        rescore=None if rescore == "none" else rescore,
        hnsw_m=hnsw_m,
        ef_construction=ef_construction,
        ef_search=ef_search,
        workdir=out.absolute().parent,
    )
    if embeddings_path is not None:
        if corpus_path is not None:
            raise UserError(one_of)
        from st_multitask.batch import index_from_embeddings

        built = index_from_embeddings(embeddings_path, choice.name, id_columns=id_columns or None, **settings)
        built.save(out, overwrite=overwrite)
        click.echo(f"Indexed {built.count} stored embeddings ({kind}, {storage}) into {output}.", err=True)
        return
    if corpus_path is None:
        raise UserError(one_of)
    if id_columns:
        built = _build_with_ids(
            corpus_path,
            column,
            id_columns,
            choice,
            long,
            chunk_size,
            settings,
        )
        built.save(out, overwrite=overwrite)
        click.echo(f"Indexed {built.count} texts ({kind}, {storage}) into {output}.", err=True)
        return
    report = ReadReport()
    rows = _rows(corpus_path, column, errors, report)
    model = choice.load()
    built = Index.build(
        rows,
        model,
        source=_source(corpus_path),
        column=column,
        batch_size=choice.batch_size,
        chunk_size=chunk_size,
        long=long,
        **settings,
    )
    built.save(out, overwrite=overwrite)
    report_reading(_source(corpus_path), report)
    click.echo(f"Indexed {built.count} texts ({kind}, {storage}) into {output}.", err=True)


def _build_with_ids(
    corpus_path: str,
    column: str | None,
    id_columns: tuple[str, ...],
    choice: ModelChoice,
    long: LongMode,
    chunk_size: int,
    settings: dict[str, Any],
) -> Any:
    """The index of a table whose rows keep their ids: embedded as ``stmt embed --id-column``
    does (the batch reader keeps the columns' types), then indexed from those stored embeddings."""
    from st_multitask.batch import embed_dataset, index_from_embeddings

    if corpus_path == "-":
        raise UserError("--id-column reads a table file (CSV, TSV, JSONL or Parquet), not stdin.")
    with tempfile.TemporaryDirectory(prefix=".stmt-embed-", dir=settings["workdir"]) as work:
        vectors = Path(work) / "vectors"
        embed_dataset(
            corpus_path,
            vectors,
            model=choice.name,
            text_column=column or "text",
            id_columns=id_columns,
            batch_size=choice.batch_size,
            long=long,
            backend=choice.backend,
            precision=choice.precision,
            chunk_size=chunk_size,
        )
        return index_from_embeddings(
            vectors, choice.name, source=_source(corpus_path), id_columns=id_columns, **settings
        )


@index.command()
@click.argument("index_dir", metavar="DIR", type=click.Path())
@click.argument("input_path", metavar="FILE", type=click.Path(allow_dash=True))
@click.option(
    "--column", help="Column (CSV/TSV) or key (JSON/JSONL); must be the one the index was built from."
)
@chunk_option
@long_option
@errors_option
@model_options
def add(
    index_dir: str,
    input_path: str,
    column: str | None,
    chunk_size: int,
    long: LongMode,
    errors: DecodeErrors,
    choice: ModelChoice,
) -> None:
    """Add the texts of FILE to the index DIR, embedded with the model that built it.

    The index changes all at once: interrupted, it stays as it was.

    \b
    Example:
      stmt index add pets-index more-pets.txt
    """
    from st_multitask.data import ReadReport, detect_format
    from st_multitask.index import Index

    existing = Index.load(index_dir, choice.name)
    source = _source(input_path)
    if column is not None and column != (existing.column or "text"):
        raise UserError(
            f"{source}: {index_dir} was built from the column {existing.column or 'text'!r}, not {column!r}; "
            f"pass --column {existing.column or 'text'} or build a new index."
        )
    read_column = None if input_path != "-" and detect_format(input_path) == "lines" else existing.column
    report = ReadReport()
    rows = _rows(input_path, column or read_column, errors, report)
    existing.use_model(choice.load(existing.builder))
    before = existing.count
    existing.add(rows, source=source, batch_size=choice.batch_size, chunk_size=chunk_size, long=long)
    existing.save(index_dir)
    report_reading(source, report)
    click.echo(f"Added {existing.count - before} texts to {index_dir} ({existing.count} in all).", err=True)


def _size(n: int) -> str:
    if n < 1000:
        return f"{n} bytes"
    size = n / 1000
    for unit in ("KB", "MB"):
        if size < 1000:
            return f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"


@index.command()
@click.argument("index_dir", metavar="DIR", type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def info(index_dir: str, fmt: str) -> None:
    """Describe the index DIR (count, model, kind, storage, size on disk), after checking its files.

    \b
    Example:
      stmt index info pets-index
    """
    from st_multitask.index import describe

    facts = describe(index_dir)
    if fmt == "json":
        click.echo(json.dumps(facts, indent=2))
        return
    shown = dict(facts, bytes=f"{_size(facts['bytes'])} ({facts['bytes']:,} bytes)")
    shown["id_columns"] = ", ".join(facts["id_columns"]) or None
    shown["size on disk"] = shown.pop("bytes")
    width = max(len(key) for key in shown)
    for key, value in shown.items():
        click.echo(f"{key.ljust(width)}  {value if value is not None else '-'}")
