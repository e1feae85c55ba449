"""The bundled default model on every engine: test-split scores and agreement with torch.

For each task of ``MultiTaskModel.default()`` (topic on the BBC test articles and the out-of-scope
test split, sentiment on the three-class VADER test split, NER on CoNLL-2003), on the full test split, this scores the torch model and the exported model on each
fast engine with ``st_multitask.evaluation.evaluate_task`` (accuracy for sentence tasks, strict
IOB2 entity F1 for NER), and counts how often each engine's predicted labels (sentence tasks) or
word tags (NER, per word) equal torch's. Targets from the fast-inference issue: fp32 gives the
same labels; int8 agrees on at least 98% of texts and each score is within 0.5 points of torch.

    HF_HUB_OFFLINE=1 .venv/bin/python -m benchmarks.backend_quality [--engines onnx:fp32,onnx:int8,openvino:int8]

Another model (a candidate, e.g. one with task branches) is checked on the dev splits, so that no
test split is read before it is chosen:

    python -m benchmarks.backend_quality --model runs/select/sentiment-branch1 --split dev --tag branch1
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from benchmarks._common import store_result


def test_sets(split: str = "test") -> dict:
    """The data of each task of the default model, as benchmarks/quality.py reads it (test), or
    the same sources' dev splits."""
    from st_multitask.corpora import load_bbc, load_conll2003, load_out_of_scope, load_vader
    from st_multitask.data import concatenate

    return {
        "topic": concatenate([load_bbc(split), load_out_of_scope(split)]),
        "sentiment": concatenate([load_vader(d, split) for d in ("tweets", "nyt", "movies")]),
        "ner": load_conll2003(split),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--engines", default="onnx:fp32,openvino:fp32,onnx:int8,openvino:int8")
    parser.add_argument(
        "--limit", type=int, default=None, help="only the first N items of each test set (a smoke run)"
    )
    parser.add_argument(
        "--model", default=None, help="a model directory (default: the bundled default model)"
    )
    parser.add_argument("--split", choices=("dev", "test"), default="test")
    parser.add_argument("--tag", default=None, help="stored as backend_quality-<tag>.json")
    args = parser.parse_args()

    from st_multitask import MultiTaskModel, SentenceExamples, TokenExamples, load
    from st_multitask.evaluation import sentence_metrics, token_metrics

    engines = [tuple(e.split(":")) for e in args.engines.split(",")]
    models = {"torch": MultiTaskModel.load(args.model) if args.model else MultiTaskModel.default()}
    for backend, precision in engines:
        models[f"{backend} {precision}"] = load(args.model, backend=backend, precision=precision)
    rows = []
    for task, data in test_sets(args.split).items():
        if task not in models["torch"].heads:
            continue
        if args.limit is not None:
            data = (
                TokenExamples(data.words[: args.limit], data.tags[: args.limit], data.source)
                if task == "ner"
                else SentenceExamples(data.texts[: args.limit], data.labels[: args.limit], data.source)
            )
        items = data.texts if task != "ner" else data.words
        predictions, scores, seconds = {}, {}, {}
        for name, model in models.items():  # one decoding for every engine: predict_labels
            start = time.perf_counter()
            predictions[name] = model.predict_labels(items, task, batch_size=64)
            metrics = (
                token_metrics(data.tags, predictions[name])
                if task == "ner"
                else sentence_metrics(data.labels, predictions[name], model.heads[task].labels)
            )
            seconds[name] = round(time.perf_counter() - start, 1)
            scores[name] = round(100 * (metrics["f1"] if task == "ner" else metrics["accuracy"]), 2)
        reference = predictions["torch"]
        for name in models:
            row = {"task": task, "engine": name, "score": scores[name], "seconds": seconds[name]}
            if name != "torch":
                got = predictions[name]
                if task == "ner":
                    pairs = [(a, b) for x, y in zip(got, reference) for a, b in zip(x, y)]
                    row["agreement"] = round(sum(a == b for a, b in pairs) / len(pairs), 4)
                    row["sentences_identical"] = round(
                        sum(x == y for x, y in zip(got, reference)) / len(got), 4
                    )
                else:
                    row["agreement"] = round(sum(a == b for a, b in zip(got, reference)) / len(got), 4)
                row["score_minus_torch"] = round(scores[name] - scores["torch"], 2)
            rows.append(row)
            print(row, flush=True)
    name = "backend_quality" + (f"-{args.tag}" if args.tag else "")
    path = store_result(name, {"model": args.model or "default", "split": args.split, "rows": rows})
    print(
        f"\n| task | engine | {args.split} score | vs torch | agreement with torch |\n|---|---|---|---|---|"
    )
    for row in rows:
        agreement = f"{100 * row['agreement']:.2f}%" if "agreement" in row else "-"
        delta = f"{row['score_minus_torch']:+.2f}" if "score_minus_torch" in row else "-"
        print(f"| {row['task']} | {row['engine']} | {row['score']:.2f} | {delta} | {agreement} |")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
