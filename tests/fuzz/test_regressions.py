"""Defects the fuzzers found, each pinned by its minimal failing input."""

from __future__ import annotations

import json
import re

import pytest

from st_multitask.data import read_texts
from st_multitask.errors import InputError, ModelLoadError
from st_multitask.recipe import load_recipe


def test_recipe_not_utf8_names_the_file(tmp_path):
    """`stmt train --config` on a recipe starting with byte 0xff raised UnicodeDecodeError."""
    path = tmp_path / "recipe.yaml"
    path.write_bytes(b"\xff")
    with pytest.raises(InputError, match=r"recipe\.yaml is not valid UTF-8 \(byte 0xff at offset 0\)"):
        load_recipe(path)


def test_cli_train_recipe_not_utf8_is_one_line(run, tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_bytes(b"\xff")
    result = run("train", "--config", str(path), "-o", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"Error: {path} is not valid UTF-8 (byte 0xff at offset 0); save the recipe as UTF-8."
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"text": 1' + "0" * 4300 + "}", "line 1 holds a number too long to read"),
        ("[" * 100_000, "line 1 is nested too deeply to read as JSON"),
    ],
)
def test_jsonl_huge_number_or_deep_nesting(tmp_path, line, message):
    """json.loads raised ValueError (int over 4,300 digits) and RecursionError, past the reader."""
    path = tmp_path / "texts.jsonl"
    path.write_text(line, encoding="utf-8")
    with pytest.raises(InputError, match=f"texts.jsonl {message}"):
        read_texts(path)


# -- recipes: each of these escaped load_recipe as a KeyError, TypeError or an error naming no file


@pytest.mark.parametrize(
    ("tasks", "message"),
    [
        ({"s": {"train": None}}, "task 's' needs a 'train' file"),  # was KeyError: 'train'
        ({"s": {"head": {"kind": ["mlp"]}, "train": "t.csv"}}, "the head kind must be a name"),  # unhashable
        ({"s": {"head": {"kind": "svm"}, "train": "t.csv"}}, "task 's': Unknown head kind 'svm'"),  # no file
        ({"s": {"head": [], "train": "t.csv"}}, "'head' must be a mapping"),
        ({"s": {"train": "t.csv", "text_column": 1}}, "text_column must be a string"),
        ({"s": {"train": "t.csv", "labels": "pos"}}, "labels must be a list"),  # was split into letters
    ],
)
def test_recipe_task_shapes(tmp_path, tiny_model_dir, tasks, message):
    path = tmp_path / "recipe.json"
    path.write_text(
        json.dumps({"model": {"backbone": str(tiny_model_dir)}, "tasks": tasks}), encoding="utf-8"
    )
    with pytest.raises(InputError, match=re.escape(f"{path}: ") + ".*" + re.escape(message)):
        load_recipe(path)


@pytest.mark.parametrize(
    ("training", "message"),
    [
        ({"seed": "x"}, "training setting seed must be int, not 'x'"),  # TypeError in set_seed
        ({"freeze": None}, "training setting freeze must be list[str], not None"),  # TypeError in fit
        ({"freeze": [None]}, "training setting freeze must be list[str], not [None]"),  # failed after start
        ({"warmup_ratio": "a"}, "training setting warmup_ratio must be float"),  # TypeError: '<='
        ({"loss_weights": []}, "training setting loss_weights must be dict[str, float]"),  # AttributeError
        ([1], "'training' must be a mapping of settings, not a list"),  # TypeError in dict()
    ],
)
def test_recipe_training_types(tmp_path, training, message):
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps({"tasks": {"s": {"train": "t.csv"}}, "training": training}), encoding="utf-8")
    with pytest.raises(InputError, match=re.escape(f"{path}: {message}")):
        load_recipe(path)


def test_recipe_freeze_as_text_still_works(tmp_path):
    path = tmp_path / "recipe.json"
    path.write_text(
        json.dumps({"tasks": {"s": {"train": "t.csv"}}, "training": {"freeze": 3}}), encoding="utf-8"
    )
    with pytest.raises(InputError, match="training setting freeze must be list"):
        load_recipe(path)
    from st_multitask.recipe import _training_config

    assert _training_config({"freeze": "backbone"}, "r.yaml").freeze == ["backbone"]


def test_cli_set_value_not_yaml(run, tmp_path):
    """`stmt train --set lr_decay=[` raised yaml.parser.ParserError."""
    result = run(
        "train", "--config", str(tmp_path / "r.yaml"), "-o", str(tmp_path / "o"), "--set", "lr_decay=["
    )
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "Error: --set 'lr_decay=[': the value is not valid YAML (expected the node content, but found '<stream end>')."
    ]


def test_cli_yaml_error_is_one_line(run, tmp_path):
    """YAML's own report (a caret under the column) came out as five lines."""
    path = tmp_path / "recipe.yaml"
    path.write_text("tasks:\n  s: {\n", encoding="utf-8")
    result = run("train", "--config", str(path), "-o", str(tmp_path / "o"))
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {path} is not valid YAML: while parsing")


# -- the model manifest and head configs


def _saved_model(tmp_path):
    from st_multitask.heads import MLPHead
    from st_multitask.storage import write_model_directory

    write_model_directory(tmp_path, {"s": MLPHead(8, ["neg", "pos"], hidden=[4])}, dimension=8, backbone=None)
    return json.loads((tmp_path / "st_multitask.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("heads", "message"),
    [
        ({"s": None}, "head 's' must be an object"),  # was AttributeError: 'NoneType' has no 'get'
        ({"s": {"kind": "mlp", "labels": [], "files": []}}, "must list its files"),  # AttributeError
        ({"../s": {"kind": "mlp", "labels": []}}, "head name '../s' is not a folder name"),
        ({"s": {"kind": "mlp", "labels": [], "files": {"../config.json": "0"}}}, "must list its files"),
    ],
)
def test_model_manifest_head_records(tmp_path, heads, message):
    from st_multitask.storage import read_manifest

    manifest = _saved_model(tmp_path)
    (tmp_path / "st_multitask.json").write_text(json.dumps({**manifest, "heads": heads}), encoding="utf-8")
    with pytest.raises(
        ModelLoadError, match=re.escape(f"{tmp_path / 'st_multitask.json'}") + ".*" + re.escape(message)
    ):
        read_manifest(tmp_path)


def test_head_config_unknown_kind_names_the_file(tmp_path):
    """config.json with "kind": null gave 'Unknown head kind None' without naming the file."""
    from st_multitask.manifest import sha256_file
    from st_multitask.storage import read_heads, read_manifest

    manifest = _saved_model(tmp_path)
    config = tmp_path / "heads" / "s" / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "kind": None}), encoding="utf-8")
    manifest["heads"]["s"]["files"]["config.json"] = sha256_file(config)
    (tmp_path / "st_multitask.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(ModelLoadError, match=re.escape(f"{config}: Unknown head kind None")):
        read_heads(tmp_path, read_manifest(tmp_path), dimension=8)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"kind": ["mlp"]}, "kind or labels differ"),
        ({"config": None}, "is not a valid head config"),
        ({"config": {"labels": None}}, "kind or labels differ"),
        ({"config": {"threshold": "high"}}, "threshold must be a number"),
    ],
)
def test_fast_head_config_shapes(tmp_path, edit, message):
    """The fast path's head reader names the file of every damaged config.json (the numpy twins'
    loader once raised TypeError on such files)."""
    from st_multitask.loader import read_head

    _saved_model(tmp_path)
    config = tmp_path / "heads" / "s" / "config.json"
    saved = json.loads(config.read_text(encoding="utf-8"))
    if "config" in edit and edit["config"] is not None:
        edit = {"config": {**saved["config"], **edit["config"]}}
    config.write_text(json.dumps({**saved, **edit}), encoding="utf-8")
    info = json.loads((tmp_path / "st_multitask.json").read_text(encoding="utf-8"))["heads"]["s"]
    with pytest.raises(ModelLoadError, match=re.escape(f"{config.parent}") + ".*" + re.escape(message)):
        read_head(config.parent, info, (), None, "s")


# -- the index manifest


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"roles": None}, "roles must name the index and texts files"),  # TypeError: not subscriptable
        ({"texts": None}, "texts must be an object"),  # AttributeError in describe
        ({"texts": {"sources": None}}, "texts.sources must be a list"),  # TypeError: len(None)
        ({"roles": {"index": "../x", "texts": "texts.sqlite"}}, "every role must name a file listed"),
        ({"count": "3"}, "count and generation must be whole numbers"),
        ({"index": {"kind": "flat"}}, "index needs its kind and storage"),  # KeyError in describe
    ],
)
def test_index_manifest_shapes(tmp_path, edit, message):
    import numpy as np

    from st_multitask.index import Index, describe

    folder = tmp_path / "index"
    Index.from_embeddings(np.eye(384, dtype=np.float32)[:2], ["one", "two"], workdir=tmp_path).save(folder)
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    (folder / "manifest.json").write_text(json.dumps({**manifest, **edit}), encoding="utf-8")
    expected = re.escape(f"{folder / 'manifest.json'} is not a st_multitask index manifest ({message}")
    with pytest.raises(InputError, match=expected):
        describe(folder)
    with pytest.raises(InputError, match=expected):
        Index.load(folder)


def test_server_predict_empty_task_list_is_422():
    """POST /predict with "tasks": [] answered 200 with "predictions": null, against its schema."""
    from fastapi.testclient import TestClient

    from st_multitask import MultiTaskModel
    from st_multitask.serve import create_app

    with TestClient(create_app(MultiTaskModel.default())) as client:
        response = client.post("/predict", json={"inputs": "Batcher", "tasks": []})
    assert response.status_code == 422
    assert "tasks" in response.text


@pytest.mark.parametrize(
    ("line", "tag"),
    [('{"tokens":["",""],"tags":[null,""]}', "None"), ('{"tokens": ["a"], "tags": [1]}', "1")],
)
def test_jsonl_tag_that_is_not_a_string(tmp_path, line, tag):
    """A JSONL tag that is null or a number raised TypeError from the IOB2 pattern (the first input
    is the thorough run's shrunk example)."""
    from st_multitask.data import read_token_examples

    path = tmp_path / "ner.jsonl"
    path.write_text(line + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=re.escape(f"{path} line 1: tag {tag} is not IOB2")):
        read_token_examples(path)


def test_token_data_unknown_format_names_the_file(tmp_path):
    from st_multitask.data import read_token_examples

    with pytest.raises(InputError, match=re.escape(f"{tmp_path / 'x.txt'}: unknown token data format 'csv'")):
        read_token_examples(tmp_path / "x.txt", fmt="csv")
