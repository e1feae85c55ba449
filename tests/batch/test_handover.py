"""The Parquet output is what vector stores ingest (LanceDB takes Arrow's fixed-size-list vectors;
Qdrant and Milvus take float32 rows of the model's width with ids and a payload)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds

from st_multitask.batch import embed_dataset, predict_dataset


def test_output_schema_is_what_vector_stores_ingest(tmp_path, write):
    path = write("corpus.csv", 'id,text\n7,"A cat sat."\n8,"  "\n9,"A dog barked."\n')
    job = embed_dataset(path, tmp_path / "vectors", id_columns=["id"])
    table = ds.dataset(job.output, format="parquet").to_table()
    from st_multitask.index.manifest import model_identity

    dim = model_identity(None)["dim"]
    assert table.schema.field("id").type == pa.int64()
    assert table.schema.field("text").type == pa.string()
    assert table.schema.field("embedding").type == pa.list_(pa.float32(), dim)  # LanceDB's vector type
    kept = table.filter(table.column("embedding").is_valid())  # the blank row has no vector
    assert kept.column("id").to_pylist() == [7, 9]
    vectors = kept.column("embedding").combine_chunks().flatten().to_numpy().reshape(kept.num_rows, -1)
    assert vectors.shape == (2, dim) and vectors.dtype == np.float32 and vectors.flags.c_contiguous
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)  # cosine = dot product


def test_entities_are_typed_structs(tmp_path, write):
    path = write("corpus.jsonl", '{"id": 1, "text": "Apple is buying a U.K. startup."}\n')
    table = ds.dataset(predict_dataset(path, tmp_path / "labels", id_columns=["id"]).output).to_table()
    token = [f for f in table.schema if pa.types.is_list(f.type) and pa.types.is_struct(f.type.value_type)]
    assert token, "the default model has a token head"
    entity = token[0].type.value_type
    assert [(f.name, f.type) for f in entity] == [
        ("text", pa.string()),
        ("label", pa.string()),
        ("start", pa.int32()),
        ("end", pa.int32()),
        ("score", pa.float32()),
    ]
