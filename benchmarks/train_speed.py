"""Training speed: the frozen-backbone embedding cache, and full fine-tuning throughput.

1. Frozen backbone, an MLP sentiment head, 10,000 Rotten Tomatoes snippets: seconds of training
   per epoch after the first, with the cache (embeddings computed once) and without it (a backbone
   pass every epoch). Target: the cache is >= 20x faster.
2. Full fine-tuning (backbone + head), samples per second on a subset.

    python -m benchmarks.train_speed [--n 10000] [--epochs 3] [--finetune-n 1024]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from benchmarks._common import store_result
from st_multitask import MultiTaskModel, TaskData, Trainer, TrainingConfig
from st_multitask.corpora import load_rotten_tomatoes
from st_multitask.data import SentenceExamples
from st_multitask.heads import MLPHead


def run(n: int, epochs: int, cache: str, freeze: bool, batch_size: int) -> list[dict]:
    torch.manual_seed(0)
    data = load_rotten_tomatoes("train")
    subset = SentenceExamples(data.texts[:n], data.labels[:n], "rt")
    model = MultiTaskModel(device="cpu")
    model.add_head("sentiment", MLPHead(model.dim, ["negative", "positive"], hidden=[256]))
    # a tiny dev split keeps the per-epoch evaluation out of the measurement
    dev = SentenceExamples(data.texts[n : n + 64], data.labels[n : n + 64], "rt-dev")
    config = TrainingConfig(
        epochs=epochs,
        batch_size=batch_size,
        freeze=["backbone"] if freeze else [],
        cache_embeddings=cache,
        head_learning_rate=1e-3,
        learning_rate=2e-5,
        seed=0,
    )
    start = time.perf_counter()
    result = Trainer(model, config, progress=False).fit([TaskData("sentiment", subset, dev=dev)])
    total = time.perf_counter() - start
    return [
        {
            "epoch": h["epoch"],
            "train_seconds": h["train_seconds"],
            "accuracy": h["metrics"]["sentiment"]["accuracy"],
            "total_seconds": total,
        }
        for h in result.history
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--finetune-n", type=int, default=1024)
    args = parser.parse_args()

    cached = run(args.n, args.epochs, "memory", True, args.batch_size)
    print("cache   ", cached, flush=True)
    uncached = run(args.n, args.epochs, "off", True, args.batch_size)
    print("no cache", uncached, flush=True)
    later_cached = statistics.mean(e["train_seconds"] for e in cached[1:])
    later_uncached = statistics.mean(e["train_seconds"] for e in uncached[1:])
    finetune = run(args.finetune_n, 1, "off", False, 32)
    print("finetune", finetune, flush=True)
    result = {
        "benchmark": "train_speed",
        "sentences": args.n,
        "epochs": args.epochs,
        "cache_epochs": cached,
        "no_cache_epochs": uncached,
        "seconds_per_later_epoch_cache": round(later_cached, 3),
        "seconds_per_later_epoch_no_cache": round(later_uncached, 3),
        "speedup": round(later_uncached / later_cached, 1),
        "finetune_sentences": args.finetune_n,
        "finetune_samples_per_s": round(args.finetune_n / finetune[0]["train_seconds"], 1),
    }
    print(store_result("train_speed", result))
    print(
        f"frozen backbone, {args.n} sentences: {later_uncached:.2f} s/epoch without the cache, "
        f"{later_cached:.3f} s/epoch with it: {result['speedup']}x"
    )
    print(f"full fine-tuning: {result['finetune_samples_per_s']} samples/s")


if __name__ == "__main__":
    main()
