"""STS Benchmark test split: Spearman x 100 of st_multitask.embed cosines against the gold scores.

Embeds sentence1 and sentence2 of the 1,379 test pairs with ``st_multitask.embed``, takes the cosine
of each pair (the vectors are unit length, so a row-wise dot product), and reports Spearman's rho x 100
against the gold 0-5 scores (expected about 82.03 for all-MiniLM-L6-v2). The same figure is computed
with plain ``SentenceTransformer.encode`` of the same loaded model for comparison.

    HF_HUB_OFFLINE=1 python -m benchmarks.sts_eval [--model PATH] [--split test] [--batch-size 64]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
from scipy.stats import spearmanr

from benchmarks._common import load_sts_b, store_result

EXPECTED = 82.03


def spearman_x100(a: np.ndarray, b: np.ndarray, gold: np.ndarray) -> float:
    """Spearman's rho x 100 between the row-wise dot products of ``a`` and ``b`` and ``gold``."""
    cosines = np.einsum("ij,ij->i", a.astype(np.float64), b.astype(np.float64))
    return float(spearmanr(cosines, gold).statistic) * 100


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=None, help="Local model directory [default: packaged MiniLM].")
    parser.add_argument("--split", default="test", choices=["train", "dev", "test"])
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    import st_multitask

    sts = load_sts_b(args.split)
    gold = sts["score"].to_numpy(dtype=np.float64)
    s1, s2 = sts["sentence1"].tolist(), sts["sentence2"].tolist()

    start = time.perf_counter()
    model = st_multitask.load_backbone(args.model)
    load_s = time.perf_counter() - start

    start = time.perf_counter()
    ours = spearman_x100(
        st_multitask.embed(s1, model=model, batch_size=args.batch_size),
        st_multitask.embed(s2, model=model, batch_size=args.batch_size),
        gold,
    )
    ours_s = time.perf_counter() - start

    start = time.perf_counter()
    plain = spearman_x100(
        model.encode(s1, batch_size=args.batch_size, normalize_embeddings=True, convert_to_numpy=True),
        model.encode(s2, batch_size=args.batch_size, normalize_embeddings=True, convert_to_numpy=True),
        gold,
    )
    plain_s = time.perf_counter() - start

    result = {
        "split": args.split,
        "pairs": len(sts),
        "model": args.model or "packaged all-MiniLM-L6-v2",
        "batch_size": args.batch_size,
        "spearman_x100_st_multitask_embed": round(ours, 4),
        "spearman_x100_sentence_transformers_encode": round(plain, 4),
        "difference": round(ours - plain, 6),
        "expected_x100": EXPECTED,
        "model_load_s": round(load_s, 2),
        "st_multitask_embed_s": round(ours_s, 2),
        "sentence_transformers_encode_s": round(plain_s, 2),
        "device": str(model.device),
    }
    path = store_result("sts_eval", result)
    print(f"STS-B {args.split}: {len(sts)} pairs, model {result['model']} on {model.device}")
    print(f"  st_multitask.embed          Spearman x100 = {ours:.2f}  ({ours_s:.1f} s)")
    print(f"  SentenceTransformer.encode  Spearman x100 = {plain:.2f}  ({plain_s:.1f} s)")
    print(f"  expected about {EXPECTED:.2f}; difference ours - plain = {ours - plain:+.4f}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
