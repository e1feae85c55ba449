"""What task branches cost: fast-path speed of a model whose heads sit on a branch, and training time.

1. Inference: the bundled default model's three heads (topic, sentiment, NER) put on one task
   branch of the top K layers (and, as a second model, one branch per task), saved and run through
   ``st_multitask.load`` on one fast backend. On the same STS-B sentences and batch size, in
   alternating rounds: ``embed``, ``predict_proba`` (the three heads, without decoding) and ``predict_and_embed``, each as
   texts/s, against the same heads on the frozen backbone (the shipped layout) and against ``embed``
   of that model. Targets (issue 30): predict >= 0.85x embed, predict_and_embed >= 0.7x embed.
2. Training: one epoch of a sentiment head on Rotten Tomatoes snippets, after the caches are built:
   the frozen backbone with cached features, and a K-layer branch with the trunk's states cached,
   in random batches and with ``group_by_length`` (target: the branch epoch <= 2x the frozen
   epoch), plus the one-off caching pass of each. ``--skip-inference`` runs this part alone.

The branch weights are copies of the backbone's and the heads are the shipped ones: speed does not
depend on the values. Nothing here is a quality figure.

    python -m benchmarks.branch_speed [--n 2000] [--rounds 3] [--layers 2] [--backend onnx]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._common import store_result, sts_sentences


def _models(folder: Path, layers: int) -> dict[str, Path]:
    """The default model's heads: on the backbone, on one shared branch, on one branch each."""
    from st_multitask import MultiTaskModel

    out = {}
    for layout in ("frozen", "shared branch", "per-task branches"):
        default = MultiTaskModel.default(device="cpu")
        model = MultiTaskModel(default.backbone)
        for task, head in default.heads.items():
            branch = None
            if layout == "shared branch":
                branch = "shared"
            elif layout == "per-task branches":
                branch = task
            if branch is not None and branch not in model.branches:
                model.add_branch(branch, layers)
            model.add_head(task, head, branch=branch)
        out[layout] = model.save(folder / layout.replace(" ", "-"), backbone="reference")
    return out


def inference(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    from st_multitask import load

    texts = sts_sentences(args.n)
    pipes = {name: load(path, backend=args.backend) for name, path in _models(folder, args.layers).items()}
    calls = {
        "embed": lambda p: p.embed(texts, batch_size=args.batch_size),
        "predict": lambda p: p.predict_proba(texts, batch_size=args.batch_size),
        "predict_and_embed": lambda p: p.predict_and_embed(texts, batch_size=args.batch_size),
    }
    for pipe in pipes.values():  # warm: sessions and graph variants opened, caches filled
        for call in calls.values():
            call(pipe)
    seconds: dict[str, dict[str, list[float]]] = {n: {c: [] for c in calls} for n in pipes}
    for _ in range(args.rounds):
        for name, pipe in pipes.items():
            for call_name, call in calls.items():
                start = time.perf_counter()
                call(pipe)
                seconds[name][call_name].append(time.perf_counter() - start)
    rows: dict[str, Any] = {}
    embed = len(texts) / min(seconds["frozen"]["embed"])
    for name, per_call in seconds.items():
        rates = {c: round(len(texts) / min(s), 1) for c, s in per_call.items()}
        rows[name] = {
            "texts_per_s": rates,
            "vs_embed": {c: round(r / embed, 3) for c, r in rates.items()},
        }
        print(name, rows[name], flush=True)
    return {
        "texts": len(texts),
        "batch_size": args.batch_size,
        "embed_texts_per_s": round(embed, 1),
        "rows": rows,
    }


def training(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from st_multitask import MultiTaskModel, TaskData, Trainer, TrainingConfig
    from st_multitask.corpora import load_rotten_tomatoes
    from st_multitask.data import SentenceExamples
    from st_multitask.heads import MLPHead

    data = load_rotten_tomatoes("train")
    subset = SentenceExamples(data.texts[: args.train_n], data.labels[: args.train_n], "rt")
    out: dict[str, Any] = {"examples": len(subset)}
    runs = (
        ("frozen, cached features", 0, False),
        (f"branch K={args.layers}, cached trunk", args.layers, False),
        (f"branch K={args.layers}, cached trunk, group_by_length", args.layers, True),
    )
    for name, layers, grouped in runs:
        torch.manual_seed(0)
        model = MultiTaskModel(device="cpu")
        if layers:
            model.add_branch("sentiment", layers)
        model.add_head(
            "sentiment", MLPHead(model.dim, ["negative", "positive"]), branch="sentiment" if layers else None
        )
        config = TrainingConfig(
            epochs=3,
            batch_size=32,
            freeze=["backbone"],
            cache_embeddings="memory",
            seed=0,
            group_by_length=grouped,
        )
        trainer = Trainer(model, config, progress=False)
        result = trainer.fit([TaskData("sentiment", subset)])
        epochs = [h["train_seconds"] for h in result.history]
        out[name] = {
            "first_epoch_s": round(epochs[0], 2),  # builds the cache
            "later_epoch_s": round(statistics.median(epochs[1:]), 2),
            "total_s": round(result.seconds, 1),
        }
        print(name, out[name], flush=True)
    frozen, branch = out["frozen, cached features"], out[f"branch K={args.layers}, cached trunk"]
    out["branch_over_frozen_epoch"] = round(branch["later_epoch_s"] / max(frozen["later_epoch_s"], 1e-9), 1)
    grouped = out[f"branch K={args.layers}, cached trunk, group_by_length"]
    out["grouped_branch_over_frozen_epoch"] = round(
        grouped["later_epoch_s"] / max(frozen["later_epoch_s"], 1e-9), 1
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=2000, help="STS-B sentences per call")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--layers", type=int, default=2, help="K: the layers each branch copies")
    parser.add_argument("--backend", default="onnx", choices=["onnx", "openvino", "torch"])
    parser.add_argument(
        "--train-n", type=int, default=2000, help="Rotten Tomatoes snippets per training epoch"
    )
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument(
        "--skip-inference", action="store_true", help="training only (stored as branch_speed_training)"
    )
    args = parser.parse_args()
    load_before = os.getloadavg()
    result: dict[str, Any] = {"backend": args.backend, "layers": args.layers, "rounds": args.rounds}
    if not args.skip_inference:
        with tempfile.TemporaryDirectory() as tmp:
            result["inference"] = inference(args, Path(tmp))
    if not args.skip_training:
        result["training"] = training(args)
    result["load_average"] = {"before": load_before, "after": os.getloadavg()}
    name = "branch_speed_training" if args.skip_inference else "branch_speed"
    print(f"wrote {store_result(name, result)}")


if __name__ == "__main__":
    main()
