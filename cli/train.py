"""``stmt train``: run a training recipe (YAML/JSON) into a model directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ._common import UserError, note
from ._io import format_table


def _parse_set(values: tuple[str, ...]) -> dict:
    import yaml

    out = {}
    for item in values:
        if "=" not in item:
            raise UserError(f"--set takes KEY=VALUE, got {item!r} (for example --set lr_decay=0.9).")
        key, value = item.split("=", 1)
        try:
            out[key.strip().replace("-", "_")] = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or "not a YAML value"
            raise UserError(f"--set {item!r}: the value is not valid YAML ({problem}).") from None
    return out


@click.command()
@click.option(
    "-c",
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="Training recipe (YAML or JSON): model, tasks (head + data), training settings.",
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(file_okay=False),
    help="Model directory to write (checkpoints and metrics.jsonl go inside it).",
)
@click.option("--strategy", type=click.Choice(["joint", "sequential"]), help="Override training.strategy.")
@click.option("--epochs", type=click.IntRange(min=1), help="Override training.epochs.")
@click.option("--batch-size", type=click.IntRange(min=1), help="Override training.batch_size.")
@click.option("--learning-rate", type=float, help="Override training.learning_rate (backbone).")
@click.option("--head-learning-rate", type=float, help="Override training.head_learning_rate.")
@click.option(
    "--sampling",
    type=click.Choice(["proportional", "round_robin", "uniform", "temperature"]),
    help="Override training.sampling.",
)
@click.option("--freeze", help="Comma-separated: backbone, head names, or all.")
@click.option("--seed", type=int, help="Override training.seed.")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE", help="Override any training setting.")
@click.option("--resume", is_flag=True, help="Continue from the newest checkpoint in OUTPUT.")
@click.option("--overwrite", is_flag=True, help="Replace an existing OUTPUT directory.")
@click.option("--plot", is_flag=True, help="Write training curves and confusion matrices to OUTPUT/plots.")
@click.option("--device", envvar="STMT_DEVICE", show_envvar=True, help="cpu, cuda, cuda:N, mps.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def train(
    config_path: str,
    output: str,
    settings: tuple[str, ...],
    resume: bool,
    overwrite: bool,
    plot: bool,
    device: str | None,
    quiet: bool,
    freeze: str | None,
    **overrides: str | int | float | None,  # --strategy, --epochs, ...: training settings
) -> None:
    """Train the tasks of a recipe, jointly or one after another, into OUTPUT.

    \b
    Examples:
      stmt train --config examples/configs/joint.yaml -o runs/joint
      stmt train --config examples/configs/sequential.yaml -o runs/seq --epochs 1
      stmt train --config cfg.yaml -o runs/a --freeze backbone --set lr_decay=0.9
      stmt train --config cfg.yaml -o runs/a --resume        # after an interruption
    """
    import sys

    from st_multitask.recipe import load_recipe
    from st_multitask.training import Trainer

    from ._common import quiet_libraries

    quiet_libraries()
    values: dict[str, Any] = {k: v for k, v in overrides.items() if v is not None}
    if freeze is not None:
        values["freeze"] = [x.strip() for x in freeze.split(",") if x.strip()]
    values.update(_parse_set(settings))
    model, tasks, config = load_recipe(config_path, overrides=values, device=device)
    out = Path(output)
    trainer = Trainer(
        model,
        config,
        output_dir=out,
        overwrite=overwrite,
        resume=resume,
        progress=not quiet and sys.stderr.isatty(),
    )
    click.echo(f"Training {', '.join(t.name for t in tasks)} ({config.strategy}) into {out} ...", err=True)
    result = trainer.fit(tasks)
    rows = []
    for name, metrics in result.metrics.items():
        summary = ", ".join(f"{k}={v:.4f}" for k, v in metrics.items() if isinstance(v, float))
        rows.append([name, model.heads[name].level, summary])
    click.echo(format_table(["task", "level", "dev metrics (train when no dev split)"], rows, max_width=90))
    if result.forgetting:
        stages = list(result.forgetting)
        table = [[t, *[result.forgetting[s].get(t, "") for s in stages]] for t in stages]
        click.echo("\nForgetting (main metric of each task after each stage):")
        click.echo(format_table(["task", *[f"after {s}" for s in stages]], table))
    test_rows, test_metrics = [], {}
    for task in tasks:
        if task.test is not None:
            from st_multitask.evaluation import evaluate_task

            metrics = evaluate_task(model, task.name, task.test, config.eval_batch_size)
            test_metrics[task.name] = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
            test_rows.append(
                [task.name, ", ".join(f"{k}={v:.4f}" for k, v in metrics.items() if isinstance(v, float))]
            )
    if test_rows:
        click.echo("\nTest split:")
        click.echo(format_table(["task", "metrics"], test_rows, max_width=90))
        from st_multitask.atomic import atomic_file

        with atomic_file(out / "test_metrics.json") as tmp:
            tmp.write_text(json.dumps(test_metrics, indent=2) + "\n", encoding="utf-8")
    if plot:
        from ._plots import plot_training

        written = plot_training(out, result.history, result.metrics)
        note(f"wrote {len(written)} plot{'s' * (len(written) != 1)} to {out / 'plots'}.")
    click.echo(
        f"Saved the model to {out} ({result.steps} steps, {result.seconds:.0f} s). "
        f'Try: stmt predict --model {out} "some text"',
        err=True,
    )
