"""Every command meets generated files: it exits 0, or 2 with one error line; never a traceback.

The files come from the same strategies as the reader tests (odd bytes, near-valid CSV, JSONL,
CoNLL, recipes, model and index manifests). Models load once per process: the packaged MiniLM in
torch (cached by ``cached_backbone``) and the bundled default model (cached here), and training
recipes run on the tiny test backbone, so a valid recipe trains in a moment.
"""

from __future__ import annotations

import copy
import functools
import itertools
import json
import os
import shutil
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from click.testing import CliRunner
from fuzz_inputs import (
    BASE_RECIPE,
    INDEX_KEYS,
    MANIFEST_KEYS,
    cli_examples,
    conll_files,
    damaged,
    dumped,
    jsonl_files,
    near_valid,
    odd_bytes,
    odd_text,
    recipes,
    tables,
)
from hypothesis import given, settings
from hypothesis import strategies as st

TORCH = ["--backend", "torch"]
_counter = itertools.count()

words = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=30
)


def labelled(labels: list[str]) -> st.SearchStrategy[tuple[str, bytes]]:
    """A labelled JSONL file with these labels."""
    rows = st.lists(st.tuples(words, st.sampled_from(labels)), min_size=1, max_size=4)
    return rows.map(
        lambda rs: (".jsonl", "\n".join(json.dumps({"text": t, "label": lab}) for t, lab in rs).encode())
    )


tagged = st.lists(
    st.tuples(words, st.sampled_from(["O", "B-PER", "I-PER", "B-ORG"])), min_size=1, max_size=6
).map(
    lambda rows: (".conll", "\n".join(f"{w.split()[0] if w.split() else 'x'} {t}" for w, t in rows).encode())
)
BUNDLED = {  # data the bundled model's heads know
    "sentiment": labelled(["negative", "positive"]),
    "topic": labelled(["business", "sport", "tech"]),
    "ner": tagged,
}
clean_files = st.one_of(  # files the commands accept, so that the runs also reach the model and the output
    st.lists(words, min_size=1, max_size=4).map(lambda ts: (".txt", "\n".join(ts).encode())),
    *BUNDLED.values(),
)
any_file = st.one_of(
    clean_files,
    st.tuples(st.sampled_from([".txt", "", ".md"]), odd_bytes()),
    st.tuples(st.just(".csv"), st.one_of(tables(","), odd_bytes())),
    st.tuples(st.just(".tsv"), st.one_of(tables("\t"), odd_bytes())),
    st.tuples(st.sampled_from([".jsonl", ".ndjson"]), st.one_of(jsonl_files(), odd_bytes())),
    st.tuples(st.just(".conll"), conll_files),
)
cli_settings = settings(max_examples=cli_examples())


@pytest.fixture(scope="module")
def folder():
    path = Path(tempfile.mkdtemp(prefix="stmt-cli-fuzz-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def stmt(folder):
    """stmt(*args) -> click Result, asserting exit 0, or 2 with one error line, and no traceback.

    The bundled default model is loaded once for every predict and evaluate call."""
    from st_multitask.cli import _common, evaluate, predict

    cached = functools.lru_cache(maxsize=2)(_common.load_pipeline)

    def load(model_dir, device, backend="auto", precision="fp32", heads=True):
        if model_dir is None:
            return cached(None, device, backend, precision, heads)
        return _common.load_pipeline(model_dir, device, backend, precision, heads)

    def run(*args: str):
        result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=True)
        exits[" ".join(map(str, args[:2] if args[0] == "index" else args[:1]))][str(result.exit_code)] += 1
        lines = result.stderr.strip().splitlines()
        where = f"stmt {' '.join(map(str, args))}: exit {result.exit_code}, stderr {result.stderr!r}"
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception  # the traceback the user would have seen
        assert result.exit_code in (0, 2), where
        assert "Traceback" not in result.stderr, where
        if result.exit_code == 2:  # notes and progress may come first; the error is the last line
            assert lines and lines[-1].startswith("Error: "), where
            assert not any(line.startswith("Error: ") for line in lines[:-1]), where
        return result

    from st_multitask.cli import main

    exits: dict[str, Counter[str]] = defaultdict(Counter)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(predict, "load_pipeline", load)
        patch.setattr(evaluate, "load_pipeline", load)
        yield run
    if os.environ.get("STMT_FUZZ_SUMMARY"):  # a folder: exit codes by command, for docs/fuzzing.md
        path = Path(os.environ["STMT_FUZZ_SUMMARY"]) / "cli-exit-codes.json"
        path.write_text(json.dumps(exits, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _file(folder: Path, generated: tuple[str, bytes], stem: str = "input") -> Path:
    suffix, data = generated
    path = folder / f"{stem}-{next(_counter)}{suffix}"
    path.write_bytes(data)
    return path


def _fresh(folder: Path, stem: str) -> Path:
    return folder / f"{stem}-{next(_counter)}"


# ---------------------------------------------------------------------------------------------
# commands on text files


@cli_settings
@given(
    a=any_file,
    b=any_file,
    mode=st.sampled_from(["best", "pairwise", "matrix"]),
    document=st.booleans(),
    errors=st.sampled_from(["strict", "replace"]),
    fmt=st.sampled_from(["table", "csv", "json", "jsonl"]),
)
def test_similarity(stmt, folder, a, b, mode, document, errors, fmt):
    extra = ["--document"] if document else []
    stmt("similarity", _file(folder, a), _file(folder, b), "--mode", mode, "--errors", errors,
         "--format", fmt, *extra, *TORCH)  # fmt: skip


@cli_settings
@given(
    source=any_file,
    column=st.sampled_from([None, "text", "label"]),
    out=st.sampled_from([".npy", ".jsonl", ".csv", "-"]),
    errors=st.sampled_from(["strict", "replace"]),
)
def test_embed(stmt, folder, source, column, out, errors):
    output = "-" if out == "-" else _fresh(folder, "vectors").with_suffix(out)
    extra = [] if column is None else ["--column", column]
    stmt("embed", _file(folder, source), "-o", output, "--errors", errors, *extra, *TORCH)


@cli_settings
@given(source=any_file, column=st.sampled_from([None, "text"]), query=odd_text)
def test_search(stmt, folder, source, column, query):
    extra = [] if column is None else ["--column", column]
    stmt("search", "--corpus", _file(folder, source), "--", query or "a pet", *extra, *TORCH)


@cli_settings
@given(
    source=any_file,
    kind=st.sampled_from(["flat", "hnsw"]),
    storage=st.sampled_from(["fp32", "int8", "binary"]),
    errors=st.sampled_from(["strict", "replace"]),
)
def test_index_build(stmt, folder, source, kind, storage, errors):
    stmt("index", "build", _file(folder, source), "-o", _fresh(folder, "index"), "--kind", kind,
         "--storage", storage, "--errors", errors, *TORCH)  # fmt: skip


@cli_settings
@given(
    source=any_file,
    fmt=st.sampled_from(["table", "json", "jsonl", "csv"]),
    column=st.sampled_from([None, "text"]),
)
def test_predict(stmt, folder, source, fmt, column):
    extra = [] if column is None else ["--column", column]
    stmt("predict", "-i", _file(folder, source), "--format", fmt, *extra, *TORCH)


@cli_settings
@given(data=st.data(), task=st.sampled_from(sorted(BUNDLED)), fmt=st.sampled_from(["table", "json"]))
def test_evaluate(stmt, folder, data, task, fmt):
    source = data.draw(st.one_of(BUNDLED[task], any_file))
    stmt("evaluate", "--task", task, "--data", _file(folder, source), "--format", fmt, *TORCH)


# ---------------------------------------------------------------------------------------------
# train: recipes on the tiny backbone


@pytest.fixture(scope="module")
def recipe_base(folder, tiny_model_dir):
    data = folder / "data"
    data.mkdir()
    (data / "s.csv").write_text("text,label\ngood,pos\nbad,neg\n", encoding="utf-8")
    (data / "n.conll").write_text("EU B-ORG\nrejects O\n", encoding="utf-8")
    base = copy.deepcopy(BASE_RECIPE)
    base["model"]["backbone"] = str(tiny_model_dir)
    return base


set_value = st.sampled_from(
    ["epochs=1", "seed=x", "lr_decay=[", "a=b=c", "x", "freeze={", "epochs=: :", "=1"]
)


@cli_settings
@given(data=st.data())
def test_train(stmt, folder, recipe_base, data):
    suffix, content = data.draw(recipes(recipe_base))
    path = folder / f"recipe-{next(_counter)}{suffix}"  # beside data/, which the recipe names
    path.write_bytes(content)
    sets = [x for value in data.draw(st.lists(set_value | odd_text, max_size=2)) for x in ("--set", value)]
    stmt("train", "--config", path, "-o", _fresh(folder, "model"), "--quiet", *sets)


# ---------------------------------------------------------------------------------------------
# model and index directories with generated manifests


def _with_manifest(folder: Path, source: Path, name: str, keys: list[str], data: st.DataObject) -> Path:
    """A copy of the directory ``source`` whose manifest ``name`` is generated: odd bytes or an edit."""
    path = _fresh(folder, source.name)
    shutil.copytree(source, path)
    manifest = json.loads((path / name).read_text(encoding="utf-8"))
    (path / name).write_bytes(
        data.draw(st.one_of(odd_bytes(), near_valid(manifest, keys).map(dumped).flatmap(damaged)))
    )
    return path


@pytest.fixture(scope="module")
def model_dir(folder, tiny_model_dir):
    """A small saved model: the tiny backbone and one MLP head."""
    from st_multitask.backbone import load_backbone
    from st_multitask.heads import MLPHead
    from st_multitask.storage import write_model_directory

    path = folder / "model-source"
    backbone = load_backbone(str(tiny_model_dir), "cpu")
    write_model_directory(
        path, {"s": MLPHead(32, ["neg", "pos"], hidden=[4])}, dimension=32, backbone=backbone
    )
    return path


@cli_settings
@given(data=st.data(), fmt=st.sampled_from(["table", "json"]))
def test_info(stmt, folder, model_dir, data, fmt):
    path = _with_manifest(folder, model_dir, "st_multitask.json", MANIFEST_KEYS, data)
    stmt("info", "--model", path, "--format", fmt)


@pytest.fixture(scope="module")
def index_dir(folder, stmt):
    source = folder / "corpus.txt"
    source.write_text("The cat sat.\nStocks fell.\nA dog barked.\n", encoding="utf-8")
    path = folder / "index-source"
    stmt("index", "build", source, "-o", path, *TORCH)
    return path


@cli_settings
@given(data=st.data(), command=st.sampled_from(["info", "search"]))
def test_index_directory(stmt, folder, index_dir, data, command):
    path = _with_manifest(folder, index_dir, "manifest.json", INDEX_KEYS, data)
    if command == "info":
        stmt("index", "info", path)
    else:
        stmt("search", "--index", path, "a pet animal", *TORCH)
