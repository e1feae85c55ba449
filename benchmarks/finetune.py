"""Fine-tuned backbones on real data, and the Hugging Face token-classification baseline.

Trains, on this machine, each system below from the packaged all-MiniLM-L6-v2 weights for the
same number of epochs, and scores it on the test split (same splits as `benchmarks/quality.py`):

- ``sentiment``: backbone + MLP head fine-tuned on Rotten Tomatoes (target >= 85% accuracy);
- ``ner``: backbone + ``token_context`` head (layer mix, word shapes, BiLSTM) fine-tuned on
  CoNLL-2003 (target >= 89 entity F1 and >= the Hugging Face run);
- ``hf_ner``: ``transformers.AutoModelForTokenClassification`` on the same weights, a plain
  training loop with the usual recipe (first word piece labelled, others -100), same epochs,
  batch size, learning rate and schedule.

Each fine-tuned st_multitask model also reports its STS-B drift (Spearman of its embeddings vs
82.03 for the untouched backbone). Results go to ``benchmarks/out/finetune.json``, which
``benchmarks/quality.py`` folds into RESULTS.md.

    python -m benchmarks.finetune [--systems sentiment,ner,hf_ner] [--epochs 2] [--limit N]

``--limit N`` trains and tests on the first N examples of each split (a smoke run).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks._common import machine_info, run_command, store_result, sts_test_spearman
from st_multitask import MultiTaskModel, TaskData, Trainer, TrainingConfig
from st_multitask.corpora import load_conll2003, load_rotten_tomatoes
from st_multitask.data import SentenceExamples, TokenExamples
from st_multitask.evaluation import evaluate_task
from st_multitask.heads import ContextTokenHead, MLPHead

OUT = Path(__file__).resolve().parent / "out"


def head_subset(data, n: int | None):
    if n is None:
        return data
    if isinstance(data, SentenceExamples):
        return SentenceExamples(data.texts[:n], data.labels[:n], data.source)
    return TokenExamples(data.words[:n], data.tags[:n], data.source)


def finetune(task: str, args) -> dict:
    """Fine-tune backbone + head with st_multitask's Trainer; test metrics and STS-B drift."""
    loader = load_rotten_tomatoes if task == "sentiment" else load_conll2003
    train, dev, test = (head_subset(loader(split), args.limit) for split in ("train", "dev", "test"))
    model = MultiTaskModel(device="cpu")
    if task == "sentiment":
        head = MLPHead(model.dim, train.label_set(), hidden=[256], dropout=0.1)
    else:
        head = ContextTokenHead(
            model.dim, train.label_set(), layers=[1, 2, 3, 4, 5, 6], lstm_hidden=128, dropout=0.2
        )
    model.add_head(task, head)
    config = TrainingConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        head_learning_rate=args.head_learning_rate,
        warmup_ratio=0.1,
        cache_embeddings="off",
        seed=0,
    )
    start = time.perf_counter()
    result = Trainer(model, config, progress=False).fit([TaskData(task, train, dev=dev)])
    seconds = time.perf_counter() - start
    metrics = evaluate_task(model, task, test)
    keep = ("accuracy", "macro_f1") if task == "sentiment" else ("precision", "recall", "f1")
    return {
        "system": f"st_multitask, fine-tuned backbone + {head.kind} head",
        "task": task,
        "train_size": len(train),
        "test_size": len(test),
        "epochs": args.epochs,
        "train_seconds": round(seconds),
        "dev_history": [h["metrics"][task] for h in result.history],
        "test": {k: metrics[k] for k in keep},
        "sts_b_spearman": sts_test_spearman(model.backbone),
    }


def hf_token_classification(args) -> dict:
    """The Hugging Face baseline: AutoModelForTokenClassification on the same MiniLM weights."""
    from seqeval.metrics import f1_score, precision_score, recall_score
    from seqeval.scheme import IOB2
    from transformers import AutoModelForTokenClassification, AutoTokenizer, get_linear_schedule_with_warmup

    from st_multitask.backbone import default_model_path

    path = str(default_model_path())
    train, test = (head_subset(load_conll2003(split), args.limit) for split in ("train", "test"))
    labels = train.label_set()
    label2id = {label: i for i, label in enumerate(labels)}
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModelForTokenClassification.from_pretrained(
        path,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id=label2id,
        local_files_only=True,
    )

    def batch(indices, data, with_labels: bool):
        enc = tokenizer(
            [data.words[i] for i in indices],
            is_split_into_words=True,
            truncation=True,
            max_length=256,
            padding=True,
            return_tensors="pt",
        )
        if with_labels:
            all_labels = []
            for row, i in enumerate(indices):
                previous, row_labels = None, []
                for word_id in enc.word_ids(row):
                    first = word_id is not None and word_id != previous
                    row_labels.append(label2id[data.tags[i][word_id]] if first else -100)
                    previous = word_id
                all_labels.append(row_labels)
            enc["labels"] = torch.tensor(all_labels)
        return enc

    optimizer = torch.optim.AdamW(model.parameters(), lr=args.learning_rate, weight_decay=0.01)
    steps_per_epoch = (len(train) + args.batch_size - 1) // args.batch_size
    total = steps_per_epoch * args.epochs
    scheduler = get_linear_schedule_with_warmup(optimizer, int(0.1 * total), total)
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    model.train()
    for _epoch in range(args.epochs):
        order = rng.permutation(len(train))
        for b in range(steps_per_epoch):
            loss = model(**batch(order[b * args.batch_size : (b + 1) * args.batch_size], train, True)).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
    seconds = time.perf_counter() - start
    model.eval()
    predicted: list[list[str]] = []
    with torch.no_grad():
        for b in range(0, len(test), 64):
            indices = list(range(b, min(b + 64, len(test))))
            enc = batch(indices, test, False)
            ids = model(**enc).logits.argmax(-1)
            for row, i in enumerate(indices):
                tags = ["O"] * len(test.words[i])  # words past the window count as O
                previous = None
                for position, word_id in enumerate(enc.word_ids(row)):
                    if word_id is not None and word_id != previous:
                        tags[word_id] = labels[int(ids[row, position])]
                    previous = word_id
                predicted.append(tags)
    gold = test.tags
    kwargs = {"mode": "strict", "scheme": IOB2}
    from st_multitask.alignment import repair_bio

    predicted = [repair_bio(p) for p in predicted]
    return {
        "system": "Hugging Face AutoModelForTokenClassification (same weights, same epochs)",
        "task": "ner",
        "train_size": len(train),
        "test_size": len(test),
        "epochs": args.epochs,
        "train_seconds": round(seconds),
        "test": {
            "precision": float(precision_score(gold, predicted, **kwargs)),
            "recall": float(recall_score(gold, predicted, **kwargs)),
            "f1": float(f1_score(gold, predicted, **kwargs)),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--systems", default="sentiment,ner,hf_ner")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--head-learning-rate", type=float, default=1e-3)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--output", type=Path, default=OUT / "finetune.json")
    args = parser.parse_args()
    previous = json.loads(args.output.read_text()) if args.output.exists() else {}
    results = dict(previous.get("systems", {}))
    for system in args.systems.split(","):
        start = time.perf_counter()
        results[system] = hf_token_classification(args) if system == "hf_ner" else finetune(system, args)
        results[system]["command"] = run_command(
            ["--systems", system, "--epochs", str(args.epochs), "--batch-size", str(args.batch_size)]
            + ["--learning-rate", str(args.learning_rate)]
            + (["--limit", str(args.limit)] if args.limit else [])
        )
        results[system]["date_utc"] = machine_info()["date_utc"]
        print(system, json.dumps(results[system]["test"]), f"{time.perf_counter() - start:.0f} s", flush=True)
        args.output.parent.mkdir(exist_ok=True)
        payload = {"machine": machine_info(), "systems": results}
        tmp = args.output.with_suffix(".tmp")
        tmp.write_text(json.dumps(payload, indent=2) + "\n")
        tmp.replace(args.output)
    print(store_result("finetune", {"systems": results}))


if __name__ == "__main__":
    main()
