"""Prediction, written once for every engine: choose the tasks, check the inputs, give each text
its word spans, batch by length, feed the graph and decode labels and entities with offsets.

:class:`Predictor` is shared by :class:`~st_multitask.model.MultiTaskModel` (torch) and
:class:`~st_multitask.exported_model.ExportedMultiTaskModel` (ONNX Runtime, OpenVINO). They differ
only in the forward contract: which inputs a batch needs (``_plan``), how texts are tokenized
(``_tokens``), and how the graph runs (``_run``). :class:`MultiTaskPredictor` is the protocol that
both implement and that the CLI, the server, the batch engines and evaluation use.

    >>> texts_and_spans(["Apple buys it.", ["EU", "rejects", "it"]])
    (['Apple buys it.', 'EU rejects it'], [[(0, 5), (6, 10), (11, 13), (13, 14)], [(0, 2), (3, 10), (11, 13)]])
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .alignment import repair_bio, split_words, words_to_text
from .decoding import decode_sentence, decode_words, word_tags
from .errors import InputError
from .runtime.feeds import (
    SENTENCE_EMBEDDING,
    FeedPlan,
    TextTokens,
    build_feeds,
    dummy_feeds,
    output_name,
    words_read,
)

__all__ = [
    "HeadInfo",
    "MultiTaskPredictor",
    "Predictor",
    "TaskSelection",
    "check_items",
    "check_min_score",
    "texts_and_spans",
]

logger = logging.getLogger(__name__)


class TaskSelection:
    """Mixin: ``_select(tasks)`` over ``self._heads`` (name -> head)."""

    _heads: Any

    @property
    def heads(self) -> dict[str, Any]:
        """The heads by name (a copy)."""
        return dict(self._heads.items())

    def _select(self, tasks: Sequence[str] | str | None) -> dict[str, Any]:
        if tasks is None:
            if not self._heads:
                raise InputError("This model has no heads; add one with add_head() or load a trained model.")
            return self.heads
        if isinstance(tasks, str):
            tasks = [t for t in tasks.split(",") if t]
        unknown = [t for t in tasks if t not in self._heads]
        if unknown:
            raise InputError(
                f"Unknown task {unknown[0]!r}. Valid: {', '.join(self._heads) or 'none (no heads)'}."
            )
        return {t: self._heads[t] for t in tasks}


def check_items(texts: Any) -> list:
    """Texts to predict as a list; a lone string is one text; blank or no texts are errors."""
    if isinstance(texts, str):
        return [texts]
    items = list(texts)
    if not items:
        raise InputError("No texts to predict: pass at least one string.")
    for i, item in enumerate(items):
        if isinstance(item, str) and not item.strip():
            raise InputError(f"Text {i} is blank.")
    return items


def check_min_score(min_score: float | None) -> None:
    """``min_score`` is ``None`` or a probability in [0, 1]."""
    if min_score is not None and (
        isinstance(min_score, bool) or not isinstance(min_score, (int, float)) or not 0.0 <= min_score <= 1.0
    ):
        raise InputError(f"min_score must be a probability between 0 and 1, got {min_score!r}.")


def texts_and_spans(items: Sequence[str | Sequence[str]]) -> tuple[list[str], list[list[tuple[int, int]]]]:
    """Each item as a text and its words' character spans: raw strings are split into words
    CoNLL-style, pre-split word lists are joined with single spaces."""
    texts, spans = [], []
    for i, item in enumerate(items):
        if isinstance(item, str):
            texts.append(item)
            spans.append(split_words(item))
        elif isinstance(item, Sequence) and all(isinstance(w, str) for w in item):
            text, word_spans = words_to_text(list(item))
            texts.append(text)
            spans.append(word_spans)
        else:
            raise InputError(f"Item {i} must be a string or a list of words, got {type(item).__name__}.")
    return texts, spans


@dataclass
class HeadInfo:
    """What prediction needs of a saved head, read from its ``config.json`` (the fast path runs
    the head inside the graph, so it never builds the torch module)."""

    kind: str
    level: str
    labels: list[str]
    config: dict[str, Any] = field(default_factory=dict)
    is_trained: bool = True

    @property
    def multi_label(self) -> bool:
        return bool(self.config.get("multi_label", False))

    @property
    def other(self) -> tuple[str, float] | None:
        label, threshold = self.config.get("other_label"), self.config.get("other_threshold")
        return None if label is None or threshold is None else (label, float(threshold))

    def decode(self, probabilities: Any, min_score: float | None = None) -> dict[str, Any]:
        """As :meth:`MLPHead.decode <st_multitask.heads.MLPHead.decode>`."""
        return decode_sentence(
            self.labels,
            list(probabilities),
            self.multi_label,
            float(self.config.get("threshold", 0.5)),
            min_score,
            self.other,
        )


@runtime_checkable
class MultiTaskPredictor(Protocol):
    """What every loaded multi-task model answers, on any engine."""

    @property
    def dim(self) -> int: ...

    @property
    def heads(self) -> dict[str, Any]: ...

    def encode(
        self, texts: Any, batch_size: int = 64, normalize: bool = True, **kwargs: Any
    ) -> np.ndarray: ...

    def predict(
        self, texts: Any, tasks: Any = None, batch_size: int = 32, min_score: float | None = None
    ) -> list[dict[str, Any]]: ...

    def predict_proba(
        self, texts: Any, tasks: Any = None, batch_size: int = 32
    ) -> list[dict[str, np.ndarray]]: ...

    def predict_and_embed(
        self, texts: Any, tasks: Any = None, batch_size: int = 32, min_score: float | None = None
    ) -> tuple[list[dict[str, Any]], np.ndarray]: ...

    def predict_labels(self, items: Sequence[Any], task: str, batch_size: int = 64) -> list: ...

    def info(self) -> dict[str, Any]: ...


class Predictor(TaskSelection):
    """The prediction methods, over the forward contract an engine implements."""

    dim: int

    # -- the forward contract ---------------------------------------------------------------------
    def _tokens(self) -> TextTokens:  # pragma: no cover - abstract
        raise NotImplementedError

    def _plan(self, heads: dict[str, Any]) -> FeedPlan | None:  # pragma: no cover - abstract
        """The inputs a batch for ``heads`` needs; ``None``: tokens only (the rest fed empty)."""
        raise NotImplementedError

    def _graph_inputs(self) -> list[str]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _run(
        self, feeds: dict[str, np.ndarray], heads: dict[str, Any]
    ) -> dict[str, np.ndarray]:  # pragma: no cover
        """``sentence_embedding`` and ``probabilities.<task>`` for each of ``heads``."""
        raise NotImplementedError

    # -- one orchestration --------------------------------------------------------------------------
    def _passes(self, items: list, heads: dict[str, Any], batch_size: int) -> Iterator[tuple]:
        """Per batch: indices, texts, word spans, words read (or None) and the graph's outputs."""
        texts, spans = texts_and_spans(items)
        tokens = self._tokens()
        plan = self._plan(heads)
        for rows, batch in tokens.batches(texts, batch_size):
            batch_texts, batch_spans = [texts[i] for i in rows], [spans[i] for i in rows]
            read = None
            if plan is None:
                feeds = dummy_feeds(self._graph_inputs(), batch)
            else:  # what the plan leaves out, the graph is fed empty
                feeds, piece_word = build_feeds(plan, tokens, batch_texts, batch_spans, batch)
                missing = [name for name in self._graph_inputs() if name not in feeds]
                if missing:
                    feeds = {**dummy_feeds(missing, batch, feeds["input_ids"].shape[1]), **feeds}
                read = words_read(piece_word, max(len(s) for s in batch_spans))
            yield rows, batch_texts, batch_spans, read, self._run(feeds, heads)

    def _warn_untrained(self, heads: dict[str, Any]) -> None:
        untrained = [name for name, head in heads.items() if not head.is_trained]
        if untrained:
            logger.warning(
                "Head%s %s %s not been trained: predictions are random.",
                "s" * (len(untrained) > 1),
                ", ".join(untrained),
                "have" if len(untrained) > 1 else "has",
            )

    def predict_proba(
        self,
        texts: str | Sequence[str | Sequence[str]],
        tasks: Sequence[str] | str | None = None,
        batch_size: int = 32,
    ) -> list[dict[str, np.ndarray]]:
        """Per text, ``{task: probabilities}``: (labels,) for sentence heads, (words, labels) for token heads."""
        heads = self._select(tasks)
        items = check_items(texts)
        results: list[dict[str, Any]] = [{} for _ in items]
        for batch, _, spans, _, outputs in self._passes(items, heads, batch_size):
            for name, head in heads.items():
                proba = outputs[output_name(name)]
                for row, index in enumerate(batch):
                    results[index][name] = (
                        proba[row] if head.level == "sentence" else proba[row, : len(spans[row])]
                    )
        return results

    def predict(
        self,
        texts: str | Sequence[str | Sequence[str]],
        tasks: Sequence[str] | str | None = None,
        batch_size: int = 32,
        min_score: float | None = None,
    ) -> list[dict[str, Any]]:
        """Per text, ``{task: {"label", "score", "probabilities"}}`` for sentence heads and
        ``{task: [entity, ...]}`` for token heads (entities carry ``text``, ``label``, ``start``,
        ``end``, ``score``, with ``text == original[start:end]``). One backbone pass per batch
        feeds every head. Texts may be raw strings or pre-split word lists. With ``min_score``, a
        sentence head whose top probability is below it gives no label (``None``): it abstains.
        """
        return self.predict_and_embed(texts, tasks, batch_size, min_score)[0]

    def predict_and_embed(
        self,
        texts: str | Sequence[str | Sequence[str]],
        tasks: Sequence[str] | str | None = None,
        batch_size: int = 32,
        min_score: float | None = None,
    ) -> tuple[list[dict[str, Any]], np.ndarray]:
        """:meth:`predict` and the (n, dim) sentence embeddings from the same backbone pass, as
        the backbone gives them (``embed(normalize=False)``); ``tasks=[]`` gives embeddings only.
        What a server runs for a batch that mixes embedding and prediction requests.

        >>> from st_multitask import MultiTaskModel
        >>> results, vectors = MultiTaskModel.default().predict_and_embed(["Apple is great."], ["sentiment"])
        >>> sorted(results[0]), vectors.shape
        (['sentiment'], (1, 384))
        """
        check_min_score(min_score)
        heads = self._select(tasks)
        items = check_items(texts)
        self._warn_untrained(heads)
        results: list[dict[str, Any]] = [{} for _ in items]
        vectors = np.zeros((len(items), self.dim), dtype=np.float32)
        for batch, texts_, spans, read, outputs in self._passes(items, heads, batch_size):
            vectors[batch] = outputs[SENTENCE_EMBEDDING]
            for name, head in heads.items():
                proba = outputs[output_name(name)]
                if head.level == "sentence":
                    for row, index in enumerate(batch):
                        results[index][name] = head.decode(proba[row], min_score)
                    continue
                ids, scores, seen = proba.argmax(-1).tolist(), proba.max(-1).tolist(), read.tolist()
                for row, index in enumerate(batch):
                    n = len(spans[row])
                    results[index][name] = decode_words(
                        head.labels, ids[row][:n], scores[row][:n], seen[row], spans[row], texts_[row]
                    )
        return results, vectors

    def predict_labels(self, items: Sequence[str | Sequence[str]], task: str, batch_size: int = 64) -> list:
        """Per item, the label (sentence head) or the repaired IOB2 tags of its words (token head);
        words past the model window are ``O``. What evaluation scores."""
        heads = self._select([task])
        head = heads[task]
        items = list(items)
        out: list[Any] = [None] * len(items)
        for batch, _, spans, read, outputs in self._passes(items, heads, batch_size):
            proba = outputs[output_name(task)]
            for row, index in enumerate(batch):
                if head.level == "sentence":
                    out[index] = head.decode(proba[row])["label"]
                else:
                    ids = proba[row, : len(spans[row])].argmax(-1).tolist()
                    out[index] = repair_bio(word_tags(head.labels, ids, read[row].tolist()))
        return out
