"""Choose the default model's sentence heads on dev data only: no test split is read here.

Each variant is the default recipe (``examples/configs/default.yaml``) for one task with its
``test`` sources removed and one change; it trains into ``runs/select/<variant>`` and is scored
on selection data:

- sentiment: three-class macro-F1 and neutral recall on the recipe's dev split (VADER tweets, NYT
  and movie snippets), and the better-of-positive-and-negative accuracy on Rotten Tomatoes' dev split;
- topic: on BBC dev articles and BBC dev sentences, the share that keeps a topic and the accuracy
  on those; on the out-of-scope dev split, the share that gets "other".

The rule (fixed before any run): sentiment takes the highest three-class dev macro-F1 among the
variants with dev neutral recall >= 0.70 and Rotten Tomatoes dev accuracy >= 80.9 (the old binary
head's 82.44 less 1.5); topic takes the highest dev sentence coverage x accuracy among the variants
that keep >= 97% of dev articles and turn >= 90% of out-of-scope dev texts into "other". Where no
variant passes, the highest dev macro-F1 (sentiment) or sentence coverage x accuracy (topic) of all
is taken and the missed bar is reported as missed (this fallback was added after the first two
sentiment variants had both missed the neutral-recall and Rotten Tomatoes bars on dev).

    python -m benchmarks.select_default                 # every variant
    python -m benchmarks.select_default --only sentiment-no-rt --reuse

Writes ``benchmarks/results/<machine>/select_default.json``.
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import yaml

from benchmarks._common import run_command, store_result
from benchmarks.quality import pos_neg
from st_multitask import MultiTaskModel
from st_multitask.corpora import load_rotten_tomatoes
from st_multitask.evaluation import evaluate_task
from st_multitask.recipe import load_recipe
from st_multitask.training import Trainer

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "examples" / "configs" / "default.yaml"
RUNS = ROOT / "runs" / "select"

SENTIMENT = {
    "sentiment-rt-neutral2": {},  # the recipe as first written
    "sentiment-rt-neutral3": {"head": {"class_weights": {"neutral": 3.0}}},
    "sentiment-rt-neutral3-avg4": {"head": {"class_weights": {"neutral": 3.0}}, "average_epochs": 4},
    "sentiment-rt-neutral4-avg4": {"head": {"class_weights": {"neutral": 4.0}}, "average_epochs": 4},
    "sentiment-no-rt-neutral2": {
        "train": ["corpus:vader_tweets/train", "corpus:vader_nyt/train", "corpus:vader_movies/train"]
    },
}
TOPIC = {
    "topic-layers": {},  # the recipe as written
    "topic-pooled": {"head": {"layers": None}},
}


def variant_recipe(task: str, change: dict) -> dict:
    recipe = yaml.safe_load(RECIPE.read_text())
    spec = recipe["tasks"][task]
    spec.pop("test", None)
    recipe["training"].pop("average_epochs", None)
    for key, value in change.items():
        if key == "average_epochs":
            recipe["training"]["average_epochs"] = {task: value}
        elif key == "head":
            spec["head"] = {k: v for k, v in {**spec["head"], **value}.items() if v is not None}
        else:
            spec[key] = copy.deepcopy(value)
    recipe["tasks"] = {task: spec}
    recipe["training"]["cache_dir"] = str(
        ROOT / "build" / "train-cache"
    )  # variants on the same texts share it
    return recipe


def score(task: str, model, tasks) -> dict:
    if task == "sentiment":
        metrics = evaluate_task(model, task, {t.name: t.dev for t in tasks}[task])
        return {
            "dev_macro_f1": metrics["macro_f1"],
            "dev_neutral_recall": metrics["per_class"]["neutral"]["recall"],
            "dev_accuracy": metrics["accuracy"],
            "dev_ece": metrics.get("ece"),
            "rotten_tomatoes_dev": _rt_dev(model),
        }
    from st_multitask.corpora import load_bbc, load_bbc_sentences, load_out_of_scope

    articles = evaluate_task(model, task, load_bbc("dev"))
    sentences = evaluate_task(model, task, load_bbc_sentences("dev"))
    other = evaluate_task(model, task, load_out_of_scope("dev"))
    return {
        "dev_articles_kept": articles["coverage"],
        "dev_articles_accuracy": articles["covered_accuracy"],
        "dev_sentences_kept": sentences["coverage"],
        "dev_sentences_accuracy": sentences["covered_accuracy"],
        "dev_out_of_scope_other": round(1 - other["coverage"], 4),
        "other_threshold": model.heads[task].other_threshold,
    }


def _rt_dev(model) -> float:
    data = load_rotten_tomatoes("dev")
    probabilities = [r["sentiment"] for r in model.predict_proba(data.texts, tasks=["sentiment"])]
    return pos_neg(model.heads["sentiment"], probabilities, data)["accuracy_pos_neg"]


def choose(rows: dict[str, dict]) -> dict[str, str | None]:
    sentiment = {
        k: v
        for k, v in rows.items()
        if k.startswith("sentiment") and v["dev_neutral_recall"] >= 0.70 and v["rotten_tomatoes_dev"] >= 0.809
    }
    topic = {
        k: v
        for k, v in rows.items()
        if k.startswith("topic") and v["dev_articles_kept"] >= 0.97 and v["dev_out_of_scope_other"] >= 0.90
    }
    sentiment = sentiment or {k: v for k, v in rows.items() if k.startswith("sentiment")}
    topic = topic or {k: v for k, v in rows.items() if k.startswith("topic")}
    return {
        "sentiment": max(sentiment, key=lambda k: sentiment[k]["dev_macro_f1"]) if sentiment else None,
        "topic": max(topic, key=lambda k: topic[k]["dev_sentences_kept"] * topic[k]["dev_sentences_accuracy"])
        if topic
        else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", nargs="*", help="variant names (default: all)")
    parser.add_argument("--reuse", action="store_true", help="score finished runs instead of training again")
    args = parser.parse_args()
    variants = {
        **{k: ("sentiment", v) for k, v in SENTIMENT.items()},
        **{k: ("topic", v) for k, v in TOPIC.items()},
    }
    rows: dict[str, dict] = {}
    for name, (task, change) in variants.items():
        if args.only and name not in args.only:
            continue
        out = RUNS / name
        start = time.perf_counter()
        model, tasks, config = load_recipe(variant_recipe(task, change), base_dir=RECIPE.parent)
        if not (args.reuse and (out / "st_multitask.json").is_file()):
            Trainer(model, config, output_dir=out, overwrite=True, progress=False).fit(tasks)
        model = MultiTaskModel.load(out, "cpu")
        rows[name] = {
            "change": change,
            **score(task, model, tasks),
            "seconds": round(time.perf_counter() - start),
        }
        print(name, rows[name], flush=True)
    result = {"variants": rows, "chosen": choose(rows)}
    command = run_command(["--only", *args.only] if args.only else [])
    print("chosen:", result["chosen"])
    print(f"wrote {store_result('select_default', result, command)}")


if __name__ == "__main__":
    main()
