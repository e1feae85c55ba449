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
    type=click.Path(dir_okay=False),
    help="Training recipe (YAML or JSON): model, tasks (head + data), training settings.",
)
@click.option(
    "--data",
    "data_path",
    type=click.Path(dir_okay=False),
    help="No recipe: a CSV/TSV/JSONL/JSON/Parquet file with text and label columns (or texts only, "
    "with --labels: zero-shot). A recipe is chosen from its size and printed.",
)
@click.option("--task", default="label", show_default=True, help="--data: the new head's name.")
@click.option(
    "--labels",
    help="--data: comma-separated labels in the order to keep ('name: description' for zero-shot).",
)
@click.option("--text-column", default="text", show_default=True, help="--data: the text column.")
@click.option("--label-column", default="label", show_default=True, help="--data: the label column.")
@click.option(
    "--dev", "dev_path", type=click.Path(dir_okay=False), help="--data: a dev file [default: carved]."
)
@click.option(
    "--model",
    "base",
    envvar="STMT_MODEL",
    help="--data: the model the head joins (its heads stay) [default: the bundled default model].",
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
    config_path: str | None,
    data_path: str | None,
    task: str,
    labels: str | None,
    text_column: str,
    label_column: str,
    dev_path: str | None,
    base: str | None,
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

    Without a recipe, --data FILE trains one new head (--task) beside the base model's heads,
    on the frozen backbone: zero-shot (a file of texts and --labels), a linear head (few examples
    of some label) or an MLP (32 or more of each); a dev split is carved (20%, stratified) and
    calibrates it. The chosen recipe is printed as YAML.

    \b
      stmt train --data reviews.csv -o my-model
      stmt train --data tickets.jsonl --task urgency --labels "low,medium,high" -o my-model
      stmt train --data texts.txt --labels "sports,health,tech,finance,education,other" -o my-model
    """
    import sys

    if (config_path is None) == (data_path is None):
        raise UserError("Give a recipe with --config FILE or a data file with --data FILE (one of them).")
    if data_path is not None:
        return _train_from_data(
            data_path,
            task,
            labels,
            text_column,
            label_column,
            dev_path,
            base,
            output,
            overwrite,
            device,
            quiet,
        )
    assert config_path is not None

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
    for split in tasks:
        if split.test is not None:
            from st_multitask.evaluation import evaluate_task

            metrics = evaluate_task(model, split.name, split.test, config.eval_batch_size)
            test_metrics[split.name] = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
            test_rows.append(
                [split.name, ", ".join(f"{k}={v:.4f}" for k, v in metrics.items() if isinstance(v, float))]
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


def _train_from_data(
    data_path: str,
    task: str,
    labels: str | None,
    text_column: str,
    label_column: str,
    dev_path: str | None,
    base: str | None,
    output: str,
    overwrite: bool,
    device: str | None,
    quiet: bool,
) -> None:
    import sys

    import yaml

    from st_multitask.data_recipe import CALIBRATE_FROM, check_target, plan_from_data, train_from_data

    from ._common import quiet_libraries

    quiet_libraries()
    plan = plan_from_data(data_path, task, labels, text_column, label_column, dev_path)
    check_target(task, output, base, overwrite)
    if plan.dev is not None and not plan.calibrates:
        plan.dev_note += f"; no calibration (fewer than {CALIBRATE_FROM} dev texts)"
    sizes = f"{len(plan.train)} training texts" if plan.train is not None else f"{len(plan.texts)} texts"
    note(
        f"{plan.mode.replace('_', '-')} head {task!r} ({', '.join(plan.names)}) from {sizes}; {plan.dev_note}."
    )
    click.echo("# the recipe of this run (stmt train --config); the base model's other heads are not in it")
    click.echo(yaml.safe_dump(plan.recipe(base), sort_keys=False).rstrip())
    model, metrics = train_from_data(
        plan, output, base, overwrite, device, progress=not quiet and sys.stderr.isatty()
    )
    shown = ", ".join(f"{k}={v:.4f}" for k, v in metrics.items() if isinstance(v, float))
    if shown:
        click.echo(
            format_table(["task", "dev metrics (train when no dev split)"], [[task, shown]], max_width=90)
        )
    click.echo(
        f"Saved the model to {output} (heads: {', '.join(model.heads)}). "
        f'Try: stmt predict --model {output} --tasks {task} "some text"',
        err=True,
    )
