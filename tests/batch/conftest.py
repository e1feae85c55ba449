"""Shared by the batch tests: a few thousand real texts (STS-B test sentences) as a Parquet dataset,
the single-process results to compare with, and one local Ray cluster for the whole session."""

from __future__ import annotations

import pytest

N_TEXTS = 2000


@pytest.fixture(scope="session")
def corpus() -> list[str]:
    """2,000 distinct real sentences (STS-B test, both columns)."""
    from st_multitask.corpora import load_sts_b

    sts = load_sts_b("test")
    texts = list(dict.fromkeys([*sts.sentence1, *sts.sentence2]))
    assert len(texts) >= N_TEXTS
    return texts[:N_TEXTS]


@pytest.fixture(scope="session")
def corpus_parquet(tmp_path_factory, corpus):
    """The corpus as a Parquet dataset folder of two files, with an integer ``id`` and a ``text`` column."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path_factory.mktemp("corpus") / "input"
    folder.mkdir()
    half = len(corpus) // 2
    for part, (start, stop) in enumerate([(0, half), (half, len(corpus))]):
        ids = list(range(start, stop))
        pq.write_table(pa.table({"id": ids, "text": corpus[start:stop]}), folder / f"part-{part}.parquet")
    return folder


@pytest.fixture(scope="session")
def reference_vectors(corpus):
    """Single-process embed() of the corpus (the default fast path)."""
    from st_multitask import embed

    return embed(corpus)


@pytest.fixture(scope="session")
def ray_cluster():
    """One local Ray for the session: 2 CPUs, no dashboard."""
    import ray  # the [ray] extra: a missing Ray fails here, never skips

    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
