"""Zero-shot labels on BBC News (issue 32): what label names alone give, and what each step adds.

    python -m benchmarks.zero_shot [--limit N]

Steps, each on top of the one before, with the five BBC topics as labels and no labelled example:
1. ``naive``: the label names in one template ("This text is about {label}.");
2. ``templates``: several templates (:data:`~st_multitask.zero_shot.DEFAULT_TEMPLATES`);
3. ``descriptions``: a one-line description of each label (written here, once);
4. ``self_training``: prototypes refitted on the train split's texts, without their labels.

Every choice is made on the train and dev splits: which templates (each candidate scored alone on
train; the best generic ones, not the news-only phrasings, are the default), the self-training
rounds and share (dev), the temperature (fitted on dev), and the default ``other`` cosine (in-scope
BBC sentences against out-of-scope captions, forum posts and tweets, dev splits, balanced accuracy). The test split is
read once at the end: the naive probe, label names with templates (the issue's target: >= 75%),
and the chosen setting. Texts past the window are truncated (the first 256 word pieces).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from benchmarks._common import OtherLoad, store_result

TOPICS = ["business", "entertainment", "politics", "sport", "tech"]
# written once from the label names, before any score was seen; not tuned
DESCRIPTIONS = [
    "business: companies, markets, the economy, profits, shares and banks",
    "entertainment: films, music, television, celebrities, actors and awards",
    "politics: government, elections, parliament, ministers and political parties",
    "sport: football, rugby, tennis, athletics, matches and players",
    "tech: technology, computers, the internet, software, phones and games",
]
# candidates scored alone on train; the news-only phrasings are reported but not chosen, since the
# default serves any text (reviews, tickets, chat), not news alone
CANDIDATES = {
    "This text is about {label}.": "generic",
    "{label}": "generic",
    "This is a text on the topic of {label}.": "generic",
    "This article is about {label}.": "generic",
    "A post about {label}.": "generic",
    "Talking about {label}.": "generic",
    "It is about {label}.": "generic",
    "This sentence is about {label}.": "generic",
    "A text about {label}.": "generic",
    "Something related to {label}.": "generic",
    "The subject is {label}.": "generic",
    "Topic: {label}.": "generic",
    "A news story about {label}.": "news",
    "The latest {label} news.": "news",
    "An article in the {label} section.": "news",
}
TEMPLATE_COUNT = 6
SELF_TRAINING_GRID = [(rounds, keep) for rounds in (1, 2, 3) for keep in (0.25, 0.5, 1.0)]


def _accuracy(predictions: Sequence[dict[str, Any]], gold: Sequence[str]) -> float:
    return round(100 * float(np.mean([p["label"] == g for p, g in zip(predictions, gold)])), 2)


def main() -> None:
    from st_multitask import load
    from st_multitask.calibration import expected_calibration_error
    from st_multitask.corpora import load_bbc, load_bbc_sentences, load_out_of_scope
    from st_multitask.zero_shot import (
        DEFAULT_OTHER_COSINE,
        DEFAULT_TEMPLATES,
        NAIVE_TEMPLATES,
        ZeroShotClassifier,
    )

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, help="at most N texts of each split (a smoke run)")
    args = parser.parse_args()
    pipe = load(backend="onnx")
    cache: dict[str, np.ndarray] = {}

    def embed(texts: list[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in cache))
        if missing:
            cache.update(zip(missing, pipe.embed(missing, batch_size=32)))
        return np.array([cache[t] for t in texts])

    with open("/proc/loadavg", encoding="ascii") as f:
        loadavg_before = f.read().split()[:3]
    start = time.perf_counter()
    with OtherLoad() as load_share:
        splits = {s: load_bbc(s) for s in ("train", "dev", "test")}
        if args.limit:
            for s, ex in splits.items():
                step = max(1, len(ex.texts) // args.limit)  # every label (the files are in label order)
                splits[s] = type(ex)(ex.texts[::step], ex.labels[::step], ex.source)
        vectors = {s: pipe.embed(ex.texts, batch_size=32) for s, ex in splits.items()}
        gold = {s: ex.labels for s, ex in splits.items()}

        def score(zs: ZeroShotClassifier, split: str) -> float:
            return _accuracy(zs.predict(vectors[split]), gold[split])

        build: Callable[..., ZeroShotClassifier] = lambda labels, templates: ZeroShotClassifier.build(  # noqa: E731
            labels, embed, templates=templates
        )
        # -- choosing the templates on train --------------------------------------------------
        alone = {t: score(build(TOPICS, [t]), "train") for t in CANDIDATES}
        generic = sorted((t for t in alone if CANDIDATES[t] == "generic"), key=lambda t: -alone[t])
        chosen_templates = generic[:TEMPLATE_COUNT]
        # -- the ladder, on train and dev -------------------------------------------------------
        steps = {
            "naive": build(TOPICS, list(NAIVE_TEMPLATES)),
            "templates": build(TOPICS, list(DEFAULT_TEMPLATES)),
            "descriptions": build(DESCRIPTIONS, list(DEFAULT_TEMPLATES)),
        }
        grid = {
            f"rounds={r}, keep={k}": score(steps["descriptions"].self_train(vectors["train"], r, k), "dev")
            for r, k in SELF_TRAINING_GRID
        }
        best_rounds, best_keep = SELF_TRAINING_GRID[int(np.argmax(list(grid.values())))]
        steps["self_training"] = steps["descriptions"].self_train(vectors["train"], best_rounds, best_keep)
        ladder = {name: {"train": score(zs, "train"), "dev": score(zs, "dev")} for name, zs in steps.items()}
        names_only_self = steps["templates"].self_train(vectors["train"], best_rounds, best_keep)
        ladder["templates + self_training (no descriptions)"] = {
            "train": score(names_only_self, "train"),
            "dev": score(names_only_self, "dev"),
        }
        # -- temperature on dev -----------------------------------------------------------------
        chosen = steps["self_training"]
        ids = {s: chosen.ids(gold[s]) for s in ("dev", "test")}
        ece_default = expected_calibration_error(chosen.predict_proba(vectors["test"]), ids["test"])
        calibrated = chosen.calibrate(vectors["dev"], gold["dev"])
        ece_fitted = expected_calibration_error(chosen.predict_proba(vectors["test"]), ids["test"])
        # -- the default other cosine: in-scope sentences against out-of-scope texts (dev) ------
        inside, outside = load_bbc_sentences("dev"), load_out_of_scope("dev")
        n = args.limit or None
        texts = [*inside.texts[:n], *outside.texts[:n]]
        labels = [*inside.labels[:n], *outside.labels[:n]]
        with_other = build([*TOPICS, "other"], list(DEFAULT_TEMPLATES))
        other_fit = with_other.calibrate(embed(texts), labels)
        said_other = np.array([p["label"] == "other" for p in with_other.predict(embed(texts))])
        is_other = np.array([label == "other" for label in labels])
        other_dev = round(50 * float(said_other[is_other].mean() + (~said_other[~is_other]).mean()), 2)
        # -- test, once ---------------------------------------------------------------------------
        test = {
            "naive": score(steps["naive"], "test"),
            "templates (label names only)": score(steps["templates"], "test"),
            "chosen: templates + descriptions + self_training": score(chosen, "test"),
        }
    seconds = time.perf_counter() - start
    with open("/proc/loadavg", encoding="ascii") as f:
        loadavg_after = f.read().split()[:3]
    result = {
        "data": {s: len(ex.texts) for s, ex in splits.items()},
        "labels": TOPICS,
        "descriptions": DESCRIPTIONS,
        "engine": "onnx fp32 (load(backend='onnx')), all-MiniLM-L6-v2 as packaged",
        "template_alone_train_accuracy": alone,
        "chosen_templates": chosen_templates,
        "default_templates_in_code": list(DEFAULT_TEMPLATES),
        "default_templates_match": chosen_templates == list(DEFAULT_TEMPLATES),
        "self_training_grid_dev_accuracy": grid,
        "self_training_chosen": {"rounds": best_rounds, "keep": best_keep, "unlabelled": "BBC train texts"},
        "ladder_accuracy": ladder,
        "temperature": {
            "default": 1.0,
            "logit_scale": 20.0,
            "fitted_on_dev": calibrated["temperature"],
            "test_ece_default": round(ece_default, 4),
            "test_ece_fitted": round(ece_fitted, 4),
        },
        "other_cosine": {
            "fitted_on_dev": other_fit.get("other_cosine"),
            "default_in_code": DEFAULT_OTHER_COSINE,
            "dev_texts": {
                "in_scope_bbc_sentences": len(inside.texts[:n]),
                "out_of_scope": len(outside.texts[:n]),
            },
            "dev_balanced_accuracy_other_vs_in_scope": other_dev,
        },
        "test_accuracy": test,
        "target": {
            "label_names_only_test_accuracy": 75.0,
            "met": test["templates (label names only)"] >= 75.0,
        },
        "seconds": round(seconds, 1),
        "other_cpu_load": load_share.fraction,
        "loadavg": {"before": loadavg_before, "after": loadavg_after},
    }
    path = store_result("zero_shot", result)
    for name, row in ladder.items():
        print(f"{name:45s} train {row['train']:6.2f}  dev {row['dev']:6.2f}")
    print(f"test: {test}")
    print(
        f"templates chosen {chosen_templates} (same as the code's default: {result['default_templates_match']})"
    )
    print(f"self-training {best_rounds} rounds keep {best_keep}; temperature {calibrated}; other {other_fit}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
