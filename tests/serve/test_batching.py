"""The batcher on its own: merged calls within the token budget, each request its own results, 429s."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from st_multitask.serve.batching import Batcher, QueueFull


class Recorder:
    """A model call that gives each text its number as its vector, and records every call."""

    def __init__(self, gate: threading.Event | None = None):
        self.calls: list[tuple[list[str], tuple[str, ...]]] = []
        self.gate = gate
        self.entered = threading.Event()

    def __call__(self, texts, tasks, min_score):
        self.entered.set()
        if self.gate is not None:
            self.gate.wait(10)
        self.calls.append((list(texts), tasks))
        vectors = np.array([[float(t.split()[-1])] for t in texts], dtype=np.float32)
        predictions = [{task: f"{task}:{t}" for task in tasks} for t in texts]
        return vectors, predictions


def test_concurrent_requests_merge_and_each_gets_its_own_texts_in_order():
    run = Recorder()

    async def main():
        batcher = Batcher(run, max_batch_tokens=40, max_queue=1000, window_s=0.005)
        batcher.start()
        try:
            jobs = []
            for r in range(64):
                n = 1 + r % 3
                texts = [f"request {r * 10 + i}" for i in range(n)]
                tasks = ("ner",) if r % 2 else ()
                jobs.append(batcher.submit(texts, [2 + (r + i) % 5 for i in range(n)], tasks))
            return await asyncio.gather(*jobs)
        finally:
            batcher.stop()

    results = asyncio.run(main())
    for r, result in enumerate(results):
        n = 1 + r % 3
        assert result.vectors.ravel().tolist() == [float(r * 10 + i) for i in range(n)]
        if r % 2:
            assert result.predictions == [{"ner": f"ner:request {r * 10 + i}"} for i in range(n)]
        else:
            assert result.predictions is None
    assert len(run.calls) < 64  # merged
    assert sum(len(texts) for texts, _ in run.calls) == sum(1 + r % 3 for r in range(64))
    for texts, _ in run.calls:
        assert len(texts) <= 40 // 2  # every text costs at least 2 tokens: the budget held


def test_a_full_queue_refuses_at_once_while_accepted_work_finishes():
    gate = threading.Event()
    run = Recorder(gate)

    async def main():
        batcher = Batcher(run, max_batch_tokens=100, max_queue=4, window_s=0)
        batcher.start()
        try:
            first = asyncio.ensure_future(batcher.submit(["a 1"], [1]))  # taken by the worker, which waits
            while not run.entered.is_set():
                await asyncio.sleep(0.001)
            queued = asyncio.ensure_future(batcher.submit(["b 2", "c 3", "d 4", "e 5"], [1, 1, 1, 1]))
            while batcher.queued < 4:
                await asyncio.sleep(0.001)
            with pytest.raises(QueueFull, match="4 of 4"):
                await batcher.submit(["f 6"], [1])
            gate.set()
            return await first, await queued
        finally:
            gate.set()
            batcher.stop()

    first, queued = asyncio.run(main())
    assert first.vectors.ravel().tolist() == [1.0]
    assert queued.vectors.ravel().tolist() == [2.0, 3.0, 4.0, 5.0]


def test_a_failing_call_fails_its_requests_and_the_next_ones_run():
    def run(texts, tasks, min_score):
        if any("bad" in t for t in texts):
            raise RuntimeError("boom")
        return np.ones((len(texts), 1), dtype=np.float32), None

    async def main():
        batcher = Batcher(run, max_batch_tokens=100, max_queue=10, window_s=0)
        batcher.start()
        try:
            with pytest.raises(RuntimeError, match="boom"):
                await batcher.submit(["bad 1"], [1])
            return await batcher.submit(["good 2"], [1])
        finally:
            batcher.stop()

    assert asyncio.run(main()).vectors.shape == (1, 1)


def test_requests_with_another_min_score_are_not_merged():
    run = Recorder()

    async def main():
        batcher = Batcher(run, max_batch_tokens=100, max_queue=100, window_s=0.01)
        batcher.start()
        try:
            return await asyncio.gather(
                batcher.submit(["a 1"], [1], ("topic",), None),
                batcher.submit(["b 2"], [1], ("topic",), 0.9),
                batcher.submit(["c 3"], [1], ("topic",), None),
            )
        finally:
            batcher.stop()

    asyncio.run(main())
    assert sorted(sorted(texts) for texts, _ in run.calls) == [["a 1", "c 3"], ["b 2"]]


def test_the_model_threads_cpu_is_counted():
    from st_multitask.serve.metrics import ServeMetrics

    metrics = ServeMetrics()

    def busy(texts, tasks, min_score):
        deadline = time.thread_time() + 0.05  # 50 ms of this thread's CPU
        while time.thread_time() < deadline:
            pass
        return np.zeros((len(texts), 1), dtype=np.float32), None

    async def main():
        batcher = Batcher(busy, max_batch_tokens=100, max_queue=10, metrics=metrics)
        batcher.start()
        try:
            await batcher.submit(["a text"], [3])
        finally:
            batcher.stop()

    asyncio.run(main())
    assert metrics.model_cpu._value.get() >= 0.05
    assert b"stmt_model_cpu_seconds_total" in metrics.render()[0]
