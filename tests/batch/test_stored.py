"""``stmt index build --embeddings``: the index of stored embeddings is the index of the texts,
and vectors from another model (by fingerprint) are refused."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from st_multitask.batch.schema import METADATA_KEY
from st_multitask.index import Index

QUERIES = ["a man playing music", "people on the beach", "a dog runs", "stock markets fell"]


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory, corpus):
    path = tmp_path_factory.mktemp("stored") / "corpus.txt"
    path.write_text("\n".join(corpus[:400]) + "\n", encoding="utf-8")
    return path


def _hits(index):
    return [
        [(h["line"], h["text"], round(h["score"], 5)) for h in row] for row in index.search(QUERIES, top_k=10)
    ]


def test_index_from_stored_embeddings_is_the_index_of_the_texts(run, corpus_file, tmp_path):
    assert run("index", "build", str(corpus_file), "-o", str(tmp_path / "from-texts")).exit_code == 0
    assert run("embed", str(corpus_file), "-o", str(tmp_path / "vectors")).exit_code == 0  # a dataset folder
    assert run("embed", str(corpus_file), "-o", str(tmp_path / "legacy.parquet")).exit_code == 0  # one file
    for stored in ("vectors", "legacy.parquet"):
        result = run(
            "index", "build", "--embeddings", str(tmp_path / stored), "-o", str(tmp_path / f"idx-{stored}")
        )
        assert result.exit_code == 0, result.output
        a, b = Index.load(tmp_path / "from-texts"), Index.load(tmp_path / f"idx-{stored}")
        assert a.count == b.count == 400
        assert {k: a.model[k] for k in ("name", "fingerprint", "dim")} == {
            k: b.model[k] for k in ("name", "fingerprint", "dim")
        }
        assert _hits(a) == _hits(b), stored  # same texts, same lines, same scores
        vectors = np.eye(a.model["dim"], dtype=np.float32)[:3]
        assert [[h["line"] for h in r] for r in a.search(vectors, 5)] == [
            [h["line"] for h in r] for r in b.search(vectors, 5)
        ]


def test_vectors_of_another_model_are_refused(run, corpus_file, tmp_path):
    assert run("embed", str(corpus_file), "-o", str(tmp_path / "v")).exit_code == 0
    part = next((tmp_path / "v").glob("*.parquet"))
    table = pq.read_table(part)
    meta = json.loads(table.schema.metadata[METADATA_KEY])
    meta["model"].update(name="some-other-model", fingerprint="0" * 64)
    pq.write_table(table.replace_schema_metadata({METADATA_KEY: json.dumps(meta).encode()}), part)
    result = run("index", "build", "--embeddings", str(tmp_path / "v"), "-o", str(tmp_path / "idx"))
    assert result.exit_code == 2 and "were made by some-other-model" in result.stderr
    assert "pass --model some-other-model" in result.stderr and not (tmp_path / "idx").exists()
    pq.write_table(table.replace_schema_metadata({}), part)
    result = run("index", "build", "--embeddings", str(tmp_path / "v"), "-o", str(tmp_path / "idx"))
    assert result.exit_code == 2 and "has no st_multitask embedding metadata" in result.stderr
    result = run(
        "index", "build", str(corpus_file), "--embeddings", str(tmp_path / "v"), "-o", str(tmp_path / "idx")
    )
    assert result.exit_code == 2 and "one of them" in result.stderr
