"""The toolkit on a CUDA GPU, end to end (``gpu`` marker; deselected where there is no GPU):
which device every entry point picks when none is named, the default model on cuda against the
same weights on the CPU, and training on cuda through the real trainer (reload on the CPU, one
seed, one result). The speed side is ``python -m benchmarks run gpu_speed``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

pytestmark = [pytest.mark.gpu, pytest.mark.slow]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _spans(entities: list[dict]) -> list[tuple]:
    return [(e["start"], e["end"], e["label"]) for e in entities]


def _conll(path: Path) -> list[list[str]]:
    blocks = path.read_text(encoding="utf-8").strip().split("\n\n")
    return [[line.split()[0] for line in block.splitlines() if line.strip()] for block in blocks]


@pytest.fixture(scope="module")
def items() -> list:
    """Varied inputs: the examples' texts and sentiment rows, CoNLL sentences raw and pre-split,
    and texts past the 256-piece window (the topic head's chunked path)."""
    import pandas as pd

    out: list = []
    for name in ("a.txt", "b.txt"):
        out += [line for line in (EXAMPLES / name).read_text().splitlines() if line.strip()]
    for name in ("sentiment-train.csv", "sentiment-dev.csv"):
        out += pd.read_csv(EXAMPLES / "data" / name)["text"].tolist()[:40]
    conll = _conll(EXAMPLES / "data" / "ner-dev.conll")
    out += [" ".join(words) for words in conll[:30]] + conll[30:40]
    sentences = [text for text in out if isinstance(text, str)]
    out += [" ".join(sentences[i : i + 25]) for i in range(0, 100, 20)]
    return out


@pytest.fixture(scope="module")
def models(gpu):
    from st_multitask import MultiTaskModel

    return MultiTaskModel.default(device="cpu"), MultiTaskModel.default(device=gpu)


def test_every_entry_point_lands_on_the_gpu_when_no_device_is_named(gpu):
    from st_multitask import MultiTaskModel, Trainer, embed
    from st_multitask.backbone import cached_backbone, resolve_device
    from st_multitask.cli._common import load_model, load_multitask
    from st_multitask.embedding import resolve_model
    from st_multitask.runtime import resolve_backend

    kind = torch.device(gpu).type
    assert torch.device(resolve_device(None)).type == kind
    if kind == "cuda":  # auto is torch on a GPU, and a CPU runtime for what only the CPU runs
        assert resolve_backend("auto", "fp32", None).backend == "torch"
        assert resolve_backend("auto", "int8", None).backend in ("onnx", "openvino")
    assert getattr(resolve_model(None, "auto"), "device", torch.device("cpu")).type == kind
    embed(["The dog ran across the grass."])
    assert cached_backbone(None, None).device.type == kind
    model = MultiTaskModel.default()
    assert model.device.type == kind
    assert {next(h.parameters()).device.type for h in model.heads.values()} == {kind}
    assert getattr(load_model(None, None), "device", torch.device("cpu")).type == kind
    assert getattr(load_multitask(None, None), "device", torch.device("cpu")).type == kind
    assert torch.device(Trainer(model, progress=False).model.device).type == kind


def test_the_default_model_on_the_gpu_agrees_with_the_cpu(models, items):
    cpu_model, gpu_model = models
    on_cpu, on_gpu = cpu_model.predict(items, batch_size=32), gpu_model.predict(items, batch_size=32)
    for task, head in cpu_model.heads.items():
        if head.level == "sentence":
            same = np.mean([a[task]["label"] == b[task]["label"] for a, b in zip(on_cpu, on_gpu)])
            assert same >= 0.99, (task, same)
        else:
            same = np.mean([_spans(a[task]) == _spans(b[task]) for a, b in zip(on_cpu, on_gpu)])
            assert same >= 0.98, (task, same)
    proba_cpu = cpu_model.predict_proba(items, batch_size=32)
    proba_gpu = gpu_model.predict_proba(items, batch_size=32)
    for task, head in cpu_model.heads.items():
        diff = max(float(np.abs(a[task] - b[task]).max()) for a, b in zip(proba_cpu, proba_gpu))
        assert diff <= (1e-4 if head.level == "sentence" else 2e-3), (task, diff)
    texts = [x if isinstance(x, str) else " ".join(x) for x in items]
    a, b = cpu_model.encode(texts, batch_size=32), gpu_model.encode(texts, batch_size=32)
    cosine = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    assert cosine.min() >= 0.9999


def test_token_embeddings_on_the_gpu_match_the_cpu(models, items):
    from st_multitask import embed_tokens

    cpu_model, gpu_model = models
    texts = [x for x in items if isinstance(x, str)][:32]
    on_cpu = embed_tokens(texts, model=cpu_model.backbone)
    on_gpu = embed_tokens(texts, model=gpu_model.backbone)
    for a, b in zip(on_cpu, on_gpu):
        assert a.tokens == b.tokens and a.offsets == b.offsets
        assert np.abs(a.embeddings - b.embeddings).max() <= 1e-3


def _train(device: str, kinds: str, mixed_precision: str, output_dir: Path | None, seed: int = 0):
    from st_multitask import MultiTaskModel, TaskData, Trainer, TrainingConfig
    from st_multitask.data import SentenceExamples, TokenExamples, read_sentence_examples, read_token_examples
    from st_multitask.heads import ContextTokenHead, HybridHead, MLPHead, TokenHead

    s_train = read_sentence_examples(EXAMPLES / "data" / "sentiment-train.csv")
    s_dev = read_sentence_examples(EXAMPLES / "data" / "sentiment-dev.csv")
    n_train = read_token_examples(EXAMPLES / "data" / "ner-train.conll")
    n_dev = read_token_examples(EXAMPLES / "data" / "ner-dev.conll")
    s_train = SentenceExamples(s_train.texts[:64], s_train.labels[:64], "sentiment-train[:64]")
    n_train = TokenExamples(n_train.words[:32], n_train.tags[:32], "ner-train[:32]")
    tags = sorted(set(n_train.label_set()) | set(n_dev.label_set()), key=lambda t: (t != "O", t[2:], t))
    torch.manual_seed(seed)
    model = MultiTaskModel(device=device)
    labels = sorted(set(s_train.labels))
    if kinds == "mlp+token":
        model.add_head("sentiment", MLPHead(model.dim, labels, hidden=[128], dropout=0.1))
        model.add_head("ner", TokenHead(model.dim, tags, hidden=[], alignment="first"))
    else:  # the bundled default model's kinds
        features = {"ngram_range": [1, 2], "min_df": 1}
        model.add_head(
            "sentiment", HybridHead(model.dim, labels, hidden=[256], layers=[1, 3, 6], features=features)
        )
        model.add_head(
            "ner", ContextTokenHead(model.dim, tags, layers=[1, 3, 6], lstm_hidden=64, char_dim=30)
        )
    config = TrainingConfig(
        epochs=2,
        batch_size=16,
        learning_rate=5e-5,
        head_learning_rate=3e-3,
        seed=seed,
        mixed_precision=mixed_precision,
        checkpoint_every=4,
    )
    trainer = Trainer(model, config, output_dir=output_dir, overwrite=True, progress=False)
    result = trainer.fit([TaskData("sentiment", s_train, s_dev), TaskData("ner", n_train, n_dev)])
    return model, result, s_dev.texts + n_dev.words[:40]


def _weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().float().cpu() for k, v in model.state_dict().items() if v.is_floating_point()}


@pytest.mark.parametrize(
    ("kinds", "mixed_precision"),
    [
        ("mlp+token", "no"),
        ("mlp+token", "bf16"),
        ("mlp+token", "fp16"),
        ("default-kinds", "no"),
        ("default-kinds", "bf16"),
    ],
)
def test_training_on_the_gpu_learns_and_reloads_on_the_cpu(gpu, tmp_path, kinds, mixed_precision):
    from st_multitask import MultiTaskModel

    if mixed_precision != "no" and torch.device(gpu).type != "cuda":
        pytest.skip("mixed precision needs CUDA (reached only by a smoke run on a CPU)")
    model, result, dev_items = _train(gpu, kinds, mixed_precision, tmp_path / "model")
    losses = [h["train_loss"] for h in result.history]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
    assert model.device.type == torch.device(gpu).type
    assert sorted(p.name for p in (tmp_path / "model" / "checkpoints").iterdir())
    loaded = MultiTaskModel.load(tmp_path / "model", device="cpu")
    trained, reloaded = _weights(model), _weights(loaded)
    assert all(torch.equal(trained[k], reloaded[k]) for k in trained)
    on_gpu, on_cpu = model.predict(dev_items), loaded.predict(dev_items)
    assert (
        np.mean([a["sentiment"]["label"] == b["sentiment"]["label"] for a, b in zip(on_gpu, on_cpu)]) >= 0.98
    )
    assert np.mean([_spans(a["ner"]) == _spans(b["ner"]) for a, b in zip(on_gpu, on_cpu)]) >= 0.95


def test_one_seed_trains_the_same_weights_on_the_gpu(gpu):
    torch.use_deterministic_algorithms(True)
    try:
        first, _, _ = _train(gpu, "mlp+token", "no", None)
        a = _weights(first)
        del first
        second, _, _ = _train(gpu, "mlp+token", "no", None)
        b = _weights(second)
    finally:
        torch.use_deterministic_algorithms(False)
    differing = [k for k in a if not torch.equal(a[k], b[k])]
    assert not differing, f"{len(differing)} of {len(a)} tensors differ"
