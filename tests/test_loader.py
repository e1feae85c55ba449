"""The multi-task model on the fast path predicts what the torch model predicts."""

from __future__ import annotations

import numpy as np
import pytest

from st_multitask import MultiTaskModel, Pipeline, load
from st_multitask.errors import InputError

TEXTS = [
    "Angela Merkel met Tim Cook in Berlin to discuss Apple's new factory.",
    "The film was a joy from start to finish.",
    "Apple is buying a U.K. startup for $1 billion",
    "Shares in BP fell 3% in London after the oil price dropped.",
    "Manchester United beat Chelsea 2-1 at Old Trafford on Saturday.",
    "The service at this restaurant was painfully slow and the food was cold.",
    "Microsoft released a new version of Windows for PCs.",
    "x",
    ["EU", "rejects", "German", "call", "to", "boycott", "British", "lamb", "."],
    "The prime minister said the election would be held in May. " * 30,  # past the window
]


@pytest.fixture(scope="module")
def torch_default():
    return MultiTaskModel.default()


@pytest.mark.parametrize("backend", ["onnx", "openvino"])
def test_fp32_predictions_match_torch(torch_default, backend):
    fast = load(backend=backend)
    assert isinstance(fast, Pipeline) and fast.backend == backend
    expected, got = torch_default.predict(TEXTS, batch_size=4), fast.predict(TEXTS, batch_size=3)
    for e, g in zip(expected, got):
        assert (
            g["topic"]["label"] == e["topic"]["label"] and g["sentiment"]["label"] == e["sentiment"]["label"]
        )
        assert [(x["text"], x["label"], x["start"], x["end"]) for x in g["ner"]] == [
            (x["text"], x["label"], x["start"], x["end"]) for x in e["ner"]
        ]
    for e, g in zip(torch_default.predict_proba(TEXTS), fast.predict_proba(TEXTS)):
        for task in e:
            assert g[task].shape == e[task].shape
            assert np.abs(g[task] - e[task]).max() <= 1e-4


def test_int8_predictions_agree(torch_default):
    fast = load(backend="onnx", precision="int8")
    expected, got = torch_default.predict(TEXTS[:-1]), fast.predict(TEXTS[:-1])
    agree = [e[t]["label"] == g[t]["label"] for e, g in zip(expected, got) for t in ("topic", "sentiment")]
    assert sum(agree) >= len(agree) - 1


def test_custom_heads_on_another_backbone(tiny_model_dir, tmp_path):
    from st_multitask.heads import MLPHead, TokenHead

    model = MultiTaskModel(str(tiny_model_dir))
    model.add_head("tags", MLPHead(model.dim, ["a", "b", "c"], multi_label=True, layers=[0, 2]))
    model.add_head("ner", TokenHead(model.dim, ["O", "B-X", "I-X"], alignment="mean", hidden=[8]))
    for head in model.heads.values():
        head.mark_trained()
    model.save(tmp_path / "m")
    fast = load(tmp_path / "m", backend="onnx")
    torch_model = MultiTaskModel.load(tmp_path / "m")
    for e, g in zip(torch_model.predict_proba(TEXTS[:5]), fast.predict_proba(TEXTS[:5])):
        for task in e:
            assert np.abs(g[task] - e[task]).max() <= 1e-4
    assert fast.predict(TEXTS[:3]) and fast.info()["heads"]["tags"]["kind"] == "mlp"


def test_errors_match_the_torch_model():
    fast = load(backend="onnx")
    with pytest.raises(InputError, match="Unknown task 'mood'. Valid: topic, sentiment, ner."):
        fast.predict(["x"], tasks="mood")
    with pytest.raises(InputError, match="Text 1 is blank"):
        fast.predict(["x", "  "])
    with pytest.raises(InputError, match="No texts to predict"):
        fast.predict([])


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["onnx", "openvino"])
def test_int8_agrees_with_torch_on_real_test_data(torch_default, backend):
    """Slices of the real test splits: int8 agrees with torch on nearly every text. The issue's bar
    (98% of texts, each score within 0.5 points) is measured on the full splits by
    benchmarks/backend_quality.py; on 300-400 texts the bound here leaves room for sampling noise."""
    from st_multitask import corpora

    fast = load(backend=backend, precision="int8")
    reviews = corpora.load_rotten_tomatoes("test").texts[:400]
    sentences = corpora.load_conll2003("test").words[:300]
    for task, items in (("sentiment", reviews), ("ner", sentences)):
        expected = [r[task] for r in torch_default.predict(items, tasks=[task])]
        got = [r[task] for r in fast.predict(items, tasks=[task])]
        if task == "sentiment":
            agree = np.mean([e["label"] == g["label"] for e, g in zip(expected, got)])
        else:  # the same entities (spans and types) in the whole sentence
            agree = np.mean([_entities(e) == _entities(g) for e, g in zip(expected, got)])
        assert agree >= 0.96, (task, agree)


def _entities(found: list[dict]) -> list[tuple]:
    return [(x["start"], x["end"], x["label"]) for x in found]


def test_every_head_kind_runs_in_the_graph(tiny_model_dir, tmp_path):
    """Window groups (long: chunk), a layer mix, TF-IDF rows, word shapes, char ids and the BiLSTM
    all reach the exported graph, which gives torch's probabilities on padded batches."""
    from st_multitask.heads import ContextTokenHead, HybridHead, MLPHead

    model = MultiTaskModel(str(tiny_model_dir))
    model.add_head("whole", MLPHead(model.dim, ["a", "b"], layers=[1, 2], long="chunk"))
    hybrid = HybridHead(model.dim, ["x", "y", "z"], hidden=[4], other_label="z", other_threshold=0.4)
    hybrid.fit_features([t if isinstance(t, str) else " ".join(t) for t in TEXTS])
    model.add_head("wide", hybrid)
    model.add_head(
        "ner", ContextTokenHead(model.dim, ["O", "B-X", "I-X"], lstm_hidden=6, lstm_layers=2, char_dim=4)
    )
    for head in model.heads.values():
        for weight in [p for p in head.parameters() if p.dim() > 1]:
            weight.data.normal_(0, 0.5)  # away from the zero init, so every part counts
        head.mark_trained()
    model.save(tmp_path / "m")
    torch_model = MultiTaskModel.load(tmp_path / "m")
    for backend in ("onnx", "openvino"):
        fast = load(tmp_path / "m", backend=backend)
        for e, g in zip(
            torch_model.predict_proba(TEXTS, batch_size=4), fast.predict_proba(TEXTS, batch_size=3)
        ):
            for task in e:
                assert g[task].shape == e[task].shape
                assert np.abs(g[task] - e[task]).max() <= 1e-4, (backend, task)
        for e, g in zip(torch_model.predict(TEXTS), fast.predict(TEXTS)):
            assert g["wide"]["label"] == e["wide"]["label"] and g["whole"]["label"] == e["whole"]["label"]
            assert [(x["label"], x["start"], x["end"]) for x in g["ner"]] == [
                (x["label"], x["start"], x["end"]) for x in e["ner"]
            ]


def test_int8_keeps_the_heads_in_fp32():
    import onnx

    from st_multitask.backbone import bundled_model_dir
    from st_multitask.runtime import BackendChoice
    from st_multitask.runtime.graphs import find_graph

    graph, record, _ = find_graph(bundled_model_dir(), BackendChoice("onnx", "int8"), heads=True)
    nodes = onnx.load(str(graph), load_external_data=False).graph.node
    quantized = [n.name for n in nodes if n.op_type in ("MatMulInteger", "DynamicQuantizeMatMul")]
    assert quantized and not [n for n in quantized if "/encoder/" not in n]
    assert record["outputs"] == [
        "sentence_embedding",
        "probabilities.topic",
        "probabilities.sentiment",
        "probabilities.ner",
    ]


def test_a_head_that_does_not_export_is_named_and_auto_runs_it_in_torch(
    tiny_model_dir, tmp_path, caplog, monkeypatch
):
    import torch
    from torch import nn

    import st_multitask.heads as heads
    from st_multitask.errors import ExportError
    from st_multitask.heads import Head, register_head

    monkeypatch.setattr(heads, "_REGISTRY", dict(heads._REGISTRY))  # the kind is this test's alone

    @register_head
    class SpectralProbe(Head):  # eigvalsh has no ONNX form
        kind = "spectral_probe_test"
        level = "sentence"

        def __init__(self, in_features, labels):
            super().__init__(in_features, labels)
            self.linear = nn.Linear(in_features, len(self.labels))

        def forward(self, features):
            x = features["sentence_embedding"]
            return self.linear(x) + torch.linalg.eigvalsh(x.T[:2] @ x.T[:2].T)[:1]

    model = MultiTaskModel(str(tiny_model_dir)).add_head(
        "s", SpectralProbe(MultiTaskModel(str(tiny_model_dir)).dim, ["a", "b"])
    )
    model.save(tmp_path / "m")
    with pytest.raises(ExportError, match=r"failed: .*linalg_eigvalsh.*Use backend='torch'|linalg_eigvalsh"):
        load(tmp_path / "m", backend="onnx")
    with caplog.at_level("WARNING", logger="st_multitask.runtime"):
        auto = load(tmp_path / "m", backend="auto")
    assert isinstance(auto, Pipeline) and auto.backend == "torch" and "in torch" in caplog.text


def test_a_directory_exported_before_the_heads_joined_the_graph_says_to_export_again(tmp_path):
    import json

    from st_multitask.errors import ModelLoadError
    from st_multitask.runtime.export import export_model

    folder = export_model(None, tmp_path / "exported", "onnx")
    manifest = json.loads((folder / "st_multitask.json").read_text(encoding="utf-8"))
    manifest["graphs"]["onnx/fp32"]["format"] = 3  # as st_multitask wrote it before this change
    (folder / "st_multitask.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(
        ModelLoadError,
        match="exported by an earlier st_multitask .*export it again with stmt export --overwrite",
    ):
        load(folder, backend="onnx")


def test_both_engines_implement_one_protocol(torch_default):

    fast = load(backend="onnx")
    assert isinstance(torch_default.pipeline(), Pipeline) and isinstance(fast, Pipeline)
    items = ["Shares in BP fell 3% in London.", ["EU", "rejects", "German", "call"]]
    assert fast.predict_labels(items, "ner") == torch_default.predict_labels(items, "ner")
    assert fast.predict_labels(items, "topic") == torch_default.predict_labels(items, "topic")


def test_heads_not_asked_for_are_fed_empty_and_answer_the_same(torch_default):
    """The graph runs every head; asking for one feeds the others nothing (no word features for a
    topic alone), and the asked head's answer is the same as with every head fed."""
    fast = load(backend="onnx")
    alone = {task: [r[task] for r in fast.predict_proba(TEXTS, tasks=[task])] for task in fast.heads}
    together = fast.predict_proba(TEXTS)
    for task, rows in alone.items():
        for row, both in zip(rows, together):
            assert np.abs(row - both[task]).max() <= 1e-6, task
    from st_multitask.runtime.feeds import FeedPlan

    full = FeedPlan.from_inputs(fast.runner.input_names, dict(fast._sparse))
    plan = full.narrowed({"topic": fast.heads["topic"]})
    assert not plan.words and list(plan.ngrams) == ["topic"]


def test_the_names_that_went_warn_and_name_their_replacement(tmp_path):
    import st_multitask
    from st_multitask.exported_model import ExportedMultiTaskModel
    from st_multitask.runtime import BackendChoice, EngineSpec, set_threads

    with pytest.warns(DeprecationWarning, match=r"st_multitask.load\(path, backend=...\)"):
        assert isinstance(ExportedMultiTaskModel.default(backend="onnx"), Pipeline)
    with pytest.warns(DeprecationWarning, match=r"use st_multitask.load\(path, backend=...\)"):
        assert isinstance(MultiTaskModel.default(backend="onnx"), Pipeline)
    with pytest.warns(DeprecationWarning, match="use st_multitask.Pipeline"):
        assert st_multitask.MultiTaskPredictor is Pipeline
    with pytest.warns(DeprecationWarning, match="pass threads= to st_multitask.load"):
        set_threads(None)
    assert BackendChoice is EngineSpec
    assert isinstance(MultiTaskModel.default(), MultiTaskModel)  # no backend: the torch module, no warning
