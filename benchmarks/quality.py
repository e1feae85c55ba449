"""Quality report of the default model's recipe: test scores over seeds, against baselines, in one run.

Test splits are read here once, for the recipe chosen on dev data (``benchmarks/select_default.py``).
Each ``--models`` directory is one seed of that recipe (``make default-model SEEDS="0 1 2"``); every
score is given as mean ± standard deviation over them. The first directory is the shipped model.

- sentiment, three classes, on the recipe's test split (VADER tweets, NYT editorial and movie
  snippets; neutral = |mean rating| < 0.5): macro-F1, per-class precision and recall, the
  confusion matrix, ECE; against TF-IDF + logistic regression and frozen-embedding + logistic
  regression trained on the same training data.
- sentiment, binary, on Rotten Tomatoes' test split through the three-class head: the better of
  positive and negative (``accuracy_pos_neg``), and the share of texts it calls neutral.
- sentiment, VADER's Amazon review sentences: where the recipe trains on none of them, all 3,708 as an
  unseen domain, which no choice looked at; where it trains on their train split (task branches, issue
  30), their test split only, and no unseen-domain figure (the project has no other labelled product
  reviews).
- topic: BBC test articles (coverage: kept a topic, and accuracy on those), the first sentence of
  each BBC test article and each headline (coverage, accuracy on those), and the out-of-scope
  sets: the held-out out-of-scope test split (STS-B captions and forums, VADER tweets) and the
  Amazon review sentences, a source that is in no split (the share that gets "other").
- NER (CoNLL-2003 test, entity F1) and STS-B test Spearman, for the unchanged parts.

    python -m benchmarks.quality --models build/default-model-s0 build/default-model-s1 build/default-model-s2
    python -m benchmarks.quality --render-only       # RESULTS.md from the stored result

Writes ``benchmarks/results/<machine>/quality.json`` and renders ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
import yaml

from benchmarks._common import RESULTS_DIR, machine_tag, run_command, store_result, sts_test_spearman
from st_multitask import MultiTaskModel, embed
from st_multitask.corpora import (
    _sentences,
    load_bbc,
    load_conll2003,
    load_out_of_scope,
    load_rotten_tomatoes,
    load_vader,
)
from st_multitask.data import SentenceExamples, concatenate
from st_multitask.evaluation import evaluate_task, sentence_metrics
from st_multitask.recipe import read_split

HERE = Path(__file__).resolve().parent
SENTIMENT_DOMAINS = ("tweets", "nyt", "movies")  # the three-class test split of every report
RECIPE = HERE.parent / "examples" / "configs" / "default-sentiment.yaml"  # the sentiment head's recipe
AMAZON_TRAIN = "corpus:vader_amazon/train"


def sentiment_sets(recipe: Path = RECIPE) -> tuple[SentenceExamples, dict[str, SentenceExamples]]:
    """The recipe's sentiment training data and every set the report scores it on."""
    sources = yaml.safe_load(recipe.read_text())["tasks"]["sentiment"]["train"]
    train = concatenate([read_split(source, "sentence", {}) for source in sources])  # type: ignore[misc]
    tests = {
        "three-class test": concatenate([load_vader(d, "test") for d in SENTIMENT_DOMAINS]),
        "Rotten Tomatoes test": load_rotten_tomatoes("test"),
    }
    if AMAZON_TRAIN in sources:
        tests["Amazon test"] = load_vader("amazon", "test")
    else:
        tests["Amazon (unseen domain)"] = concatenate(
            [load_vader("amazon", s) for s in ("train", "dev", "test")]
        )
    return train, tests


def topic_sets() -> dict[str, SentenceExamples]:
    """BBC test articles, their first sentences and headlines, and the out-of-scope sets."""
    articles = load_bbc("test")
    first, heads = [], []
    for text in articles.texts:
        headline, _, body = text.partition("\n")
        heads.append(headline.strip())
        first.append((_sentences(body) or [body.strip()])[0])
    amazon = concatenate([load_vader("amazon", s) for s in ("train", "dev", "test")])
    return {
        "BBC test articles": articles,
        "BBC test first sentences": SentenceExamples(first, articles.labels, "first sentences"),
        "BBC test headlines": SentenceExamples(heads, articles.labels, "headlines"),
        "out-of-scope test": load_out_of_scope("test"),
        "Amazon reviews (unseen source)": SentenceExamples(amazon.texts, ["other"] * len(amazon), "Amazon"),
    }


def baselines(train: SentenceExamples, tests: dict[str, SentenceExamples], backbone) -> dict[str, dict]:
    """TF-IDF + LR and frozen embeddings + LR, trained on ``train``: {system: {set: metrics}}."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)
    sparse = {"train": vectorizer.fit_transform(train.texts)}
    dense = {"train": embed(train.texts, model=backbone, long="chunk")}
    for name, data in tests.items():
        sparse[name], dense[name] = (
            vectorizer.transform(data.texts),
            embed(data.texts, model=backbone, long="chunk"),
        )
    out: dict[str, dict] = {}
    for system, features in (
        ("TF-IDF + logistic regression", sparse),
        ("frozen embeddings + logistic regression", dense),
    ):
        classifier = LogisticRegression(max_iter=3000, C=10.0, class_weight="balanced").fit(
            features["train"], train.labels
        )
        out[system] = {
            name: sentence_metrics(
                data.labels,
                classifier.predict(features[name]).tolist(),
                list(classifier.classes_),
                classifier.predict_proba(features[name]),
            )
            for name, data in tests.items()
            if set(data.labels) <= set(classifier.classes_)
        }
    return out


def pos_neg(head, probabilities: list, data: SentenceExamples) -> dict:
    """A three-class head on two-class data: accuracy of the better of positive and negative, and
    the share of texts the head itself labels neutral."""
    labels = head.labels
    neg, neu, pos = (labels.index(x) for x in ("negative", "neutral", "positive"))
    predicted = ["positive" if p[pos] >= p[neg] else "negative" for p in probabilities]
    neutral = sum(int(max(range(len(p)), key=p.__getitem__) == neu) for p in probabilities)
    return {
        "accuracy_pos_neg": round(sum(a == b for a, b in zip(predicted, data.labels)) / len(data), 4),
        "labelled_neutral": round(neutral / len(data), 4),
        "n": len(data),
    }


def score_seeds(models: list, sentiment_tests: dict, topic_tests: dict) -> list[dict[str, dict]]:
    """Every figure of each seed's model. The seeds share the frozen backbone, so their heads (with
    their task branches) ride on one model and one backbone pass per batch scores all of them."""
    from st_multitask.evaluation import _other_label

    joint = models[0]
    names = {i: {"sentiment": "sentiment", "topic": "topic"} for i in range(len(models))}
    for i, model in enumerate(models[1:], start=1):
        for task in ("sentiment", "topic"):
            names[i][task] = f"{task}_seed{i}"
            branch = model.branch_of.get(task)
            if branch is not None:
                joint.add_branch(f"{branch}_seed{i}", branch=model.branches[branch])
            joint.add_head(names[i][task], model.heads[task], branch=branch and f"{branch}_seed{i}")
    runs: list[dict[str, dict]] = [{} for _ in models]
    for task, tests in (("sentiment", sentiment_tests), ("topic", topic_tests)):
        heads = [names[i][task] for i in range(len(models))]
        for name, data in tests.items():
            rows = joint.predict_proba(data.texts, tasks=heads)
            for i, head_name in enumerate(heads):
                head = joint.heads[head_name]
                probabilities = [r[head_name] for r in rows]
                if name == "Rotten Tomatoes test":
                    runs[i][f"{task}: {name}"] = pos_neg(head, probabilities, data)
                    continue
                predicted = [head.decode(torch.from_numpy(p))["label"] for p in probabilities]
                runs[i][f"{task}: {name}"] = sentence_metrics(
                    data.labels, predicted, head.labels, probabilities, _other_label(head)
                )
    for task in ("sentiment", "topic"):  # leave the first model as it was loaded
        for i in range(1, len(models)):
            branch = joint.branch_of.get(names[i][task])
            joint.remove_head(names[i][task])
            if branch is not None:
                joint.remove_branch(branch)
    return runs


FIGURES = (
    "accuracy",
    "macro_f1",
    "ece",
    "coverage",
    "covered_accuracy",
    "accuracy_pos_neg",
    "labelled_neutral",
    "f1",
)


def summarise(runs: list[dict[str, dict]]) -> dict[str, dict]:
    """{set: {figure: {"mean", "std", "values"}}} over the seeds, plus per-class recall and precision."""
    summary: dict[str, dict] = {}
    for key in runs[0]:
        figures: dict[str, dict] = {}
        names = [f for f in FIGURES if f in runs[0][key] and runs[0][key][f] is not None]
        for label in runs[0][key].get("per_class", {}):
            for m in ("precision", "recall"):
                names.append(f"{m}:{label}")
        for name in names:
            if ":" in name:
                m, label = name.split(":", 1)
                values = [r[key]["per_class"][label][m] for r in runs]
            else:
                values = [r[key][name] for r in runs]
            if any(v is None for v in values):
                continue
            figures[name] = {
                "mean": round(statistics.fmean(values), 4),
                "std": round(statistics.stdev(values), 4) if len(values) > 1 else 0.0,
                "values": values,
            }
        summary[key] = {"n": runs[0][key].get("n"), **figures}
        if "confusion_matrix" in runs[0][key]:
            summary[key]["confusion_matrix_first_seed"] = runs[0][key]["confusion_matrix"]
            summary[key]["labels"] = runs[0][key]["labels"]
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", nargs="+", help="one model directory per seed of the chosen recipe")
    parser.add_argument(
        "--render-only", action="store_true", help="rewrite RESULTS.md from the stored result"
    )
    args = parser.parse_args()
    stored = RESULTS_DIR / machine_tag() / "quality.json"
    if args.render_only:
        (HERE / "RESULTS.md").write_text(render(json.loads(stored.read_text())))
        print(f"wrote {HERE / 'RESULTS.md'}")
        return
    if not args.models:
        parser.error("--models DIR [DIR ...] is required (one directory per seed)")
    start = time.perf_counter()
    sentiment_train, sentiment_tests = sentiment_sets()
    topic_tests = topic_sets()
    models = [MultiTaskModel.load(path, "cpu") for path in args.models]
    runs = score_seeds(models, sentiment_tests, topic_tests)
    for path, run in zip(args.models, runs):
        print(path, {k: v.get("macro_f1", v.get("coverage")) for k, v in run.items()}, flush=True)
    first = models[0]
    systems = baselines(
        sentiment_train,
        {k: v for k, v in sentiment_tests.items() if k != "Rotten Tomatoes test"},
        first.backbone,
    )
    # the seeds train the sentence heads only; the NER head is the one shipped with them
    shipped = first if "ner" in first.heads else MultiTaskModel.default("cpu")
    ner = evaluate_task(shipped, "ner", load_conll2003("test"))
    result = {
        "models": args.models,
        "seeds": len(args.models),
        "seconds": round(time.perf_counter() - start),
        "default model": summarise(runs),
        "baselines": {
            "sentiment (trained on the recipe's sentiment training data)": systems,
        },
        "ner (shipped head)": ner,
        "sts_b_test_spearman (first model)": sts_test_spearman(first.backbone),
    }
    path = store_result("quality", result, run_command(["--models", *args.models]))
    print(f"wrote {path}")
    (HERE / "RESULTS.md").write_text(render(json.loads(path.read_text())))
    print(f"wrote {HERE / 'RESULTS.md'}")


def _pm(figure: dict | None, scale: float = 100.0) -> str:
    if not figure:
        return ""
    digits = 2 if scale == 100.0 else 3
    return f"{scale * figure['mean']:.{digits}f} ± {scale * figure['std']:.{digits}f}"


def render(result: dict) -> str:
    m = result["machine"]
    lines = [
        "# Quality results",
        "",
        "Rendered from `benchmarks/results/<machine>/quality.json` by `benchmarks/quality.py`; do not edit by hand.",
        "",
        f"- command: `{result['command']}` (commit {result['commit']}, {m.get('date_utc')}, {result['seconds']} s)",
        f"- machine: {m.get('cpu')}, {m.get('cores')} cores, {m.get('ram_gib')} GiB, no GPU, flags "
        f"{' '.join(m.get('cpu_flags', []))}; torch {m.get('torch')}, sentence-transformers {m.get('sentence_transformers')}",
        f"- the default model's figures are mean ± standard deviation over {result['seeds']} seeds of the recipe chosen "
        "on dev data (`examples/configs/default.yaml` for topic, `default-sentiment.yaml` for sentiment); "
        "the test splits were read for this report only.",
        "",
        "## Sentiment (negative, neutral, positive)",
        "",
        "| set | system | macro-F1 | accuracy | neutral recall | neutral precision | ECE |",
        "|---|---|---|---|---|---|---|",
    ]
    dm = result["default model"]
    for name in ("three-class test", "Amazon test", "Amazon (unseen domain)"):
        row = dm.get(f"sentiment: {name}")
        if row is None:
            continue
        lines.append(
            f"| {name} ({row['n']}) | default model head | {_pm(row.get('macro_f1'))} | {_pm(row.get('accuracy'))} | "
            f"{_pm(row.get('recall:neutral'))} | {_pm(row.get('precision:neutral'))} | {_pm(row.get('ece'), 1.0)} |"
        )
        for system, sets in result["baselines"][
            "sentiment (trained on the recipe's sentiment training data)"
        ].items():
            b = sets.get(name)
            if b:
                lines.append(
                    f"| {name} | {system} | {100 * b['macro_f1']:.2f} | {100 * b['accuracy']:.2f} | "
                    f"{100 * b['per_class']['neutral']['recall']:.2f} | {100 * b['per_class']['neutral']['precision']:.2f} | "
                    f"{b.get('ece', 0):.3f} |"
                )
    rt = dm["sentiment: Rotten Tomatoes test"]
    lines += [
        "",
        f"Rotten Tomatoes test ({rt['n']} positive or negative critic snippets) through the three-class head: "
        f"accuracy of the better of positive and negative {_pm(rt.get('accuracy_pos_neg'))}; "
        f"labelled neutral by the head {_pm(rt.get('labelled_neutral'))} %.",
        "",
        "Per class on the three-class test split (mean over seeds):",
        "",
        "| label | precision | recall |",
        "|---|---|---|",
    ]
    test = dm["sentiment: three-class test"]
    for label in test.get("labels", []):
        lines.append(
            f"| {label} | {_pm(test.get('precision:' + label))} | {_pm(test.get('recall:' + label))} |"
        )
    if "confusion_matrix_first_seed" in test:
        lines += ["", "Confusion matrix of the first seed (rows: gold, columns: predicted):", ""]
        lines += [
            "| gold \\ predicted | " + " | ".join(test["labels"]) + " |",
            "|---" * (len(test["labels"]) + 1) + "|",
        ]
        for label, row in zip(test["labels"], test["confusion_matrix_first_seed"]):
            lines.append(f"| {label} | " + " | ".join(map(str, row)) + " |")
    lines += [
        "",
        "## Topic (five BBC topics, and other)",
        "",
        '| set | kept a topic (coverage) | accuracy on those | got "other" | ECE |',
        "|---|---|---|---|---|",
    ]
    for key, row in dm.items():
        if not key.startswith("topic: "):
            continue
        name = key.removeprefix("topic: ")
        out_of_scope = name.startswith(("out-of-scope", "Amazon"))
        coverage = row.get("coverage")
        other = (
            f"{100 * (1 - coverage['mean']):.2f} ± {100 * coverage['std']:.2f}"
            if coverage and out_of_scope
            else ""
        )
        lines.append(
            f"| {name} ({row['n']}) | {'' if out_of_scope else _pm(coverage)} | "
            f"{'' if out_of_scope else _pm(row.get('covered_accuracy'))} | {other} | "
            f"{'' if out_of_scope else _pm(row.get('ece'), 1.0)} |"
        )
    lines += ["", "## Unchanged parts", ""]
    ner = result.get("ner (shipped head)")
    if ner:
        lines.append(
            f"- NER (the shipped head, not retrained), CoNLL-2003 test: entity F1 {100 * ner['f1']:.2f} (precision {100 * ner['precision']:.2f}, recall {100 * ner['recall']:.2f})"
        )
    lines.append(f"- STS-B test Spearman × 100: {result['sts_b_test_spearman (first model)']:.2f}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
