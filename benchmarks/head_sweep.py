"""Head design sweep: train single-task recipes and score them in-domain and on a second domain.

Each recipe in ``benchmarks/head_sweep/`` trains one head on the frozen packaged backbone
(``stmt train``). Then:

- sentiment recipes: accuracy on Rotten Tomatoes dev and test, and on VADER's human-rated Amazon
  review and tweet snippets (``st_multitask.corpora.load_vader_snippets``), the second domain the
  default sentiment head is picked on;
- NER recipes: entity F1 on CoNLL-2003 dev and test.

Dev is scored on the weights the run kept: its best epoch, or with ``average_epochs`` the mean of
its last epochs.

This is how the default model's sentiment and NER heads were chosen: on dev and the second domain,
the test column only reported. Rerun (``--jobs`` trains several recipes at once, for a machine with
many cores or a GPU)::

    HF_HUB_OFFLINE=1 python -m benchmarks.head_sweep [--recipes 'sentiment-*'] [--device cuda] [--jobs 6]

``--seeds 0,1,2`` trains every recipe once per seed (``stmt train --seed``) and reports each
figure's mean and spread (population standard deviation) over the seeds, since single runs of a
small head move by about half a point. Stores ``benchmarks/results/<machine>/head_sweep.json`` (every run and the
summary) and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from benchmarks._common import OUT_DIR, store_result

RECIPES = Path(__file__).resolve().parent / "head_sweep"
# ``stmt`` installed, or from a source checkout on PYTHONPATH (the CLI package is ``cli`` there)
STMT = """
try:
    from st_multitask.cli import main
except ImportError:
    from cli import main
main(prog_name="stmt")
"""


def train(
    recipe: Path, device: str | None, seed: int | None = None, reuse: bool = False
) -> tuple[Path, float | None]:
    """``stmt train`` one recipe into ``benchmarks/out/head_sweep/<name>[-seed<N>]``; returns it
    and its seconds (``reuse``: a finished run already there is scored as it is, seconds None)."""
    output = OUT_DIR / "head_sweep" / (recipe.stem + ("" if seed is None else f"-seed{seed}"))
    if reuse and (output / "test_metrics.json").is_file():
        return output, None
    command = [sys.executable, "-c", STMT]
    command += ["train", "--config", str(recipe), "-o", str(output), "--overwrite", "--quiet"]
    if device:
        command += ["--device", device]
    if seed is not None:
        command += ["--seed", str(seed)]
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return output, time.perf_counter() - start


def score(output: Path, device: str | None) -> dict[str, float]:
    """Dev (of the kept weights) and test figures of a trained single-task model, x 100."""
    dev = json.loads((output / "training_result.json").read_text())["metrics"]
    test = json.loads((output / "test_metrics.json").read_text())
    (task,) = dev
    if task == "ner":
        return {"dev_f1": 100 * dev[task]["f1"], "test_f1": 100 * test[task]["f1"]}
    from st_multitask import MultiTaskModel
    from st_multitask.corpora import load_vader_snippets
    from st_multitask.evaluation import evaluate_task

    model = MultiTaskModel.load(output, device)
    row = {"dev": 100 * dev[task]["accuracy"], "test": 100 * test[task]["accuracy"]}
    for domain in ("amazon", "tweets"):
        row[domain] = 100 * evaluate_task(model, task, load_vader_snippets(domain))["accuracy"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--recipes", default="*", help="comma-separated globs over benchmarks/head_sweep/*.yaml names"
    )
    parser.add_argument("--device", default=None, help="training device (cpu, cuda) [default: auto]")
    parser.add_argument("--jobs", type=int, default=1, help="recipes trained at once")
    parser.add_argument(
        "--seeds", default=None, help="comma-separated seeds, one run each [default: the recipe's]"
    )
    parser.add_argument("--out", default="head_sweep", help="result name in benchmarks/results/<machine>/")
    parser.add_argument(
        "--reuse", action="store_true", help="score finished runs already in the output folder"
    )
    args = parser.parse_args()
    recipes = sorted({r for glob in args.recipes.split(",") for r in RECIPES.glob(f"{glob}.yaml")})
    if not recipes:
        parser.error(f"no recipe in {RECIPES} matches {args.recipes!r}")
    try:
        seeds = [None] if args.seeds is None else [int(s) for s in args.seeds.split(",")]
    except ValueError:
        parser.error(f"--seeds must be comma-separated integers, got {args.seeds!r}")
    runs = [(recipe, seed) for recipe in recipes for seed in seeds]
    with ThreadPoolExecutor(args.jobs) as pool:
        trained = list(pool.map(lambda run: train(run[0], args.device, run[1], args.reuse), runs))
    per_run: dict[str, list[dict[str, Any]]] = {}
    for (recipe, seed), (output, seconds) in zip(runs, trained):
        row = {k: round(v, 2) for k, v in score(output, args.device).items()}
        row["train_seconds"] = None if seconds is None else round(seconds)
        per_run.setdefault(recipe.stem, []).append({"seed": seed, **row})
    rows = {name: summarise(found) for name, found in per_run.items()}
    store_result(
        args.out,
        {
            "device": args.device or "auto",
            "jobs": args.jobs,
            "seeds": seeds,
            "recipes": rows,
            "runs": per_run,
        },
    )
    for recipe, row in rows.items():
        print(f"| {recipe} | " + " | ".join(f"{k} {v}" for k, v in row.items()) + " |")


def summarise(found: list[dict[str, Any]]) -> dict[str, Any]:
    """One recipe's figures: as they are for one run; mean ± spread over several seeds."""
    if len(found) == 1:
        return {k: v for k, v in found[0].items() if k != "seed"}
    summary: dict[str, Any] = {}
    for key in found[0]:
        if key in ("seed", "train_seconds"):
            continue
        values = np.array([run[key] for run in found], dtype=float)
        summary[key] = f"{values.mean():.2f} ± {values.std():.2f}"
    timed = [run["train_seconds"] for run in found if run["train_seconds"] is not None]
    summary["train_seconds"] = round(sum(timed) / len(timed)) if timed else None
    return summary


if __name__ == "__main__":
    main()
