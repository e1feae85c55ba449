"""``stmt evaluate``: metrics of one task of a trained model on a labelled file."""

from __future__ import annotations

import json

import click

from ._common import backend_options, load_pipeline, multitask_model_option
from ._io import format_table


@click.command()
@multitask_model_option
@click.option("--task", required=True, help="The head to evaluate.")
@click.option(
    "--data",
    "data_path",
    required=True,
    type=click.Path(),
    help="Labelled data: CSV/TSV/JSONL for sentence tasks, CoNLL/JSONL for token tasks.",
)
@click.option("--text-column", default="text", show_default=True)
@click.option("--label-column", default="label", show_default=True)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--device", envvar="STMT_DEVICE", show_envvar=True, help="cpu, cuda, cuda:N, mps.")
@backend_options
def evaluate(
    model_dir: str | None,
    task: str,
    data_path: str,
    text_column: str,
    label_column: str,
    fmt: str,
    batch_size: int,
    device: str | None,
    backend: str,
    precision: str,
) -> None:
    """Score one task of a model on labelled data: accuracy, macro-F1 and a per-class report for
    sentence tasks; entity precision, recall and F1 (strict IOB2) for token tasks.

    \b
    Examples:
      stmt evaluate --model runs/joint --task sentiment --data examples/data/sentiment-dev.csv
      stmt evaluate --model runs/joint --task ner --data examples/data/ner-dev.conll --format json
    """
    from st_multitask.errors import InputError
    from st_multitask.evaluation import evaluate_task
    from st_multitask.recipe import read_split

    model = load_pipeline(model_dir, device, backend, precision)
    if task not in model.heads:
        raise InputError(f"Unknown task {task!r}. Valid: {', '.join(model.heads) or 'none (no heads)'}.")
    level = model.heads[task].level
    data = read_split(data_path, level, {"text_column": text_column, "label_column": label_column})
    metrics = evaluate_task(model, task, data, batch_size)
    if fmt == "json":
        click.echo(json.dumps({"task": task, "data": data_path, **metrics}, indent=2))
        return
    if level == "sentence":
        click.echo(
            f"{task} on {data_path} ({metrics['n']} texts): accuracy {metrics['accuracy']:.4f}, "
            f"macro-F1 {metrics['macro_f1']:.4f}"
            + (f", expected calibration error {metrics['ece']:.4f}" if "ece" in metrics else "")
            + "\n"
        )
        if "coverage" in metrics:
            covered = metrics["covered_accuracy"]
            click.echo(
                f"coverage {metrics['coverage']:.4f} (texts given a label other than the out-of-scope one), "
                f"accuracy on those {'-' if covered is None else format(covered, '.4f')}\n"
            )
        rows = [
            [label, m["precision"], m["recall"], m["f1-score"], int(m["support"])]
            for label, m in metrics["per_class"].items()
        ]
        click.echo(format_table(["label", "precision", "recall", "f1", "support"], rows))
        if "confusion_matrix" in metrics:
            click.echo("\nConfusion matrix (rows: gold, columns: predicted):")
            labels = metrics["labels"]
            click.echo(
                format_table(
                    ["", *labels], [[g, *row] for g, row in zip(labels, metrics["confusion_matrix"])]
                )
            )
    else:
        click.echo(
            f"{task} on {data_path} ({metrics['n']} sentences): precision {metrics['precision']:.4f}, "
            f"recall {metrics['recall']:.4f}, F1 {metrics['f1']:.4f}\n"
        )
        rows = [
            [label, m["precision"], m["recall"], m["f1-score"], int(m["support"])]
            for label, m in metrics["per_type"].items()
        ]
        click.echo(format_table(["type", "precision", "recall", "f1", "support"], rows))
