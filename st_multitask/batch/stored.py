"""Stored embeddings: read the Parquet output of any engine back, and build an index from it
without embedding again, after checking that the vectors came from the index's model (the
fingerprint in the Parquet metadata). The index keeps the id columns of the output (``stmt embed
--id-column post_id``), and every hit returns them: ``hit["ids"] == {"post_id": 17}``.

    >>> import pathlib, tempfile
    >>> from st_multitask.batch import embed_dataset
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "in.txt").write_text("The cat sat.\\nStocks fell.\\nA dog barked.\\n")
    >>> _ = embed_dataset(folder / "in.txt", folder / "vectors")
    >>> index = index_from_embeddings(folder / "vectors")
    >>> [hit["text"] for hit in index.search("a pet animal", top_k=2)[0]]
    ['A dog barked.', 'The cat sat.']
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from ..errors import Hint, InputError
from .schema import EMBEDDING, read_batch_metadata
from .sources import Source, check_columns, resolve_source

__all__ = ["EmbeddingChunk", "index_from_embeddings", "read_embeddings", "stored_metadata"]


@dataclass
class EmbeddingChunk:
    """A run of stored rows: their line numbers (or ids, or positions), texts, (n, dim) vectors, and
    the values of the id columns kept (``{column: values}``)."""

    lines: list[int]
    texts: list[str]
    vectors: np.ndarray
    ids: dict[str, list[Any]] = field(default_factory=dict)


def _parquet(src: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> Source:
    source = resolve_source(src)
    if source.fmt != "parquet":
        raise InputError(
            f"{source.name} holds {source.fmt} files; expected the Parquet output of stmt embed "
            "(a folder or .parquet files)."
        )
    return source


def stored_metadata(src: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> dict[str, Any]:
    """The ``st_multitask`` metadata of stored embeddings: every file must have it, from one model."""
    import pyarrow.parquet as pq

    source = _parquet(src)
    found: dict[str, Any] | None = None
    for path in source.paths:
        meta = read_batch_metadata(pq.read_schema(path), path)
        if meta is None or not meta.get("embedding"):
            raise InputError(
                f"{path} has no st_multitask embedding metadata (the model's fingerprint): write it with "
                "stmt embed, st_multitask.batch.embed_dataset or st_multitask.batch.spark.embed_udf."
            )
        if found is not None and meta["model"].get("fingerprint") != found["model"].get("fingerprint"):
            raise InputError(
                f"{path} was embedded by {meta['model'].get('name')}, {source.paths[0]} by "
                f"{found['model'].get('name')}: the files come from different models."
            )
        found = found or meta
    assert found is not None
    return found


def _vectors(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """(n, dim) float32 from a fixed-size list column (our engines) or a list column (Spark)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_fixed_size_list(column.type):
        dim = column.type.list_size
        return np.asarray(column.flatten().to_numpy(zero_copy_only=False), dtype=np.float32).reshape(-1, dim)
    return np.asarray(column.to_pylist(), dtype=np.float32)


def _kept_ids(
    meta: dict[str, Any], id_columns: Sequence[str] | None, schema: pa.Schema, where: str
) -> list[str]:
    """The id columns an index keeps: ``id_columns``, or those the output's metadata lists (less
    ``line``, which gives the hits' line numbers); each must be a column of numbers or text."""
    text_column = meta.get("text_column") or "text"
    stored = [c for c in meta.get("id_columns", []) if c != "line"]
    wanted = stored if id_columns is None else list(id_columns)
    check_columns(schema.names, wanted, where, "", [text_column, EMBEDDING])
    for name in wanted:
        if name in (text_column, EMBEDDING):
            raise InputError(f"{name!r} holds the {'texts' if name == text_column else 'vectors'}, not ids.")
        kind = schema.field(name).type
        if not (
            pa.types.is_integer(kind)
            or pa.types.is_floating(kind)
            or pa.types.is_string(kind)
            or pa.types.is_large_string(kind)
            or pa.types.is_boolean(kind)
            or pa.types.is_null(kind)
        ):
            raise InputError(
                f"The id column {name!r} of {where} holds {kind}; an index keeps ids that are numbers "
                "or text: cast it first."
            )
    return wanted


def read_embeddings(
    src: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    chunk_size: int = 65536,
    id_columns: Sequence[str] | None = None,
) -> Iterator[EmbeddingChunk]:
    """Stream stored embeddings in chunks; rows without an embedding (blank texts) are left out.

    Line numbers come from a ``line`` column, else from the first integer id column, else from
    the row's position (counted from 1). Each chunk carries the values of ``id_columns``
    (default: the id columns the output's metadata lists, less ``line``); a missing one is an
    :class:`InputError` naming the columns found.
    """
    meta = stored_metadata(src)
    source = _parquet(src)
    text_column = meta.get("text_column") or "text"
    ids = ["line", *meta.get("id_columns", [])]
    id_names: list[str] | None = None  # the id columns kept, checked on the first batch
    position = 0
    for batch in source.batches(chunk_size):
        names = batch.schema.names
        for needed in (text_column, EMBEDDING):
            if needed not in names:
                raise InputError(
                    f"{source.name} has no column {needed!r} (found {', '.join(map(repr, names))}); "
                    "an index needs the texts and their embeddings."
                )
        if id_names is None:
            id_names = _kept_ids(meta, id_columns, batch.schema, source.name)
        table = pa.Table.from_batches([batch])
        valid = table.column(EMBEDDING).is_valid()
        table = table.filter(valid)
        line_column = next(
            (c for c in ids if c in names and pa.types.is_integer(table.schema.field(c).type)), None
        )
        if line_column is not None:
            lines = [int(v) for v in table.column(line_column).to_pylist()]
        else:
            kept = np.flatnonzero(valid.to_numpy(zero_copy_only=False))
            lines = [position + 1 + int(i) for i in kept]
        position += batch.num_rows
        if table.num_rows:
            texts = table.column(text_column).to_pylist()
            values = {name: table.column(name).to_pylist() for name in id_names}
            yield EmbeddingChunk(lines, texts, _vectors(table.column(EMBEDDING)), values)


def index_from_embeddings(
    src: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    model: str | os.PathLike[str] | None = None,
    *,
    kind: str = "flat",
    storage: str = "fp32",
    source: str | None = None,
    id_columns: Sequence[str] | None = None,
    chunk_size: int = 65536,
    workdir: str | os.PathLike[str] | None = None,
    **settings: Any,
) -> Any:
    """An :class:`~st_multitask.index.Index` of stored embeddings (the Parquet output of any
    engine), built without embedding again. ``model`` is the index's model, which text queries
    will use (``None``: the packaged all-MiniLM-L6-v2); the vectors must come from it: its
    fingerprint must be the one in the Parquet metadata. The index keeps ``id_columns`` (default:
    the output's id columns, ``--id-column`` of ``stmt embed``) and returns them with every hit.
    ``kind``, ``storage`` and ``settings`` as in :meth:`Index.build <st_multitask.index.Index.build>`.
    """
    from ..index import Index
    from ..index.manifest import model_identity

    meta = stored_metadata(src)
    stored, asking = meta["model"], model_identity(None, model)
    same = (
        stored.get("fingerprint") == asking.get("fingerprint")
        if stored.get("fingerprint") and asking.get("fingerprint")
        else stored.get("name") == asking.get("name")
    )
    if not same:
        raise InputError(
            f"The embeddings in {os.fspath(src) if isinstance(src, (str, os.PathLike)) else src[0]} were made by "
            f"{stored.get('name')} (fingerprint {str(stored.get('fingerprint'))[:12]}), not by {asking.get('name')} "
            f"(fingerprint {str(asking.get('fingerprint'))[:12]}); pass ",
            Hint("model", stored.get("name")),
            ", or embed the texts again with this model.",
        )
    text_column = meta.get("text_column") or "text"
    column = None if text_column == "text" else text_column
    name = source or (
        os.fspath(src) if isinstance(src, (str, os.PathLike)) else ", ".join(os.fspath(s) for s in src)
    )
    index = None
    for chunk in read_embeddings(src, chunk_size, id_columns):
        rows = list(zip(chunk.lines, chunk.texts))
        if index is None:
            index = Index.from_embeddings(
                chunk.vectors,
                rows,
                model,
                kind=kind,
                storage=storage,
                source=name,
                column=column,
                ids=chunk.ids,
                workdir=workdir,
                **settings,
            )
            # the vectors' engine, as an index built from the texts records it
            index.model.update({k: stored.get(k) for k in ("backend", "precision") if stored.get(k)})
        else:
            index.add(rows, chunk.vectors, source=name, ids=chunk.ids)
    if index is None:
        raise InputError(f"{name} holds no embeddings: every row is empty.")
    return index
