"""The Ray Data engine on a local 2-CPU cluster shared by the session: the same vectors and labels
as one process, every row exactly once even when an actor's process is killed mid-job."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from st_multitask.batch import embed_dataset, predict_dataset
from st_multitask.batch.core import BatchSpec
from st_multitask.batch.ray import RayPredictor, run_ray
from st_multitask.batch.sources import resolve_source

pytestmark = pytest.mark.slow


def _by_id(table, column):
    ids = table.column("id").to_pylist()
    order = np.argsort(ids)
    return np.asarray(ids)[order], [table.column(column).to_pylist()[i] for i in order]


def test_embed_dataset_on_ray_equals_single_process_embed(
    ray_cluster, corpus_parquet, corpus, reference_vectors, tmp_path
):
    job = embed_dataset(corpus_parquet, tmp_path / "vectors", engine="ray", id_columns=["id"], actors=2)
    table = pq.read_table(job.output)
    assert job.rows == table.num_rows == len(corpus)
    ids, vectors = _by_id(table, "embedding")
    assert ids.tolist() == list(range(len(corpus)))  # every id, once
    vectors = np.asarray(vectors, dtype=np.float32)
    assert np.abs(vectors - reference_vectors).max() <= 1e-5
    assert table.schema.field("embedding").type.list_size == reference_vectors.shape[1]
    files = sorted(job.output.glob("*.parquet"))
    assert files and all(b"st_multitask" in pq.read_schema(f).metadata for f in files)


def test_predict_dataset_on_ray_gives_the_labels_of_predict(ray_cluster, corpus_parquet, corpus, tmp_path):
    from st_multitask.model import MultiTaskModel

    model = MultiTaskModel.default(backend="auto")
    texts = corpus[:600]
    want = model.predict(texts)
    src = tmp_path / "in.parquet"
    pq.write_table(pq.read_table(corpus_parquet).slice(0, len(texts)), src)
    job = predict_dataset(src, tmp_path / "labels", engine="ray", id_columns=["id"], actors=2)
    table = pq.read_table(job.output)
    assert table.num_rows == len(texts)
    for name, head in model.heads.items():
        column = name if head.level == "token" else f"{name}_label"
        ids, got = _by_id(table, column)
        assert ids.tolist() == list(range(len(texts)))
        if head.level == "token":
            assert [[(e["label"], e["start"], e["end"]) for e in row] for row in got] == [
                [(e["label"], e["start"], e["end"]) for e in w[name]] for w in want
            ]
        else:
            assert got == [w[name]["label"] for w in want]


def test_killing_an_actor_mid_job_loses_and_repeats_no_row(ray_cluster, corpus_parquet, corpus, tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()

    class Watched(RayPredictor):  # defined here, so Ray ships it by value
        folder = str(marks)

        def __call__(self, table):
            Path(self.folder, f"pid-{os.getpid()}").touch()
            while not Path(self.folder, "go").exists():  # hold the first batches until the kill
                time.sleep(0.05)
            return super().__call__(table)

    src = tmp_path / "in.parquet"
    pq.write_table(pq.read_table(corpus_parquet).slice(0, 1000), src)
    spec = BatchSpec("embed", id_columns=("id",), batch_size=32)
    result: dict = {}

    def job():
        try:
            result["rows"] = run_ray(
                resolve_source(str(src)), tmp_path / "out", spec, actors=2, actor_class=Watched
            )
        except BaseException as exc:
            result["error"] = exc

    thread = threading.Thread(target=job)
    thread.start()
    deadline = time.monotonic() + 240
    while not list(marks.glob("pid-*")) and time.monotonic() < deadline and thread.is_alive():
        time.sleep(0.05)
    victims = list(marks.glob("pid-*"))
    assert victims, f"no actor started a batch: {result.get('error')!r}"
    os.kill(int(victims[0].name.split("-")[1]), signal.SIGKILL)  # mid-batch: its rows are in flight
    (marks / "go").touch()
    thread.join(timeout=300)
    assert not thread.is_alive() and "error" not in result, result.get("error")
    table = pq.read_table(tmp_path / "out")
    assert sorted(table.column("id").to_pylist()) == list(range(1000))  # each row exactly once
    assert result["rows"] == 1000
