"""Hybrid heads and whole-text (windowed) sentence heads in a multi-task model: trained from the
frozen-backbone cache, saved, loaded, and run on the fast path with the torch model's scores."""

from __future__ import annotations

import numpy as np
import pytest

from st_multitask import MultiTaskModel
from st_multitask.data import SentenceExamples
from st_multitask.embedding import embed
from st_multitask.errors import InputError
from st_multitask.heads import HybridHead, MLPHead
from st_multitask.recipe import load_recipe
from st_multitask.training import TaskData, Trainer, TrainingConfig

TEXTS = ["a great film", "a dull film", "great fun all round", "dull and long", "loved it", "boring"] * 4
LABELS = ["pos", "neg", "pos", "neg", "pos", "neg"] * 4
LONG = "The minister said the vote on the budget would be held in May after a long debate. " * 40


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    model = MultiTaskModel(None)
    model.add_head(
        "wide", HybridHead(model.dim, ["neg", "pos"], hidden=[16], layers=[4, 6], features={"min_df": 1})
    )
    model.add_head("whole", MLPHead(model.dim, ["neg", "pos"], hidden=[16], long="chunk"))
    model.add_head("whole_mix", HybridHead(model.dim, ["neg", "pos"], hidden=[], layers=[2, 6], long="chunk"))
    data = SentenceExamples(TEXTS, LABELS, "toy")
    config = TrainingConfig(epochs=2, batch_size=8, freeze=["backbone"], cache_embeddings="memory", seed=0)
    folder = tmp_path_factory.mktemp("hybrid")
    Trainer(model, config, output_dir=folder / "run").fit(
        [TaskData(name, data, data) for name in ("wide", "whole", "whole_mix")]
    )
    model.save(folder / "model")
    return model, folder / "model"


def test_model_card_is_written_on_every_save(trained):
    _, path = trained
    card = (path / "README.md").read_text()
    assert "| wide | `hybrid` | sentence | neg, pos |" in card and "## Metrics" in card
    assert "toy (24)" in card and "stmt predict --model model" in card
    run_card = (path.parent / "run" / "README.md").read_text()
    assert "## Training" in run_card and '"freeze"' in run_card


def test_windows_read_the_whole_text(trained):
    model, _ = trained
    features, _, _ = model.features([LONG, "short text"])
    whole = embed([LONG, "short text"], model=model.backbone, long="chunk", backend="torch")
    np.testing.assert_allclose(features["window_sentence_embedding"].numpy(), whole, atol=1e-5)
    assert not np.allclose(features["sentence_embedding"][0].numpy(), whole[0], atol=1e-3)


def test_saved_model_lists_the_vocabulary_and_predicts_the_same(trained):
    model, path = trained
    import json

    manifest = json.loads((path / "st_multitask.json").read_text())
    assert "vocabulary.json" in manifest["heads"]["wide"]["files"]
    loaded = MultiTaskModel.load(path)
    texts = ["great fun", LONG, "dull"]
    for a, b in zip(model.predict_proba(texts), loaded.predict_proba(texts)):
        for task in a:
            np.testing.assert_allclose(a[task], b[task], atol=1e-6)
    (path / "heads" / "wide" / "vocabulary.json").write_text('{"terms": ["x"]}')
    from st_multitask.errors import ModelLoadError

    with pytest.raises(ModelLoadError, match="vocabulary.json does not match the hash"):
        MultiTaskModel.load(path)


@pytest.mark.parametrize("backend", ["onnx"])
def test_fast_path_gives_the_torch_scores(trained, backend, tmp_path):
    import shutil

    model, _ = trained
    copy = tmp_path / "m"
    model.save(copy)
    fast = MultiTaskModel.load(copy, backend=backend)
    texts = ["great fun", LONG, "dull and long, so long", "x"]
    for e, g in zip(MultiTaskModel.load(copy).predict_proba(texts), fast.predict_proba(texts)):
        for task in e:
            assert np.abs(g[task] - e[task]).max() <= 1e-4
    shutil.rmtree(copy)


def test_recipe_refuses_bad_settings(tmp_path):
    data = tmp_path / "t.csv"
    data.write_text("text,label\na good one,pos\na bad one,neg\n")
    ner = tmp_path / "n.conll"
    ner.write_text("EU B-ORG\nrejects O\n\n")
    base = {"model": {"backbone": None}, "training": {"epochs": 1}}
    bad_feature = {
        **base,
        "tasks": {"s": {"head": {"kind": "hybrid", "features": {"ngram": 3}}, "train": str(data)}},
    }
    with pytest.raises(InputError, match=r"task 's': bad head settings \(Unknown feature setting 'ngram'"):
        load_recipe(bad_feature)
    windows_on_tokens = {
        **base,
        "tasks": {"ner": {"head": {"kind": "token", "long": "chunk"}, "train": str(ner)}},
    }
    with pytest.raises(InputError, match="task 'ner': 'long' .* is a sentence-head setting"):
        load_recipe(windows_on_tokens)
