"""Fast inference: every backend and precision against plain ``SentenceTransformer.encode``, in one run.

On the unique sentences of the STS-B test split (both sides of every pair), each engine embeds the
same texts; best of ``--rounds`` rounds, engines in a rotating order each round. Reported per engine:
sentences/s, the speed ratio against ``SentenceTransformer.encode`` (batch 64, as the issue's
anchors), the largest absolute difference of the vectors from sentence-transformers', and STS-B
test Spearman x 100 from that engine's vectors. Tokenisation, pooling and normalisation are
included everywhere. Then:

- ``predict`` of the bundled default model (topic, sentiment, NER) on the first ``--predict-texts``
  sentences: torch ``MultiTaskModel.predict`` against the exported model (one graph, heads
  included) in fp32 and int8, and each engine's ``predict`` against its own ``embed`` of the same
  texts at the same batch size (what the three heads cost over the backbone);
- cold ``stmt similarity examples/a.txt examples/c.txt`` (two three-line files) in a fresh process,
  ``--backend torch`` against the default (auto), median of ``--cold-runs`` alternating runs.

Graphs are exported into the cache before any timing. Output:
``benchmarks/results/<machine>/backend_speed.json`` (with the command, commit, date and CPU flags)
and a Markdown table on stdout.

    HF_HUB_OFFLINE=1 .venv/bin/python -m benchmarks.backend_speed [--rounds 3] [--predict-texts 1000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np

from benchmarks._common import OtherLoad, load_sts_b, store_result

ROOT = Path(__file__).resolve().parents[1]
ENGINES = [
    ("onnx", "fp32"),
    ("openvino", "fp32"),
    ("openvino", "bf16"),
    ("onnx", "int8"),
    ("openvino", "int8"),
]


def spearman(vectors: dict[str, np.ndarray], sts: Any) -> float:
    from scipy.stats import spearmanr

    a = np.stack([vectors[t] for t in sts["sentence1"]])
    b = np.stack([vectors[t] for t in sts["sentence2"]])
    return round(100 * float(spearmanr((a * b).sum(axis=1), sts["score"]).statistic), 2)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32, help="batch size of the fast engines")
    parser.add_argument("--predict-texts", type=int, default=1000)
    parser.add_argument("--cold-runs", type=int, default=5)
    args = parser.parse_args()

    from sentence_transformers import SentenceTransformer

    from st_multitask import embed
    from st_multitask.backbone import default_model_path
    from st_multitask.runtime import bf16_support

    sts = load_sts_b("test")
    texts = list(dict.fromkeys([*sts["sentence1"], *sts["sentence2"]]))
    print(f"{len(texts)} unique STS-B test sentences", flush=True)
    st = SentenceTransformer(str(default_model_path()), device="cpu", local_files_only=True)
    supported, reason = bf16_support()
    engines = [e for e in ENGINES if e[1] != "bf16" or supported]
    runs: dict[str, Any] = {"torch": lambda: st.encode(texts, batch_size=64, normalize_embeddings=True)}
    for backend, precision in engines:
        embed(texts[:4], backend=backend, precision=precision)  # export once (cached), warm up
        runs[f"{backend} {precision}"] = lambda b=backend, p=precision: embed(
            texts, backend=b, precision=p, batch_size=args.batch_size
        )
    times: dict[str, list[float]] = {name: [] for name in runs}
    vectors: dict[str, np.ndarray] = {}
    names = list(runs)
    loads = []
    for r in range(args.rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        with OtherLoad() as load:
            for name in order:
                start = time.perf_counter()
                vectors[name] = runs[name]()
                times[name].append(time.perf_counter() - start)
        loads.append(load.fraction)
        print(f"round {r + 1}: " + ", ".join(f"{n} {times[n][-1]:.2f}s" for n in names), flush=True)
    base = min(times["torch"])
    rows = []
    for name in names:
        best = min(times[name])
        rows.append(
            {
                "engine": name,
                "seconds_best": round(best, 3),
                "seconds_all": [round(t, 3) for t in times[name]],
                "sentences_per_s": round(len(texts) / best, 1),
                "ratio_vs_encode": round(base / best, 2),
                "max_abs_diff": float(np.abs(vectors[name] - vectors["torch"]).max()),
                "sts_b_spearman": spearman(dict(zip(texts, vectors[name])), sts),
            }
        )

    # predict with the default model's three heads
    from st_multitask import MultiTaskModel, load

    predict_texts = texts[: args.predict_texts]
    torch_model = MultiTaskModel.default()
    predictors: dict[str, Any] = {"torch": torch_model}
    for backend, precision in [
        ("onnx", "fp32"),
        ("openvino", "fp32"),
        ("onnx", "int8"),
        ("openvino", "int8"),
    ]:
        predictors[f"{backend} {precision}"] = load(backend=backend, precision=precision)
        predictors[f"{backend} {precision}"].predict(predict_texts[:4])
    predict_times: dict[str, list[float]] = {name: [] for name in predictors}
    embed_times: dict[str, list[float]] = {name: [] for name in predictors if name != "torch"}
    outputs: dict[str, list] = {}
    for _ in range(args.rounds):
        for name, model in predictors.items():
            if name != "torch":  # the same engine, precision, texts and batch size, embeddings only
                backend, precision = name.split()
                start = time.perf_counter()
                embed(predict_texts, backend=backend, precision=precision, batch_size=32)
                embed_times[name].append(time.perf_counter() - start)
            start = time.perf_counter()
            outputs[name] = model.predict(predict_texts, batch_size=32)
            predict_times[name].append(time.perf_counter() - start)
    predict_rows = []
    for name in predictors:
        agree = np.mean(
            [
                o[t]["label"] == e[t]["label"]
                for o, e in zip(outputs[name], outputs["torch"])
                for t in ("topic", "sentiment")
            ]
        )
        predict_rows.append(
            {
                "engine": name,
                "seconds_best": round(min(predict_times[name]), 3),
                "texts_per_s": round(len(predict_texts) / min(predict_times[name]), 1),
                "ratio_vs_torch_predict": round(min(predict_times["torch"]) / min(predict_times[name]), 2),
                "speed_vs_own_embed": (
                    round(min(embed_times[name]) / min(predict_times[name]), 2)
                    if name in embed_times
                    else None
                ),
                "sentence_label_agreement": round(float(agree), 4),
            }
        )

    # cold start: a fresh process each time
    three = ROOT / "benchmarks" / "out" / "three_lines.txt"
    three.parent.mkdir(parents=True, exist_ok=True)
    three.write_text(
        "Stocks fell sharply on Monday.\nA dog is running.\nThe weather is cold.\n", encoding="utf-8"
    )
    stmt = str(Path(sys.executable).with_name("stmt"))
    command = [stmt, "similarity", str(ROOT / "examples" / "a.txt"), str(three)]
    cold: dict[str, list[float]] = {"torch": [], "auto": []}
    subprocess.run([*command], check=True, capture_output=True)  # the cache is warm
    for _ in range(args.cold_runs):
        for name, extra in (("torch", ["--backend", "torch"]), ("auto", [])):
            start = time.perf_counter()
            subprocess.run([*command, *extra], check=True, capture_output=True)
            cold[name].append(time.perf_counter() - start)
    cold_result = {
        name: {"median_s": round(statistics.median(v), 3), "all_s": [round(x, 3) for x in v]}
        for name, v in cold.items()
    }
    cold_result["ratio"] = round(cold_result["torch"]["median_s"] / cold_result["auto"]["median_s"], 2)

    result = {
        "texts": len(texts),
        "rounds": args.rounds,
        "batch_size_fast": args.batch_size,
        "other_cpu_load": loads,
        "bf16": "supported" if supported else reason,
        "embed": rows,
        "predict": {"texts": len(predict_texts), "rows": predict_rows},
        "cold_similarity": {"command": " ".join(command[1:]), **cold_result},
    }
    path = store_result("backend_speed", result)
    print("\n| engine | sentences/s | vs encode | max abs diff | STS-B |\n|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['engine']} | {row['sentences_per_s']:,.0f} | {row['ratio_vs_encode']:.2f}x | "
            f"{row['max_abs_diff']:.1e} | {row['sts_b_spearman']:.2f} |"
        )
    print(
        "\n| predict engine | texts/s | vs torch predict | vs own embed | label agreement |\n|---|---|---|---|---|"
    )
    for row in predict_rows:
        own = "" if row["speed_vs_own_embed"] is None else f"{row['speed_vs_own_embed']:.2f}x"
        print(
            f"| {row['engine']} | {row['texts_per_s']:,.0f} | {row['ratio_vs_torch_predict']:.2f}x | {own} | "
            f"{100 * row['sentence_label_agreement']:.1f}% |"
        )
    print(
        f"\ncold stmt similarity: torch {cold_result['torch']['median_s']:.2f}s, auto "
        f"{cold_result['auto']['median_s']:.2f}s: {cold_result['ratio']:.1f}x"
    )
    if not supported:
        print(f"bf16: not measured ({reason})")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
