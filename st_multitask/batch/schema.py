"""The Parquet schema every batch engine writes, and the metadata that says which model made it.

One row a text: the id columns passed through, the text, then ``embedding`` as
``fixed_size_list<float32>[dim]`` and, for a multi-task model, per sentence head ``<task>_label``
and ``<task>_score`` (lists for a multi-label head) and per token head ``<task>`` as
``list<struct<text, label, start, end, score>>``. The schema's metadata (key ``st_multitask``)
holds the model's identity with its sha256 fingerprint, so a later step (``stmt index build
--embeddings``) can check that the vectors came from the model it is about to use.

    >>> import pyarrow as pa
    >>> schema = output_schema(pa.schema([("id", pa.int64()), ("text", pa.string())]), ["id"], "text", dim=4)
    >>> schema.names, str(schema.field("embedding").type)
    (['id', 'text', 'embedding'], 'fixed_size_list<item: float>[4]')
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from ..errors import InputError

__all__ = [
    "EMBEDDING",
    "METADATA_KEY",
    "embedding_metadata",
    "output_schema",
    "read_batch_metadata",
    "with_metadata",
]

METADATA_KEY = b"st_multitask"
FORMAT = "st_multitask-batch"
FORMAT_VERSION = 1
EMBEDDING = "embedding"
# what Spark writes in place of Arrow schema metadata: its own schema, with our column metadata
_SPARK_KEY = b"org.apache.spark.sql.parquet.row.metadata"


def output_schema(
    input_schema: pa.Schema,
    id_columns: Sequence[str],
    text_column: str | None,
    dim: int | None = None,
    heads: Sequence[pa.Field] = (),
    metadata: dict[str, Any] | None = None,
) -> pa.Schema:
    """The schema of the output: the id columns (typed as in the input), the text (unless
    ``text_column`` is None), the embedding when ``dim`` is given, then the heads' columns."""
    fields = [input_schema.field(name) for name in id_columns]
    if text_column is not None:
        fields.append(pa.field(text_column, pa.string()))
    if dim is not None:
        fields.append(pa.field(EMBEDDING, pa.list_(pa.float32(), dim)))
    fields.extend(heads)
    names = [f.name for f in fields]
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        raise InputError(
            f"The output would have the column {clash[0]!r} twice (an id column named like a result); "
            "rename that input column."
        )
    schema = pa.schema(fields)
    return with_metadata(schema, metadata) if metadata else schema


def embedding_metadata(
    identity: dict[str, Any],
    *,
    kind: str = "embed",
    embedding: bool = True,
    normalize: bool = True,
    long: str = "truncate",
    text_column: str = "text",
    id_columns: Sequence[str] = (),
    **more: Any,
) -> dict[str, Any]:
    """The metadata of an output: the model's identity (name, sha256 fingerprint, width, engine),
    whether it holds embeddings and how they were made, and which columns hold the text and ids."""
    from .. import __version__

    return {
        "kind": kind,
        "model": identity,
        "embedding": embedding,
        "normalize": normalize,
        "long": long,
        "text_column": text_column,
        "id_columns": list(id_columns),
        **more,
        "st_multitask_version": __version__,
    }


def with_metadata(schema: pa.Schema, metadata: dict[str, Any]) -> pa.Schema:
    """``schema`` carrying ``metadata`` (JSON) under the key ``st_multitask``."""
    body = {"format": FORMAT, "format_version": FORMAT_VERSION, **metadata}
    return schema.with_metadata({**(schema.metadata or {}), METADATA_KEY: json.dumps(body).encode()})


def _from_spark(raw: bytes) -> dict[str, Any] | None:
    """Our metadata from Spark's schema JSON, where the embedding column's metadata carries it."""
    try:
        spark_schema = json.loads(raw)
        for field in spark_schema.get("fields", []):
            value = (field.get("metadata") or {}).get(METADATA_KEY.decode())
            if value:
                return json.loads(value) if isinstance(value, str) else value
    except (ValueError, AttributeError, TypeError):
        return None
    return None


def read_batch_metadata(
    schema: pa.Schema, where: str | os.PathLike[str] = "the input"
) -> dict[str, Any] | None:
    """The ``st_multitask`` metadata of a schema (written by any engine), or ``None`` when there is none."""
    stored = schema.metadata or {}
    if METADATA_KEY in stored:
        try:
            body = json.loads(stored[METADATA_KEY])
        except ValueError:
            raise InputError(f"{Path(where)}: the st_multitask metadata is not valid JSON.") from None
        if body.get("format") != FORMAT:
            raise InputError(f"{Path(where)}: the st_multitask metadata is not of format {FORMAT}.")
        return body
    if _SPARK_KEY in stored:
        return _from_spark(stored[_SPARK_KEY])
    return None
