"""The ONNX Runtime runner: a cached graph is optimised once, saved with its sha256 beside the
graph, and opened as saved afterwards (checked, remade when altered); a graph outside the cache
is optimised at every open and nothing is written beside it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from st_multitask.file_hashes import sha256_file
from st_multitask.runtime import EngineSpec
from st_multitask.runtime.graphs import find_graph
from st_multitask.runtime.runners import onnx

SPEC = EngineSpec("onnx", "fp32")


@pytest.fixture
def levels(monkeypatch):
    """(graph file, optimisation level) of every session the runner opens."""
    opened: list[tuple[str, str]] = []
    real = onnx._session

    def spy(ort, path, spec, level, save_to=None):
        opened.append((Path(path).name, level))
        return real(ort, path, spec, level, save_to)

    monkeypatch.setattr(onnx, "_session", spy)
    return opened


def _feeds(record: dict) -> dict[str, np.ndarray]:
    ids = np.array([[101, 7592, 2088, 2003, 102]], dtype=np.int64)
    values = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
    return {name: values[name] for name in record["inputs"]}


def test_a_cached_graph_is_optimised_once_then_opened_as_saved(tiny_model_dir, tmp_path, monkeypatch, levels):
    monkeypatch.setenv("STMT_CACHE", str(tmp_path / "cache"))
    graph, record, _ = find_graph(tiny_model_dir, SPEC)
    saved, meta = graph.with_name("model.optimized.onnx"), graph.with_name("model.optimized.json")
    assert saved.is_file()  # the export's own check opened the graph in the cache already
    saved.unlink()
    meta.unlink()
    levels.clear()
    first = onnx.OnnxRunner(graph, SPEC, record)
    assert json.loads(meta.read_text()) == {"level": "extended", "sha256": sha256_file(saved)}
    second = onnx.OnnxRunner(graph, SPEC, record)
    assert levels == [("model.onnx", "extended"), ("model.optimized.onnx", "disable")]
    feeds = _feeds(record)
    assert np.allclose(
        first.run(feeds, ["sentence_embedding"])["sentence_embedding"],
        second.run(feeds, ["sentence_embedding"])["sentence_embedding"],
        atol=1e-6,
    )
    assert sorted(p.name for p in graph.parent.iterdir()) == ["model.onnx", *sorted([saved.name, meta.name])]

    saved.write_bytes(saved.read_bytes()[:-1] + b"\0")  # altered: another size or mtime, another hash
    levels.clear()
    onnx.OnnxRunner(graph, SPEC, record)
    assert levels == [("model.onnx", "extended")]  # optimised again from the verified graph
    assert json.loads(meta.read_text())["sha256"] == sha256_file(saved)


def test_a_graph_outside_the_cache_is_left_as_it_is(tiny_model_dir, tmp_path, monkeypatch, levels):
    from st_multitask.runtime.export import export_model

    monkeypatch.setenv("STMT_CACHE", str(tmp_path / "cache"))
    exported = tmp_path / "exported"
    export_model(tiny_model_dir, exported, "onnx", "fp32")
    graph, record, _ = find_graph(exported, SPEC)
    levels.clear()
    onnx.OnnxRunner(graph, SPEC, record)
    assert levels == [("model.onnx", "all")]
    assert sorted(p.name for p in graph.parent.iterdir()) == ["model.onnx"]
