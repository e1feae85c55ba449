"""The Arrow-table predictor and the local engine: schema, metadata, every input format, bad input."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from st_multitask.batch import BatchPredictor, BatchSpec, embed_dataset, predict_dataset
from st_multitask.batch.schema import METADATA_KEY, read_batch_metadata
from st_multitask.errors import InputError

TEXTS = ["Apple is buying a U.K. startup for $1 billion.", "The film was a joy.", "Stocks fell in Tokyo."]


@pytest.fixture(scope="module")
def predictor():
    return BatchPredictor(BatchSpec("predict", id_columns=("id",), embedding=True, threads=1))


@pytest.fixture(scope="module")
def default_model():
    from st_multitask.model import MultiTaskModel

    return MultiTaskModel.default(backend="auto")


def test_predict_table_schema_follows_the_model_heads(predictor, default_model):
    table = predictor(pa.table({"id": [10, 11, 12], "text": TEXTS}))
    expected = ["id", "text", "embedding"]
    for name, head in default_model.heads.items():  # read from the model, never hard-coded
        expected += [name] if head.level == "token" else [f"{name}_label", f"{name}_score"]
    assert table.column_names == expected
    assert table.schema.field("embedding").type == pa.list_(pa.float32(), default_model.dim)
    assert table.column("id").to_pylist() == [10, 11, 12]
    reference = default_model.predict(TEXTS)
    rows = table.to_pylist()
    for row, want in zip(rows, reference):
        for name, head in default_model.heads.items():
            if head.level == "token":
                assert [(e["text"], e["label"], e["start"], e["end"]) for e in row[name]] == [
                    (e["text"], e["label"], e["start"], e["end"]) for e in want[name]
                ]
            else:
                assert row[f"{name}_label"] == want[name]["label"]
                assert row[f"{name}_score"] == pytest.approx(want[name]["score"], abs=1e-6)
    meta = read_batch_metadata(table.schema)
    assert meta["kind"] == "predict" and meta["model"]["dim"] == default_model.dim
    assert len(meta["model"]["fingerprint"]) == 64
    assert {name: info["labels"] for name, info in meta["tasks"].items()} == {
        name: list(head.labels) for name, head in default_model.heads.items()
    }


def test_null_and_blank_texts_keep_their_rows_with_null_results(predictor):
    table = predictor(pa.table({"id": [1, 2, 3], "text": ["A cat sat.", None, "   "]}))
    assert table.num_rows == 3
    assert table.column("embedding").null_count == 2
    label = next(name for name in table.column_names if name.endswith("_label"))
    assert table.column(label).to_pylist()[1:] == [None, None]


def test_missing_columns_list_the_ones_found(predictor):
    with pytest.raises(
        InputError,
        match=r"Expected a column 'text' in the input; found 'id', 'body'\. Pass text_column='body'\?",
    ):
        predictor(pa.table({"id": [1], "body": ["x"]}))
    with pytest.raises(InputError, match=r"Expected a column 'id' in the input; found 'text'\."):
        predictor(pa.table({"text": ["x"]}))


def test_local_engine_reads_every_format_into_the_same_vectors(tmp_path, write):
    texts = ["A cat sat on the mat.", "Stocks fell sharply.", "The band played all night."]
    inputs = {
        "in.txt": "\n".join(texts) + "\n",
        "in.jsonl": "".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(texts)),
        "in.csv": "id,text\n" + "".join(f'{i},"{t}"\n' for i, t in enumerate(texts)),
    }
    pq.write_table(pa.table({"id": [0, 1, 2], "text": texts}), tmp_path / "in.parquet")
    paths = {name: write(name, content) for name, content in inputs.items()}
    paths["in.parquet"] = str(tmp_path / "in.parquet")
    from st_multitask import embed

    want = embed(texts)
    for name, path in paths.items():
        ids = () if name.endswith(".txt") else ("id",)
        job = embed_dataset(path, tmp_path / f"out-{name}", id_columns=ids, threads=1)
        out = pq.read_table(job.output)
        assert job.rows == 3 and out.column("text").to_pylist() == texts, name
        vectors = np.stack(out.column("embedding").to_numpy(zero_copy_only=False))
        assert np.abs(vectors - want).max() <= 1e-5, name
        assert METADATA_KEY in pq.read_schema(next(job.output.glob("*.parquet"))).metadata


def test_existing_output_needs_overwrite_and_missing_input_is_named(tmp_path, write):
    path = write("in.txt", "One text.\n")
    embed_dataset(path, tmp_path / "out")
    with pytest.raises(InputError, match="exists already; pass overwrite=True"):
        embed_dataset(path, tmp_path / "out")
    assert embed_dataset(path, tmp_path / "out", overwrite=True).rows == 1
    with pytest.raises(InputError, match="nope.parquet does not exist"):
        predict_dataset(tmp_path / "nope.parquet", tmp_path / "other")
    with pytest.raises(InputError, match=r"No file matches .*\*\.parquet"):
        embed_dataset(str(tmp_path / "*.parquet"), tmp_path / "other")
    assert not (tmp_path / "other").exists()
