"""Quality report: the bundled default model against baselines on the test splits, in one run.

- topic (BBC News) and sentiment (Rotten Tomatoes): TF-IDF (1-2 grams) + logistic regression;
  frozen all-MiniLM-L6-v2 embeddings + logistic regression; the default model's head. Accuracy
  and macro-F1 on the fixed test splits (stratified 80/10/10, seed 0; baselines train on train).
- NER (CoNLL-2003 test): the default model's head, entity F1 (seqeval, strict IOB2).
- similarity (STS-B test): Spearman x 100 of the default model's embeddings and of plain
  SentenceTransformer.encode.

Writes benchmarks/RESULTS.md and benchmarks/out/quality.json. Fine-tuned systems (a fine-tuned
backbone for sentiment and NER, and the Hugging Face token-classification baseline) take long on a
CPU, so `benchmarks/finetune.py` trains them separately into benchmarks/out/finetune.json; their
rows are added here when that file exists.

    python benchmarks/quality.py [--model DIR]      # default: the bundled default model
    python benchmarks/quality.py --render-only      # rewrite RESULTS.md from out/*.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, sts_test_spearman

from st_multitask import MultiTaskModel, embed
from st_multitask.corpora import load_bbc, load_conll2003, load_rotten_tomatoes
from st_multitask.evaluation import evaluate_task, sentence_metrics

HERE = Path(__file__).resolve().parent


def tfidf_lr(train, test) -> dict:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)
    x_train = vectorizer.fit_transform(train.texts)
    classifier = LogisticRegression(max_iter=2000, C=10.0).fit(x_train, train.labels)
    x_test = vectorizer.transform(test.texts)
    predicted = classifier.predict(x_test).tolist()
    return sentence_metrics(
        test.labels, predicted, list(classifier.classes_), classifier.predict_proba(x_test)
    )


def embeddings_lr(train, test, backbone) -> dict:
    from sklearn.linear_model import LogisticRegression

    classifier = LogisticRegression(max_iter=3000, C=10.0).fit(
        embed(train.texts, model=backbone), train.labels
    )
    x_test = embed(test.texts, model=backbone)
    predicted = classifier.predict(x_test).tolist()
    return sentence_metrics(
        test.labels, predicted, list(classifier.classes_), classifier.predict_proba(x_test)
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=None, help="model directory [default: the bundled default model]")
    parser.add_argument("--render-only", action="store_true", help="rewrite RESULTS.md from out/*.json")
    args = parser.parse_args()
    if args.render_only:
        (HERE / "RESULTS.md").write_text(render(json.loads((HERE / "out" / "quality.json").read_text())))
        print(f"wrote {HERE / 'RESULTS.md'}")
        return
    start = time.perf_counter()
    model = MultiTaskModel.default("cpu") if args.model is None else MultiTaskModel.load(args.model, "cpu")
    backbone = model.backbone
    rows: dict[str, dict] = {}
    for task, loader in (("topic", load_bbc), ("sentiment", load_rotten_tomatoes)):
        train, test = loader("train"), loader("test")
        rows[task] = {
            "data": f"{len(train)} train / {len(test)} test",
            "TF-IDF + logistic regression": tfidf_lr(train, test),
            "frozen embeddings + logistic regression": embeddings_lr(train, test, backbone),
        }
        if task in model.heads:
            rows[task]["default model head"] = evaluate_task(model, task, test)
        print(task, {k: v["accuracy"] for k, v in rows[task].items() if isinstance(v, dict)}, flush=True)
    ner_test = load_conll2003("test")
    ner = {"data": f"{len(load_conll2003('train'))} train / {len(ner_test)} test sentences"}
    if "ner" in model.heads:
        ner["default model head"] = evaluate_task(model, "ner", ner_test)
        print("ner", ner["default model head"]["f1"], flush=True)
    rows["ner"] = ner
    from st_multitask.backbone import load_backbone

    plain = load_backbone(None, "cpu")
    sts = {
        "plain SentenceTransformer.encode": sts_test_spearman(plain),
        "default model": sts_test_spearman(backbone),
    }
    print("sts", sts, flush=True)
    result = {
        "machine": machine_info(),
        "seconds": round(time.perf_counter() - start),
        "tasks": rows,
        "sts_b": sts,
        "command": "python benchmarks/quality.py" + (f" --model {args.model}" if args.model else ""),
    }
    (HERE / "out").mkdir(exist_ok=True)
    (HERE / "out" / "quality.json").write_text(json.dumps(result, indent=2) + "\n")
    confusion = {
        t: rows[t]["default model head"] for t in ("topic", "sentiment") if "default model head" in rows[t]
    }
    if confusion:
        from st_multitask.cli._plots import plot_training

        plot_training(HERE, [], confusion)  # benchmarks/plots/confusion_<task>.png
    (HERE / "RESULTS.md").write_text(render(result))
    print(f"wrote {HERE / 'RESULTS.md'}")


def render(result: dict) -> str:
    m = result["machine"]
    lines = [
        "# Quality results",
        "",
        "Generated by `benchmarks/quality.py`; do not edit by hand.",
        "",
        f"- command: `{result['command']}`",
        f"- date: {m.get('date_utc')}; run time {result['seconds']} s",
        f"- machine: {m.get('cpu')}, {m.get('cores')} cores, {m.get('ram_gib')} GiB, no GPU; "
        f"torch {m.get('torch')}, sentence-transformers {m.get('sentence_transformers')}",
        "- splits: BBC and Rotten Tomatoes stratified 80/10/10 with seed 0 (`st_multitask.corpora`); "
        "CoNLL-2003 official test; STS-B test. Baselines train on the train split.",
        "",
        "| task | system | accuracy | macro-F1 | ECE (15 bins) | entity F1 |",
        "|---|---|---|---|---|---|",
    ]
    for task, systems in result["tasks"].items():
        for system, metrics in systems.items():
            if not isinstance(metrics, dict):
                continue
            acc = metrics.get("accuracy", "")
            f1 = metrics.get("macro_f1", "")
            entity = metrics.get("f1", "")
            pct = lambda v: f"{100 * v:.2f}" if isinstance(v, float) else ""  # noqa: E731
            ece = f"{metrics['ece']:.3f}" if isinstance(metrics.get("ece"), float) else ""
            lines.append(
                f"| {task} ({systems['data']}) | {system} | {pct(acc)} | {pct(f1)} | {ece} | {pct(entity)} |"
            )
    lines += ["", "| STS-B test | Spearman × 100 |", "|---|---|"]
    lines += [f"| {k} | {v:.2f} |" for k, v in result["sts_b"].items()]
    lines += [
        "",
        "Confusion matrices of the default model's heads on the test splits (rows: gold, columns: predicted):",
        "",
        "![topic](plots/confusion_topic.png) ![sentiment](plots/confusion_sentiment.png)",
    ]
    lines += render_finetuned(
        HERE / "out" / "finetune.json", result["sts_b"].get("plain SentenceTransformer.encode")
    )
    return "\n".join(lines) + "\n"


def render_finetuned(path: Path, plain_sts: float | None) -> list[str]:
    """Rows for the fine-tuned systems trained by benchmarks/finetune.py, when it has run."""
    if not path.exists():
        return [
            "",
            "Fine-tuned systems: not run (`python benchmarks/finetune.py` trains them, then rerun this).",
        ]
    data = json.loads(path.read_text())
    m = data["machine"]
    lines = [
        "",
        "## Fine-tuned backbones",
        "",
        f"Trained by `benchmarks/finetune.py` on {m.get('cpu')}, {m.get('cores')} cores, no GPU (each row's command"
        " and date below); same test splits as above. STS-B drift: the fine-tuned model's test Spearman minus"
        " the untouched backbone's.",
        "",
        "| task | system | train / test | epochs | train time | accuracy | macro-F1 | entity P / R / F1 | STS-B (drift) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for system in data["systems"].values():
        test = system["test"]
        pct = lambda k, test=test: f"{100 * test[k]:.2f}" if k in test else ""  # noqa: E731
        entity = f"{pct('precision')} / {pct('recall')} / {pct('f1')}" if "f1" in test else ""
        sts = system.get("sts_b_spearman")
        drift = f"{sts:.2f} ({sts - plain_sts:+.2f})" if sts is not None and plain_sts is not None else ""
        lines.append(
            f"| {system['task']} | {system['system']} | {system['train_size']} / {system['test_size']} |"
            f" {system['epochs']} | {system['train_seconds'] / 60:.0f} min | {pct('accuracy')} | {pct('macro_f1')} |"
            f" {entity} | {drift} |"
        )
    lines += ["", "Commands:", ""]
    lines += [f"- `{s['command']}` ({s['date_utc']})" for s in data["systems"].values()]
    return lines


if __name__ == "__main__":
    main()
