"""Throughput of st_multitask.embed against plain SentenceTransformer.encode on the same model.

Takes the first 5,000 unique STS-B sentences (train split, sentence1 then sentence2, in order), loads
the model once, warms it up, then alternates timed runs in an ABBA pattern (ours, plain | plain, ours |
ours, plain ...), one pair a round. Reports sentences/s of each (median over rounds), the ratio
ours/plain (median of the per-round ratios, the ratio of the medians, and the ratio of the best runs,
which is the least sensitive to other load on the machine), and the max abs difference between the two
outputs (must be <= 1e-5). torch's thread count is left at its default. Each run also records the
share of CPU that other processes used meanwhile ("other_cpu_load"; ~0 means a clean timing).

    HF_HUB_OFFLINE=1 python -m benchmarks.embed_speed [--n 5000] [--rounds 3] [--batch-size 64]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np

from benchmarks._common import store_result, sts_sentences, timed

TOLERANCE = 1e-5


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=5000, help="Unique sentences to embed.")
    parser.add_argument("--rounds", type=int, default=3, help="Rounds; each times one run of each.")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=256, help="Sentences embedded once before timing.")
    parser.add_argument(
        "--max-other-load",
        type=float,
        default=0.05,
        help="A round is clean when other processes used at most this share of the CPU in both its runs.",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="JSON path [default: results/<machine>/embed_speed.json]."
    )
    args = parser.parse_args()
    if args.rounds < 1 or args.n < 1:
        parser.error("--rounds and --n must be positive")

    import torch

    import st_multitask

    texts = sts_sentences(args.n, "train")
    if len(texts) < args.n:
        print(f"note: STS-B train has only {len(texts)} unique sentences", file=sys.stderr)
    model = st_multitask.load_backbone()

    def ours() -> np.ndarray:
        return st_multitask.embed(texts, model=model, batch_size=args.batch_size)

    def plain() -> np.ndarray:
        return model.encode(texts, batch_size=args.batch_size, normalize_embeddings=True)

    warm = texts[: args.warmup]
    st_multitask.embed(warm, model=model, batch_size=args.batch_size)
    model.encode(warm, batch_size=args.batch_size, normalize_embeddings=True)

    runs = {"ours": ours, "plain": plain}
    seconds: dict[str, list[float]] = {"ours": [], "plain": []}
    other_load: dict[str, list[float | None]] = {"ours": [], "plain": []}
    outputs: dict[str, np.ndarray] = {}
    max_diff = 0.0
    for r in range(args.rounds):
        order = ["ours", "plain"] if r % 2 == 0 else ["plain", "ours"]
        for name in order:
            run = timed(runs[name])
            elapsed, outputs[name], load = run.seconds, run.value, run.other_cpu_load
            seconds[name].append(elapsed)
            other_load[name].append(load)
            print(
                f"round {r + 1} {name:5s} {elapsed:7.2f} s  {len(texts) / elapsed:7.1f} sentences/s  "
                f"other load {load if load is not None else float('nan'):.2f}",
                flush=True,
            )
        diff = float(np.max(np.abs(outputs["ours"].astype(np.float64) - np.asarray(outputs["plain"]))))
        max_diff = max(max_diff, diff)

    rate = {name: [len(texts) / s for s in secs] for name, secs in seconds.items()}
    per_round = [o / p for o, p in zip(rate["ours"], rate["plain"])]
    median_rate = {name: statistics.median(values) for name, values in rate.items()}
    clean = [
        r
        for r in range(args.rounds)
        if all(
            other_load[name][r] is not None and other_load[name][r] <= args.max_other_load for name in rate
        )
    ]
    clean_rate = {name: [rate[name][r] for r in clean] for name in rate}
    result = {
        "sentences": len(texts),
        "batch_size": args.batch_size,
        "rounds": args.rounds,
        "order": "ABBA: ours,plain | plain,ours | ...",
        "torch_threads": torch.get_num_threads(),
        "device": str(model.device),
        "seconds": seconds,
        "other_cpu_load": other_load,
        "sentences_per_s": {name: [round(v, 2) for v in values] for name, values in rate.items()},
        "median_sentences_per_s_ours": round(median_rate["ours"], 2),
        "median_sentences_per_s_plain": round(median_rate["plain"], 2),
        "ratio_ours_over_plain_median_of_rounds": round(statistics.median(per_round), 4),
        "ratio_ours_over_plain_of_medians": round(median_rate["ours"] / median_rate["plain"], 4),
        "per_round_ratio": [round(v, 4) for v in per_round],
        "best_sentences_per_s_ours": round(max(rate["ours"]), 2),
        "best_sentences_per_s_plain": round(max(rate["plain"]), 2),
        "ratio_ours_over_plain_of_bests": round(max(rate["ours"]) / max(rate["plain"]), 4),
        "clean_rounds": [r + 1 for r in clean],
        "clean_max_other_load": args.max_other_load,
        "clean_median_sentences_per_s_ours": round(statistics.median(clean_rate["ours"]), 2)
        if clean
        else None,
        "clean_median_sentences_per_s_plain": round(statistics.median(clean_rate["plain"]), 2)
        if clean
        else None,
        "clean_ratio_ours_over_plain_median_of_rounds": round(
            statistics.median([per_round[r] for r in clean]), 4
        )
        if clean
        else None,
        "max_abs_diff": max_diff,
        "max_abs_diff_tolerance": TOLERANCE,
        "outputs_match": max_diff <= TOLERANCE,
        "output_shape": list(outputs["ours"].shape),
        "output_dtype": str(outputs["ours"].dtype),
    }
    path = store_result("embed_speed", result, path=args.out)
    print(
        f"{len(texts)} sentences, batch {args.batch_size}, {args.rounds} rounds, {torch.get_num_threads()} threads"
    )
    print(f"  st_multitask.embed          {median_rate['ours']:8.1f} sentences/s (median)")
    print(f"  SentenceTransformer.encode  {median_rate['plain']:8.1f} sentences/s (median)")
    print(
        f"  ratio ours/plain: {result['ratio_ours_over_plain_median_of_rounds']:.3f} (median of rounds), "
        f"{result['ratio_ours_over_plain_of_medians']:.3f} (of medians)"
    )
    print(
        f"  best of {args.rounds}: ours {max(rate['ours']):.1f}, plain {max(rate['plain']):.1f} sentences/s, "
        f"ratio {result['ratio_ours_over_plain_of_bests']:.3f}"
    )
    if clean:
        print(
            f"  clean rounds {[r + 1 for r in clean]} (other load <= {args.max_other_load:g}): "
            f"ours {result['clean_median_sentences_per_s_ours']:.1f}, "
            f"plain {result['clean_median_sentences_per_s_plain']:.1f} sentences/s, "
            f"ratio {result['clean_ratio_ours_over_plain_median_of_rounds']:.3f}"
        )
    else:
        print(f"  no clean round (other load <= {args.max_other_load:g} in both runs); timings are disturbed")
    busy = [v for values in other_load.values() for v in values if v is not None and v > 0.05]
    if busy:
        print(f"  WARNING: other processes used up to {max(busy):.0%} of the CPU during {len(busy)} run(s)")
    verdict = "ok" if result["outputs_match"] else "TOO LARGE"
    print(f"  max abs diff ours vs plain: {max_diff:.3g} (<= {TOLERANCE:g}: {verdict})")
    print(f"wrote {path}")
    if not result["outputs_match"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
