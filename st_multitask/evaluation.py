"""Metrics per task: accuracy, macro-F1, per-class report and confusion matrix for sentence tasks;
entity-level precision, recall and F1 (seqeval, strict IOB2) for token tasks.

    >>> sentence_metrics(["a", "b", "a"], ["a", "b", "b"], labels=["a", "b"])["accuracy"]
    0.6667
    >>> token_metrics([["B-PER", "I-PER", "O"]], [["B-PER", "I-PER", "O"]])["f1"]
    1.0
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["sentence_metrics", "token_metrics"]


def sentence_metrics(gold: Sequence[Any], predicted: Sequence[Any], labels: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class precision/recall/F1/support and the confusion matrix.

    Multi-label rows (lists of labels) are scored as sets: accuracy is the exact-match ratio and
    F1 is macro over labels of the binary indicator matrix.
    """
    from sklearn.metrics import accuracy_score, classification_report, confusion_matrix, f1_score
    from sklearn.preprocessing import MultiLabelBinarizer

    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold labels but {len(predicted)} predictions.")
    labels = list(labels)
    if gold and isinstance(gold[0], list):
        binarizer = MultiLabelBinarizer(classes=labels)
        y_true, y_pred = binarizer.fit_transform(gold), binarizer.transform(predicted)
        report = classification_report(y_true, y_pred, target_names=labels, output_dict=True, zero_division=0)
        return {
            "accuracy": round(float(accuracy_score(y_true, y_pred)), 4),
            "macro_f1": round(float(f1_score(y_true, y_pred, average="macro", zero_division=0)), 4),
            "per_class": {k: v for k, v in report.items() if k in labels},
            "n": len(gold),
        }
    report = classification_report(gold, predicted, labels=labels, output_dict=True, zero_division=0)
    return {
        "accuracy": round(float(accuracy_score(gold, predicted)), 4),
        "macro_f1": round(
            float(f1_score(gold, predicted, labels=labels, average="macro", zero_division=0)), 4
        ),
        "per_class": {
            k: {m: round(float(x), 4) for m, x in v.items()} for k, v in report.items() if k in labels
        },
        "confusion_matrix": confusion_matrix(gold, predicted, labels=labels).tolist(),
        "labels": labels,
        "n": len(gold),
    }


def token_metrics(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict[str, Any]:
    """Entity-level precision, recall, F1 (strict IOB2, as in the CoNLL evaluation) and per type."""
    from seqeval.metrics import classification_report, f1_score, precision_score, recall_score
    from seqeval.scheme import IOB2

    gold, predicted = [list(g) for g in gold], [list(p) for p in predicted]
    for i, (g, p) in enumerate(zip(gold, predicted)):
        if len(g) != len(p):
            raise ValueError(f"Sentence {i}: {len(g)} gold tags but {len(p)} predicted.")
    kwargs = {"mode": "strict", "scheme": IOB2, "zero_division": 0}
    report = classification_report(gold, predicted, output_dict=True, **kwargs)
    return {
        "precision": round(float(precision_score(gold, predicted, **kwargs)), 4),
        "recall": round(float(recall_score(gold, predicted, **kwargs)), 4),
        "f1": round(float(f1_score(gold, predicted, **kwargs)), 4),
        "per_type": {
            k: {m: round(float(x), 4) for m, x in v.items()}
            for k, v in report.items()
            if not k.endswith(" avg")
        },
        "n": len(gold),
    }
