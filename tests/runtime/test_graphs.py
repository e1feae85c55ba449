"""Where graphs come from: the per-user cache (keyed, verified, rebuilt when damaged) and
exported model directories (hash-checked, tied to their model)."""

from __future__ import annotations

import json
import shutil

import pytest

from st_multitask.errors import InputError, ModelLoadError
from st_multitask.runtime import EngineSpec as BackendChoice
from st_multitask.runtime.graphs import find_graph


@pytest.fixture
def private_cache(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("STMT_CACHE", str(cache))
    return cache


def entries(cache):
    """The graph entries of a cache (not the file hashes kept beside them)."""
    return [p.name for p in cache.iterdir() if p.name != "hashes.json"]


def test_first_use_exports_once_then_reuses(tiny_model_dir, private_cache, capfd):
    choice = BackendChoice("onnx", "fp32")
    graph, record, _ = find_graph(tiny_model_dir, choice)
    assert "exporting model to onnx fp32 once into" in capfd.readouterr().err
    assert graph.parent.parent.parent == private_cache and record["max_abs_diff_vs_torch"] <= 1e-4
    again, _, _ = find_graph(tiny_model_dir, choice)
    assert again == graph and capfd.readouterr().err == ""
    assert entries(private_cache) == [graph.parent.parent.name]  # no leftovers


def test_a_damaged_cache_entry_is_rebuilt(tiny_model_dir, private_cache, capfd):
    choice = BackendChoice("onnx", "fp32")
    graph, _, _ = find_graph(tiny_model_dir, choice)
    graph.write_bytes(graph.read_bytes()[:1000])  # truncated
    capfd.readouterr()
    rebuilt, _, _ = find_graph(tiny_model_dir, choice)
    err = capfd.readouterr().err
    assert "is damaged" in err and "does not match its sha256" in err and rebuilt.stat().st_size > 1000


def test_the_cache_key_follows_model_files_and_runtime(tiny_model_dir, private_cache, monkeypatch, tmp_path):
    import st_multitask.runtime.layout as session

    choice = BackendChoice("onnx", "fp32")
    first, _, _ = find_graph(tiny_model_dir, choice)
    monkeypatch.setattr(session, "runtime_version", lambda backend: "onnxruntime 99.0")
    newer, _, _ = find_graph(tiny_model_dir, choice)
    assert newer.parent.parent != first.parent.parent  # a runtime upgrade never uses a stale graph
    changed = tmp_path / "changed"
    shutil.copytree(tiny_model_dir, changed)
    config = json.loads((changed / "sentence_bert_config.json").read_text())
    (changed / "sentence_bert_config.json").write_text(json.dumps({**config, "max_seq_length": 16}))
    other, _, _ = find_graph(changed, choice)
    assert other.parent.parent not in (first.parent.parent, newer.parent.parent)


def test_an_interrupted_export_leaves_no_cache_entry(tiny_model_dir, private_cache, monkeypatch):
    import st_multitask.runtime.export as export

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(export, "check_against_torch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        find_graph(tiny_model_dir, BackendChoice("onnx", "fp32"))
    assert entries(private_cache) == []


@pytest.fixture(scope="module")
def exported_tiny(tiny_model_dir, tmp_path_factory):
    from st_multitask.runtime.export import export_model

    out = tmp_path_factory.mktemp("exported") / "tiny-onnx"
    export_model(tiny_model_dir, out, "onnx", "fp32")
    return out


def test_an_exported_directory_is_used_and_checked(exported_tiny, tmp_path):
    manifest = json.loads((exported_tiny / "st_multitask.json").read_text())
    assert list(manifest["graphs"]) == ["onnx/fp32"] and manifest["heads"] == {}
    graph, _, _ = find_graph(exported_tiny, BackendChoice("onnx", "fp32"))
    assert graph == exported_tiny / "onnx" / "model.onnx"
    # altered, missing, or exported from another model: each names the file
    altered = tmp_path / "altered"
    shutil.copytree(exported_tiny, altered)
    data = bytearray((altered / "onnx" / "model.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (altered / "onnx" / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(
        ModelLoadError, match=r"onnx/model.onnx does not match its sha256 .* truncated or altered"
    ):
        find_graph(altered, BackendChoice("onnx", "fp32"))
    (altered / "onnx" / "model.onnx").unlink()
    with pytest.raises(ModelLoadError, match=r"onnx/model.onnx is missing"):
        find_graph(altered, BackendChoice("onnx", "fp32"))
    other = tmp_path / "other"
    shutil.copytree(exported_tiny, other)
    (other / "tokenizer.json").write_text(
        (other / "tokenizer.json").read_text().replace("[UNK]", "[UNKNOWN]")
    )
    with pytest.raises(ModelLoadError, match="was exported from another model"):
        find_graph(other, BackendChoice("onnx", "fp32"))


def test_export_refuses_to_overwrite_and_keeps_the_previous_directory(
    exported_tiny, tiny_model_dir, monkeypatch
):
    from st_multitask.runtime import export

    with pytest.raises(InputError, match="exists already; pass overwrite=True"):
        export.export_model(tiny_model_dir, exported_tiny, "onnx", "fp32")
    before = sorted(p.name for p in exported_tiny.rglob("*"))

    def broken(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(export, "export_graph", broken)
    with pytest.raises(KeyboardInterrupt):
        export.export_model(tiny_model_dir, exported_tiny, "onnx", "int8", overwrite=True)
    assert sorted(p.name for p in exported_tiny.rglob("*")) == before
    assert [p.name for p in exported_tiny.parent.iterdir()] == [exported_tiny.name]  # no temporary folders


def test_a_new_export_replaces_the_stale_entry_of_the_same_graph(tiny_model_dir, private_cache, monkeypatch):
    import os
    import time

    import st_multitask.runtime.layout as session

    choice = BackendChoice("onnx", "fp32")
    old, _, _ = find_graph(tiny_model_dir, choice)
    killed = private_cache / ".export-killed"
    killed.mkdir()
    os.utime(killed, (time.time() - 2 * 86400,) * 2)
    monkeypatch.setattr(session, "runtime_version", lambda backend: "onnxruntime 99.0")
    new, _, _ = find_graph(tiny_model_dir, choice)
    assert not old.exists() and new.exists()
    assert entries(private_cache) == [new.parent.parent.name]


def test_auto_runs_a_model_that_does_not_export_in_torch(
    tiny_model_dir, private_cache, monkeypatch, caplog, run
):
    import numpy as np

    import st_multitask.runtime.export as export
    from st_multitask import embed
    from st_multitask.errors import ExportError
    from st_multitask.loader import _shared_runner

    def unsupported(*args, **kwargs):
        raise RuntimeError("operator 'foo' is not supported")

    monkeypatch.setattr(export, "_export_graph", unsupported)
    _shared_runner.cache_clear()
    with caplog.at_level("WARNING", logger="st_multitask.runtime"):
        vectors = embed(["a text"], model=str(tiny_model_dir))  # auto
    assert "in torch: Exporting" in caplog.text and "operator 'foo' is not supported" in caplog.text
    expected = embed(["a text"], model=str(tiny_model_dir), backend="torch")
    assert np.abs(vectors - expected).max() == 0
    with pytest.raises(ExportError, match="failed: operator 'foo' is not supported"):
        embed(["a text"], model=str(tiny_model_dir), backend="onnx")
    result = run("embed", "--model", str(tiny_model_dir), "--backend", "onnx", "-", input="a text\n")
    assert result.exit_code == 2 and "failed: operator 'foo' is not supported" in result.stderr
    assert entries(private_cache) == []


def test_the_int8_cache_key_follows_the_layers_kept_in_fp32(tiny_model_dir, private_cache, monkeypatch):
    import st_multitask.runtime.layout as layout
    from st_multitask.runtime.graphs import _cache_key
    from st_multitask.runtime.model_files import read_model_files

    files = read_model_files(tiny_model_dir)
    before = _cache_key(files, None, "onnx", "int8", "onnxruntime 1.0")
    monkeypatch.setitem(layout.FP32_LAYERS, "onnx", layout.FP32_LAYERS["onnx"] + 1)
    assert _cache_key(files, None, "onnx", "int8", "onnxruntime 1.0") != before  # a new policy re-exports
    assert _cache_key(files, None, "onnx", "fp32", "onnxruntime 1.0") == _cache_key(
        files, None, "onnx", "fp32", "onnxruntime 1.0"
    )
