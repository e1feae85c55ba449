"""An index directory's generations: their file names, writing and opening one, and switching a
grown index to the next generation in its own directory."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from st_multitask.errors import InputError
from st_multitask.index.disk import (
    generation_files,
    next_generation,
    open_generation,
    private_copies,
    write_generation,
)
from st_multitask.index.generation import Generation
from st_multitask.index.settings import IndexSettings

MODEL = {"name": "toy", "dim": 4}


def _written(tmp_path, rescore: str | None = "fp32"):
    data = Generation.empty(tmp_path, IndexSettings(rescore=rescore), dict(MODEL), "body", ("post_id",))
    data.add([1, 2], ["one", "two"], np.eye(4, dtype=np.float32)[:2], "in.csv", [(17,), (18,)])
    home = tmp_path / "index"
    home.mkdir()
    write_generation(home, replace(data, number=1))
    return home


def test_file_names_carry_the_generation_after_the_first():
    assert generation_files(1, "fp32") == {
        "index": "index.faiss",
        "texts": "texts.sqlite",
        "vectors": "vectors.fp32",
    }
    assert generation_files(2, None) == {"index": "index.2.faiss", "texts": "texts.2.sqlite"}


def test_a_written_generation_opens_as_it_was(tmp_path):
    home = _written(tmp_path)
    opened = open_generation(home)
    assert (opened.number, opened.count, opened.column, opened.id_columns) == (1, 2, "body", ("post_id",))
    assert opened.texts.get([1]) == {1: (2, "in.csv", "two", (18,))}
    assert opened.vectors is not None and opened.vectors.count() == 2
    manifest = json.loads((home / "manifest.json").read_text())
    assert sorted(manifest["files"]) == ["index.faiss", "texts.sqlite", "vectors.fp32"]


def test_a_structure_that_disagrees_with_the_manifest_is_refused(tmp_path):
    home = _written(tmp_path)
    manifest = json.loads((home / "manifest.json").read_text())
    manifest["count"] = 3
    (home / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InputError, match="index.faiss does not match .*manifest.json: altered"):
        open_generation(home)


def test_the_next_generation_replaces_the_files_and_the_work_folders(tmp_path):
    home = _written(tmp_path)
    opened = open_generation(home)
    work, texts, vectors = private_copies(home, opened.texts, opened.vectors)
    assert work.parent == home and work.name.startswith(".add-")
    grown = replace(opened, texts=texts, vectors=vectors)
    grown.add([3], ["three"], np.eye(4, dtype=np.float32)[2:3], "more.csv", [(19,)])
    assert open_generation(home).count == 2  # the directory is unchanged until the switch
    switched = next_generation(home, grown)
    assert switched.number == 2 and switched.texts.count() == 3
    assert sorted(p.name for p in home.iterdir()) == [
        "index.2.faiss",
        "manifest.json",
        "texts.2.sqlite",
        "vectors.2.fp32",
    ]
    assert open_generation(home).texts.get([2]) == {2: (3, "more.csv", "three", (19,))}
