"""The persistent index: search as search() does, every kind and storage, save/load, add, checks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from st_multitask.errors import InputError
from st_multitask.index import Index
from st_multitask.similarity import search

TEXTS = [
    "The cat jumped into the weeds.",
    "A person plays an instrument.",
    "The sky looks blue because air scatters blue light.",
    "Stocks fell sharply on Monday.",
    "A dog barked at the mailman.",
    "The central bank raised interest rates.",
]


def _vectors(n: int, dim: int = 384, seed: int = 0) -> np.ndarray:
    """Unit vectors in clusters (so that neighbours are meaningful, as with real embeddings)."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(max(1, n // 20), dim))
    x = centers[rng.integers(0, len(centers), n)] + 0.5 * rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _recall(index: Index, corpus: np.ndarray, queries: np.ndarray, k: int = 10) -> float:
    exact = [{h["corpus_id"] for h in hits} for hits in search(queries, corpus, top_k=k)]
    found = [{h["corpus_id"] for h in hits} for hits in index.search(queries, top_k=k)]
    return float(np.mean([len(a & b) / k for a, b in zip(exact, found)]))


@pytest.fixture(scope="module")
def built():
    return Index.build([(n * 2, t) for n, t in enumerate(TEXTS, 1)], source="pets.txt")


def test_flat_fp32_matches_search(built):
    queries = ["a pet animal", "share prices dropped"]
    expected = search(queries, TEXTS, top_k=3)
    got = built.search(queries, top_k=3)
    for want, have in zip(expected, got):
        assert [h["corpus_id"] for h in have] == [h["corpus_id"] for h in want]
        assert np.allclose([h["score"] for h in have], [h["score"] for h in want], atol=1e-5)
        assert [h["text"] for h in have] == [h["text"] for h in want]
    assert got[0][0]["line"] == 2 * (got[0][0]["corpus_id"] + 1) and got[0][0]["source"] == "pets.txt"
    assert len(built.search("x", top_k=50)[0]) == len(TEXTS)


def test_save_load_round_trip(built, tmp_path):
    built.save(tmp_path / "idx")
    loaded = Index.load(tmp_path / "idx")
    assert loaded.count == len(TEXTS) and loaded.settings == built.settings
    assert loaded.search("a pet animal", top_k=3) == built.search("a pet animal", top_k=3)
    with pytest.raises(InputError, match="exists already"):
        built.save(tmp_path / "idx")
    built.save(tmp_path / "idx", overwrite=True)
    manifest = json.loads((tmp_path / "idx" / "manifest.json").read_text())
    assert manifest["model"]["name"] == "all-MiniLM-L6-v2" and manifest["model"]["dim"] == 384
    assert set(manifest["files"]) == {"index.faiss", "texts.sqlite"}


@pytest.mark.parametrize(
    ("kind", "storage", "floor"),
    [("flat", "int8", 0.95), ("flat", "binary", 0.8), ("hnsw", "fp32", 0.9), ("hnsw", "int8", 0.9)],
)
def test_kinds_and_storages_find_the_neighbours(kind, storage, floor):
    data = _vectors(3050)
    corpus, queries = data[:3000], data[3000:]
    index = Index.from_embeddings(corpus, [f"t{i}" for i in range(3000)], kind=kind, storage=storage)
    assert _recall(index, corpus, queries) >= floor
    hits = index.search(queries[:1], top_k=5)[0]
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)


def test_binary_rescoring_scores_are_cosines(tmp_path):
    corpus = _vectors(500)
    index = Index.from_embeddings(corpus, [str(i) for i in range(500)], storage="binary")
    assert index.settings.rescore == "int8"
    hit = index.search(corpus[7:8], top_k=1)[0][0]
    assert hit["corpus_id"] == 7 and hit["score"] == pytest.approx(1.0, abs=0.01)
    index.save(tmp_path / "bin")
    assert Index.load(tmp_path / "bin").search(corpus[7:8], top_k=1)[0][0]["corpus_id"] == 7
    plain = Index.from_embeddings(corpus, [str(i) for i in range(500)], storage="binary", rescore=None)
    assert plain.search(corpus[7:8], top_k=1)[0][0]["score"] == 1.0  # 1 - 2 * hamming / dim


def test_add_then_save_in_place(built, tmp_path):
    path = tmp_path / "idx"
    built.save(path)
    index = Index.load(path)
    index.add(["A kitten sleeps on the sofa."], source="more.txt")
    assert Index.load(path).count == len(TEXTS)  # nothing changes on disk before save
    index.save(path)
    again = Index.load(path)
    assert again.count == len(TEXTS) + 1 and again.sources() == ["pets.txt", "more.txt"]
    assert again.search("A kitten sleeps on the sofa.", top_k=1)[0][0] | {"score": 0} == {
        "corpus_id": len(TEXTS),
        "score": 0,
        "text": "A kitten sleeps on the sofa.",
        "line": 1,
        "source": "more.txt",
    }
    assert sorted(p.name for p in path.iterdir()) == ["index.2.faiss", "manifest.json", "texts.2.sqlite"]


def test_from_embeddings_and_add_vectors_check_widths():
    index = Index.from_embeddings(_vectors(4), ["a", "b", "c", "d"], kind="hnsw")
    index.add(["e"], vectors=_vectors(1, seed=3))
    assert index.count == 5
    with pytest.raises(InputError, match="dimension 8"):
        Index.from_embeddings(np.ones((2, 8)), ["a", "b"])
    with pytest.raises(InputError, match="2 vectors for 3 texts"):
        Index.from_embeddings(_vectors(2), ["a", "b", "c"])
    with pytest.raises(InputError, match="dimension 8"):
        index.search(np.ones((1, 8)))
    with pytest.raises(InputError, match="Unknown index kind 'ivf'. Valid: flat, hnsw"):
        Index.from_embeddings(_vectors(2), ["a", "b"], kind="ivf")
    with pytest.raises(InputError, match="Unknown index storage 'fp16'. Valid: fp32, int8, binary."):
        Index.from_embeddings(_vectors(2), ["a", "b"], storage="fp16")
    with pytest.raises(InputError, match="top_k"):
        index.search(_vectors(1), top_k=0)


def test_add_refuses_another_column(built):
    with pytest.raises(
        InputError, match="more.csv: the index was built from the column 'text', not 'review'"
    ):
        built.add(["x"], source="more.csv", column="review")


@pytest.fixture
def saved(built, tmp_path):
    built.save(tmp_path / "idx")
    return tmp_path / "idx"


def test_not_an_index(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        Index.load(tmp_path / "nope")
    (tmp_path / "plain").mkdir()
    with pytest.raises(InputError, match=r"plain is not a st_multitask index: manifest.json is missing"):
        Index.load(tmp_path / "plain")
    (tmp_path / "plain" / "manifest.json").write_text("{}")
    with pytest.raises(InputError, match="manifest.json is not a st_multitask index manifest"):
        Index.load(tmp_path / "plain")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda f: f.unlink(), "index.faiss is missing"),
        (lambda f: f.write_bytes(f.read_bytes()[:-10]), "index.faiss is truncated"),
        (
            lambda f: f.write_bytes(f.read_bytes()[:-1] + bytes([f.read_bytes()[-1] ^ 1])),
            "index.faiss does not match",
        ),
    ],
)
def test_damaged_files_are_named(saved, damage, message):
    damage(saved / "index.faiss")
    with pytest.raises(InputError, match=message):
        Index.load(saved)


def test_altered_texts_are_named(saved):
    data = bytearray((saved / "texts.sqlite").read_bytes())
    at = data.find(b"Stocks")
    data[at] = ord("s")
    (saved / "texts.sqlite").write_bytes(bytes(data))
    with pytest.raises(InputError, match="texts.sqlite does not match its sha256"):
        Index.load(saved)


def test_another_model_is_refused(tiny_model_dir, tmp_path):
    from st_multitask import embed

    vectors = embed(TEXTS, model=str(tiny_model_dir), backend="torch")
    Index.from_embeddings(vectors, TEXTS, model=str(tiny_model_dir)).save(tmp_path / "tiny")
    with pytest.raises(InputError, match=f"built by the model {tiny_model_dir.resolve()}"):
        Index.load(tmp_path / "tiny", model="all-MiniLM-L6-v2")
    index = Index.load(tmp_path / "tiny")  # the builder embeds the queries
    assert index.builder == str(tiny_model_dir.resolve())
    assert index.search(TEXTS[3], top_k=1)[0][0]["corpus_id"] == 3
    with pytest.raises(InputError, match="built by the model"):
        Index.load(tmp_path / "tiny").use_model(_default_encoder())


def _default_encoder():
    from st_multitask.embedding import resolve_model

    return resolve_model(None)


def test_leftovers_of_a_killed_add_are_ignored_then_replaced(saved):
    (saved / "index.2.faiss").write_bytes(b"half a file")
    (saved / "texts.2.sqlite").write_bytes(b"not a database")
    (saved / ".add-stale").mkdir()
    index = Index.load(saved)  # only what manifest.json lists counts
    assert index.count == len(TEXTS)
    index.add(["one more"], source="more.txt").save(saved)
    assert Index.load(saved).count == len(TEXTS) + 1
    assert sorted(p.name for p in saved.iterdir()) == ["index.2.faiss", "manifest.json", "texts.2.sqlite"]


def test_an_index_saved_with_the_old_precision_key_still_loads(tmp_path):
    from st_multitask.index import describe

    corpus = _vectors(200)
    folder = tmp_path / "old"
    Index.from_embeddings(corpus, [str(i) for i in range(200)], storage="binary").save(folder)
    # as saved before the setting was renamed: "precision" where "storage" is now. manifest.json
    # lists the sha256 of the other files but is not hashed itself, so nothing else changes
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text())
    assert "storage" in manifest["index"] and "precision" not in manifest["index"]
    manifest["index"] = {("precision" if k == "storage" else k): v for k, v in manifest["index"].items()}
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    index = Index.load(folder)  # every file checked against its sha256
    assert (index.settings.storage, index.settings.rescore) == ("binary", "int8")
    assert index.search(corpus[7:8], top_k=1)[0][0]["corpus_id"] == 7
    assert describe(folder)["storage"] == "binary"
    index.add(["one more"], vectors=_vectors(1, seed=5), source="more.txt").save(folder)
    saved = json.loads(path.read_text())["index"]  # written again: with the new key
    assert saved["storage"] == "binary" and "precision" not in saved
    assert Index.load(folder).count == 201


def test_the_ids_of_stored_embeddings_come_back_with_every_hit(posts_index):
    index = Index.load(posts_index)
    assert index.id_columns == ("post_id",)
    hits = index.search(["a pet animal", "share prices dropped"], top_k=1)
    assert [h[0]["ids"] for h in hits] == [{"post_id": 42}, {"post_id": 23}]
    assert hits[1][0]["text"] == "Stocks fell sharply on Monday."


def test_ids_given_with_the_texts(tmp_path):
    vectors = _vectors(4)
    ids = {"post_id": np.array([17, 18, 19, 20]), "slug": ["a", "b", None, "d"]}
    index = Index.from_embeddings(vectors[:3], TEXTS[:3], ids={k: v[:3] for k, v in ids.items()})
    index.add([TEXTS[3]], vectors[3:], ids={"slug": ["d"], "post_id": [20]})  # any order of the columns
    index.add([TEXTS[4]], _vectors(1, seed=3))  # without ids: null ids
    index.save(tmp_path / "idx")
    loaded = Index.load(tmp_path / "idx")
    assert loaded.id_columns == ("post_id", "slug")
    assert loaded.search(vectors[2:3], top_k=1)[0][0]["ids"] == {"post_id": 19, "slug": None}
    assert loaded.search(vectors[3:4], top_k=1)[0][0]["ids"] == {"post_id": 20, "slug": "d"}
    assert type(loaded.search(vectors[:1], top_k=1)[0][0]["ids"]["post_id"]) is int  # not numpy's
    hit = loaded.search(_vectors(1, seed=3), top_k=1)[0][0]
    assert hit["text"] == TEXTS[4] and hit["ids"] == {"post_id": None, "slug": None}
    assert json.loads((tmp_path / "idx" / "manifest.json").read_text())["texts"]["id_columns"] == [
        "post_id",
        "slug",
    ]
    with pytest.raises(InputError, match="keeps the ids 'post_id', 'slug', not 'id'"):
        loaded.add(["x"], _vectors(1), ids={"id": [1]})
    with pytest.raises(InputError, match="got 2 ids a column for 1 texts"):
        loaded.add(["x"], _vectors(1), ids={"post_id": [1, 2], "slug": ["a", "b"]})
    with pytest.raises(InputError, match="whole numbers, finite numbers, text"):
        Index.from_embeddings(vectors[:1], ["x"], ids={"when": [float("nan")]})
    with pytest.raises(InputError, match="whole numbers, finite numbers, text"):
        Index.from_embeddings(vectors[:1], ["x"], ids={"when": [{"nested": 1}]})


def test_build_keeps_ids_of_streamed_texts():
    index = Index.build(iter(TEXTS), ids={"post_id": list(range(100, 106))}, chunk_size=4)
    hits = index.search("a pet animal", top_k=len(TEXTS))[0]
    assert all(h["ids"] == {"post_id": 100 + h["corpus_id"]} for h in hits)
    with pytest.raises(InputError, match="got 2 ids a column for more texts"):
        Index.build(TEXTS[:3], ids={"post_id": [1, 2]})


def test_an_index_saved_before_ids_were_kept_still_loads(tmp_path):
    import sqlite3

    from st_multitask.manifest import sha256_file

    folder = tmp_path / "old"
    vectors = _vectors(3)
    Index.from_embeddings(vectors, TEXTS[:3], source="pets.txt").save(folder)
    # as the previous version wrote it: no ids column in texts.sqlite, no texts.id_columns
    texts = folder / "texts.sqlite"
    with sqlite3.connect(texts) as db:
        db.execute("ALTER TABLE texts DROP COLUMN ids")
    db.close()
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text())
    assert manifest["texts"].pop("id_columns") == []
    manifest["files"]["texts.sqlite"] = {"bytes": texts.stat().st_size, "sha256": sha256_file(texts)}
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    index = Index.load(folder)
    assert index.id_columns == ()
    hit = index.search(vectors[1:2], top_k=1)[0][0]  # as the previous version gave it: no ids
    assert hit | {"score": 0} == {
        "corpus_id": 1,
        "score": 0,
        "text": TEXTS[1],
        "line": 2,
        "source": "pets.txt",
    }
    index.add([TEXTS[3]], _vectors(1, seed=4), source="more.txt").save(folder)
    again = Index.load(folder)
    assert again.count == 4 and again.search(vectors[1:2], top_k=1)[0][0]["text"] == TEXTS[1]
