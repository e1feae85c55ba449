"""Dynamic batching: texts of concurrent requests merged into model calls bounded by a token budget.

Requests put their texts in one queue; a worker thread (off the event loop, so ``/health`` and
``/metrics`` answer while a long batch runs) takes the oldest texts up to ``max_batch_tokens``,
sorts them by length and runs them in backbone passes of similar length (little padding). Each
pass gives the embeddings and every head any of its requests asked for
(:meth:`~st_multitask.model.MultiTaskModel.predict_and_embed`); passes with no head to run go
through :func:`~st_multitask.embed`. Each request gets back exactly its own texts, in order.

    >>> import asyncio, numpy as np
    >>> calls = []
    >>> def run(texts, tasks, min_score):
    ...     calls.append(len(texts))
    ...     return np.array([[len(t)] for t in texts], dtype=np.float32), None
    >>> async def main():
    ...     batcher = Batcher(run, max_batch_tokens=100, max_queue=10, window_s=0.01)
    ...     batcher.start()
    ...     a, b = await asyncio.gather(batcher.submit(["ab", "cd"], [4, 4]), batcher.submit(["efg"], [5]))
    ...     batcher.stop()
    ...     return a.vectors.ravel().tolist(), b.vectors.ravel().tolist()
    >>> asyncio.run(main()), calls
    (([2.0, 2.0], [3.0]), [3])
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from ..runtime.tokenizer import Encoded
from .metrics import ServeMetrics

if TYPE_CHECKING:
    from ..pipeline import Pipeline

__all__ = ["BatchResult", "Batcher", "QueueFull", "model_runner"]

# run(inputs, tasks, min_score) -> ((n, dim) vectors, per-text predictions or None); inputs are the
# texts tokenised once on arrival (an Encoded), or plain texts
Texts = list[str] | Encoded
Runner = Callable[[Texts, tuple[str, ...], "float | None"], "tuple[np.ndarray, list[dict[str, Any]] | None]"]


class QueueFull(Exception):
    """The queue holds ``max_queue`` texts already: the request is refused (429)."""


@dataclass
class BatchResult:
    """One request's results: its texts' vectors (n, dim) and, when it asked for heads, predictions."""

    vectors: np.ndarray
    predictions: list[dict[str, Any]] | None


@dataclass
class _Job:
    texts: Texts  # an Encoded (texts tokenised once) or a list of texts
    tokens: list[int]
    tasks: tuple[str, ...]
    min_score: float | None
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future
    remaining: int = 0
    vectors: np.ndarray | None = None
    predictions: list[Any] = field(default_factory=list)


@dataclass
class _Item:
    job: _Job
    index: int
    tokens: int
    arrived: float


def model_runner(pipeline: Pipeline, batch_size: int = 64) -> Runner:
    """The runner of a :class:`~st_multitask.pipeline.Pipeline`: with tasks, one
    ``predict_and_embed`` pass; without, ``embed`` (the backbone's vectors, not yet normalised)."""

    def run(
        inputs: Texts, tasks: tuple[str, ...], min_score: float | None
    ) -> tuple[np.ndarray, list[dict[str, Any]] | None]:
        if tasks:
            predictions, vectors = pipeline.predict_and_embed(inputs, list(tasks), batch_size, min_score)
            return vectors, predictions
        return pipeline.embed(inputs, batch_size=batch_size, normalize=False), None

    return run


class Batcher:
    """A queue of texts and the worker thread that runs them through the model in merged batches.

    Args:
        run: the model call (see :func:`model_runner`).
        max_batch_tokens: tokens in one model call (a single longer text still runs, alone).
        max_queue: texts that may wait; :meth:`submit` raises :class:`QueueFull` past it.
        window_s: how long the oldest waiting text may wait for company before a call.
        metrics: where batch sizes, queue depth and tokens are counted.
        pass_size: most texts in one backbone pass.
        min_fill: a pass holds texts of at least this share of its longest one's tokens. Measured
            on random 32-text batches of STS-B sentences (onnx fp32, 2 cores): one padded pass
            cost 12-13 ms of CPU a text, passes cut at 0.7 about 7 (0.5: 8, 0.85: 8.5).
    """

    def __init__(
        self,
        run: Runner,
        max_batch_tokens: int,
        max_queue: int,
        window_s: float = 0.0,
        metrics: ServeMetrics | None = None,
        pass_size: int = 64,
        min_fill: float = 0.7,
    ):
        self._run = run
        self._pass_size = pass_size
        self._min_fill = min_fill
        self._budget = max_batch_tokens
        self._max_queue = max_queue
        self._window = window_s
        self._metrics = metrics
        self._pending: deque[_Item] = deque()
        self._pending_tokens = 0
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None

    @property
    def queued(self) -> int:
        """Texts waiting for the model."""
        return len(self._pending)

    def has_room(self, n: int) -> bool:
        """Whether ``n`` more texts fit in the queue now (:meth:`submit` checks again, atomically)."""
        return not self._stopping and len(self._pending) + n <= self._max_queue

    def start(self) -> None:
        self._thread = threading.Thread(target=self._work, name="stmt-batcher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Run what is queued, then stop the worker."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    async def submit(
        self,
        texts: Sequence[str] | Encoded,
        tokens: Sequence[int],
        tasks: Sequence[str] = (),
        min_score: float | None = None,
    ) -> BatchResult:
        """Queue ``texts`` (each costing ``tokens[i]``; texts tokenised once, or plain) and wait
        for their results, in order."""
        loop = asyncio.get_running_loop()
        job = _Job(
            texts if isinstance(texts, Encoded) else list(texts),
            list(tokens),
            tuple(tasks),
            min_score,
            loop,
            loop.create_future(),
        )
        job.remaining = len(job.tokens)
        job.predictions = [None] * len(job.tokens)
        now = time.monotonic()
        with self._cond:
            if self._stopping:
                raise QueueFull("The server is shutting down.")
            if len(self._pending) + len(job.tokens) > self._max_queue:
                raise QueueFull(
                    f"The queue is full ({len(self._pending)} of {self._max_queue} texts waiting); retry shortly."
                )
            for i, n in enumerate(job.tokens):
                self._pending.append(_Item(job, i, n, now))
            self._pending_tokens += sum(job.tokens)
            self._set_depth()
            self._cond.notify()
        return await job.future

    # -- the worker ---------------------------------------------------------------------------
    def _set_depth(self) -> None:
        if self._metrics is not None:
            self._metrics.queue_depth.set(len(self._pending))

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._stopping:
                    self._cond.wait()
                if not self._pending:  # stopping, and nothing left to run
                    return
                if self._window > 0:  # wait for company, unless the budget is full already
                    deadline = self._pending[0].arrived + self._window
                    while self._pending_tokens < self._budget and not self._stopping:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            break
                        self._cond.wait(left)
                items = self._take()
                self._set_depth()
            self._call(items)

    def _take(self) -> list[_Item]:
        """The oldest texts up to the token budget that can share a call (the same ``min_score``)."""
        key = self._pending[0].job.min_score
        taken: list[_Item] = []
        kept: deque[_Item] = deque()
        total = 0
        while self._pending:
            item = self._pending.popleft()
            if item.job.min_score == key and (not taken or total + item.tokens <= self._budget):
                taken.append(item)
                total += item.tokens
            else:
                kept.append(item)
                if total >= self._budget:
                    break
        kept.extend(self._pending)
        self._pending = kept
        self._pending_tokens -= total
        return taken

    def _passes(self, items: list[_Item]) -> list[list[_Item]]:
        """The merged texts, longest first, cut into backbone passes of similar length: a pass
        ends where a text is shorter than ``min_fill`` of the pass's longest (or at
        ``pass_size`` texts), so little of each pass is padding."""
        items = sorted(items, key=lambda item: -item.tokens)
        passes: list[list[_Item]] = []
        for item in items:
            if (
                not passes
                or len(passes[-1]) >= self._pass_size
                or item.tokens < self._min_fill * passes[-1][0].tokens
            ):
                passes.append([])
            passes[-1].append(item)
        return passes

    def _call(self, items: list[_Item]) -> None:
        if self._metrics is not None:  # counted as taken, before the call (the queue no longer has them)
            self._metrics.batch_texts.observe(len(items))
            self._metrics.batch_tokens.observe(sum(item.tokens for item in items))
        cpu = time.thread_time()
        for group in self._passes(items):
            self._pass(group, items[0].job.min_score)
        if self._metrics is not None:
            self._metrics.model_cpu.inc(time.thread_time() - cpu)

    def _pass(self, items: list[_Item], min_score: float | None) -> None:
        """One backbone pass for ``items``, with every head any of their requests asked for."""
        texts: Texts = (
            [cast("list[str]", item.job.texts)[item.index] for item in items]
            if isinstance(items[0].job.texts, list)
            else (Encoded.gather([(cast(Encoded, item.job.texts), item.index) for item in items]))
        )
        wanted = {task for item in items for task in item.job.tasks}
        first = next((item.job.tasks for item in items if item.job.tasks), ())
        tasks = tuple(t for t in first if t in wanted) + tuple(sorted(wanted.difference(first)))
        try:
            vectors, predictions = self._run(texts, tasks, min_score)
        except BaseException as exc:  # every request of the pass gets the fault
            for job in {id(item.job): item.job for item in items}.values():
                job.loop.call_soon_threadsafe(_fail, job.future, exc)
            return
        if self._metrics is not None:
            self._metrics.tokens.inc(sum(item.tokens for item in items))
        for row, item in enumerate(items):
            job = item.job
            if job.vectors is None:
                job.vectors = np.zeros((len(job.tokens), vectors.shape[1]), dtype=np.float32)
            job.vectors[item.index] = vectors[row]
            if predictions is not None and job.tasks:
                job.predictions[item.index] = {t: predictions[row][t] for t in job.tasks}
            job.remaining -= 1
            if job.remaining == 0:
                result = BatchResult(job.vectors, job.predictions if job.tasks else None)
                job.loop.call_soon_threadsafe(_resolve, job.future, result)


def _resolve(future: asyncio.Future, result: BatchResult) -> None:
    if not future.done():
        future.set_result(result)


def _fail(future: asyncio.Future, exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
