"""Every reader meets generated input: it parses, or raises the library's own error naming the file.

Two kinds of input for each reader: odd bytes (random binary, other encodings, BOMs, NULs, bidi and
zero-width characters, long lines, broken multi-byte sequences) and near-valid documents (the right
structure with wrong types, huge values, missing or extra keys). Anything but a
:class:`~st_multitask.errors.StMultitaskError` escaping (``UnicodeDecodeError``, ``KeyError``,
``TypeError``, a yaml error...) fails the test, and Hypothesis shrinks it to a minimal input.
"""

from __future__ import annotations

import copy
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest
from fuzz_inputs import (
    INDEX_KEYS,
    MANIFEST_KEYS,
    conll_files,
    damaged,
    dumped,
    jsonl_files,
    near_valid,
    odd_bytes,
    recipes,
    tables,
)
from hypothesis import given
from hypothesis import strategies as st

from st_multitask.data import iter_texts, read_sentence_examples, read_token_examples
from st_multitask.errors import StMultitaskError

# ---------------------------------------------------------------------------------------------
# checking a reader


def reads_or_names(call: Any, folder: Path) -> Any:
    """``call()``'s result, or None when it raised the library's own error naming a file in ``folder``."""
    try:
        return call()
    except StMultitaskError as exc:
        assert str(folder) in str(exc), f"the error names no file: {exc}"
        return None


@pytest.fixture(scope="module")
def folder():
    """One folder per module (Hypothesis runs many examples per test; a fresh tmp_path each is not given)."""
    path = Path(tempfile.mkdtemp(prefix="stmt-fuzz-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _put(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


# ---------------------------------------------------------------------------------------------
# plain text, CSV/TSV, JSONL: the text readers


@given(
    data=odd_bytes(),
    errors=st.sampled_from(["strict", "replace"]),
    blank=st.sampled_from(["skip", "error"]),
)
def test_plain_text(folder, data, errors, blank):
    path = _put(folder, "texts.txt", data)
    rows = reads_or_names(lambda: list(iter_texts(path, errors=errors, blank=blank)), folder)
    for number, text in rows or []:
        assert number >= 1 and text.strip() and "\n" not in text


@given(
    data=st.one_of(odd_bytes(), tables(","), tables("\t")),
    fmt=st.sampled_from(["csv", "tsv"]),
    column=st.sampled_from([None, "text", "label", ""]),
)
def test_csv_tsv_texts(folder, data, fmt, column):
    path = _put(folder, f"texts.{fmt}", data)
    rows = reads_or_names(lambda: list(iter_texts(path, column=column, errors="replace")), folder)
    assert all(isinstance(text, str) and text.strip() for _, text in rows or [])


@given(
    data=st.one_of(odd_bytes(), tables(","), tables("\t")),
    fmt=st.sampled_from(["csv", "tsv"]),
    separator=st.sampled_from([None, ";", "|"]),
)
def test_csv_tsv_examples(folder, data, fmt, separator):
    path = _put(folder, f"train.{fmt}", data)
    examples = reads_or_names(lambda: read_sentence_examples(path, multi_label_separator=separator), folder)
    if examples is not None:
        assert len(examples.texts) == len(examples.labels) > 0
        examples.label_set()


@given(data=st.one_of(odd_bytes(), jsonl_files()), column=st.sampled_from([None, "text", "label"]))
def test_jsonl_texts(folder, data, column):
    path = _put(folder, "texts.jsonl", data)
    rows = reads_or_names(lambda: list(iter_texts(path, column=column)), folder)
    assert all(isinstance(text, str) and text.strip() for _, text in rows or [])


@given(data=st.one_of(odd_bytes(), jsonl_files()), separator=st.sampled_from([None, ";"]))
def test_jsonl_examples(folder, data, separator):
    path = _put(folder, "train.jsonl", data)
    examples = reads_or_names(lambda: read_sentence_examples(path, multi_label_separator=separator), folder)
    if examples is not None:
        assert len(examples.texts) == len(examples.labels) > 0
        examples.label_set()


@given(data=st.one_of(odd_bytes(), jsonl_files()))
def test_jsonl_token_examples(folder, data):
    path = _put(folder, "train.jsonl", data)
    examples = reads_or_names(lambda: read_token_examples(path), folder)
    if examples is not None:
        assert all(len(w) == len(t) > 0 for w, t in zip(examples.words, examples.tags))
        examples.label_set()


# ---------------------------------------------------------------------------------------------
# CoNLL


@given(data=st.one_of(odd_bytes(), conll_files))
def test_conll(folder, data):
    path = _put(folder, "train.conll", data)
    examples = reads_or_names(lambda: read_token_examples(path), folder)
    if examples is not None:
        assert all(len(w) == len(t) > 0 for w, t in zip(examples.words, examples.tags))
        examples.label_set()


# ---------------------------------------------------------------------------------------------
# YAML/JSON recipes (the model is a stand-in: the recipe's reading is under test, not the backbone)


@pytest.fixture(scope="module")
def tiny_backbone(tiny_model_dir):
    from st_multitask.backbone import load_backbone

    return load_backbone(str(tiny_model_dir), "cpu")


@pytest.fixture(scope="module")
def recipe_data(folder):
    data = folder / "data"
    data.mkdir()
    (data / "s.csv").write_text("text,label\ngood,pos\nbad,neg\n", encoding="utf-8")
    (data / "n.conll").write_text("EU B-ORG\nrejects O\n", encoding="utf-8")
    return data


@given(recipe=recipes())
def test_recipes(folder, recipe_data, tiny_backbone, recipe):
    from st_multitask.model import MultiTaskModel
    from st_multitask.recipe import load_recipe

    suffix, data = recipe
    path = _put(folder, f"recipe{suffix}", data)
    with mock.patch("st_multitask.recipe.MultiTaskModel", lambda *_, **__: MultiTaskModel(tiny_backbone)):
        reads_or_names(lambda: load_recipe(path), folder)


# ---------------------------------------------------------------------------------------------
# the model manifest and head configs


@pytest.fixture(scope="module")
def saved_model(folder):
    """A small saved model (packaged backbone by reference, one MLP head); its manifest and head config."""
    from st_multitask.heads import MLPHead
    from st_multitask.storage import write_model_directory

    source = folder / "model-source"
    write_model_directory(source, {"s": MLPHead(8, ["neg", "pos"], hidden=[4])}, dimension=8, backbone=None)
    manifest = json.loads((source / "st_multitask.json").read_text(encoding="utf-8"))
    config = json.loads((source / "heads" / "s" / "config.json").read_text(encoding="utf-8"))
    return source, manifest, config


def _read_model(path: Path) -> Any:
    from st_multitask.storage import read_heads, read_manifest

    manifest = read_manifest(path)
    return read_heads(path, manifest, dimension=8)


@given(data=st.data())
def test_model_manifest(folder, saved_model, data):
    source, manifest, _ = saved_model
    path = folder / "model"
    shutil.rmtree(path, ignore_errors=True)
    shutil.copytree(source, path)
    with_graph = {**manifest, "graphs": {"onnx/fp32": {"files": {"onnx/model.onnx": "0" * 64}}}}
    base = data.draw(st.sampled_from([manifest, with_graph]))
    doc = data.draw(st.one_of(odd_bytes(), near_valid(base, MANIFEST_KEYS).map(dumped).flatmap(damaged)))
    (path / "st_multitask.json").write_bytes(doc)
    reads_or_names(lambda: _read_model(path), folder)


@given(data=st.data())
def test_head_config(folder, saved_model, data):
    """A changed config.json with its hash updated in the manifest, so the head's own reading is reached."""
    from st_multitask.manifest import sha256_file

    source, manifest, config = saved_model
    path = folder / "model-head"
    shutil.rmtree(path, ignore_errors=True)
    shutil.copytree(source, path)
    config_path = path / "heads" / "s" / "config.json"
    config_path.write_bytes(
        data.draw(st.one_of(odd_bytes(), near_valid(config, MANIFEST_KEYS).map(dumped).flatmap(damaged)))
    )
    manifest = copy.deepcopy(manifest)
    manifest["heads"]["s"]["files"]["config.json"] = sha256_file(config_path)
    (path / "st_multitask.json").write_text(json.dumps(manifest), encoding="utf-8")
    reads_or_names(lambda: _read_model(path), folder)


@given(data=st.data())
def test_fast_head_config(folder, saved_model, data):
    """The fast path's head reader (decoding settings from config.json) on a changed config.json."""
    from st_multitask.loader import read_head

    source, manifest, config = saved_model
    path = folder / "model-fast-head"
    shutil.rmtree(path, ignore_errors=True)
    shutil.copytree(source, path)
    head_dir = path / "heads" / "s"
    edited = st.one_of(odd_bytes(), near_valid(config, MANIFEST_KEYS).map(dumped).flatmap(damaged))
    (head_dir / "config.json").write_bytes(data.draw(edited))
    reads_or_names(lambda: read_head(head_dir, manifest["heads"]["s"], (), None, "s"), folder)


# ---------------------------------------------------------------------------------------------
# the index manifest


@pytest.fixture(scope="module")
def saved_index(folder):
    from st_multitask.index import Index

    vectors = np.eye(384, dtype=np.float32)[:3]
    source = folder / "index-source"
    Index.from_embeddings(vectors, ["one", "two", "three"], workdir=folder).save(source)
    return source, json.loads((source / "manifest.json").read_text(encoding="utf-8"))


@given(data=st.data())
def test_index_manifest(folder, saved_index, data):
    from st_multitask.index import Index, describe

    source, manifest = saved_index
    path = folder / "index"
    shutil.rmtree(path, ignore_errors=True)
    shutil.copytree(source, path)
    doc = data.draw(st.one_of(odd_bytes(), near_valid(manifest, INDEX_KEYS).map(dumped).flatmap(damaged)))
    (path / "manifest.json").write_bytes(doc)
    reads_or_names(lambda: describe(path), folder)
    reads_or_names(lambda: Index.load(path).count, folder)
