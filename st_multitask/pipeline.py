"""Pipeline: the one way to run a model, on every engine.

A pipeline is a runner (:mod:`st_multitask.runtime.runners`: torch, ONNX Runtime, OpenVINO), the
model's one tokenizer (:class:`~st_multitask.runtime.tokenizer.TextTokenizer`) and a torch-free
decoder per head (:mod:`st_multitask.decoding`). It tokenises each text once, batches by length,
feeds the graph what the asked heads read (:mod:`st_multitask.runtime.feeds`) and decodes labels and
entities with character offsets. :func:`st_multitask.load` makes one;
:meth:`MultiTaskModel.pipeline <st_multitask.model.MultiTaskModel.pipeline>` gives one over a
model being trained.

    >>> from st_multitask import load
    >>> pipe = load(backend="onnx")
    >>> pipe.predict(["The film was a joy from start to finish."], tasks=["sentiment"])[0]["sentiment"]["label"]
    'positive'
    >>> pipe.embed(["The dog ran across the grass."]).shape
    (1, 384)
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from .decoding import Decoder
from .errors import InputError
from .runtime.feeds import (
    SENTENCE_EMBEDDING,
    FeedPlan,
    build_feeds,
    chunk_text,
    dummy_feeds,
    output_name,
    words_read,
)
from .runtime.runners import Runner
from .runtime.tokenizer import Encoded, TextTokenizer
from .texts import Item, check_batch_size, check_items, check_min_score, check_texts, texts_and_spans
from .vectors import unit_rows
from .zero_shot import ZeroShotClassifier as ZeroShot

if TYPE_CHECKING:
    from pathlib import Path

    from .runtime import EngineSpec
    from .text_features import SparseFeatures

__all__ = ["LONG_MODES", "ZERO_SHOT", "Pipeline", "unit_rows"]

logger = logging.getLogger(__name__)

LONG_MODES = ("truncate", "chunk")
LongMode = Literal["truncate", "chunk"]
Prediction = dict[str, Any]  # {task: {"label", "score", "probabilities"} | [entity, ...]}
ZERO_SHOT = "zero_shot"  # the key of ad hoc labels' answers (predict(texts, labels=...))


class Pipeline:
    """A loaded model on one engine: ``embed``, ``predict``, ``predict_proba``,
    ``predict_and_embed``, ``predict_labels``, ``tokenize`` and ``info``.

    Args:
        runner: the engine's runner over the model's graph.
        tokenizer: the model's tokenizer.
        decoders: ``{task: decoder}`` for the model's heads (a mapping read at every call).
        sparse: ``{task: fitted TF-IDF features}`` for heads that read n-grams of the text.
        name: how the model is shown.
        manifest: the model directory's manifest (metrics, graphs), if any.
        model_dir: the directory it was loaded from, if any.
    """

    def __init__(
        self,
        runner: Runner,
        tokenizer: TextTokenizer,
        decoders: Mapping[str, Decoder] | None = None,
        sparse: Mapping[str, SparseFeatures | None] | None = None,
        name: str = "",
        manifest: Mapping[str, Any] | None = None,
        model_dir: Path | None = None,
    ):
        self.runner = runner
        self.tokenizer = tokenizer
        self._decoders: Mapping[str, Decoder] = decoders if decoders is not None else {}
        self._sparse: Mapping[str, SparseFeatures | None] = sparse if sparse is not None else {}
        self.name = name
        self.manifest: dict[str, Any] = dict(manifest or {})
        self.model_dir = model_dir

    def __repr__(self) -> str:
        return f"Pipeline({self.name!r}, heads={list(self._decoders)}, engine={self.spec.describe()!r})"

    # -- what it is ---------------------------------------------------------------------------
    @property
    def spec(self) -> EngineSpec:
        """The :class:`~st_multitask.runtime.EngineSpec` it runs on."""
        return self.runner.spec

    @property
    def backend(self) -> str:
        return str(self.runner.spec.backend)

    @property
    def precision(self) -> str:
        return str(self.runner.spec.precision)

    @property
    def dim(self) -> int:
        """Width of the sentence embeddings."""
        return int(self.runner.dim)

    @property
    def window(self) -> int:
        """Word pieces of a text the model reads (its window less the special tokens)."""
        return self.tokenizer.window

    @property
    def max_seq_length(self) -> int:
        return self.tokenizer.max_seq_length

    @property
    def heads(self) -> dict[str, Decoder]:
        """The heads by name: each one's decoder (``level``, ``labels``, ``is_trained``, ...)."""
        return dict(self._decoders.items())

    def get_sentence_embedding_dimension(self) -> int:
        """As sentence-transformers names it."""
        return self.dim

    def select(self, tasks: Sequence[str] | str | None = None) -> dict[str, Decoder]:
        """The heads of ``tasks`` (all of them for ``None``; a comma-separated string works);
        an unknown task is an error that lists the valid ones."""
        if tasks is None:
            if not self._decoders:
                raise InputError("This model has no heads; add one with add_head() or load a trained model.")
            return self.heads
        if isinstance(tasks, str):
            tasks = [t for t in tasks.split(",") if t]
        unknown = [t for t in tasks if t not in self._decoders]
        if unknown:
            raise InputError(
                f"Unknown task {unknown[0]!r}. Valid: {', '.join(self._decoders) or 'none (no heads)'}."
            )
        return {t: self._decoders[t] for t in tasks}

    def untrained(self, tasks: Sequence[str] | str | None = None) -> list[str]:
        """The heads among ``tasks`` that were never trained (their predictions are random)."""
        return [name for name, head in self.select(tasks).items() if not head.is_trained]

    def info(self) -> dict[str, Any]:
        """A summary: backbone, engine, heads with kinds and labels, stored metrics."""
        return {
            "backbone": {
                "name": self.manifest.get("backbone", {}).get("name") or self.name,
                "dimension": self.dim,
                "max_seq_length": self.max_seq_length,
                "backend": self.backend,
                "precision": self.precision,
            },
            "heads": {
                name: {
                    "kind": head.kind,
                    "level": head.level,
                    "labels": head.labels,
                    "trained": head.is_trained,
                    "config": {k: v for k, v in head.config.items() if k not in ("labels", "in_features")},
                }
                for name, head in self._decoders.items()
            },
            "branches": {
                n: {k: b[k] for k in ("layers", "heads")}
                for n, b in self.manifest.get("branches", {}).items()
            },
            "metrics": self.manifest.get("metrics", {}),
            "graphs": self.manifest.get("graphs", {}),
        }

    # -- tokenising once ------------------------------------------------------------------------
    def tokenize(self, texts: str | Iterable[str]) -> Encoded:
        """Tokenise texts once; pass the result to :meth:`embed` or :meth:`predict` to reuse it
        (``.over_window()`` lists the texts past the window, ``.cost()`` the tokens read)."""
        return self.tokenizer.encode(check_texts(texts, "tokenize"))

    def count_over_window(self, texts: str | Iterable[str]) -> int:
        """How many of ``texts`` are longer than the model's window (and would be truncated)."""
        return (
            len(self.tokenize(texts).over_window())
            if not isinstance(texts, Encoded)
            else len(texts.over_window())
        )

    # -- embeddings -----------------------------------------------------------------------------
    def embed(
        self,
        texts: str | Iterable[str] | Encoded,
        batch_size: int = 64,
        normalize: bool = True,
        long: LongMode = "truncate",
        show_progress: bool | None = None,
    ) -> np.ndarray:
        """(n, dim) float32 sentence embeddings, as ``SentenceTransformer.encode`` gives them.
        Texts past the window are truncated (a logged warning says how many) or, with
        ``long="chunk"``, embedded in overlapping windows whose embeddings are averaged."""
        if long not in LONG_MODES:
            raise InputError(f"Unknown long-text mode {long!r}. Valid: {', '.join(LONG_MODES)}.")
        check_batch_size(batch_size)
        encoded = texts if isinstance(texts, Encoded) else self.tokenize(texts)
        over = encoded.over_window()
        if long == "truncate" or not over:
            if over:
                logger.warning(
                    "%d of %d texts are longer than the model window (%d word pieces) and were truncated; "
                    "use long='chunk' to embed them whole.",
                    len(over),
                    len(encoded),
                    self.window,
                )
            return self._vectors(encoded, batch_size, normalize, show_progress)
        # chunk mode: short texts as they are, long ones as overlapping windows, in one pass
        pieces: list[str] = []
        owner: list[int] = []
        for i, text in enumerate(encoded.texts):
            parts = chunk_text(text, encoded.offsets[i], self.window) if i in encoded.offsets else [text]
            pieces += parts
            owner += [i] * len(parts)
        vectors = self._vectors(self.tokenizer.encode(pieces), batch_size, False, show_progress)
        out = np.zeros((len(encoded), vectors.shape[1]), dtype=np.float32)
        np.add.at(out, np.asarray(owner), vectors)
        out /= np.bincount(owner, minlength=len(encoded))[:, None].astype(np.float32)
        return unit_rows(out) if normalize else out

    def _vectors(
        self, encoded: Encoded, batch_size: int, normalize: bool, progress: bool | None
    ) -> np.ndarray:
        out = np.zeros((len(encoded), self.dim), dtype=np.float32)
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(encoded), unit="text", desc="Embedding")
        for rows, batch in self.tokenizer.batches(encoded, batch_size):
            feeds = dummy_feeds(self.runner.input_names, batch)
            out[rows] = self.runner.run(feeds, [SENTENCE_EMBEDDING])[SENTENCE_EMBEDDING]
            if bar is not None:
                bar.update(len(rows))
        if bar is not None:
            bar.close()
        return unit_rows(out) if normalize else out

    # -- prediction ------------------------------------------------------------------------------
    def _passes(
        self,
        items: Sequence[Item],
        heads: Mapping[str, Decoder],
        batch_size: int,
        encoded: Encoded | None,
        embedding: bool = False,
    ) -> Iterator[tuple[list[int], list[str], list[list[tuple[int, int]]], Any, dict[str, np.ndarray]]]:
        """Per batch: indices, texts, word spans, words read (or None) and the graph's outputs (the
        sentence embedding only when asked: a model with task branches then skips the top layers)."""
        check_batch_size(batch_size)
        texts, spans = texts_and_spans(items)
        encoded = self.tokenizer.encode(texts) if encoded is None else encoded
        plan = (
            FeedPlan.from_inputs(self.runner.input_names, dict(self._sparse)).narrowed(heads)
            if heads
            else None
        )
        names = [*([SENTENCE_EMBEDDING] if embedding else []), *[output_name(task) for task in heads]]
        inputs = self.runner.input_names
        for rows, batch in self.tokenizer.batches(encoded, batch_size):
            batch_texts, batch_spans = [texts[i] for i in rows], [spans[i] for i in rows]
            read = None
            if plan is None:
                feeds = dummy_feeds(inputs, batch)
            else:  # what the plan leaves out, the graph is fed empty
                feeds, piece_word = build_feeds(plan, self.tokenizer, batch_texts, batch_spans, batch)
                missing = [name for name in inputs if name not in feeds]
                if missing:
                    feeds = {**dummy_feeds(missing, batch, feeds["input_ids"].shape[1]), **feeds}
                read = words_read(piece_word, max(len(s) for s in batch_spans))
            yield rows, batch_texts, batch_spans, read, self.runner.run(feeds, names)

    def _items(self, texts: Item | Iterable[Item] | Encoded) -> tuple[list[Item], Encoded | None]:
        if isinstance(texts, Encoded):
            return check_items(texts.texts), texts
        return check_items(texts), None

    def predict_proba(
        self,
        texts: Item | Iterable[Item] | Encoded,
        tasks: Sequence[str] | str | None = None,
        batch_size: int = 32,
    ) -> list[dict[str, np.ndarray]]:
        """Per text, ``{task: probabilities}``: (labels,) for sentence heads, (words, labels) for token heads."""
        heads = self.select(tasks)
        items, encoded = self._items(texts)
        results: list[dict[str, np.ndarray]] = [{} for _ in items]
        for batch, _, spans, _, outputs in self._passes(items, heads, batch_size, encoded):
            for name, head in heads.items():
                proba = outputs[output_name(name)]
                for row, index in enumerate(batch):
                    results[index][name] = head.probabilities(proba[row], len(spans[row]))
        return results

    def predict(
        self,
        texts: Item | Iterable[Item] | Encoded,
        tasks: Sequence[str] | str | None = None,
        batch_size: int = 32,
        min_score: float | None = None,
        labels: str | Sequence[str] | None = None,
    ) -> list[Prediction]:
        """Per text, ``{task: {"label", "score", "probabilities"}}`` for sentence heads and
        ``{task: [entity, ...]}`` for token heads (entities carry ``text``, ``label``, ``start``,
        ``end``, ``score``, with ``text == original[start:end]``). One backbone pass per batch
        feeds every head. Texts may be raw strings or pre-split word lists. With ``min_score``, a
        sentence head whose top probability is below it gives no label (``None``): it abstains.
        With ``labels`` (``"sports,health,other"``), ``"zero_shot"``: the best of those labels
        (:meth:`zero_shot`), with no head run unless ``tasks`` names it.
        """
        return self.predict_and_embed(texts, tasks, batch_size, min_score, labels)[0]

    def zero_shot(self, labels: str | Sequence[str]) -> ZeroShot:
        """A zero-shot classifier for ``labels`` (``name`` or ``name: description``; ``other``: none
        of the others), prototypes from this model's embeddings; the last 32 label sets are kept."""
        key, cache = labels if isinstance(labels, str) else tuple(labels), self.__dict__.setdefault("_zs", {})
        if key not in cache:
            cache[key] = ZeroShot.build(labels, lambda t: self.embed(t, normalize=False))
            if len(cache) > 32:
                cache.pop(next(iter(cache)))
        return cache[key]

    def predict_and_embed(
        self,
        texts: Item | Iterable[Item] | Encoded,
        tasks: Sequence[str] | str | None = None,
        batch_size: int = 32,
        min_score: float | None = None,
        labels: str | Sequence[str] | None = None,
    ) -> tuple[list[Prediction], np.ndarray]:
        """:meth:`predict` and the (n, dim) sentence embeddings from the same backbone pass, as
        the backbone gives them (``embed(normalize=False)``); ``tasks=[]`` gives embeddings only.
        ``labels``: as in :meth:`predict`.

        >>> from st_multitask import load
        >>> results, vectors = load(backend="onnx").predict_and_embed(["Apple is great."], ["sentiment"])
        >>> sorted(results[0]), vectors.shape
        (['sentiment'], (1, 384))
        """
        check_min_score(min_score)
        zero_shot = None if labels is None else self.zero_shot(labels)
        heads = self.select([] if tasks is None and zero_shot else tasks)
        items, encoded = self._items(texts)
        untrained = [name for name, head in heads.items() if not head.is_trained]
        if untrained:
            logger.warning(
                "Head%s %s %s not been trained: predictions are random.",
                "s" * (len(untrained) > 1),
                ", ".join(untrained),
                "have" if len(untrained) > 1 else "has",
            )
        results: list[Prediction] = [{} for _ in items]
        vectors = np.zeros((len(items), self.dim), dtype=np.float32)
        for batch, texts_, spans, read, outputs in self._passes(items, heads, batch_size, encoded, True):
            vectors[batch] = outputs[SENTENCE_EMBEDDING]
            seen = read.tolist() if read is not None else [[]] * len(batch)
            for name, head in heads.items():
                proba = outputs[output_name(name)]
                for row, index in enumerate(batch):
                    results[index][name] = head.decode(
                        proba[row], texts_[row], spans[row], seen[row], min_score
                    )
        for result, answer in zip(results, zero_shot.predict(vectors, min_score) if zero_shot else []):
            result[ZERO_SHOT] = answer
        return results, vectors

    def predict_labels(self, items: Sequence[Item], task: str, batch_size: int = 64) -> list[Any]:
        """Per item, the label (sentence head) or the repaired IOB2 tags of its words (token head);
        words past the model window are ``O``. What evaluation scores."""
        heads = self.select([task])
        head = heads[task]
        items = list(items)
        out: list[Any] = [None] * len(items)
        for batch, _, spans, read, outputs in self._passes(items, heads, batch_size, None):
            proba = outputs[output_name(task)]
            seen = read.tolist() if read is not None else [[]] * len(batch)
            for row, index in enumerate(batch):
                out[index] = head.label_of(proba[row], spans[row], seen[row])
        return out
