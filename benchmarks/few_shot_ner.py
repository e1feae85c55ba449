"""Few-shot NER: a token head on a task branch against the same head on the frozen backbone,
from 10, 50 and 200 annotated CoNLL-2003 sentences (issue 32).

    python -m benchmarks.few_shot_ner [--sizes 10,50,200] [--seeds 0,1] [--limit 1000]

Each (size, seed) draws ``size`` sentences that hold at least one entity from CoNLL-2003's train
split (``numpy.random.default_rng((seed, size))``); both systems train on that draw:

- ``frozen``: a linear :class:`~st_multitask.heads.TokenHead` on the frozen all-MiniLM-L6-v2
  (cached head inputs);
- ``branch``: the same head on a K=2 task branch (a trainable copy of the top two layers; the
  trunk's states cached), so the embeddings stay the backbone's to the bit.

**Settings, fixed before any run and never chosen on a test split** (no tuning at all): the same
budget for both, 200 optimizer steps of 8 sentences (``epochs = ceil(200 x 8 / size)``), head
learning rate 5e-3 (the few-shot sentence heads' order of magnitude), the branch's 5e-5 (issue 30's
branch runs used 2e-5 over thousands of steps; a few hundred steps get a little more), warmup 10%,
seed as drawn. Scored as entity F1 (seqeval-style chunks) on the test split's first ``--limit``
sentences (all 3,453 with ``--limit 0``), and training seconds.

Timings come from 2 cores that other engineers' jobs load: each run records the other processes'
CPU share and the result the load average.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from typing import Any

import numpy as np

from benchmarks._common import OtherLoad, store_result

SIZES = (10, 50, 200)
STEPS, BATCH = 200, 8
HEAD_LR, BRANCH_LR = 5e-3, 5e-5


def draw(data: Any, size: int, seed: int) -> Any:
    from st_multitask.data import TokenExamples

    rng = np.random.default_rng((seed, size))
    rows = [i for i, tags in enumerate(data.tags) if any(t != "O" for t in tags)]
    chosen = sorted(rows[i] for i in rng.choice(len(rows), size, replace=False))
    return TokenExamples([data.words[i] for i in chosen], [data.tags[i] for i in chosen], f"{size} sentences")


def run(system: str, train: Any, test: Any, labels: list[str], seed: int, steps: int) -> dict[str, Any]:
    from st_multitask import MultiTaskModel, fit
    from st_multitask.backbone import cached_backbone
    from st_multitask.evaluation import evaluate_task
    from st_multitask.heads import TokenHead

    model = MultiTaskModel(cached_backbone(None))
    model.add_head("ner", TokenHead(model.dim, labels))
    epochs = math.ceil(steps * BATCH / len(train))
    settings: dict[str, Any] = {
        "epochs": epochs,
        "batch_size": BATCH,
        "head_learning_rate": HEAD_LR,
        "learning_rate": BRANCH_LR,
        "freeze": ["backbone"],
        "seed": seed,
        "calibrate": False,
    }
    if system == "branch":
        settings["branch"] = {"layers": 2, "share": "task"}
    with OtherLoad() as load:
        start = time.perf_counter()
        result = fit(model, {"ner": train}, **settings)
        seconds = time.perf_counter() - start
    metrics = evaluate_task(model, "ner", test)
    return {
        "f1": metrics["f1"],
        "precision": metrics["precision"],
        "recall": metrics["recall"],
        "epochs": epochs,
        "steps": result.steps,
        "train_seconds": round(seconds, 2),
        "other_cpu_load": load.fraction,
    }


def _loadavg() -> list[str]:
    with open("/proc/loadavg", encoding="ascii") as f:
        return f.read().split()[:3]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--limit", type=int, default=1000, help="test sentences scored (0: all)")
    parser.add_argument("--systems", default="frozen,branch")
    parser.add_argument("--name", default="few_shot_ner")
    parser.add_argument("--steps", type=int, default=STEPS, help="the optimizer-step budget of both systems")
    args = parser.parse_args(argv)
    from st_multitask.corpora import load_conll2003
    from st_multitask.data import TokenExamples

    full = load_conll2003("train")
    test = load_conll2003("test")
    if args.limit:
        test = TokenExamples(test.words[: args.limit], test.tags[: args.limit], test.source)
    labels = full.label_set()
    runs: list[dict[str, Any]] = []
    result: dict[str, Any] = {
        "settings": {
            "steps": STEPS,
            "batch_size": BATCH,
            "head_learning_rate": HEAD_LR,
            "branch_learning_rate": BRANCH_LR,
            "branch_layers": 2,
            "test_sentences": len(test),
        },
        "loadavg": {"before": _loadavg()},
        "note": "2 shared cores, loaded by other engineers' jobs: seconds are ratios on loaded cores.",
    }
    for size in [int(s) for s in args.sizes.split(",") if s]:
        for seed in [int(s) for s in args.seeds.split(",") if s]:
            train = draw(full, size, seed)
            for system in [s for s in args.systems.split(",") if s]:
                row = {
                    "size": size,
                    "seed": seed,
                    "system": system,
                    **run(system, train, test, labels, seed, args.steps),
                }
                runs.append(row)
                print(json.dumps(row), flush=True)
        summary: dict[str, Any] = {}
        for row in runs:
            summary.setdefault(str(row["size"]), {}).setdefault(row["system"], []).append(row)
        for systems in summary.values():
            for system, rows in systems.items():
                f1 = [100 * r["f1"] for r in rows]
                systems[system] = {
                    "f1_mean": round(statistics.mean(f1), 2),
                    "f1_std": round(statistics.stdev(f1), 2) if len(f1) > 1 else 0.0,
                    "train_seconds_mean": round(statistics.mean(r["train_seconds"] for r in rows), 1),
                    "seeds": [r["seed"] for r in rows],
                }
        result.update(runs=runs, summary=summary)
        result["loadavg"]["after"] = _loadavg()
        path = store_result(args.name, result)
    print(json.dumps(result["summary"], indent=1))
    print(f"stored {path}")


if __name__ == "__main__":
    main()
