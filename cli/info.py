"""``stmt info``: what a multi-task model holds: backbone, heads, labels, sizes, stored metrics."""

from __future__ import annotations

import json

import click

from ._common import load_pipeline, multitask_model_option


@click.command()
@multitask_model_option
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def info(model_dir: str | None, fmt: str) -> None:
    """Describe a multi-task model: its backbone and each head's kind, labels and size.

    \b
    Example:
      stmt info --model my-model
    """
    model = load_pipeline(model_dir, "cpu", "torch")
    summary = model.info()
    if fmt == "json":
        click.echo(json.dumps(summary, indent=2, ensure_ascii=False))
        return
    backbone = summary["backbone"]
    click.echo(
        f"backbone: {backbone['name']} ({backbone['dimension']}-d, window {backbone['max_seq_length']} "
        f"tokens; runs on {backbone['backend']} {backbone['precision']})"
    )
    if not summary["heads"]:
        click.echo("heads: none")
    for name, head in summary["heads"].items():
        state = "" if head["trained"] else ", untrained"
        click.echo(f"head {name}: {head['kind']} ({head['level']} level{state})")
        click.echo(f"  labels: {', '.join(head['labels'])}")
        settings = ", ".join(f"{k}={v}" for k, v in head["config"].items())
        click.echo(f"  settings: {settings}")
    for name, branch in summary.get("branches", {}).items():
        readers = ", ".join(branch["heads"]) or "no head"
        click.echo(
            f"task branch {name}: a fine-tuned copy of the top {branch['layers']} layers, read by {readers}"
        )
    for key, graph in summary.get("graphs", {}).items():
        click.echo(f"exported graph {key}: {', '.join(graph.get('files', {}))} ({graph.get('runtime', '?')})")
    for task, metrics in summary["metrics"].items():
        click.echo(f"dev metrics {task}: " + ", ".join(f"{k}={v}" for k, v in metrics.items()))
