"""Recipes: the seed fixes the heads' initial weights (they are built before training starts)."""

from __future__ import annotations

import torch

from st_multitask.recipe import load_recipe


def _recipe(tiny_model_dir, data_dir, seed: int) -> dict:
    return {
        "model": {"backbone": str(tiny_model_dir)},
        "tasks": {"s": {"head": {"kind": "mlp", "hidden": [8]}, "train": str(data_dir / "t.csv")}},
        "training": {"epochs": 1, "seed": seed},
    }


def test_same_seed_same_initial_heads(tiny_model_dir, tmp_path):
    (tmp_path / "t.csv").write_text("text,label\na good one,pos\na bad one,neg\n")
    weights = []
    for seed in (7, 7, 8):
        torch.manual_seed(seed * 1000 + len(weights))  # whatever ran before must not matter
        model, _, _ = load_recipe(_recipe(tiny_model_dir, tmp_path, seed))
        weights.append(model.heads["s"].mlp[0].weight.detach().clone())
    assert torch.equal(weights[0], weights[1])
    assert not torch.equal(weights[0], weights[2])


def test_a_list_of_sources_is_joined_in_order(tiny_model_dir, tmp_path):
    import pytest

    from st_multitask.errors import InputError

    (tmp_path / "a.csv").write_text("text,label\na good one,pos\na bad one,neg\n")
    (tmp_path / "b.csv").write_text("text,label\nwhat time is it,other\n")
    recipe = _recipe(tiny_model_dir, tmp_path, 0)
    recipe["tasks"]["s"]["train"] = [str(tmp_path / "a.csv"), str(tmp_path / "b.csv")]
    recipe["tasks"]["s"]["head"]["other_label"] = "other"
    model, tasks, _ = load_recipe(recipe)
    assert tasks[0].train.texts == ["a good one", "a bad one", "what time is it"]
    assert model.heads["s"].labels == ["neg", "other", "pos"] and model.heads["s"].other_label == "other"
    recipe["tasks"]["s"]["train"] = []
    with pytest.raises(InputError, match="empty list for 'train'"):
        load_recipe(recipe)
