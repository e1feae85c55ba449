"""The Spark engine: ``embed_udf`` and ``predict_udf`` on ``pyspark.ml.functions.predict_batch_udf``.

Each Python worker loads the model once (``predict_batch_udf`` caches what ``make_predict_fn``
returns) into the same :class:`~st_multitask.batch.core.BatchPredictor` the other engines run, on
``threads`` runtime threads (Spark runs one task a core by default: 1). The embedding column
carries the model's fingerprint in its Spark metadata, which ``df.write.parquet`` stores, so
``stmt index build --embeddings`` can check it like the other engines' output.

For example (Spark's Python workers need ``PYSPARK_PYTHON`` set to the interpreter that has
st_multitask)::

    from st_multitask.batch.spark import embed_udf, predict_udf

    df = spark.read.parquet("corpus/")
    df = df.withColumn("embedding", embed_udf()("text"))
    df = df.withColumn("pred", predict_udf()("text")).select("id", "text", "embedding", "pred.*")
    df.write.parquet("vectors/")
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from ..errors import RuntimeUnavailableError
from .core import BatchPredictor, BatchSpec
from .schema import EMBEDDING, FORMAT, FORMAT_VERSION, METADATA_KEY, embedding_metadata

__all__ = ["embed_udf", "predict_udf", "spark_type"]

PIP = "pip install 'st-multitask[spark]'"


def _pyspark() -> Any:
    try:
        import pyspark.ml.functions
        import pyspark.sql.types as types
    except ImportError:
        raise RuntimeUnavailableError(
            f"The Spark engine needs pyspark, which is not installed: {PIP}."
        ) from None
    return pyspark.ml.functions, types


def spark_type(arrow_type: Any) -> Any:
    """The Spark SQL type of one of our Arrow output types (a fixed-size list becomes an array)."""
    import pyarrow as pa

    _, T = _pyspark()
    if pa.types.is_fixed_size_list(arrow_type) or pa.types.is_list(arrow_type):
        return T.ArrayType(spark_type(arrow_type.value_type))
    if pa.types.is_struct(arrow_type):
        return T.StructType([T.StructField(f.name, spark_type(f.type)) for f in arrow_type])
    simple = {
        pa.string(): T.StringType(),
        pa.float32(): T.FloatType(),
        pa.float64(): T.DoubleType(),
        pa.int32(): T.IntegerType(),
        pa.int64(): T.LongType(),
    }
    return simple[arrow_type]


def _spec(kind: str, model: str | os.PathLike[str] | None, **options: Any) -> BatchSpec:
    return BatchSpec(kind, model=None if model is None else os.fspath(model), keep_text=False, **options)


def _column_metadata(spec: BatchSpec) -> dict[str, str]:
    """What the embedding column's Spark metadata carries: our metadata, read from the model's files."""
    from ..index.manifest import model_identity

    # a multi-task model's identity is its backbone's
    identity = model_identity(None, spec.model) if spec.kind == "embed" else BatchPredictor(spec).identity
    body = {"format": FORMAT, "format_version": FORMAT_VERSION}
    body.update(embedding_metadata(identity, kind=spec.kind, normalize=spec.normalize, long=spec.long))
    return {METADATA_KEY.decode(): json.dumps(body)}


def _blank(column: Any) -> Any:
    """A Spark condition: the text is null or blank (its results are null, as on the other engines)."""
    from pyspark.sql import functions as F

    return column.isNull() | (F.trim(column) == "")


def _as_column(column: Any) -> Any:
    from pyspark.sql import functions as F

    return F.col(column) if isinstance(column, str) else column


def embed_udf(
    model: str | os.PathLike[str] | None = None,
    *,
    batch_size: int = 64,
    normalize: bool = True,
    long: str = "truncate",
    backend: str | None = None,
    precision: str | None = None,
    threads: int = 1,
) -> Any:
    """A function of a text column giving the ``embedding`` column (``array<float>``), as
    :func:`st_multitask.embed` computes it (``model=None``: the packaged all-MiniLM-L6-v2).
    Null or blank texts give null."""
    functions, T = _pyspark()
    from pyspark.sql import functions as F

    spec = _spec(
        "embed", model, batch_size=batch_size, normalize=normalize, long=long,
        backend=backend, precision=precision, threads=threads,
    )  # fmt: skip

    def make_predict_fn() -> Any:
        predictor = BatchPredictor(spec)

        def predict(texts: np.ndarray) -> np.ndarray:  # (batch,) -> (batch, dim)
            column = predictor.results([t if isinstance(t, str) else None for t in texts])[EMBEDDING]
            # predict_batch_udf takes no null rows: blank texts get zeros here, null in the column
            return column.fill_null(pa_zeros(predictor.dim)).flatten().to_numpy().reshape(len(texts), -1)

        return predict

    udf = functions.predict_batch_udf(
        make_predict_fn, return_type=T.ArrayType(T.FloatType()), batch_size=batch_size * 8
    )
    metadata = _column_metadata(spec)

    def apply(column: Any) -> Any:
        text = _as_column(column)
        return F.when(_blank(text), F.lit(None)).otherwise(udf(text)).alias(EMBEDDING, metadata=metadata)

    apply.__doc__ = "Apply to a text column: df.withColumn('embedding', udf('text'))."
    return apply


def pa_zeros(dim: int) -> Any:
    """A zero vector as an Arrow fixed-size-list scalar (what a null row is filled with)."""
    import pyarrow as pa

    return pa.scalar([0.0] * dim, type=pa.list_(pa.float32(), dim))


def predict_udf(
    model: str | os.PathLike[str] | None = None,
    *,
    tasks: list[str] | None = None,
    embedding: bool = False,
    min_score: float | None = None,
    batch_size: int = 32,
    backend: str | None = None,
    precision: str | None = None,
    threads: int = 1,
) -> Any:
    """A function of a text column giving a struct column with the fields of the batch schema:
    per sentence head ``<task>_label`` and ``<task>_score``, per token head ``<task>`` entities,
    and with ``embedding`` the embedding (``model=None``: the bundled default model). Select
    ``"col.*"`` to spread it into columns. Null or blank texts give null fields.

    ``predict_batch_udf`` carries scalars and fixed-width arrays only, so entities and
    multi-label lists travel as JSON and are parsed back into their types here.
    """
    import pyarrow as pa

    functions, T = _pyspark()
    from pyspark.sql import functions as F

    spec = _spec(
        "predict", model, tasks=None if tasks is None else tuple(tasks), embedding=embedding,
        min_score=min_score, batch_size=batch_size, backend=backend, precision=precision, threads=threads,
    )  # fmt: skip
    probe = BatchPredictor(spec)  # the heads and their output types, read from the model
    fields = probe.head_fields()
    dim = probe.dim
    if embedding:
        fields = [pa.field(EMBEDDING, pa.list_(pa.float32(), dim)), *fields]
    del probe
    as_json = {f.name for f in fields if pa.types.is_list(f.type)}  # entities, multi-label lists
    wire = T.StructType(
        [T.StructField(f.name, T.StringType() if f.name in as_json else spark_type(f.type)) for f in fields]
    )

    def make_predict_fn() -> Any:
        predictor = BatchPredictor(spec)

        def predict(texts: np.ndarray) -> dict[str, np.ndarray]:
            columns = predictor.results([t if isinstance(t, str) else None for t in texts])
            out: dict[str, np.ndarray] = {}
            for field in fields:
                values = columns[field.name]
                if field.name == EMBEDDING:
                    out[field.name] = (
                        values.fill_null(pa_zeros(dim)).flatten().to_numpy().reshape(len(texts), -1)
                    )
                elif field.name in as_json:
                    out[field.name] = np.array([json.dumps(v) for v in values.to_pylist()], dtype=object)
                elif pa.types.is_floating(field.type):
                    out[field.name] = values.to_numpy(zero_copy_only=False).astype(np.float32)  # null: NaN
                else:
                    out[field.name] = np.array(values.to_pylist(), dtype=object)
            return out

        return predict

    udf = functions.predict_batch_udf(make_predict_fn, return_type=wire, batch_size=batch_size * 8)

    def apply(column: Any) -> Any:
        text = _as_column(column)
        raw = udf(text)
        parts = []
        for field in fields:
            value = raw[field.name]
            if field.name in as_json:
                value = F.from_json(value, spark_type(field.type))
            parts.append(value.alias(field.name))
        return F.when(_blank(text), F.lit(None)).otherwise(F.struct(*parts))

    apply.__doc__ = "Apply to a text column: df.withColumn('pred', udf('text')).select('pred.*')."
    return apply
