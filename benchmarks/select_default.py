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

Task branches (issue 30; rule written before their runs): the ``*-branch*`` variants put the
task's head on a trainable copy of the backbone's top K layers (K = 1, 2, 3), 4 epochs at learning
rate 5e-5 (the branch), batches grouped by length, with every other setting of the recipe; sentiment
also trains on VADER's Amazon snippets. So that every sentiment variant is scored on the same texts,
sentiment's dev score is read on the dev splits of all four VADER domains (Amazon's included) for
frozen and branch variants alike (changed before the first branch run; the frozen variants are
rerun with it). They pass the same bars as the others; among
the passing branch variants of a task, the smallest K whose score is within 0.3 points of the best
branch variant's is taken, and it replaces the frozen head only if it beats the frozen variant chosen
above on the same dev score.

On 2026-12-07 (2 loaded cores, one K = 1 epoch took 10 to 18 minutes) only K = 1 of sentiment was
run, and no topic branch: K = 2 was cut for machine time before it started. sentiment-branch1 passed
the Rotten Tomatoes bar and missed the neutral-recall bar (dev 0.660 < 0.70), so the
``sentiment-branch{1,2}-neutral3`` variants (neutral weighs 3.0 in the loss, as in the frozen
``sentiment-rt-neutral3``) were added then, under the same rule, to run next.

    python -m benchmarks.select_default                 # every variant
    python -m benchmarks.select_default --only sentiment-no-rt --reuse

Writes ``benchmarks/results/<machine>/select_default.json``.
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path
from typing import Any

import yaml

from benchmarks._common import run_command, store_result
from benchmarks.quality import pos_neg
from st_multitask import MultiTaskModel
from st_multitask.corpora import load_rotten_tomatoes, load_vader
from st_multitask.data import SentenceExamples
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
SENTIMENT_ALL_DOMAINS = {
    "train": [
        "corpus:vader_tweets/train",
        "corpus:vader_nyt/train",
        "corpus:vader_movies/train",
        "corpus:vader_amazon/train",
        "corpus:rotten_tomatoes/train",
    ],
    "dev": [
        "corpus:vader_tweets/dev",
        "corpus:vader_nyt/dev",
        "corpus:vader_movies/dev",
        "corpus:vader_amazon/dev",
    ],
}
BRANCH = {"epochs": 4, "learning_rate": 5e-5, "group_by_length": True}  # every branch variant's settings
SENTIMENT.update(
    {f"sentiment-branch{k}": {**SENTIMENT_ALL_DOMAINS, **BRANCH, "branch": k} for k in (1, 2, 3)}
)
NEUTRAL3 = {
    "head": {"class_weights": {"neutral": 3.0}}
}  # added after sentiment-branch1 missed neutral recall
SENTIMENT.update(
    {
        f"sentiment-branch{k}-neutral3": {**SENTIMENT_ALL_DOMAINS, **BRANCH, **NEUTRAL3, "branch": k}
        for k in (1, 2)
    }
)
TOPIC = {
    "topic-layers": {},  # the recipe as written
    "topic-pooled": {"head": {"layers": None}},
    **{f"topic-branch{k}": {**BRANCH, "branch": k} for k in (1, 2, 3)},
}


def variant_recipe(task: str, change: dict) -> dict:
    recipe = yaml.safe_load(RECIPE.read_text())
    spec = recipe["tasks"][task]
    spec.pop("test", None)
    recipe["training"].pop("average_epochs", None)
    for key, value in change.items():
        if key == "average_epochs":
            recipe["training"]["average_epochs"] = {task: value}
        elif key == "branch":  # the head on a task branch: it trains, so heads are not independent
            recipe["model"] = {**(recipe.get("model") or {}), "branch": {"layers": value, "share": "task"}}
            recipe["training"].pop("best_per_task", None)
        elif key in ("epochs", "learning_rate", "group_by_length"):
            recipe["training"][key] = value
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
    if task == "sentiment":  # the same dev texts for every variant: all four VADER domains
        metrics = evaluate_task(model, task, _sentiment_dev())
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


def _sentiment_dev() -> SentenceExamples:
    parts = [load_vader(domain, "dev") for domain in ("tweets", "nyt", "movies", "amazon")]
    return SentenceExamples(
        [t for p in parts for t in p.texts], [y for p in parts for y in p.labels], source="vader-dev"
    )


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

    def topic_score(row: dict) -> float:
        return float(row["dev_sentences_kept"] * row["dev_sentences_accuracy"])

    def sentiment_score(row: dict) -> float:
        return float(row["dev_macro_f1"])

    return {
        "sentiment": _pick(sentiment, sentiment_score),
        "topic": _pick(topic, topic_score),
    }


def _pick(rows: dict[str, dict], score: Any) -> str | None:
    """The best frozen variant, replaced by a branch variant that beats it: the smallest K within
    0.3 points (0.003) of the best branch variant."""
    frozen = {k: v for k, v in rows.items() if "-branch" not in k}
    branches = {k: v for k, v in rows.items() if "-branch" in k}
    best = max(frozen, key=lambda k: score(frozen[k])) if frozen else None
    if branches:
        top = max(score(v) for v in branches.values())
        near = sorted(
            (k for k, v in branches.items() if score(v) >= top - 0.003),
            key=lambda k: int(k.split("-branch")[1][0]),  # K; the smaller wins a near tie
        )
        if best is None or score(branches[near[0]]) > score(frozen[best]):
            return near[0]
    return best


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
