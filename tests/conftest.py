"""Shared fixtures: the packaged MiniLM loaded once per session, and a tiny random BERT model directory."""

from __future__ import annotations

# The environment (offline, a private graph cache) is set in the repository's conftest.py.
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def backbone():
    """The packaged all-MiniLM-L6-v2 as a SentenceTransformer, shared by every test (what
    `embed(model=None, backend="torch")` runs)."""
    from st_multitask.backbone import cached_backbone

    return cached_backbone(None)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny randomly initialised BERT sentence-transformer (MiniLM's vocabulary), saved to disk."""
    import torch
    from sentence_transformers import SentenceTransformer

    try:  # sentence-transformers >= 6
        from sentence_transformers.sentence_transformer import modules as models
    except ImportError:
        from sentence_transformers import models
    from transformers import AutoTokenizer, BertConfig, BertModel

    from st_multitask.backbone import default_model_path

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("tiny-model")
    tokenizer = AutoTokenizer.from_pretrained(str(default_model_path()))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    hf_dir = out / "hf"
    BertModel(config).save_pretrained(hf_dir)
    tokenizer.save_pretrained(hf_dir)
    transformer = models.Transformer(str(hf_dir), max_seq_length=32)
    pooling = models.Pooling(32, pooling_mode="mean")
    model = SentenceTransformer(modules=[transformer, pooling, models.Normalize()], device="cpu")
    model_dir = out / "model"
    model.save(str(model_dir))
    return model_dir


@pytest.fixture
def write(tmp_path):
    """write("name.txt", "content" or b"bytes") -> path in a fresh temporary folder."""

    def _write(name: str, content: str | bytes) -> str:
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return str(path)

    return _write


@pytest.fixture
def run():
    """run("similarity", a, b, input=...) -> click Result with .exit_code, .stdout, .stderr."""
    from click.testing import CliRunner

    from st_multitask.cli import main

    def _run(*args: str, input: str | bytes | None = None):
        return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)

    return _run


POSTS = {
    17: "The cat sat on the mat.",
    23: "Stocks fell sharply on Monday.",
    42: "A dog barked at the mailman.",
}


@pytest.fixture
def posts_index(run, write, tmp_path) -> Path:
    """``stmt embed posts.jsonl --id-column post_id -o out.parquet``, then ``stmt index build
    --embeddings out.parquet``: the index directory, whose hits return their ``post_id``."""
    import json

    lines = "".join(json.dumps({"post_id": i, "text": t}) + "\n" for i, t in POSTS.items())
    stored = str(tmp_path / "out.parquet")
    result = run("embed", write("posts.jsonl", lines), "--id-column", "post_id", "-o", stored)
    assert result.exit_code == 0, result.output
    index_dir = tmp_path / "posts-index"
    result = run("index", "build", "--embeddings", stored, "-o", str(index_dir))
    assert result.exit_code == 0, result.output
    return index_dir
