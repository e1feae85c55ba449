"""Embeddings on the fast path: the same vectors as sentence-transformers, no torch at run time."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from st_multitask import embed
from st_multitask.errors import InputError
from st_multitask.runtime.encoder import FastEncoder
from st_multitask.runtime.load import load_encoder

TEXTS = [
    "The dog ran across the grass.",
    "Why is the sky blue?",
    "A man is playing a guitar.",
    "Héllo wörld, naïve café!",
    "  leading and trailing spaces  ",
    "Angela Merkel met Tim Cook in Berlin to discuss Apple's new factory.",
    "x",
    "The quick brown fox jumps over the lazy dog " * 12,  # longer than most: uneven batches
]


@pytest.mark.parametrize("backend", ["onnx", "openvino"])
def test_fp32_vectors_match_sentence_transformers(backend, backbone):
    expected = backbone.encode(TEXTS, normalize_embeddings=True, convert_to_numpy=True)
    got = embed(TEXTS, backend=backend, precision="fp32", batch_size=3)
    assert got.dtype == np.float32 and got.shape == expected.shape
    assert np.abs(got - expected).max() <= 1e-4
    raw = embed(TEXTS[:2], backend=backend, normalize=False)
    plain = backbone.encode(TEXTS[:2], normalize_embeddings=False, convert_to_numpy=True)
    assert np.abs(raw - plain).max() <= 1e-4


def test_auto_default_runs_the_fast_path():
    model = load_encoder(None)
    assert isinstance(model, FastEncoder) and model.backend == "onnx" and model.precision == "fp32"
    vectors = embed(["The dog ran across the grass.", "The cat jumped into the weeds."])
    assert float(vectors[0] @ vectors[1]) == pytest.approx(0.376, abs=1e-3)


@pytest.mark.parametrize("backend", ["onnx", "openvino"])
def test_int8_vectors_stay_close(backend):
    exact = embed(TEXTS, backend=backend, precision="fp32")
    int8 = embed(TEXTS, backend=backend, precision="int8")
    cosines = (exact * int8).sum(axis=1)
    assert cosines.min() > 0.9, cosines


def test_long_texts_truncate_with_a_warning_or_chunk(caplog):
    long_text = "word " * 600
    with caplog.at_level("WARNING", logger="st_multitask"):
        truncated = embed([long_text, "short"], backend="onnx")
    assert "1 of 2 texts are longer than the model window (254 word pieces)" in caplog.text
    chunked = embed([long_text, "short"], backend="onnx", long="chunk")
    torch_chunked = embed([long_text, "short"], backend="torch", long="chunk")
    assert np.abs(chunked - torch_chunked).max() <= 1e-4
    assert not np.allclose(truncated[0], chunked[0])


def test_a_loaded_model_refuses_another_backend(backbone):
    with pytest.raises(InputError, match="applies to a model given by name or path"):
        embed(["x"], model=backbone, backend="onnx")


def test_the_fast_path_never_imports_torch(tmp_path):
    """`from st_multitask import embed` and the inference commands run without torch,
    transformers or sentence-transformers."""
    embed(["warm the cache"], backend="onnx")  # the export (which needs torch) happens here, once
    load_encoder(None, "onnx", "fp32")
    script = tmp_path / "fast.py"
    script.write_text(
        "import json, sys\n"
        "from st_multitask import embed, cosine_similarity, paraphrases, search\n"
        "v = embed(['The dog ran.', 'A cat sat.'])\n"
        "cosine_similarity(v, v), paraphrases(v), search(v, v)\n"
        "from st_multitask.cli import main\n"
        "for args in (['similarity', sys.argv[1], sys.argv[2]], ['predict', 'Apple buys a U.K. startup.'],\n"
        "             ['search', '--corpus', sys.argv[2], 'a pet']):\n"
        "    main(args, standalone_mode=False)\n"
        "heavy = [m for m in ('torch', 'transformers', 'sentence_transformers') if m in sys.modules]\n"
        "print(json.dumps(heavy))\n",
        encoding="utf-8",
    )
    examples = os.path.join(os.path.dirname(__file__), "..", "..", "examples")
    result = subprocess.run(
        [sys.executable, str(script), os.path.join(examples, "a.txt"), os.path.join(examples, "b.txt")],
        capture_output=True,
        text=True,
        env={**os.environ, "STMT_BACKEND": "auto"},
        check=True,
    )
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
    assert "exporting" not in result.stderr  # the cache was warm
