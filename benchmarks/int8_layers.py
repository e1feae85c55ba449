"""Which parts of the backbone stay fp32 in the ONNX Runtime int8 graph: chosen on dev data.

ONNX Runtime's int8 graph (dynamic quantisation of the MatMuls) keeps some of the backbone's
MatMuls in fp32; the heads always stay fp32. Each variant below is exported from the bundled
default model (backbone and heads in one graph) and measured against torch, on dev splits only:

- agreement of the labels with torch: sentiment (VADER tweets, NYT, movies dev), topic (BBC dev
  articles and the out-of-scope dev split), NER (CoNLL-2003 dev, per word);
- STS-B dev Spearman x 100 of the graph's sentence embeddings;
- ``embed`` speed on the STS-B dev sentences (best of ``--rounds``, variants in rotating order),
  as a ratio to the full-int8 variant (every MatMul int8: the hand-built reference of issue 21).

The rule, fixed before the runs: among the variants whose dev agreement is at least 98.5% on every
task and whose STS-B dev Spearman is within 0.3 of torch's, take the fastest; if none passes, the
one with the highest lowest agreement. Output: ``benchmarks/results/<machine>/int8_layers.json``.

    HF_HUB_OFFLINE=1 .venv/bin/python -m benchmarks.int8_layers [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from benchmarks._common import load_sts_b, store_result

FFN_OUT = r"/layer\.\d+/output/dense/"  # each layer's FFN down-projection (the outlier-prone one)
VARIANTS = {
    "all int8": None,
    "layer 0 fp32": r"/layers?\.(0)/",
    "layers 0-1 fp32 (before)": r"/layers?\.(0|1)/",
    "layers 0-2 fp32": r"/layers?\.(0|1|2)/",
    "FFN out fp32": FFN_OUT,
    "layer 0 + FFN out fp32": r"/layers?\.(0)/|" + FFN_OUT,
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import numpy as np
    from scipy.stats import spearmanr

    import st_multitask.runtime.export as export
    from st_multitask import MultiTaskModel, load
    from st_multitask.corpora import load_bbc, load_conll2003, load_out_of_scope, load_vader
    from st_multitask.data import concatenate

    dev = {
        "sentiment": concatenate([load_vader(d, "dev") for d in ("tweets", "nyt", "movies")]).texts,
        "topic": concatenate([load_bbc("dev"), load_out_of_scope("dev")]).texts,
        "ner": load_conll2003("dev").words,
    }
    sts = load_sts_b("dev")
    sentences = list(dict.fromkeys([*sts["sentence1"], *sts["sentence2"]]))
    torch_model = MultiTaskModel.default()
    reference = {task: torch_model.predict_labels(items, task, batch_size=64) for task, items in dev.items()}

    def spearman(vectors: np.ndarray) -> float:
        index = {t: i for i, t in enumerate(sentences)}
        a = vectors[[index[t] for t in sts["sentence1"]]]
        b = vectors[[index[t] for t in sts["sentence2"]]]
        return round(100 * float(spearmanr((a * b).sum(1), sts["score"]).statistic), 2)

    torch_spearman = spearman(torch_model.encode(sentences, batch_size=64))
    folder = Path(tempfile.mkdtemp(prefix="int8-layers-"))
    models, rows = {}, {}
    never = re.compile(r"(?!x)x")  # matches nothing: every backbone MatMul int8
    for name, pattern in VARIANTS.items():
        export._FP32_LAYER["onnx"] = never if pattern is None else re.compile(pattern)
        out = export.export_model(None, folder / re.sub(r"\W+", "-", name), "onnx", "int8")
        models[name] = load(out, backend="onnx", precision="int8")
        row: dict = {"fp32_pattern": pattern}
        for task, items in dev.items():
            got = models[name].predict_labels(items, task, batch_size=64)
            if task == "ner":
                pairs = [(a, b) for x, y in zip(got, reference[task]) for a, b in zip(x, y)]
                row[f"{task}_agreement"] = round(sum(a == b for a, b in pairs) / len(pairs), 4)
            else:
                row[f"{task}_agreement"] = round(
                    sum(a == b for a, b in zip(got, reference[task])) / len(got), 4
                )
        row["sts_b_dev_spearman"] = spearman(models[name].encode(sentences, batch_size=32))
        rows[name] = row
        print(name, row, flush=True)
    times: dict[str, list[float]] = {name: [] for name in models}
    names = list(models)
    for r in range(args.rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            start = time.perf_counter()
            models[name].encode(sentences, batch_size=32)
            times[name].append(time.perf_counter() - start)
    for name in names:
        rows[name]["embed_seconds_best"] = round(min(times[name]), 3)
        rows[name]["speed_vs_all_int8"] = round(min(times["all int8"]) / min(times[name]), 3)
    passing = [
        name
        for name, row in rows.items()
        if min(row[f"{t}_agreement"] for t in dev) >= 0.985
        and row["sts_b_dev_spearman"] >= torch_spearman - 0.3
    ]
    chosen = (
        max(passing, key=lambda n: rows[n]["speed_vs_all_int8"])
        if passing
        else max(rows, key=lambda n: min(rows[n][f"{t}_agreement"] for t in dev))
    )
    result = {
        "torch_sts_b_dev_spearman": torch_spearman,
        "dev_sizes": {task: len(items) for task, items in dev.items()},
        "sts_b_dev_sentences": len(sentences),
        "rounds": args.rounds,
        "variants": rows,
        "passing": passing,
        "chosen": chosen,
    }
    path = store_result("int8_layers", result)
    print(
        "\n| variant | sentiment | topic | NER words | STS-B dev | embed vs all int8 |\n|---|---|---|---|---|---|"
    )
    for name, row in rows.items():
        print(
            f"| {name} | {100 * row['sentiment_agreement']:.2f}% | {100 * row['topic_agreement']:.2f}% | "
            f"{100 * row['ner_agreement']:.2f}% | {row['sts_b_dev_spearman']:.2f} | {row['speed_vs_all_int8']:.2f}x |"
        )
    print(f"torch STS-B dev {torch_spearman}; passing: {passing}; chosen: {chosen}\nwrote {path}")


if __name__ == "__main__":
    main()
