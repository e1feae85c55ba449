"""``stmt predict``: every head of a multi-task model on texts, in one backbone pass per batch."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import click

from ._batch import batch_options, job_output, quiet_engine, report_job
from ._common import (
    UserError,
    backend_options,
    errors_option,
    load_pipeline,
    multitask_model_option,
    note,
    report_reading,
)
from ._io import emit_records, format_table, shorten

if TYPE_CHECKING:
    from st_multitask.readers import DecodeErrors

ZERO_SHOT = "zero_shot"  # st_multitask.pipeline.ZERO_SHOT (imported lazily there)


def inline_entities(text: str, entities: list[dict]) -> str:
    """``[Apple](ORG) is buying ...``: entities marked in place."""
    out, position = [], 0
    for entity in sorted(entities, key=lambda e: e["start"]):
        out.append(text[position : entity["start"]])
        out.append(f"[{entity['text']}]({entity['label']})")
        position = entity["end"]
    out.append(text[position:])
    return "".join(out)


@click.command()
@click.argument("texts", nargs=-1)
@click.option(
    "-i",
    "--input",
    "input_path",
    type=click.Path(allow_dash=True),
    help="File of texts, one a line (or a CSV/TSV/JSON/JSONL column with --column); '-' is stdin.",
)
@click.option(
    "--column",
    "--text-column",
    "column",
    help="Column (CSV/TSV/Parquet) or key (JSON/JSONL) that holds the text [default: text].",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(),
    help="A Parquet dataset folder to write (a batch job: id columns, text, labels, scores, entities).",
)
@click.option("--with-embedding", is_flag=True, help="Batch job: write the embedding as well.")
@multitask_model_option
@click.option("--tasks", help="Comma-separated heads to run [default: all; none with --labels].")
@click.option(
    "--labels",
    help="Zero-shot: comma-separated labels (each 'name' or 'name: description'; 'other' means "
    "none of them), answered as the column zero_shot.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "jsonl", "csv"]),
    default="table",
    show_default=True,
    help="table reads well in a terminal; json, jsonl and csv pipe.",
)
@click.option("--device", envvar="STMT_DEVICE", show_envvar=True, help="cpu, cuda, cuda:N, mps.")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@click.option(
    "--min-score",
    type=click.FloatRange(0.0, 1.0),
    help="Give no label (shown as -, null in JSON) when a sentence head's top probability is below this.",
)
@backend_options
@errors_option
@batch_options
def predict(
    texts: tuple[str, ...],
    input_path: str | None,
    column: str | None,
    output: str | None,
    with_embedding: bool,
    model_dir: str | None,
    tasks: str | None,
    labels: str | None,
    fmt: str,
    device: str | None,
    batch_size: int,
    min_score: float | None,
    backend: str,
    precision: str,
    errors: DecodeErrors,
    engine: str,
    id_columns: tuple[str, ...],
    actors: int | None,
    cpus_per_actor: int,
    address: str | None,
    overwrite: bool,
) -> None:
    """Predict every task of a multi-task model (labels, probabilities, entities) for TEXTS.

    Texts come from the arguments, from --input FILE, or one a line from stdin.

    \b
    Examples:
      stmt predict --model my-model "Apple is buying a U.K. startup for $1 billion"
      stmt predict --model my-model --input reviews.csv --column review --format jsonl
      cat texts.txt | stmt predict --model my-model --tasks sentiment --format csv
      stmt predict --labels "sports,health,tech,finance,education,other" "The clinic opens at 8."

    With --output DIR (or --engine ray) it runs as a batch job over --input (Parquet, JSONL, JSON,
    CSV or text; a file, a folder or a glob) into a Parquet dataset folder: the --id-column
    columns, the text, per sentence head <task>_label and <task>_score, per token head its entities.

    \b
    Batch examples:
      stmt predict --input 'reviews/*.parquet' --id-column id --output labels/
      stmt predict --engine ray --address auto --input 'reviews/*.parquet' --output labels/
    """
    if output is not None or engine != "local" or id_columns:
        destination = job_output(engine, input_path, output, id_columns)
        from st_multitask.batch import predict_dataset

        if labels is not None:
            raise UserError("--labels runs on texts, not as a batch job: leave out --output and --engine.")
        if texts or not input_path or input_path == "-":
            raise UserError("A batch job reads files: pass --input PATH_OR_GLOB (not texts or stdin).")
        quiet_engine(engine)
        job = predict_dataset(
            input_path,
            destination,
            engine=engine,
            model=model_dir,
            tasks=None if tasks is None else [t for t in tasks.split(",") if t],
            text_column=column or "text",
            id_columns=id_columns,
            embedding=with_embedding,
            min_score=min_score,
            batch_size=batch_size,
            backend=backend,
            precision=precision,
            overwrite=overwrite,
            actors=actors,
            cpus_per_actor=cpus_per_actor,
            address=address,
        )
        report_job(job, "predictions")
        return
    from st_multitask.data import ReadReport, iter_texts

    if texts and input_path:
        raise UserError("Give texts as arguments or with --input, not both.")
    if input_path or not texts:
        source = input_path or "-"
        if source == "-" and sys.stdin.isatty():
            raise UserError("Give texts as arguments, with --input FILE, or pipe them in one a line.")
        report = ReadReport()
        items = [text for _, text in iter_texts(source, column=column, errors=errors, report=report)]
        report_reading(click.format_filename(source), report)
    else:
        items = list(texts)
        blank = [i for i, t in enumerate(items, 1) if not t.strip()]
        if blank:
            raise UserError(f"Text {blank[0]} is blank; give a text to predict.")
    model = load_pipeline(model_dir, device, backend, precision)
    selected = model.select([] if labels is not None and tasks is None else tasks)
    if labels is not None:
        model.zero_shot(labels)  # bad labels fail before any text is read by the model
    untrained = [name for name, head in selected.items() if not head.is_trained]
    if untrained:
        note(
            f"head{'s' * (len(untrained) > 1)} {', '.join(untrained)} {'are' if len(untrained) > 1 else 'is'} "
            "untrained: predictions are random."
        )
    encoded = model.tokenize(items)  # once: the window note and the prediction read it
    over = len(encoded.over_window())
    if over:
        kinds = {h.level for h in selected.values()}
        whole = [n for n, h in selected.items() if h.level == "sentence" and h.reads_windows]
        cut = [n for n, h in selected.items() if h.level == "sentence" and n not in whole]
        cut += [ZERO_SHOT] if labels is not None else []
        parts = []
        if whole:
            parts.append(f"{', '.join(whole)} read{'s' * (len(whole) == 1)} the whole text (windows)")
        if cut:
            parts.append(f"{', '.join(cut)} read{'s' * (len(cut) == 1)} the start of the text only")
        if "token" in kinds:
            parts.append("no entities are found past the window")
        note(
            f"{over} text{'s were' if over != 1 else ' was'} longer than the model window "
            f"({model.max_seq_length} tokens): {'; '.join(parts)}."
        )
    results = model.predict(encoded, list(selected), batch_size, min_score, labels)
    levels = {name: head.level for name, head in selected.items()}
    if labels is not None:
        levels[ZERO_SHOT] = "sentence"
    if fmt in ("json", "jsonl"):
        records = [{"text": text, **result} for text, result in zip(items, results)]
        if fmt == "json":
            click.echo(json.dumps(records, ensure_ascii=False, indent=2))
        else:
            for record in records:
                click.echo(json.dumps(record, ensure_ascii=False))
    elif fmt == "csv":
        rows: list[dict[str, Any]] = []
        for text, result in zip(items, results):
            row: dict[str, Any] = {"text": text}
            for name, value in result.items():
                if levels[name] == "sentence":
                    label = value["label"]
                    row[name] = "" if label is None else label if isinstance(label, str) else ";".join(label)
                    row[f"{name}_score"] = (
                        value["score"]
                        if isinstance(value["score"], float)
                        else ";".join(f"{s:.4f}" for s in value["score"])
                    )
                else:
                    row[name] = json.dumps(value, ensure_ascii=False)
            rows.append(row)
        emit_records(rows, "csv")
    else:
        click.echo(_table(items, results, levels))


def _table(items: list[str], results: list[dict], levels: dict[str, str]) -> str:
    token_tasks = [name for name, level in levels.items() if level == "token"]
    sentence_tasks = [name for name, level in levels.items() if level == "sentence"]
    headers = ["text", *sentence_tasks]
    rows = []
    for text, result in zip(items, results):
        shown = inline_entities(text, result[token_tasks[0]]) if token_tasks else text
        row = [shorten(shown, 80)]
        for name in sentence_tasks:
            value = result[name]
            if value["label"] is None:  # abstained (--min-score)
                row.append(f"- ({value['score']:.2f})")
            elif isinstance(value["label"], str):
                row.append(f"{value['label']} ({value['score']:.2f})")
            else:
                row.append(
                    ", ".join(f"{label} ({s:.2f})" for label, s in zip(value["label"], value["score"])) or "-"
                )
        rows.append(row)
    table = format_table(headers, rows, max_width=80)
    for name in token_tasks[1:]:
        table += f"\n\n{name}:\n" + "\n".join(inline_entities(t, r[name]) for t, r in zip(items, results))
    return table
