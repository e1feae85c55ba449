"""Metrics per task: accuracy, macro-F1, per-class report and confusion matrix for sentence tasks;
entity-level precision, recall and F1 (seqeval, strict IOB2) for token tasks.

    >>> sentence_metrics(["a", "b", "a"], ["a", "b", "b"], labels=["a", "b"])["accuracy"]
    0.6667
    >>> token_metrics([["B-PER", "I-PER", "O"]], [["B-PER", "I-PER", "O"]])["f1"]
    1.0
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .errors import InputError

if TYPE_CHECKING:
    from .data import SentenceExamples, TokenExamples
    from .model import MultiTaskModel
    from .pipeline import Pipeline

__all__ = ["evaluate_task", "main_metric", "sentence_metrics", "token_metrics"]


def main_metric(head: Any) -> str:
    """The metric that ranks epochs and models of a head's task (its decoder's: macro-F1 for a
    sentence head, entity F1 for a token head)."""
    from .decoding import Decoder

    decoder = head if isinstance(head, Decoder) else head.decoder()
    return str(decoder.main_metric)


def sentence_metrics(
    gold: Sequence[Any],
    predicted: Sequence[Any],
    labels: Sequence[str],
    probabilities: Any = None,
    other_label: str | None = None,
) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class precision/recall/F1/support and the confusion matrix; with
    ``probabilities`` (n, labels) of single-label predictions, also the expected calibration error
    (``ece``, 15 bins).

    With ``other_label`` (a head's out-of-scope class): ``coverage``, the share of texts that got
    another label, and ``covered_accuracy``, the accuracy on those texts.

    >>> m = sentence_metrics(["sport", "tech", "other"], ["sport", "other", "other"], ["other", "sport", "tech"],
    ...                      other_label="other")
    >>> m["coverage"], m["covered_accuracy"]
    (0.3333, 1.0)

    Multi-label rows (lists of labels) are scored as sets: accuracy is the exact-match ratio and
    F1 is macro over labels of the binary indicator matrix.
    """
    from sklearn.metrics import accuracy_score, classification_report, confusion_matrix, f1_score
    from sklearn.preprocessing import MultiLabelBinarizer

    if len(gold) != len(predicted):
        raise InputError(f"{len(gold)} gold labels but {len(predicted)} predictions.")
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
        **({"ece": _ece(gold, probabilities, labels)} if probabilities is not None else {}),
        **(_coverage(gold, predicted, other_label) if other_label is not None else {}),
    }


def _coverage(gold: Sequence[Any], predicted: Sequence[Any], other_label: str) -> dict[str, Any]:
    covered = [(g, p) for g, p in zip(gold, predicted) if p != other_label and p is not None]
    return {
        "coverage": round(len(covered) / max(len(gold), 1), 4),
        "covered_accuracy": round(sum(g == p for g, p in covered) / len(covered), 4) if covered else None,
    }


def _ece(gold: Sequence[Any], probabilities: Any, labels: Sequence[str]) -> float:
    import numpy as np

    from .calibration import expected_calibration_error

    index = {label: i for i, label in enumerate(labels)}
    return round(expected_calibration_error(np.asarray(probabilities), np.array([index[g] for g in gold])), 4)


def token_metrics(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict[str, Any]:
    """Entity-level precision, recall, F1 (strict IOB2, as in the CoNLL evaluation) and per type."""
    from seqeval.metrics import classification_report, f1_score, precision_score, recall_score
    from seqeval.scheme import IOB2

    gold, predicted = [list(g) for g in gold], [list(p) for p in predicted]
    for i, (g, p) in enumerate(zip(gold, predicted)):
        if len(g) != len(p):
            raise InputError(f"Sentence {i}: {len(g)} gold tags but {len(p)} predicted.")
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


def evaluate_task(
    model: MultiTaskModel | Pipeline,
    task: str,
    data: SentenceExamples | TokenExamples,
    batch_size: int = 64,
    batch_inputs: Callable[[list[int]], tuple[dict, Any]] | None = None,
) -> dict[str, Any]:
    """Metrics of the head ``task`` of ``model`` on labelled ``data``.

    Token tasks are scored on the words of each sentence; words past the model window count as
    ``O`` (they were not read). ``model`` is a pipeline on any engine, or the torch model;
    ``batch_inputs`` (indices -> head inputs, read mask) lets training evaluate the torch model
    from its embedding cache.
    """
    from .data import SentenceExamples
    from .decoding import Decoder
    from .errors import InputError

    if task not in model.heads:
        raise InputError(f"Unknown task {task!r}. Valid: {', '.join(model.heads) or 'none (no heads)'}.")
    head = model.heads[task]
    decoder = head if isinstance(head, Decoder) else head.decoder()  # a pipeline's, or a torch head's
    is_sentence = isinstance(data, SentenceExamples)
    if is_sentence != (head.level == "sentence"):
        kind = (
            "labelled sentences (CSV/TSV/JSONL)" if head.level == "sentence" else "tagged words (CoNLL/JSONL)"
        )
        raise InputError(f"Task {task!r} has a {head.level}-level head: its data must be {kind}.")
    from .data import check_labels_known

    check_labels_known(data, head.labels, "the model's labels")
    items = data.texts if isinstance(data, SentenceExamples) else data.words
    multi_label = bool(getattr(head, "multi_label", False))
    if batch_inputs is None:  # any engine: the shared prediction path
        if not isinstance(data, SentenceExamples):
            return token_metrics(data.tags, model.predict_labels(items, task, batch_size))
        probabilities = [r[task] for r in model.predict_proba(items, tasks=[task], batch_size=batch_size)]
        predicted = [decoder.label_of(p, [], []) for p in probabilities]
        return sentence_metrics(
            data.labels, predicted, head.labels, None if multi_label else probabilities, _other_label(decoder)
        )
    import torch

    from .model import MultiTaskModel

    if not isinstance(model, MultiTaskModel):  # the cache's inputs feed the torch heads
        raise TypeError(f"batch_inputs evaluates a MultiTaskModel, not a {type(model).__name__}.")
    torch_head = model.heads[task]
    modes = {module: module.training for module in model.modules()}
    model.eval()
    predicted = []
    probabilities = []
    try:
        with torch.no_grad():
            for start in range(0, len(items), batch_size):
                indices = list(range(start, min(start + batch_size, len(items))))
                inputs, read = batch_inputs(indices)
                proba = torch_head.probabilities(torch_head(inputs[task]).float()).cpu()
                if is_sentence:
                    predicted.extend(decoder.label_of(row, [], []) for row in proba.numpy())
                    probabilities.extend(proba.numpy())
                    continue
                seen = read.tolist()
                for row, index in enumerate(indices):
                    spans = [(0, 0)] * len(items[index])  # the decoder counts the words
                    predicted.append(decoder.label_of(proba[row].numpy(), spans, seen[row]))
    finally:
        for module, mode in modes.items():
            module.training = mode
    if isinstance(data, SentenceExamples):
        return sentence_metrics(
            data.labels, predicted, head.labels, None if multi_label else probabilities, _other_label(decoder)
        )
    return token_metrics(data.tags, predicted)


def _other_label(decoder: Any) -> str | None:
    """A head's out-of-scope label, from its decoder's config."""
    label = decoder.config.get("other_label")
    return None if label is None else str(label)
