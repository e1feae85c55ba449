"""Writing command outputs: tables, CSV/TSV/JSON/JSONL, progress bars (inputs are read by
``st_multitask.readers`` through ``st_multitask.data``, as the library reads them; embeddings are
written by the batch engine's sinks, ``st_multitask.batch.sinks``).

Every file is written atomically: into a temporary file beside the target, renamed over it only
once complete, so an interrupted command never leaves half a file behind.
"""

from __future__ import annotations

import contextlib
import csv
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import click

from ._common import UserError

TABLE_FORMATS = ("table", "csv", "tsv", "json", "jsonl")


@contextlib.contextmanager
def progress_bar(path: str | None, show: bool = True) -> Iterator[Callable[[Any], None]]:
    """A progress bar on stderr when it is a terminal; yields ``advance(batch)``, called with each
    chunk done: by line of ``path`` (chunks with a ``line`` column), or by row without a path."""
    from tqdm.auto import tqdm

    from st_multitask.readers import count_lines

    show = show and sys.stderr.isatty()
    total = count_lines(path) if show and path is not None else None
    with tqdm(total=total, unit="line" if path else "row", disable=not show, file=sys.stderr) as bar:

        def advance(batch: Any) -> None:
            bar.update(batch.column("line")[-1].as_py() - bar.n if path else batch.num_rows)

        yield advance


def progress_rows(rows: Iterator[tuple[int, str]], path: str) -> Iterator[tuple[int, str]]:
    """Pass ``(line, text)`` rows through, with a progress bar by line on stderr when it is a terminal."""
    from tqdm.auto import tqdm

    from st_multitask.readers import count_lines

    show = sys.stderr.isatty()
    with tqdm(
        total=count_lines(path) if show else None, unit="line", disable=not show, file=sys.stderr
    ) as bar:
        for line, text in rows:
            yield line, text
            bar.update(line - bar.n)


def shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], max_width: int = 48) -> str:
    """Columns aligned for a terminal; long texts are shortened with an ellipsis, numbers right-aligned."""

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.4f}"
        return shorten(str(value), max_width)

    cells = [[cell(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    numeric = [bool(rows) and all(isinstance(r[i], (int, float)) for r in rows) for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)]
        return "  ".join(parts).rstrip()

    out = [line(list(headers)), line(["-" * w for w in widths])]
    out.extend(line(r) for r in cells)
    return "\n".join(out)


def emit_records(records: list[dict[str, Any]], fmt: str, headers: Sequence[str] | None = None) -> None:
    """Write records to stdout as a table, CSV, TSV, a JSON array or JSON lines."""
    headers = list(headers or (records[0].keys() if records else []))
    out = sys.stdout
    if fmt == "table":
        click.echo(format_table(headers, [[r[h] for h in headers] for r in records]))
    elif fmt in ("csv", "tsv"):
        writer = csv.DictWriter(
            out, fieldnames=headers, delimiter="," if fmt == "csv" else "\t", lineterminator="\n"
        )
        writer.writeheader()
        writer.writerows({h: _plain(r[h]) for h in headers} for r in records)
    elif fmt == "json":
        json.dump(records, out, ensure_ascii=False, indent=2)
        out.write("\n")
    elif fmt == "jsonl":
        for r in records:
            out.write(json.dumps(r, ensure_ascii=False) + "\n")
    else:  # pragma: no cover - click.Choice guards this
        raise UserError(f"Unknown format {fmt!r}. Valid: {', '.join(TABLE_FORMATS)}.")
    out.flush()


def _plain(value: Any) -> Any:
    return f"{value:.6f}" if isinstance(value, float) else value


def format_option(default: str = "table") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(TABLE_FORMATS),
        default=default,
        show_default=True,
        help="table reads well in a terminal; csv, tsv, json and jsonl pipe into other tools.",
    )
