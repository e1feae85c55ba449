"""File hashes once per change: a warm start hashes no graph or weights, a changed file is hashed
again and a mismatch is still named."""

from __future__ import annotations

import shutil

import pytest

from st_multitask import file_hashes
from st_multitask.errors import ModelLoadError


def _forget() -> None:
    """What a new process starts with: no hash, runner or model settings in memory."""
    from st_multitask.loader import _shared_runner
    from st_multitask.runtime.model_files import _read

    file_hashes._cached.cache_clear()
    _shared_runner.cache_clear()
    _read.cache_clear()


def test_a_big_file_is_hashed_once_per_change(tmp_path, monkeypatch):
    monkeypatch.setenv("STMT_CACHE", str(tmp_path / "cache"))
    big = tmp_path / "weights.bin"
    big.write_bytes(b"x" * (2 << 20))
    first = file_hashes.sha256_of(big)
    assert first == file_hashes.sha256_file(big)
    file_hashes._cached.cache_clear()
    calls = []
    monkeypatch.setattr(file_hashes, "sha256_file", lambda path: calls.append(path) or "recomputed")
    assert file_hashes.sha256_of(big) == first and calls == []  # kept in hashes.json
    with big.open("ab") as f:  # altered: another size, another mtime
        f.write(b"y")
    assert file_hashes.sha256_of(big) == "recomputed" and calls == [big]


@pytest.mark.export
def test_a_warm_start_hashes_no_graph_and_an_altered_graph_is_named(tmp_path, monkeypatch):
    from st_multitask import load
    from st_multitask.manifest import MANIFEST_NAME
    from st_multitask.runtime.export import export_model

    model = export_model(None, tmp_path / "model", "onnx", "fp32")
    load(model, backend="onnx")
    _forget()
    hashed = []
    real = file_hashes.sha256_file
    monkeypatch.setattr(file_hashes, "sha256_file", lambda path: hashed.append(path) or real(path))
    load(model, backend="onnx").predict(["a warm start"])
    assert not [p for p in hashed if p.stat().st_size >= 1 << 20], hashed  # small files only
    graph = next((model / "onnx").glob("*.onnx"))
    with graph.open("ab") as f:
        f.write(b"\0")
    _forget()
    with pytest.raises(ModelLoadError, match=f"{graph}.*does not match its sha256 in .*{MANIFEST_NAME}"):
        load(model, backend="onnx")
    shutil.rmtree(tmp_path / "model")
