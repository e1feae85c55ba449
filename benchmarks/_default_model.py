"""Build the bundled default model from its recipes' runs (``make default-model``).

Each seed trains ``examples/configs/default.yaml`` (the topic head; its frozen sentiment head is
replaced) and ``examples/configs/default-sentiment.yaml`` (the sentiment head on its task branch).
``assemble`` puts one seed's topic head and its sentiment branch and head on one model;
``ship`` adds the shipped NER head (not retrained) and writes the first seed's model into the
package, with the backbone referenced, not copied.

    python -m benchmarks._default_model assemble --topic build/default-topic-s0 \\
        --sentiment build/default-sentiment-s0 -o build/default-model-s0
    python -m benchmarks._default_model ship build/default-model-s0
"""

from __future__ import annotations

import argparse
from pathlib import Path

from st_multitask import MultiTaskModel

PACKAGE_MODEL = Path(__file__).resolve().parents[1] / "st_multitask" / "default_model"


def assemble(topic: Path, sentiment: Path, output: Path) -> Path:
    """The topic head of the ``topic`` run and the sentiment head, with its branch, of the ``sentiment`` run."""
    model = MultiTaskModel.load(topic, "cpu")
    source = MultiTaskModel.load(sentiment, "cpu")
    model.remove_head("sentiment")
    branch = source.branch_of.get("sentiment")
    if branch is not None:
        model.add_branch(branch, branch=source.branches[branch])
    model.add_head("sentiment", source.heads["sentiment"], branch=branch)
    metrics = {**model._manifest.get("metrics", {}), **source._manifest.get("metrics", {})}
    runs = {
        "topic": model._manifest.get("training") or {},
        "sentiment": source._manifest.get("training") or {},
    }
    training = {  # one record, as the model card reads it: both runs' settings, steps, time and data
        "config": {task: run.get("config") for task, run in runs.items()},
        "steps": sum(run.get("steps") or 0 for run in runs.values()),
        "seconds": round(sum(run.get("seconds") or 0 for run in runs.values()), 1),
        "data": {task: run["data"][task] for task, run in runs.items() if task in (run.get("data") or {})},
    }
    model.record(metrics=metrics, training=training)
    return model.save(
        output, overwrite=True, backbone="reference" if model.has_packaged_backbone() else "copy"
    )


def ship(first: Path) -> Path:
    """``first`` with the shipped NER head, written over the packaged default model."""
    old = MultiTaskModel.default("cpu")
    new = MultiTaskModel.load(first, "cpu")
    new.add_head("ner", old.heads["ner"])
    new.record(metrics={**new._manifest["metrics"], "ner": old._manifest["metrics"]["ner"]})
    return new.save(PACKAGE_MODEL, overwrite=True, backbone="reference")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    join = commands.add_parser("assemble", help="one seed's topic and sentiment runs as one model")
    join.add_argument("--topic", type=Path, required=True)
    join.add_argument("--sentiment", type=Path, required=True)
    join.add_argument("-o", "--output", type=Path, required=True)
    package = commands.add_parser("ship", help="write the first seed's model into the package")
    package.add_argument("first", type=Path)
    args = parser.parse_args()
    if args.command == "assemble":
        print(f"wrote {assemble(args.topic, args.sentiment, args.output)}")
    else:
        print(f"wrote {ship(args.first)}")


if __name__ == "__main__":
    main()
