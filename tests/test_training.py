from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from st_multitask import MultiTaskModel, TaskData, Trainer, TrainingConfig
from st_multitask.data import SentenceExamples, TokenExamples
from st_multitask.errors import InputError
from st_multitask.heads import MLPHead
from st_multitask.training import TaskSampler
from st_multitask.training.optim import encoder_layers
from st_multitask.training.plan import streams_of

sys.path.insert(0, str(Path(__file__).parent / "jobs"))
from train_job import build_model, toy_tasks

JOB = Path(__file__).parent / "jobs" / "train_job.py"


@pytest.fixture
def tiny(tiny_model_dir):
    return build_model(str(tiny_model_dir))


def _snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _changed(before: dict, module: torch.nn.Module) -> dict[str, bool]:
    return {k: not torch.equal(before[k], v) for k, v in module.state_dict().items() if v.is_floating_point()}


# -- config -----------------------------------------------------------------------------------


def test_config_validation(tmp_path):
    with pytest.raises(InputError, match="Unknown training setting 'epoch'. Valid: strategy, epochs"):
        TrainingConfig.from_dict({"epoch": 3})
    with pytest.raises(InputError, match="Unknown sampling 'roundrobin'. Valid: proportional, round_robin"):
        TrainingConfig(sampling="roundrobin")
    with pytest.raises(InputError, match="batch_size must be a positive integer"):
        TrainingConfig(batch_size=0)
    with pytest.raises(InputError, match="lr_decay"):
        TrainingConfig(lr_decay=1.5)
    with pytest.raises(InputError, match="best_per_task must be true or false, got 'maybe'"):
        TrainingConfig(best_per_task="maybe")
    path = tmp_path / "cfg.yaml"
    path.write_text("training:\n  epochs: 5\n  sampling: temperature\n  freeze: [backbone]\n")
    config = TrainingConfig.from_file(path)
    assert (config.epochs, config.sampling, config.freeze) == (5, "temperature", ["backbone"])
    path.write_text("- not a mapping\n")
    with pytest.raises(InputError, match="must hold a mapping"):
        TrainingConfig.from_file(path)


def test_a_renamed_training_setting_is_read_under_its_new_name_with_a_warning(tmp_path, caplog):
    """``temperature`` (task sampling) became ``sampling_temperature``: a recipe, saved model or
    checkpoint written before still loads, and the log names the new key."""
    path = tmp_path / "old.yaml"
    path.write_text("training:\n  sampling: temperature\n  temperature: 3.0\n")
    with caplog.at_level("WARNING", logger="st_multitask.training.config"):
        config = TrainingConfig.from_file(path)
    assert config.sampling_temperature == 3.0 and "sampling_temperature" in caplog.text
    assert "temperature" not in config.to_dict()
    with pytest.raises(InputError, match="sampling_temperature must be a positive number"):
        TrainingConfig(sampling_temperature=0)


# -- samplers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        ("proportional", {"a": 0.8, "b": 0.2}),
        ("uniform", {"a": 0.5, "b": 0.5}),
        ("temperature", {"a": 800**0.5 / (800**0.5 + 200**0.5), "b": 200**0.5 / (800**0.5 + 200**0.5)}),
    ],
)
def test_sampler_proportions(strategy, expected):
    sampler = TaskSampler({"a": 800, "b": 200}, strategy, sampling_temperature=2.0, seed=1)
    assert sampler.probabilities == pytest.approx(expected)
    draws = [next(sampler) for _ in range(20000)]
    assert draws.count("a") / len(draws) == pytest.approx(expected["a"], abs=0.015)


def test_round_robin_and_sampler_state():
    sampler = TaskSampler({"a": 5, "b": 500, "c": 1}, "round_robin")
    assert [next(sampler) for _ in range(7)] == ["a", "b", "c", "a", "b", "c", "a"]
    random_sampler = TaskSampler({"a": 5, "b": 5}, "proportional", seed=3)
    [next(random_sampler) for _ in range(10)]
    saved = json.loads(json.dumps(random_sampler.state_dict()))
    first = [next(random_sampler) for _ in range(20)]
    random_sampler.load_state_dict(saved)
    assert [next(random_sampler) for _ in range(20)] == first
    with pytest.raises(InputError, match="has no training examples"):
        TaskSampler({"a": 0}, "uniform")


# -- training ---------------------------------------------------------------------------------


def test_joint_training_learns_both_tasks(tiny, tmp_path):
    config = TrainingConfig(epochs=5, batch_size=8, learning_rate=3e-3, head_learning_rate=1e-2, seed=1)
    result = Trainer(tiny, config, output_dir=tmp_path / "out", progress=False).fit(toy_tasks(96))
    assert result.metrics["sentiment"]["accuracy"] >= 0.9 and result.metrics["ner"]["f1"] >= 0.9
    lines = (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3, 4, 5]
    loaded = MultiTaskModel.load(tmp_path / "out")
    assert loaded.heads["ner"].is_trained
    manifest = json.loads((tmp_path / "out" / "st_multitask.json").read_text())
    assert manifest["metrics"]["ner"]["f1"] == result.metrics["ner"]["f1"]
    pred = loaded.predict([["we", "saw", "Alice", "again"]])[0]
    assert [(e["text"], e["label"]) for e in pred["ner"]] == [("Alice", "PER")]


def test_rows_with_several_labels_train_from_one_pass(tiny):
    tiny.add_head("topic", MLPHead(tiny.dim, ["film", "day", "show"], hidden=[]))
    sentiment = toy_tasks(32)[0]
    topics = [t.split()[2] for t in sentiment.train.texts]
    tasks = [sentiment, TaskData("topic", SentenceExamples(sentiment.train.texts, topics))]
    calls = []
    hook = tiny.backbone.register_forward_hook(lambda *a: calls.append(1))
    try:
        config = TrainingConfig(
            epochs=1, batch_size=8, freeze=["backbone"], cache_embeddings="off", calibrate=False
        )
        trainer = Trainer(tiny, config, progress=False)
        assert [s.tasks for s in streams_of(tiny, tasks)] == [["sentiment", "topic"]]
        before = len(calls)
        trainer.fit(tasks)
    finally:
        hook.remove()
    # 32 rows / 8 = 4 training passes for both tasks, then one eval pass per task
    assert len(calls) - before == 4 + 2


def test_sequential_training_reports_forgetting(tiny):
    config = TrainingConfig(strategy="sequential", task_order=["ner", "sentiment"], epochs=1, batch_size=8)
    result = Trainer(tiny, config, progress=False).fit(toy_tasks(32))
    assert list(result.forgetting) == ["ner", "sentiment"]
    assert set(result.forgetting["ner"]) == {"ner"}
    assert set(result.forgetting["sentiment"]) == {"ner", "sentiment"}  # earlier tasks evaluated again


def test_frozen_backbone_and_head_stay_bit_identical(tiny):
    before = _snapshot(tiny)
    config = TrainingConfig(epochs=1, batch_size=8, freeze=["backbone", "ner"])
    Trainer(tiny, config, progress=False).fit(toy_tasks(16))
    changed = _changed(before, tiny)
    assert not any(v for k, v in changed.items() if k.startswith("backbone.") or k.startswith("_heads.ner."))
    assert any(v for k, v in changed.items() if k.startswith("_heads.sentiment."))


def test_freezing_everything_is_refused(tiny):
    with pytest.raises(InputError, match="Everything is frozen"):
        Trainer(tiny, TrainingConfig(freeze=["all"]), progress=False).fit(toy_tasks(8))
    with pytest.raises(InputError, match="Nothing trains"):
        Trainer(tiny, TrainingConfig(freeze=["backbone", "ner", "sentiment"]), progress=False).fit(
            toy_tasks(8)
        )
    with pytest.raises(InputError, match="Cannot freeze 'encoder'"):
        Trainer(tiny, TrainingConfig(freeze=["encoder"]), progress=False).fit(toy_tasks(8))


def test_layerwise_learning_rates(tiny):
    trainer = Trainer(
        tiny, TrainingConfig(learning_rate=1e-3, head_learning_rate=1e-2, lr_decay=0.5), progress=False
    )
    groups = {g["name"]: g["lr"] for g in trainer._optimizer().param_groups}
    # the tiny backbone has 2 encoder layers: top 1e-3, below 0.5e-3, embeddings 0.25e-3
    assert groups["backbone.layer.1"] == pytest.approx(1e-3)
    assert groups["backbone.layer.0"] == pytest.approx(5e-4)
    assert groups["backbone.embeddings"] == pytest.approx(2.5e-4)
    assert groups["head.ner"] == pytest.approx(1e-2)
    assert groups["backbone.layer.1.no_decay"] == pytest.approx(1e-3)


def test_gradual_unfreezing_schedule(tiny):
    config = TrainingConfig(epochs=1, batch_size=8, unfreeze_every=3, unfreeze_unit="step", unfreeze_layers=1)
    trainer = Trainer(tiny, config, progress=False)
    trainable = []
    original = trainer.freezing.set_unfrozen

    def spy(count):
        original(count)
        layers = encoder_layers(tiny)
        trainable.append(
            tuple(any(p.requires_grad for p in layer.parameters()) for layer in layers)
            + (any(p.requires_grad for p in tiny.backbone[0].auto_model.embeddings.parameters()),)
        )

    trainer.freezing.set_unfrozen = spy
    before = _snapshot(tiny)
    trainer.fit(toy_tasks(32))  # 8 micro-batches = 8 steps
    # (layer 0, layer 1, embeddings): top layer first, the next after 3 steps, embeddings after 6
    assert trainable[0] == (False, True, False)
    assert trainable[3] == (True, True, False)
    assert trainable[6] == (True, True, True)
    assert any(v for k, v in _changed(before, tiny).items() if "embeddings" in k)


def test_epoch_unfreezing_keeps_lower_layers_identical(tiny):
    before = _snapshot(tiny)
    config = TrainingConfig(epochs=1, batch_size=8, unfreeze_every=1, unfreeze_unit="epoch")
    Trainer(tiny, config, progress=False).fit(toy_tasks(16))
    changed = _changed(before, tiny)
    assert not any(v for k, v in changed.items() if ".layer.0." in k or "embeddings" in k)
    assert any(v for k, v in changed.items() if ".layer.1." in k)


def test_cache_path_equals_no_cache_path(tiny):
    initial = _snapshot(tiny)
    results = {}
    for mode in ("off", "memory", "disk"):
        tiny.load_state_dict(initial)
        config = TrainingConfig(epochs=2, batch_size=8, freeze=["backbone"], cache_embeddings=mode, seed=3)
        metrics = Trainer(tiny, config, progress=False).fit(toy_tasks(24)).metrics
        results[mode] = (_snapshot(tiny), metrics)
    for mode in ("memory", "disk"):
        for key, value in results["off"][0].items():
            if value.is_floating_point():
                assert torch.allclose(value, results[mode][0][key], atol=1e-6), key
        assert results[mode][1]["ner"]["f1"] == results["off"][1]["ner"]["f1"]


def test_cache_dir_is_reused_across_runs_and_gives_the_same_bits(tiny, tmp_path):
    """With cache_dir, a second run reads the tables the first wrote (and no backbone pass is
    needed), and ends on exactly the weights of a run that computed them; other texts get their
    own table."""
    from unittest import mock

    initial = _snapshot(tiny)
    cache = tmp_path / "cache"
    outcomes = []
    for run in range(2):
        tiny.load_state_dict(initial)
        config = TrainingConfig(
            epochs=2, batch_size=8, freeze=["backbone"], seed=3, cache_dir=str(cache), calibrate=False
        )
        trainer = Trainer(tiny, config, progress=False)
        if run == 1:  # every table comes from the files
            with mock.patch.object(type(tiny), "head_inputs", side_effect=AssertionError("backbone ran")):
                trainer.fit(toy_tasks(24))
        else:
            trainer.fit(toy_tasks(24))
        outcomes.append(_snapshot(tiny))
    files = sorted(cache.glob("*.safetensors"))
    assert files and not list(cache.glob("*.tmp"))
    assert all(torch.equal(v, outcomes[1][k]) for k, v in outcomes[0].items())
    tiny.load_state_dict(initial)
    config = TrainingConfig(
        epochs=1, batch_size=8, freeze=["backbone"], cache_dir=str(cache), calibrate=False
    )
    Trainer(tiny, config, progress=False).fit(toy_tasks(16))
    assert len(list(cache.glob("*.safetensors"))) > len(files)
    with pytest.raises(InputError, match="cache_dir must be a folder path"):
        TrainingConfig(cache_dir=3)


def test_cache_key_follows_what_decides_the_inputs(tiny_model_dir):
    """Heads that differ only in settings their inputs ignore (dropout, class weights) share a
    table; a setting that changes the inputs (the layers read), or other texts, does not."""
    from st_multitask import MultiTaskModel
    from st_multitask.heads import MLPHead
    from st_multitask.training.cache import EmbeddingCache

    def key(texts, **settings):
        model = MultiTaskModel(str(tiny_model_dir))
        model.add_head("s", MLPHead(model.dim, ["a", "b"], **settings))
        return EmbeddingCache(model, TrainingConfig(cache_dir="unused"), True).key(texts, ["s"])

    texts = ["one text", "another"]
    assert key(texts) == key(texts, dropout=0.4, class_weights={"a": 2.0}, hidden=[4])
    assert key(texts) != key(texts, layers=[1])
    assert key(texts) != key(texts[:1])


def test_cpu_runs_repeat_exactly(tiny_model_dir):
    outcomes = []
    for _ in range(2):
        model = build_model(str(tiny_model_dir))
        result = Trainer(model, TrainingConfig(epochs=1, batch_size=4, seed=5), progress=False).fit(
            toy_tasks(16)
        )
        history = [{k: v for k, v in h.items() if k != "train_seconds"} for h in result.history]
        outcomes.append((history, _snapshot(model)))
    assert outcomes[0][0] == outcomes[1][0]
    assert all(torch.equal(v, outcomes[1][1][k]) for k, v in outcomes[0][1].items())


def test_bad_training_input(tiny, tmp_path, write):
    tasks = toy_tasks(8)
    unseen = SentenceExamples(["x"], ["neutral"], "dev.csv", [7])
    with pytest.raises(
        InputError, match="dev.csv line 7: label 'neutral' never appears in the training data"
    ):
        Trainer(tiny, TrainingConfig(), progress=False).fit(
            [TaskData("sentiment", tasks[0].train, dev=unseen)]
        )
    with pytest.raises(InputError, match="Task 'topic' has no head"):
        Trainer(tiny, TrainingConfig(), progress=False).fit([TaskData("topic", tasks[0].train)])
    with pytest.raises(InputError, match="its train data must be TokenExamples"):
        Trainer(tiny, TrainingConfig(), progress=False).fit([TaskData("ner", tasks[0].train)])
    with pytest.raises(InputError, match="the dev split .* is empty"):
        Trainer(tiny, TrainingConfig(), progress=False).fit(
            [TaskData("sentiment", tasks[0].train, dev=SentenceExamples([], [], "dev.csv"))]
        )
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    with pytest.raises(InputError, match="exists and is not empty; pass overwrite=True"):
        Trainer(tiny, TrainingConfig(), output_dir=out, progress=False).fit(tasks)
    assert (out / "keep.txt").read_text() == "precious"
    with pytest.raises(InputError, match="Nothing to resume"):
        Trainer(tiny, TrainingConfig(), output_dir=out, resume=True, progress=False).fit(tasks)
    with pytest.raises(InputError, match="loss_weights names unknown task 'topic'"):
        Trainer(tiny, TrainingConfig(loss_weights={"topic": 2.0}), progress=False).fit(tasks)


# -- processes: kill and resume, accelerate -----------------------------------------------------


def _job(*args: str) -> list[str]:
    return [sys.executable, str(JOB), *args]


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_result(tiny_model_dir, tmp_path):
    model = str(tiny_model_dir)
    subprocess.run(
        _job(model, str(tmp_path / "full"), "--examples", "200", "--result", str(tmp_path / "full.json")),
        check=True,
    )
    out = tmp_path / "killed"
    process = subprocess.Popen(_job(model, str(out), "--examples", "200"))
    deadline = time.time() + 120
    while time.time() < deadline and not list((out / "checkpoints").glob("step-0000006*")):
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL, "the job finished before it could be killed"
    assert not (out / "st_multitask.json").exists()
    subprocess.run(
        _job(model, str(out), "--examples", "200", "--resume", "--result", str(tmp_path / "resumed.json")),
        check=True,
    )
    full = json.loads((tmp_path / "full.json").read_text())
    resumed = json.loads((tmp_path / "resumed.json").read_text())
    assert resumed["steps"] == full["steps"] == 200
    for task in ("sentiment", "ner"):
        for key in ("accuracy", "macro_f1", "f1"):
            if key in full["metrics"][task]:
                assert resumed["metrics"][task][key] == pytest.approx(full["metrics"][task][key], abs=1e-4)
    for key, value in full["weights"].items():
        assert resumed["weights"][key] == pytest.approx(value, abs=1e-4), key


@pytest.mark.slow
def test_accelerate_launch_two_cpu_processes(tiny_model_dir, tmp_path):
    """Data parallel on two CPU processes. `accelerate launch --cpu` starts a single process unless
    MPI is set up; `--multi_gpu` starts N processes through torch.distributed, which on a machine
    without GPUs train on the CPU (gloo backend)."""
    accelerate = Path(sys.executable).parent / "accelerate"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [
        str(accelerate),
        "launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        str(JOB),
        str(tiny_model_dir),
        str(tmp_path / "out"),
        "--examples",
        "64",
        "--epochs",
        "3",
        "--result",
        str(tmp_path / "r.json"),
    ]
    subprocess.run(command, check=True, env=env, timeout=600)
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["world"] == 2
    assert result["metrics"]["sentiment"]["accuracy"] >= 0.9 and result["metrics"]["ner"]["f1"] >= 0.9
    assert MultiTaskModel.load(tmp_path / "out").heads["ner"].is_trained


def test_context_head_trains_from_the_cache_as_without_it(tiny_model_dir):
    from st_multitask.heads import ContextTokenHead

    results = []
    for mode in ("off", "memory"):
        torch.manual_seed(0)
        model = MultiTaskModel(str(tiny_model_dir), device="cpu")
        model.add_head(
            "ner",
            ContextTokenHead(
                model.dim, ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"], layers=[1, 2], lstm_hidden=8
            ),
        )
        config = TrainingConfig(
            epochs=2, batch_size=8, freeze=["backbone"], cache_embeddings=mode, head_learning_rate=1e-2
        )
        metrics = Trainer(model, config, progress=False).fit([toy_tasks(24)[1]]).metrics
        results.append((metrics["ner"]["f1"], _snapshot(model.heads["ner"])))
    assert results[0][0] == results[1][0]
    for key, value in results[0][1].items():
        if value.is_floating_point():
            assert torch.allclose(value, results[1][1][key], atol=1e-5), key


def test_best_per_task_keeps_each_heads_best_dev_epoch(tiny, tmp_path):
    from st_multitask.evaluation import evaluate_task

    train = toy_tasks(48)
    dev = toy_tasks(24, seed=7)
    tasks = [TaskData(t.name, t.train, dev=d.dev) for t, d in zip(train, dev)]
    config = TrainingConfig(
        epochs=6, batch_size=8, freeze=["backbone"], head_learning_rate=2e-2, best_per_task=True, seed=3
    )
    result = Trainer(tiny, config, output_dir=tmp_path / "out", progress=False).fit(tasks)
    main = {"sentiment": "macro_f1", "ner": "f1"}
    for task, d in zip(("sentiment", "ner"), dev):
        per_epoch = [h["metrics"][task][main[task]] for h in result.history]
        final = evaluate_task(tiny, task, d.dev)[main[task]]
        assert final == pytest.approx(max(per_epoch)) == pytest.approx(result.metrics[task][main[task]])
    assert (tmp_path / "out" / "checkpoints" / "best-heads.safetensors").is_file()
    # the last epoch is not the best one for every task here, so the selection did something
    assert any(
        h_last != max(vals)
        for vals, h_last in (
            ([h["metrics"][t][main[t]] for h in result.history], result.history[-1]["metrics"][t][main[t]])
            for t in main
        )
    )
    with pytest.raises(InputError, match="best_per_task needs joint training with a frozen backbone"):
        Trainer(tiny, TrainingConfig(epochs=1, best_per_task=True), progress=False).fit(toy_tasks(8))


def test_sequential_stages_each_get_their_own_warmup_and_decay(tiny, monkeypatch):
    seen: list[float] = []
    make = Trainer._optimizer

    def recording(self):
        optimizer = make(self)
        optimizer.register_step_pre_hook(lambda opt, args, kwargs: seen.append(opt.param_groups[-1]["lr"]))
        return optimizer

    monkeypatch.setattr(Trainer, "_optimizer", recording)
    config = TrainingConfig(
        strategy="sequential", epochs=1, batch_size=8, warmup_ratio=0.5, head_learning_rate=1e-2
    )
    Trainer(tiny, config, progress=False).fit(toy_tasks(32))  # two stages of 4 steps
    assert len(seen) == 8
    first, second = seen[:4], seen[4:]
    assert first == pytest.approx(second)  # the second stage starts over: warmup, then decay
    assert first[0] < first[1] and first[-1] < first[1]


def _uneven_tasks() -> list[TaskData]:
    sentiment, ner = toy_tasks(32)
    short = TokenExamples(ner.train.words[:16], ner.train.tags[:16], "toy-ner")
    return [sentiment, TaskData("ner", short, dev=ner.dev)]  # stages of 8 and 4 steps


@pytest.mark.parametrize("cut", [5, 8, 10])  # inside stage 1, at the stage boundary, inside stage 2
def test_sequential_run_resumes_from_any_checkpoint_to_the_same_weights(tiny_model_dir, tmp_path, cut):
    import shutil

    config = TrainingConfig(
        strategy="sequential",
        epochs=2,
        batch_size=8,
        learning_rate=2e-3,
        head_learning_rate=1e-2,
        checkpoint_every=1,
        keep_checkpoints=100,
        seed=5,
    )
    full = build_model(str(tiny_model_dir))
    Trainer(full, config, output_dir=tmp_path / "full", progress=False).fit(_uneven_tasks())
    shutil.copytree(tmp_path / "full", tmp_path / "cut")
    steps = sorted((tmp_path / "cut" / "checkpoints").glob("step-*"))
    assert len(steps) >= 12
    for folder in steps:
        if int(folder.name.split("-")[1]) > cut:
            shutil.rmtree(folder)
    resumed = build_model(str(tiny_model_dir))
    Trainer(resumed, config, output_dir=tmp_path / "cut", resume=True, progress=False).fit(_uneven_tasks())
    for (key, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-5), key


# -- average_epochs: checkpoint averaging -------------------------------------------------------


def _averaging_config(**overrides) -> TrainingConfig:
    settings = dict(
        epochs=4, batch_size=8, freeze=["backbone"], head_learning_rate=2e-2, keep_checkpoints=100, seed=3
    )
    return TrainingConfig(**{**settings, **overrides})


def _epoch_end_weights(out: Path) -> dict[int, dict[str, torch.Tensor]]:
    """Epoch (1-based) -> the weights in the checkpoint written at its end."""
    from st_multitask.training.checkpointing import load_checkpoint

    ends = {}
    for folder in sorted((out / "checkpoints").glob("step-*")):
        weights, saved, _ = load_checkpoint(folder)
        if saved["loop"]["micro"] == 0:
            ends[saved["loop"]["epoch"]] = weights
    return ends


def test_average_epochs_ends_on_the_mean_of_the_last_epochs(tiny_model_dir, tmp_path):
    from st_multitask.evaluation import evaluate_task

    tasks = toy_tasks(32)
    plain = build_model(str(tiny_model_dir))
    Trainer(plain, _averaging_config(), output_dir=tmp_path / "plain", progress=False).fit(tasks)
    ends = _epoch_end_weights(tmp_path / "plain")
    assert sorted(ends) == [1, 2, 3, 4]

    model = build_model(str(tiny_model_dir))
    config = _averaging_config(average_epochs={"sentiment": 2})
    result = Trainer(model, config, output_dir=tmp_path / "avg", progress=False).fit(tasks)
    changed = False
    for key, value in model.heads["sentiment"].state_dict().items():
        full = f"_heads.sentiment.{key}"
        if not value.is_floating_point():
            continue
        mean = ((ends[3][full].double() + ends[4][full].double()) / 2).to(value.dtype)
        assert torch.equal(value, mean), key
        changed |= not torch.equal(value, ends[4][full])
    assert changed  # the mean is not the last epoch's weights
    for key, value in model.heads["ner"].state_dict().items():  # not averaged: as the plain run
        assert torch.equal(value, plain.heads["ner"].state_dict()[key]), key
    assert result.metrics["sentiment"]["averaged_epochs"] == 2
    assert "averaged_epochs" not in result.metrics["ner"]
    dev = evaluate_task(model, "sentiment", tasks[0].dev)
    assert result.metrics["sentiment"]["macro_f1"] == pytest.approx(dev["macro_f1"])
    saved = json.loads((tmp_path / "avg" / "checkpoints" / "average-heads.json").read_text())
    assert saved == {"sentiment": [2, 3]}  # 0-based epochs


@pytest.mark.parametrize("cut", [12, 28])  # inside epoch 2 (before the window), inside epoch 4
def test_averaged_run_resumes_to_the_same_bits(tiny_model_dir, tmp_path, cut):
    import shutil

    config = _averaging_config(average_epochs={"sentiment": 2}, best_per_task=True, checkpoint_every=1)
    full = build_model(str(tiny_model_dir))
    Trainer(full, config, output_dir=tmp_path / "full", progress=False).fit(toy_tasks(32))
    shutil.copytree(tmp_path / "full", tmp_path / "cut")
    for folder in (tmp_path / "cut" / "checkpoints").glob("step-*"):
        if int(folder.name.split("-")[1]) > cut:
            shutil.rmtree(folder)
    if cut < 16:  # the snapshots of a run killed before its window are not there yet
        for name in ("average-heads.safetensors", "average-heads.json"):
            (tmp_path / "cut" / "checkpoints" / name).unlink()
    resumed = build_model(str(tiny_model_dir))
    Trainer(resumed, config, output_dir=tmp_path / "cut", resume=True, progress=False).fit(toy_tasks(32))
    for (key, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), key


def test_average_epochs_bad_settings(tiny):
    for value in (0, 5, True, "2", {"sentiment": 0}):
        with pytest.raises(InputError, match="average_epochs must be an epoch count from 1 to epochs"):
            TrainingConfig(epochs=4, average_epochs=value)
    with pytest.raises(InputError, match="drop early_stopping_patience or average_epochs"):
        TrainingConfig(epochs=4, average_epochs=2, early_stopping_patience=1)
    with pytest.raises(InputError, match="average_epochs names unknown task 'topic'"):
        Trainer(tiny, _averaging_config(average_epochs={"topic": 2}), progress=False).fit(toy_tasks(8))
    with pytest.raises(InputError, match="average_epochs needs joint training with a frozen backbone"):
        Trainer(tiny, TrainingConfig(epochs=2, average_epochs=1), progress=False).fit(toy_tasks(8))


def test_a_resumed_run_averages_only_its_own_window(tiny_model_dir, tmp_path):
    """Resumed with a smaller window than the run that wrote the snapshots, the run averages only
    the epochs it asks for, as a fresh run with that window does."""
    import shutil

    wide = _averaging_config(average_epochs={"sentiment": 3, "ner": 3}, checkpoint_every=1)
    Trainer(build_model(str(tiny_model_dir)), wide, output_dir=tmp_path / "wide", progress=False).fit(
        toy_tasks(32)
    )
    for folder in (tmp_path / "wide" / "checkpoints").glob("step-*"):
        if int(folder.name.split("-")[1]) > 28:  # inside epoch 4: snapshots of epochs 2 and 3 kept
            shutil.rmtree(folder)
    narrow = _averaging_config(average_epochs={"sentiment": 2}, checkpoint_every=1)
    resumed = build_model(str(tiny_model_dir))
    Trainer(resumed, narrow, output_dir=tmp_path / "wide", resume=True, progress=False).fit(toy_tasks(32))
    fresh = build_model(str(tiny_model_dir))
    Trainer(fresh, narrow, output_dir=tmp_path / "fresh", progress=False).fit(toy_tasks(32))
    for (key, a), b in zip(fresh.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), key


def test_group_by_length_makes_batches_of_similar_texts_in_a_seeded_order():
    from st_multitask.training.plan import Stream, next_batch

    items = [f"{'x' * n}" for n in range(1, 401)]

    def one_pass(group: bool, seed: int = 1) -> list[list[int]]:
        stream = Stream(["t"], items, {"t": [0] * len(items)})
        config = TrainingConfig(batch_size=8, group_by_length=group, seed=seed)
        positions: dict = {}
        return [next_batch(stream, positions, config, 0, 0) for _ in range(50)]

    grouped, plain = one_pass(True), one_pass(False)
    assert sorted(i for batch in grouped for i in batch) == list(range(400))  # every example once
    spread = max(max(b) - min(b) for b in grouped)  # indices here are lengths - 1
    assert spread == 7 and max(max(b) - min(b) for b in plain) > 100
    assert one_pass(True) == grouped and one_pass(True, seed=2) != grouped
    with pytest.raises(InputError, match="group_by_length must be true or false"):
        TrainingConfig(group_by_length="yes")
