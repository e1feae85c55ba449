"""predict with two sentence heads and one token head vs plain SentenceTransformer.encode.

Same 5,000 STS-B sentences, same batch size, same loaded backbone, alternating runs (ABBA), so
both see the same machine state. Reports seconds, texts/s, the ratio predict/encode (target
<= 1.15), and the cost of the same three tasks run as three separate passes.

    python -m benchmarks.predict_speed [--n 5000] [--rounds 3] [--batch-size 64]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from benchmarks._common import store_result, sts_sentences
from st_multitask import MultiTaskModel
from st_multitask.backbone import load_backbone
from st_multitask.heads import MLPHead, TokenHead


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    torch.manual_seed(0)
    texts = sts_sentences(args.n)
    backbone = load_backbone(device="cpu")
    model = MultiTaskModel(backbone)
    model.add_head("topic", MLPHead(model.dim, ["business", "entertainment", "politics", "sport", "tech"]))
    model.add_head("sentiment", MLPHead(model.dim, ["negative", "positive"]))
    model.add_head(
        "ner", TokenHead(model.dim, ["O", *[f"{p}-{t}" for t in ("PER", "ORG", "LOC", "MISC") for p in "BI"]])
    )
    for head in model.heads.values():
        head.mark_trained()  # speed does not depend on the weights

    def run_encode() -> None:
        backbone.encode(texts, batch_size=args.batch_size, normalize_embeddings=True)

    def run_predict() -> None:
        model.predict(texts, batch_size=args.batch_size)

    def run_separate() -> None:
        for task in model.heads:
            model.predict(texts, tasks=[task], batch_size=args.batch_size)

    model.predict(texts[:256], batch_size=args.batch_size)  # warm up
    run_encode_small = texts[:256]
    backbone.encode(run_encode_small, batch_size=args.batch_size)

    timings: dict[str, list[float]] = {"encode": [], "predict": []}
    for r in range(args.rounds):
        order = ["predict", "encode"] if r % 2 == 0 else ["encode", "predict"]
        for name in order + order[::-1]:
            start = time.perf_counter()
            (run_predict if name == "predict" else run_encode)()
            timings[name].append(time.perf_counter() - start)
            print(f"round {r + 1} {name:8s} {timings[name][-1]:.2f} s", flush=True)
    start = time.perf_counter()
    run_separate()
    separate = time.perf_counter() - start

    encode_s = statistics.median(timings["encode"])
    predict_s = statistics.median(timings["predict"])
    result = {
        "texts": len(texts),
        "batch_size": args.batch_size,
        "rounds": args.rounds,
        "encode_s": timings["encode"],
        "predict_s": timings["predict"],
        "encode_texts_per_s": len(texts) / encode_s,
        "predict_texts_per_s": len(texts) / predict_s,
        "ratio_predict_over_encode": predict_s / encode_s,
        "three_separate_passes_s": separate,
        "ratio_separate_over_encode": separate / encode_s,
        "torch_threads": torch.get_num_threads(),
    }
    print(store_result("predict_speed", result))
    print(f"encode  (median) {encode_s:.2f} s  {result['encode_texts_per_s']:.0f} texts/s")
    print(
        f"predict (median) {predict_s:.2f} s  {result['predict_texts_per_s']:.0f} texts/s, 3 heads in one pass"
    )
    print(f"ratio predict/encode = {result['ratio_predict_over_encode']:.3f} (target <= 1.15)")
    print(
        f"three tasks as three separate passes: {separate:.2f} s = {result['ratio_separate_over_encode']:.2f}x encode"
    )


if __name__ == "__main__":
    main()
