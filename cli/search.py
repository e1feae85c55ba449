"""``stmt search``: top-k semantic search of a corpus file for queries from arguments or stdin."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from ._common import (
    ModelChoice,
    UserError,
    errors_option,
    long_option,
    model_options,
    report_reading,
    report_truncation,
)
from ._io import emit_records, format_option

if TYPE_CHECKING:
    from st_multitask.pipeline import LongMode
    from st_multitask.readers import DecodeErrors


@click.command()
@click.argument("queries", nargs=-1)
@click.option(
    "--corpus",
    "corpus_path",
    type=click.Path(allow_dash=True),
    help="File of documents, one a line (or a CSV/TSV/JSON/JSONL column with --column).",
)
@click.option(
    "--index",
    "index_dir",
    type=click.Path(),
    help="An index directory (stmt index build), searched instead of embedding a --corpus again.",
)
@click.option("--column", help="Column (CSV/TSV) or key (JSON/JSONL) of the corpus that holds the text.")
@click.option(
    "-k", "--top-k", type=click.IntRange(min=1), default=5, show_default=True, help="Hits per query."
)
@format_option()
@long_option
@errors_option
@model_options
def search(
    queries: tuple[str, ...],
    corpus_path: str | None,
    index_dir: str | None,
    column: str | None,
    top_k: int,
    fmt: str,
    long: LongMode,
    errors: DecodeErrors,
    choice: ModelChoice,
) -> None:
    """Find the lines of the corpus (or of an index) closest in meaning to each QUERY.

    Queries come from the arguments, or one a line from stdin when none are given (or with '-').

    \b
    Examples:
      stmt search --corpus examples/b.txt "a pet animal"
      cat questions.txt | stmt search --corpus faq.txt -k 3 --format jsonl
      stmt search --index faq-index "how do I reset my password"
    """
    from st_multitask.data import iter_texts

    if (corpus_path is None) == (index_dir is None):
        raise UserError("Give either --corpus FILE or --index DIR to search.")
    if index_dir is not None and column is not None:
        raise UserError("--column applies to --corpus; an index keeps the texts it was built from.")
    if corpus_path == "-" and (not queries or queries == ("-",)):
        raise UserError("The corpus and the queries cannot both come from stdin.")
    if not queries or queries == ("-",):
        if sys.stdin.isatty() and not queries:
            raise UserError("Give queries as arguments, or pipe them in one a line.")
        queries = tuple(text for _, text in iter_texts("-", errors=errors, fmt="lines"))
    elif "-" in queries:
        raise UserError("'-' (read queries from stdin) cannot be mixed with queries given as arguments.")
    blank = [i for i, q in enumerate(queries, 1) if not q.strip()]
    if blank:
        raise UserError(f"Query {blank[0]} is blank; give a text to search for.")
    if index_dir is not None:
        records = _search_index(index_dir, list(queries), top_k, fmt, long, choice)
    elif corpus_path is not None:  # one of the two, checked first
        records = _search_corpus(
            corpus_path,
            list(queries),
            column,
            top_k,
            long,
            errors,
            choice,
        )
    emit_records(records, fmt)


def _search_index(
    index_dir: str,
    queries: list[str],
    top_k: int,
    fmt: str,
    long: LongMode,
    choice: ModelChoice,
) -> list[dict[str, Any]]:
    """Search the index directory: its files are checked, and its model embeds the queries.

    A hit of an index with id columns gives them as ``"ids": {"post_id": 17}`` (json, jsonl), or
    one column each in a table, CSV or TSV."""
    from st_multitask.embedding import embed
    from st_multitask.index import Index

    index = Index.load(index_dir, choice.name)
    model = choice.load(index.builder)
    index.use_model(model)
    results = index.search(embed(queries, model=model, batch_size=choice.batch_size, long=long), top_k=top_k)
    several = len(index.sources()) > 1  # lines of several files: say which file
    return [
        {
            "query": q,
            "rank": rank,
            "score": hit["score"],
            **({"source": hit["source"]} if several else {}),
            **_ids(hit.get("ids", {}), fmt),
            "line": hit["line"],
            "text": hit["text"],
        }
        for q, hits in zip(queries, results)
        for rank, hit in enumerate(hits, 1)
    ]


_HIT_KEYS = ("query", "rank", "score", "source", "line", "text")


def _ids(ids: dict[str, Any], fmt: str) -> dict[str, Any]:
    """A hit's ids as record fields: one ``ids`` object in JSON, else a column each (``ids.NAME``
    where the name is taken by a field of the hit)."""
    if not ids:
        return {}
    if fmt in ("json", "jsonl"):
        return {"ids": ids}
    return {f"ids.{name}" if name in _HIT_KEYS else name: value for name, value in ids.items()}


def _search_corpus(
    corpus_path: str,
    queries: list[str],
    column: str | None,
    top_k: int,
    long: LongMode,
    errors: DecodeErrors,
    choice: ModelChoice,
) -> list[dict[str, Any]]:
    """Embed the corpus file and the queries, and search."""
    from st_multitask.data import ReadReport, iter_texts
    from st_multitask.embedding import count_over_window, embed
    from st_multitask.similarity import search as semantic_search

    report = ReadReport()
    rows = list(iter_texts(corpus_path, column=column, errors=errors, report=report))
    report_reading(click.format_filename(corpus_path), report)
    lines = [n for n, _ in rows]
    corpus = [t for _, t in rows]
    model = choice.load()
    report_truncation(count_over_window(corpus, model), model, long)
    corpus_emb = embed(corpus, model=model, batch_size=choice.batch_size, long=long)
    query_emb = embed(queries, model=model, batch_size=choice.batch_size, long=long)
    results = semantic_search(query_emb, corpus_emb, top_k=top_k)
    return [
        {
            "query": q,
            "rank": rank,
            "score": hit["score"],
            "line": lines[hit["corpus_id"]],
            "text": corpus[hit["corpus_id"]],
        }
        for q, hits in zip(queries, results)
        for rank, hit in enumerate(hits, 1)
    ]
