"""Head design sweep: train single-task recipes and score them in-domain and on a second domain.

Each recipe in ``benchmarks/head_sweep/`` trains one head on the frozen packaged backbone
(``stmt train``). Then:

- sentiment recipes: accuracy on Rotten Tomatoes dev (best epoch) and test, and on VADER's
  human-rated Amazon review and tweet snippets (``st_multitask.corpora.load_vader_snippets``), the
  second domain the default sentiment head is picked on;
- NER recipes: entity F1 on CoNLL-2003 dev (best epoch) and test.

This is how the default model's sentiment and NER heads were chosen: on dev and the second domain,
the test column only reported. Rerun (``--jobs`` trains several recipes at once, for a machine with
many cores or a GPU)::

    HF_HUB_OFFLINE=1 python benchmarks/head_sweep.py [--recipes 'sentiment-*'] [--device cuda] [--jobs 6]

Writes ``benchmarks/out/head_sweep.json`` and prints a Markdown table.
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

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import OUT_DIR, write_result

RECIPES = Path(__file__).resolve().parent / "head_sweep"
# ``stmt`` installed, or from a source checkout on PYTHONPATH (the CLI package is ``cli`` there)
STMT = """
try:
    from st_multitask.cli import main
except ImportError:
    from cli import main
main(prog_name="stmt")
"""


def train(recipe: Path, device: str | None) -> tuple[Path, float]:
    """``stmt train`` one recipe into ``benchmarks/out/head_sweep/<name>``; returns it and its seconds."""
    output = OUT_DIR / "head_sweep" / recipe.stem
    command = [sys.executable, "-c", STMT]
    command += ["train", "--config", str(recipe), "-o", str(output), "--overwrite", "--quiet"]
    if device:
        command += ["--device", device]
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return output, time.perf_counter() - start


def score(output: Path, device: str | None) -> dict[str, float]:
    """Dev (best epoch) and test figures of a trained single-task model, x 100."""
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
    parser.add_argument("--recipes", default="*", help="glob over benchmarks/head_sweep/*.yaml names")
    parser.add_argument("--device", default=None, help="training device (cpu, cuda) [default: auto]")
    parser.add_argument("--jobs", type=int, default=1, help="recipes trained at once")
    args = parser.parse_args()
    recipes = sorted(RECIPES.glob(f"{args.recipes}.yaml"))
    if not recipes:
        parser.error(f"no recipe in {RECIPES} matches {args.recipes!r}")
    with ThreadPoolExecutor(args.jobs) as pool:
        trained = list(pool.map(lambda r: train(r, args.device), recipes))
    rows = {}
    for recipe, (output, seconds) in zip(recipes, trained):
        rows[recipe.stem] = {k: round(v, 2) for k, v in score(output, args.device).items()}
        rows[recipe.stem]["train_seconds"] = round(seconds)
    write_result("head_sweep", {"device": args.device or "auto", "jobs": args.jobs, "recipes": rows})
    for recipe, row in rows.items():
        print(f"| {recipe} | " + " | ".join(f"{k} {v}" for k, v in row.items()) + " |")


if __name__ == "__main__":
    main()
