"""Quality report: the bundled default model against baselines on the test splits, in one run.

- topic (BBC News) and sentiment (Rotten Tomatoes): TF-IDF (1-2 grams) + logistic regression;
  frozen all-MiniLM-L6-v2 embeddings (whole texts: windows pooled) + logistic regression; the
  hybrid logistic regression on both side by side, and again with the hybrid head's
  ``unknown_norm`` TF-IDF rows; the default model's head. Accuracy, macro-F1
  and ECE on the fixed test splits (stratified 80/10/10, seed 0; baselines train on train).
- sentiment, second domain: the same systems (trained on Rotten Tomatoes) on VADER's Amazon review
  and tweet snippets (``st_multitask.corpora.load_vader_snippets``; ``make data`` fetches them).
- NER (CoNLL-2003 test): a CRF over word features (sklearn-crfsuite) and the default model's
  head, entity F1 (seqeval, strict IOB2).
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
from st_multitask.corpora import load_bbc, load_conll2003, load_rotten_tomatoes, load_vader_snippets
from st_multitask.evaluation import evaluate_task, sentence_metrics, token_metrics
from st_multitask.text_features import SparseFeatures

HERE = Path(__file__).resolve().parent


SECOND_DOMAIN = ("amazon", "tweets")  # VADER ground-truth snippets, |score| >= 1 (see corpora)


def _metrics(classifier, x_test, gold) -> dict:
    predicted = classifier.predict(x_test).tolist()
    return sentence_metrics(gold, predicted, list(classifier.classes_), classifier.predict_proba(x_test))


def sentence_baselines(train, tests: dict, backbone) -> dict[str, dict[str, dict]]:
    """TF-IDF + LR, frozen embeddings + LR and the hybrid LR (TF-IDF beside the embedding), each
    trained on ``train`` and scored on every split of ``tests``: {system: {split: metrics}}."""
    from scipy.sparse import csr_matrix, hstack
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)
    sparse = {"train": vectorizer.fit_transform(train.texts)}
    dense = {"train": embed(train.texts, model=backbone, long="chunk")}
    for name, data in tests.items():
        sparse[name] = vectorizer.transform(data.texts)
        dense[name] = embed(data.texts, model=backbone, long="chunk")
    hybrid = {k: hstack([sparse[k], csr_matrix(dense[k])]).tocsr() for k in sparse}
    # the same with the hybrid head's unknown_norm: unknown n-grams count in each row's L2 norm
    counted = SparseFeatures.fit(train.texts, {"unknown_norm": True})
    texts = {"train": train.texts, **{name: data.texts for name, data in tests.items()}}
    hybrid_unknown = {k: hstack([counted.matrix(v), csr_matrix(dense[k])]).tocsr() for k, v in texts.items()}
    out: dict[str, dict[str, dict]] = {}
    for system, features, c in (
        ("TF-IDF + logistic regression", sparse, 10.0),
        ("frozen embeddings + logistic regression", dense, 10.0),
        ("hybrid: TF-IDF + embeddings, logistic regression", hybrid, 4.0),
        ("hybrid, unknown n-grams in the TF-IDF norm, logistic regression", hybrid_unknown, 4.0),
    ):
        classifier = LogisticRegression(max_iter=3000, C=c).fit(features["train"], train.labels)
        out[system] = {
            name: _metrics(classifier, features[name], data.labels) for name, data in tests.items()
        }
    return out


def _word_features(words: list[str], i: int) -> dict:
    word = words[i]
    features = {
        "bias": 1.0,
        "lower": word.lower(),
        "suffix3": word[-3:],
        "suffix2": word[-2:],
        "prefix3": word[:3],
        "upper": word.isupper(),
        "title": word.istitle(),
        "digit": word.isdigit(),
        "shape": "".join(
            "X" if c.isupper() else "x" if c.islower() else "d" if c.isdigit() else c for c in word
        )[:6],
    }
    for offset in (-2, -1, 1, 2):
        j = i + offset
        if 0 <= j < len(words):
            features[f"{offset}:lower"] = words[j].lower()
            features[f"{offset}:title"] = words[j].istitle()
            features[f"{offset}:upper"] = words[j].isupper()
        else:
            features[f"{offset}:edge"] = True
    return features


def crf_ner(train, test) -> dict:
    """A linear-chain CRF (sklearn-crfsuite) over hand-made word features: the classic strong
    non-transformer NER baseline (Lafferty et al. 2001; features as in the sklearn-crfsuite tutorial)."""
    import sklearn_crfsuite

    crf = sklearn_crfsuite.CRF(
        algorithm="lbfgs", c1=0.1, c2=0.1, max_iterations=100, all_possible_transitions=True
    )
    featurize = lambda sentences: [[_word_features(s, i) for i in range(len(s))] for s in sentences]  # noqa: E731
    crf.fit(featurize(train.words), train.tags)
    return token_metrics(test.tags, crf.predict(featurize(test.words)))


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
        tests = {"test": test}
        if task == "sentiment":
            tests.update({domain: load_vader_snippets(domain) for domain in SECOND_DOMAIN})
        baselines = sentence_baselines(train, tests, backbone)
        for split, data in tests.items():
            key = task if split == "test" else f"sentiment, second domain: VADER {split}"
            size = f"{len(train)} train / {len(data)} test" if split == "test" else f"{len(data)} test"
            rows[key] = {"data": size, **{system: scores[split] for system, scores in baselines.items()}}
            if task in model.heads:
                rows[key]["default model head"] = evaluate_task(model, task, data)
            print(key, {k: v["accuracy"] for k, v in rows[key].items() if isinstance(v, dict)}, flush=True)
    ner_train, ner_test = load_conll2003("train"), load_conll2003("test")
    ner = {"data": f"{len(ner_train)} train / {len(ner_test)} test sentences"}
    ner["CRF (sklearn-crfsuite, word features)"] = crf_ner(ner_train, ner_test)
    if "ner" in model.heads:
        ner["default model head"] = evaluate_task(model, "ner", ner_test)
    print("ner", {k: v["f1"] for k, v in ner.items() if isinstance(v, dict)}, flush=True)
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
        previous = (HERE / "RESULTS.md").read_text() if (HERE / "RESULTS.md").exists() else ""
        if "## Fine-tuned backbones" in previous:  # keep the last run's table rather than drop it
            section = previous[previous.index("## Fine-tuned backbones") :].rstrip().splitlines()
            note = "(Carried over from the last run of `benchmarks/finetune.py`; rerun it to refresh.)"
            return ["", *section[:2], note, *[line for line in section[2:] if line != note]]
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
