"""The one batch predictor every engine runs: an Arrow table of texts in, an Arrow table of results out.

:class:`BatchPredictor` loads a model once with :func:`st_multitask.load` (the packaged MiniLM to
embed, a multi-task model directory to predict) on the fast path by default, on the threads the
engine gives it, and maps each table to the schema of :mod:`st_multitask.batch.schema`. The
local engine, the Ray actors and the Spark workers all call it; none of them embeds or predicts
in its own way.

    >>> import pyarrow as pa
    >>> predictor = BatchPredictor(BatchSpec("embed", id_columns=("id",), threads=1))
    >>> out = predictor(pa.table({"id": [7, 8], "text": ["A cat sat.", "Stocks fell."]}))
    >>> out.column_names, out.num_rows, out.schema.field("embedding").type.list_size
    (['id', 'text', 'embedding'], 2, 384)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from ..errors import Hint, InputError
from .schema import EMBEDDING, embedding_metadata, output_schema
from .sources import check_columns

if TYPE_CHECKING:
    from ..pipeline import LongMode, Pipeline
    from ..runtime.tokenizer import Encoded

__all__ = ["KINDS", "BatchPredictor", "BatchSpec", "check_input"]

KINDS = ("embed", "predict")


@dataclass(frozen=True)
class BatchSpec:
    """What a batch job computes; small and picklable, so every worker rebuilds the same predictor."""

    kind: str  # "embed": the embedding alone; "predict": every head of a multi-task model
    model: str | None = None  # embed: a model path or name; predict: a model directory; None: the default
    text_column: str = "text"
    id_columns: tuple[str, ...] = ()  # passed through to the output
    keep_text: bool = True  # write the text column too (an index built from the output needs it)
    tasks: tuple[str, ...] | None = None  # predict: the heads to run (None: all)
    embedding: bool = False  # predict: write the embedding as well (a second backbone pass)
    backend: str | None = None  # auto (default), torch, onnx, openvino
    precision: str | None = None  # fp32 (default), bf16, int8
    batch_size: int = 64  # texts per forward pass
    normalize: bool = True
    long: LongMode = "truncate"
    min_score: float | None = None
    threads: int | None = None  # the runtime's threads (None: its default, all cores)

    def __post_init__(self) -> None:
        from ..embedding import LONG_MODES
        from ..texts import check_min_score

        if self.kind not in KINDS:
            raise InputError(f"Unknown batch kind {self.kind!r}. Valid: {', '.join(KINDS)}.")
        if self.long not in LONG_MODES:
            raise InputError(f"Unknown long-text mode {self.long!r}. Valid: {', '.join(LONG_MODES)}.")
        for name in ("batch_size", "threads"):
            value = getattr(self, name)
            if value is None and name == "threads":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{name} must be a positive integer, got {value!r}.")
        check_min_score(self.min_score)
        object.__setattr__(self, "id_columns", tuple(self.id_columns))
        if self.tasks is not None:
            object.__setattr__(self, "tasks", tuple(self.tasks))
        if self.text_column in self.id_columns:
            raise InputError(f"{self.text_column!r} is the text column; it cannot be an id column too.")


def check_input(spec: BatchSpec, names: Sequence[str] | pa.Schema, where: str) -> None:
    """Raise :class:`InputError` when the text column or an id column of ``spec`` is not among
    ``names`` (or a schema's columns): it lists the columns found and suggests a text column."""
    if isinstance(names, pa.Schema):
        texts = [f.name for f in names if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
        names = names.names
    else:
        texts = list(names)
    check_columns(
        names,
        [spec.text_column],
        where,
        "text_column",
        [c for c in names if c not in texts] + list(spec.id_columns),
    )
    check_columns(names, list(spec.id_columns), where, "", [spec.text_column])


class BatchPredictor:
    """Load the model of ``spec`` once; then ``predictor(table)`` gives the results table.

    Rows whose text is null or blank get null results (a batch job keeps every row); the
    table must have the text column and the id columns (an :class:`InputError` lists those found).
    ``pipeline``: a model loaded already (``spec.model`` then only names it); ``over_window``
    counts the texts past the model window, from the one tokenisation each chunk gets.
    """

    def __init__(self, spec: BatchSpec, pipeline: Pipeline | None = None):
        from ..index.manifest import model_identity
        from ..loader import DEFAULT, load

        self.spec = spec
        model = spec.model if spec.kind == "embed" or spec.model is not None else DEFAULT
        if spec.kind == "embed" and model is None:
            from ..backbone import DEFAULT_MODEL_NAME

            model = DEFAULT_MODEL_NAME
        self.pipeline = pipeline or load(
            model, backend=spec.backend, precision=spec.precision, threads=spec.threads
        )
        self.over_window = 0
        self.heads = (
            self.pipeline.select(list(spec.tasks) if spec.tasks is not None else None)
            if spec.kind == "predict"
            else {}
        )
        self.identity = model_identity(self.pipeline, spec.model if spec.kind == "embed" else self.pipeline)
        self.dim = self.pipeline.dim

    # -- the schema -------------------------------------------------------------------------------
    def head_fields(self) -> list[pa.Field]:
        fields: list[pa.Field] = []
        for name, head in self.heads.items():
            fields.extend(head.arrow_fields(name))
        return fields

    def metadata(self) -> dict[str, Any]:
        """What the output's schema metadata records: the model, its fingerprint, the settings."""
        spec = asdict(self.spec)
        return embedding_metadata(
            self.identity,
            kind=self.spec.kind,
            embedding=self.spec.kind == "embed" or self.spec.embedding,
            normalize=self.spec.normalize,
            long=self.spec.long,
            text_column=self.spec.text_column,
            id_columns=self.spec.id_columns,
            multitask_model=self.spec.model if self.spec.kind == "predict" else None,
            tasks={name: {"level": h.level, "labels": list(h.labels)} for name, h in self.heads.items()},
            settings={k: spec[k] for k in ("batch_size", "min_score", "backend", "precision")},
        )

    def schema(self, input_schema: pa.Schema) -> pa.Schema:
        """The output schema for input tables of ``input_schema`` (with the metadata)."""
        self.check(input_schema.names, "the input")
        with_embedding = self.spec.kind == "embed" or self.spec.embedding
        return output_schema(
            input_schema,
            self.spec.id_columns,
            self.spec.text_column if self.spec.keep_text else None,
            self.dim if with_embedding else None,
            self.head_fields(),
            self.metadata(),
        )

    def check(self, names: Sequence[str] | pa.Schema, where: str) -> None:
        """The text column and every id column are among ``names`` (or the schema's columns)."""
        check_input(self.spec, names, where)

    # -- the work -------------------------------------------------------------------------------
    def embed_texts(self, texts: Sequence[str] | Encoded) -> np.ndarray:
        """(n, dim) float32 embeddings of non-blank ``texts``, as :func:`st_multitask.embed` gives them."""
        return self.pipeline.embed(
            self.tokenize(texts),
            batch_size=self.spec.batch_size,
            normalize=self.spec.normalize,
            long=self.spec.long,
        )

    def tokenize(self, texts: Sequence[str] | Encoded) -> Encoded:
        """``texts`` tokenised once for the model (as they are if they were), counting those past its window."""
        from ..runtime.tokenizer import Encoded

        if isinstance(texts, Encoded):
            return texts
        encoded = self.pipeline.tokenize(list(texts))
        self.over_window += len(encoded.over_window())
        return encoded

    def predict_texts(self, texts: Sequence[str] | Encoded) -> list[dict[str, Any]]:
        """Per non-blank text, ``MultiTaskModel.predict``'s result for the chosen heads."""
        return self.pipeline.predict(
            self.tokenize(texts),
            tasks=list(self.heads),
            batch_size=self.spec.batch_size,
            min_score=self.spec.min_score,
        )

    def results(self, texts: Sequence[str | None]) -> dict[str, pa.Array]:
        """The result columns for ``texts`` (null or blank texts: null results)."""
        keep = [i for i, t in enumerate(texts) if isinstance(t, str) and t.strip()]
        chosen = self.tokenize([t for t in texts if isinstance(t, str) and t.strip()]) if keep else None
        n = len(texts)
        columns: dict[str, pa.Array] = {}
        if self.spec.kind == "embed" or self.spec.embedding:
            vectors = np.zeros((n, self.dim), dtype=np.float32)
            if chosen is not None:
                vectors[keep] = self.embed_texts(chosen)
            valid = np.zeros(n, dtype=bool)
            valid[keep] = True
            flat = pa.array(vectors.reshape(-1), type=pa.float32())
            columns[EMBEDDING] = pa.FixedSizeListArray.from_arrays(
                flat, self.dim, mask=pa.array(~valid) if len(keep) < n else None
            )
        if self.spec.kind == "predict":
            predictions: list[dict[str, Any] | None] = [None] * n
            for i, result in zip(keep, self.predict_texts(chosen) if chosen is not None else []):
                predictions[i] = result
            fields = {f.name: f.type for f in self.head_fields()}
            for name, head in self.heads.items():
                answers = [None if p is None else p[name] for p in predictions]
                for column, values in head.columns(name, answers).items():
                    columns[column] = pa.array(values, fields[column])
        return columns

    def __call__(self, table: pa.Table | pa.RecordBatch) -> pa.Table:
        """Map a table with the text column (and the id columns) to the output table."""
        if isinstance(table, pa.RecordBatch):
            table = pa.Table.from_batches([table])
        schema = self.schema(table.schema)
        texts = table.column(self.spec.text_column)
        if not pa.types.is_string(texts.type) and not pa.types.is_large_string(texts.type):
            if pa.types.is_null(texts.type):
                texts = texts.cast(pa.string())
            else:
                raise InputError(
                    f"The column {self.spec.text_column!r} holds {texts.type}, not text; pass ",
                    Hint("text_column", "NAME"),
                    ".",
                )
        results = self.results(texts.to_pylist())
        arrays = [table.column(name) for name in self.spec.id_columns]
        if self.spec.keep_text:
            arrays.append(texts.cast(pa.string()))
        arrays.extend(results[f.name] for f in schema if f.name in results)
        return pa.Table.from_arrays(arrays, schema=schema)
