"""The Spark UDFs on a local[2] session: the same vectors as embed() and the labels of predict(),
and Parquet written by Spark that carries the model's fingerprint."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def spark():
    os.environ["PYSPARK_PYTHON"] = sys.executable  # the workers need the interpreter with st_multitask
    from pyspark.sql import SparkSession  # the [spark] extra: missing, this fails, never skips

    session = (
        SparkSession.builder.master("local[2]")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def test_udfs_give_the_single_process_results(spark, corpus, tmp_path):
    from st_multitask import embed
    from st_multitask.batch.spark import embed_udf, predict_udf
    from st_multitask.batch.stored import read_embeddings, stored_metadata
    from st_multitask.index.manifest import model_identity
    from st_multitask.model import MultiTaskModel

    texts = corpus[:300]
    rows = [(i, t) for i, t in enumerate(texts)] + [(len(texts), None)]
    df = spark.createDataFrame(rows, "id long, text string").repartition(2)
    out = (
        df.withColumn("embedding", embed_udf()("text"))
        .withColumn("pred", predict_udf()("text"))
        .select("id", "text", "embedding", "pred.*")
    )
    out.write.parquet(str(tmp_path / "spark-out"))
    got = {r["id"]: r for r in spark.read.parquet(str(tmp_path / "spark-out")).collect()}
    assert sorted(got) == list(range(len(rows)))
    assert got[len(texts)]["embedding"] is None  # a null text: null results, the row kept
    vectors = np.asarray([got[i]["embedding"] for i in range(len(texts))], dtype=np.float32)
    assert np.abs(vectors - embed(texts)).max() <= 1e-5
    model = MultiTaskModel.default(backend="auto")
    want = model.predict(texts)
    for name, head in model.heads.items():
        if head.level == "token":
            assert [
                [(e["label"], e["start"], e["end"]) for e in got[i][name]] for i in range(len(texts))
            ] == [[(e["label"], e["start"], e["end"]) for e in w[name]] for w in want]
        else:
            assert [got[i][f"{name}_label"] for i in range(len(texts))] == [w[name]["label"] for w in want]
    # the fingerprint travels in Spark's own Parquet metadata; the stored vectors read back
    assert (
        stored_metadata(tmp_path / "spark-out")["model"]["fingerprint"] == model_identity(None)["fingerprint"]
    )
    stored = np.concatenate([c.vectors for c in read_embeddings(tmp_path / "spark-out")])
    assert stored.shape == (len(texts), vectors.shape[1])


def test_spark_not_installed_names_the_pip_command(monkeypatch):
    from st_multitask.batch.spark import embed_udf
    from st_multitask.errors import RuntimeUnavailableError

    monkeypatch.setitem(sys.modules, "pyspark.ml.functions", None)
    with pytest.raises(RuntimeUnavailableError, match=r"pip install 'st-multitask\[spark\]'"):
        embed_udf()
