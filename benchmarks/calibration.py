"""Calibration of the bundled default model's sentence heads: temperature fitted on the dev splits,
expected calibration error (15 bins) on the test splits before and after.

The splits are those of the default recipe (``examples/configs/default.yaml``): topic on the BBC
articles, their first sentences and the out-of-scope texts; sentiment on VADER's tweets, NYT and
movie snippets, three classes. ``calibrate`` also refits the topic head's out-of-scope threshold.

    HF_HUB_OFFLINE=1 .venv/bin/python -m benchmarks.calibration [--write]

``--write`` stores the fitted temperatures in ``st_multitask/default_model`` (only the heads'
config.json and the manifest change; training now fits them itself, see TrainingConfig.calibrate).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from benchmarks._common import store_result

ROOT = Path(__file__).resolve().parents[1]
TASKS = ("topic", "sentiment")


def splits(split: str) -> dict:
    """Each task's examples of ``split`` (dev as the recipe selects on, test as quality.py scores)."""
    from st_multitask import corpora
    from st_multitask.data import concatenate

    topic = [corpora.load_bbc(split), corpora.load_out_of_scope(split)]
    if split == "dev":
        topic.insert(1, corpora.load_bbc_sentences(split))
    return {
        "topic": concatenate(topic),
        "sentiment": concatenate([corpora.load_vader(d, split) for d in ("tweets", "nyt", "movies")]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--write", action="store_true", help="save the temperatures into the bundled model")
    args = parser.parse_args()

    from st_multitask import MultiTaskModel
    from st_multitask.evaluation import evaluate_task

    model = MultiTaskModel.default()
    for task in TASKS:
        model.heads[task].temperature = 1.0
    dev, test = splits("dev"), splits("test")
    before = {task: evaluate_task(model, task, test[task]) for task in TASKS}
    fitted = model.calibrate({task: dev[task] for task in TASKS})
    after = {task: evaluate_task(model, task, test[task]) for task in TASKS}
    rows = {
        task: {
            "temperature": fitted[task]["temperature"],
            "dev_ece_before": fitted[task]["ece_before"],
            "dev_ece_after": fitted[task]["ece_after"],
            "test_ece_before": before[task]["ece"],
            "test_ece_after": after[task]["ece"],
            "test_accuracy_before": before[task]["accuracy"],
            "test_accuracy_after": after[task]["accuracy"],
        }
        for task in TASKS
    }
    for task, row in rows.items():
        print(task, row)
    path = store_result("calibration", {"tasks": rows})
    if args.write:
        model.save(ROOT / "st_multitask" / "default_model", overwrite=True, backbone="reference")
        print("wrote st_multitask/default_model")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
