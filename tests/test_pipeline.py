"""The one pipeline: the same vectors as sentence-transformers and the same predictions on every
engine, texts tokenised once, and no torch on the fast path."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from st_multitask import MultiTaskModel, Pipeline, embed, load
from st_multitask.errors import InputError

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
    model = load("all-MiniLM-L6-v2")
    assert isinstance(model, Pipeline) and model.backend == "onnx" and model.precision == "fp32"
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
    embed(["warm the cache"], backend="onnx")  # the exports (which need torch) happen here, once
    load(backend="onnx").predict(["warm the cache"])
    script = tmp_path / "fast.py"
    script.write_text(
        "import json, sys\n"
        "from st_multitask import embed, cosine_similarity, paraphrases, search\n"
        "v = embed(['The dog ran.', 'A cat sat.'])\n"
        "cosine_similarity(v, v), paraphrases(v), search(v, v)\n"
        "from st_multitask import load\n"
        "pipe = load(backend='onnx')\n"
        "pipe.predict(['Apple buys a U.K. startup.']), pipe.embed(['x']), pipe.predict_and_embed(['x'])\n"
        "import pyarrow as pa\n"
        "from st_multitask.batch.core import BatchPredictor, BatchSpec\n"
        "BatchPredictor(BatchSpec('predict', backend='onnx', threads=1))(pa.table({'text': ['A cat sat.']}))\n"
        "from st_multitask.cli import main\n"
        "for args in (['similarity', sys.argv[1], sys.argv[2]], ['predict', 'Apple buys a U.K. startup.'],\n"
        "             ['search', '--corpus', sys.argv[2], 'a pet']):\n"
        "    main(args, standalone_mode=False)\n"
        "heavy = [m for m in ('torch', 'transformers', 'sentence_transformers') if m in sys.modules]\n"
        "print(json.dumps(heavy))\n",
        encoding="utf-8",
    )
    examples = os.path.join(os.path.dirname(__file__), "..", "examples")
    result = subprocess.run(
        [sys.executable, str(script), os.path.join(examples, "a.txt"), os.path.join(examples, "b.txt")],
        capture_output=True,
        text=True,
        env={**os.environ, "STMT_BACKEND": "auto"},
        check=True,
    )
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
    assert "exporting" not in result.stderr  # the cache was warm


def test_one_class_for_every_backend():
    pipes = [load(backend=b) for b in ("onnx", "openvino", "torch")]
    assert {type(p) for p in pipes} == {Pipeline}
    texts = ["Apple is buying a U.K. startup for $1 billion", "The film was a joy from start to finish."]
    results = [p.predict(texts) for p in pipes]
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert (
                a["topic"]["label"] == b["topic"]["label"]
                and a["sentiment"]["label"] == b["sentiment"]["label"]
            )
            assert [(e["text"], e["label"]) for e in a["ner"]] == [(e["text"], e["label"]) for e in b["ner"]]
            assert a["topic"]["score"] == pytest.approx(b["topic"]["score"], abs=1e-4)
    assert pipes[0].spec.backend == "onnx" and pipes[2].spec.backend == "torch"


def test_a_model_being_trained_runs_through_the_same_pipeline():
    model = MultiTaskModel.default()
    pipe = model.pipeline()
    assert isinstance(pipe, Pipeline) and pipe.backend == "torch"
    texts = ["Apple is buying a U.K. startup for $1 billion"]
    assert model.predict(texts) == pipe.predict(texts)
    fast = load(backend="onnx").predict_proba(texts)[0]
    for task, proba in pipe.predict_proba(texts)[0].items():
        assert np.abs(proba - fast[task]).max() <= 1e-4


def test_texts_are_tokenised_once_and_reused():
    pipe = load(backend="onnx")
    long_text = "word " * 600
    encoded = pipe.tokenize(["Apple buys a startup.", long_text])
    assert encoded.over_window() == [1] and encoded.lengths[1] == 600 and encoded.cost()[1] == 256
    assert pipe.count_over_window(encoded) == 1
    assert pipe.predict(encoded) == pipe.predict(encoded.texts)
    assert np.array_equal(pipe.embed(encoded), pipe.embed(encoded.texts))
    # the windowed encoding equals a tokenizer that truncates itself
    from tokenizers import Tokenizer

    from st_multitask.runtime.model_files import read_model_files

    files = read_model_files(None)
    reference = Tokenizer.from_file(str(files.tokenizer_file))
    reference.enable_truncation(files.max_seq_length)
    assert encoded.encodings[1].ids == reference.encode(long_text).ids


def test_unknown_tasks_and_bad_batch_sizes_are_named():
    pipe = load(backend="onnx")
    with pytest.raises(InputError, match="Unknown task 'topics'. Valid: topic, sentiment, ner"):
        pipe.predict(["x"], tasks=["topics"])
    with pytest.raises(InputError, match="batch_size must be a positive integer"):
        pipe.embed(["x"], batch_size=0)
    with pytest.raises(InputError, match="No texts to tokenize"):
        pipe.tokenize([])
