"""Task branches: trainable copies of the top layers that move the heads and never the embeddings."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from st_multitask import MultiTaskModel, fit, load
from st_multitask.data import SentenceExamples
from st_multitask.errors import InputError, ModelLoadError
from st_multitask.heads import MLPHead, TokenHead
from st_multitask.recipe import load_recipe
from st_multitask.runtime.branches import Branch, encoder_layers

TEXTS = ["Apple opens a store in Berlin.", "The refund never arrived and nobody answers. " * 4, "a"]
MOOD = SentenceExamples(
    ["I love it", "great film", "wonderful day", "awful film", "I hate it", "terrible day"] * 2,
    ["pos", "pos", "pos", "neg", "neg", "neg"] * 2,
)
TOPIC = SentenceExamples(
    ["the match ended 2-1", "a late goal won it", "shares fell sharply", "the bank cut rates"] * 2,
    ["sport", "sport", "money", "money"] * 2,
)


def _branched(backbone, layers: int = 2, share: bool = True) -> MultiTaskModel:
    model = MultiTaskModel(backbone)
    model.add_branch("shared" if share else "mood", layers)
    model.add_head("mood", MLPHead(model.dim, ["neg", "pos"]), branch="shared" if share else "mood")
    model.add_head("ner", TokenHead(model.dim, ["O", "B-ORG", "I-ORG"]), branch="shared" if share else None)
    return model


def test_a_branch_copies_the_top_layers(tiny_model_dir):
    model = MultiTaskModel(str(tiny_model_dir))
    branch = Branch.from_backbone(model.backbone, 1)
    top = encoder_layers(model.backbone)[-1]
    assert branch.start == 1 and branch.depth == 1
    assert all(torch.equal(a, b) for a, b in zip(branch.layers[0].parameters(), top.parameters()))
    assert all(p.requires_grad for p in branch.parameters())
    for bad in (0, 3, True, "2"):
        with pytest.raises(InputError, match="copies 1 to 2 top layers"):
            Branch.from_backbone(model.backbone, bad)
    with pytest.raises(InputError, match="No branch named 'nope'"):
        model.add_head("x", MLPHead(model.dim, ["a", "b"]), branch="nope")


def test_embeddings_with_branches_are_the_backbones_to_the_bit(backbone):
    model = _branched(backbone)
    model.add_head("plain", MLPHead(model.dim, ["a", "b"]))  # a head on the backbone beside the branch
    reference = backbone.encode(TEXTS, convert_to_numpy=True, batch_size=64)
    _, vectors = model.predict_and_embed(TEXTS)
    assert np.abs(vectors - reference).max() <= 1e-6
    assert np.abs(model.encode(TEXTS) - reference).max() <= 1e-6


def test_a_fresh_branch_reads_what_the_backbone_gives(backbone):
    branched = _branched(backbone)
    plain = MultiTaskModel(backbone).add_head("mood", branched.heads["mood"])
    ours, theirs = branched.predict_proba(TEXTS, ["mood"]), plain.predict_proba(TEXTS, ["mood"])
    assert all(np.array_equal(a["mood"], b["mood"]) for a, b in zip(ours, theirs))


def test_training_moves_the_branch_and_never_the_backbone(tiny_model_dir):
    model = MultiTaskModel(str(tiny_model_dir)).add_branch("mood", 1)
    model.add_head("mood", MLPHead(model.dim, ["neg", "pos"]), branch="mood")
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    branch_before = [p.detach().clone() for p in model.branches["mood"].parameters()]
    vectors = model.encode(TEXTS)
    fit(
        model, {"mood": (MOOD, MOOD)}, epochs=2, freeze=["backbone"], batch_size=4, learning_rate=1e-3, seed=3
    )
    assert all(torch.equal(before[k], v) for k, v in model.backbone.state_dict().items())
    assert any(not torch.equal(a, b) for a, b in zip(branch_before, model.branches["mood"].parameters()))
    assert np.array_equal(model.encode(TEXTS), vectors)


def test_a_hybrid_head_trains_on_a_branch_from_the_trunk_cache(tiny_model_dir):
    from st_multitask.heads.hybrid import HybridHead

    model = MultiTaskModel(str(tiny_model_dir)).add_branch("mood", 1)
    model.add_head("mood", HybridHead(model.dim, ["neg", "pos"], layers=[1, 2]), branch="mood")
    fit(model, {"mood": (MOOD, MOOD)}, epochs=2, freeze=["backbone"], batch_size=4, cache_embeddings="memory")
    assert model.heads["mood"].is_fitted
    assert sorted(model.predict(["I love it"])[0]["mood"]["probabilities"]) == ["neg", "pos"]


def test_per_task_branches_cannot_forget(tiny_model_dir):
    """Training a second task on its own branch leaves the first task's outputs exactly as they were."""
    model = MultiTaskModel(str(tiny_model_dir)).add_branch("mood", 1).add_branch("topic", 1)
    model.add_head("mood", MLPHead(model.dim, ["neg", "pos"]), branch="mood")
    model.add_head("topic", MLPHead(model.dim, ["money", "sport"]), branch="topic")
    fit(model, {"mood": (MOOD, MOOD)}, epochs=1, freeze=["backbone"], batch_size=4, seed=1)
    first = model.predict_proba(TEXTS, ["mood"])
    fit(model, {"topic": (TOPIC, TOPIC)}, epochs=2, freeze=["backbone"], batch_size=4, learning_rate=1e-3)
    after = model.predict_proba(TEXTS, ["mood"])
    assert all(np.array_equal(a["mood"], b["mood"]) for a, b in zip(first, after))


def test_branches_save_load_and_are_verified(backbone, tmp_path):
    model = _branched(backbone, layers=1)
    with torch.no_grad():  # a branch that differs from the backbone's layer
        for param in model.branches["shared"].parameters():
            param.add_(0.01)
    path = model.save(tmp_path / "m", backbone="reference")
    manifest = json.loads((path / "st_multitask.json").read_text())
    assert manifest["branches"]["shared"]["heads"] == ["mood", "ner"]
    assert manifest["branches"]["shared"]["layers"] == 1
    expected = model.predict_proba(TEXTS)
    for loaded in (MultiTaskModel.load(path), load(path, backend="torch")):
        got = loaded.predict_proba(TEXTS)
        assert all(np.array_equal(a[k], b[k]) for a, b in zip(expected, got) for k in a)
    weights = path / "branches" / "shared" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(ModelLoadError, match="branches/shared/model.safetensors does not match"):
        MultiTaskModel.load(path)
    manifest["branches"]["shared"]["heads"] = ["nope"]
    (path / "st_multitask.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelLoadError, match="must list heads the manifest has"):
        MultiTaskModel.load(path)


def test_a_recipe_names_its_branches(tiny_model_dir, tmp_path):
    data = tmp_path / "mood.csv"
    data.write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in zip(MOOD.texts, MOOD.labels)))
    recipe = {
        "model": {"backbone": str(tiny_model_dir), "branch": {"layers": 1, "share": "task"}},
        "tasks": {"mood": {"train": str(data)}, "tone": {"train": str(data), "branch": None}},
    }
    model, _, _ = load_recipe(recipe)
    assert sorted(model.branches) == ["mood", "tone"] and model.branch_of == {"mood": "mood"}
    with pytest.raises(InputError, match="share must be 'all' or 'task'"):
        load_recipe({**recipe, "model": {"branch": {"share": "some"}}})


@pytest.mark.export
def test_the_exported_graph_runs_the_branches(backbone, tmp_path):
    model = _branched(backbone)
    path = model.save(tmp_path / "m", backbone="reference")
    torch_pipe, onnx_pipe = load(path, backend="torch"), load(path, backend="onnx")
    ours, theirs = onnx_pipe.predict_proba(TEXTS), torch_pipe.predict_proba(TEXTS)
    assert max(np.abs(a[k] - b[k]).max() for a, b in zip(ours, theirs) for k in a) < 1e-4
    _, vectors = onnx_pipe.predict_and_embed(TEXTS)
    assert np.abs(vectors - backbone.encode(TEXTS, convert_to_numpy=True)).max() < 1e-4
    assert np.abs(onnx_pipe.embed(TEXTS) - vectors).max() < 1e-5
    # each call ran the graph cut to what it asked for
    runner = onnx_pipe.runner
    assert set(runner.record["variants"]) == {"heads", "embed"}
    outputs = {v: [o.name for o in session.get_outputs()] for v, session in runner._variants.items()}
    assert outputs == {"heads": ["probabilities.mood", "probabilities.ner"], "embed": ["sentence_embedding"]}


def test_gradual_unfreezing_and_layer_decay_apply_inside_a_branch(tiny_model_dir):
    from st_multitask.training import TrainingConfig
    from st_multitask.training.optim import Freezing, make_optimizer

    model = MultiTaskModel(str(tiny_model_dir)).add_branch("b", 2)
    model.add_head("mood", MLPHead(model.dim, ["neg", "pos"]), branch="b")
    config = TrainingConfig(freeze=["backbone"], unfreeze_every=1, lr_decay=0.5, learning_rate=1e-3)
    freezing = Freezing(model, config)
    freezing.apply(["mood"])
    layers = model.branches["b"].layers

    def open_layers() -> list[bool]:
        return [any(p.requires_grad for p in layer.parameters()) for layer in layers]

    freezing.set_unfrozen(freezing.unfrozen_layers(0))
    assert open_layers() == [False, True]
    freezing.set_unfrozen(freezing.unfrozen_layers(1))
    assert open_layers() == [True, True]
    assert not any(p.requires_grad for p in model.backbone.parameters())
    rates = {group["name"]: group["lr"] for group in make_optimizer(model, config).param_groups}
    assert rates["branch.b.layer.1"] == 1e-3 and rates["branch.b.layer.0"] == 5e-4


def test_fit_puts_heads_on_branches(tiny_model_dir):
    model = MultiTaskModel(str(tiny_model_dir))
    model.add_head("mood", MLPHead(model.dim, ["neg", "pos"]))
    model.add_head("topic", MLPHead(model.dim, ["money", "sport"]))
    data = {"mood": MOOD, "topic": TOPIC}
    fit(model, data, epochs=1, freeze=["backbone"], batch_size=4, branch={"layers": 1, "share": "task"})
    assert model.branch_of == {"mood": "mood", "topic": "topic"} and sorted(model.branches) == [
        "mood",
        "topic",
    ]
    with pytest.raises(InputError, match="branch share must be 'all' or 'task'"):
        fit(MultiTaskModel(str(tiny_model_dir)), {}, branch={"share": "every"})


@pytest.mark.export
def test_stmt_export_keeps_the_branches_of_a_model_on_the_packaged_backbone(backbone, tmp_path):
    from st_multitask.runtime.export import export_model

    model = MultiTaskModel(backbone).add_branch("b", 1)
    model.add_head("mood", MLPHead(model.dim, ["neg", "pos"]), branch="b")
    path = model.save(tmp_path / "m", backbone="reference")
    out = export_model(path, tmp_path / "exported", "onnx")
    graph = json.loads((out / "st_multitask.json").read_text())["graphs"]["onnx/fp32"]
    assert (
        set(graph["variants"]) == {"heads", "embed"}
        and (out / "branches" / "b" / "model.safetensors").is_file()
    )
    ours, theirs = (
        load(out, backend="onnx").predict_proba(TEXTS),
        load(path, backend="torch").predict_proba(TEXTS),
    )
    assert max(np.abs(a["mood"] - b["mood"]).max() for a, b in zip(ours, theirs)) < 1e-4


def test_a_branch_of_another_model_carries_its_heads_outputs(tiny_model_dir):
    """add_branch(branch=...) attaches a trained branch to another model on the same backbone, as the
    quality report does to score several seeds in one backbone pass."""
    trained = MultiTaskModel(str(tiny_model_dir)).add_branch("mood", 1)
    trained.add_head("mood", MLPHead(trained.dim, ["neg", "pos"]), branch="mood")
    fit(
        trained,
        {"mood": (MOOD, MOOD)},
        epochs=1,
        freeze=["backbone"],
        batch_size=4,
        learning_rate=1e-3,
        seed=2,
    )
    other = MultiTaskModel(str(tiny_model_dir)).add_branch("seed1", branch=trained.branches["mood"])
    other.add_head("mood1", trained.heads["mood"], branch="seed1")
    ours, theirs = other.predict_proba(TEXTS, ["mood1"]), trained.predict_proba(TEXTS, ["mood"])
    assert all(np.allclose(a["mood1"], b["mood"], atol=1e-6) for a, b in zip(ours, theirs))
    with pytest.raises(InputError, match="read by mood1"):
        other.remove_branch("seed1")
    other.remove_head("mood1")
    assert other.remove_branch("seed1") is trained.branches["mood"] and other.branches == {}
    with pytest.raises(InputError, match="this backbone has"):
        deeper = Branch.from_backbone(trained.backbone, 1)
        deeper.start = 0
        MultiTaskModel(str(tiny_model_dir)).add_branch("x", branch=deeper)
