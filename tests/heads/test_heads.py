from __future__ import annotations

import json
import sys
import textwrap
from typing import ClassVar, Literal

import pytest
import torch
from torch import nn

from st_multitask.errors import InputError, ModelLoadError
from st_multitask.heads import Head, MLPHead, TokenHead, get_head_class, head_kinds, register_head


def _roundtrip(head: Head, tmp_path) -> Head:
    head.save(tmp_path / "head")
    return Head.load(tmp_path / "head")


def test_mlp_head_shapes_and_config():
    head = MLPHead(16, ["a", "b", "c"], hidden=[8, 4])
    assert head({"sentence_embedding": torch.randn(5, 16)}).shape == (5, 3)
    assert head.id2label == {0: "a", 1: "b", 2: "c"} and head.label2id["c"] == 2
    assert head.get_config_dict()["hidden"] == [8, 4]
    probe = MLPHead(16, ["a", "b"], hidden=[])
    assert len([m for m in probe.mlp if isinstance(m, nn.Linear)]) == 1  # linear probe


@pytest.mark.parametrize(
    "head",
    [
        MLPHead(16, ["neg", "pos"], hidden=[8], activation="torch.nn.ReLU", dropout=0.0),
        MLPHead(16, ["x", "y", "z"], hidden=[], multi_label=True, threshold=0.3),
        TokenHead(16, ["O", "B-PER", "I-PER"], hidden=[8], alignment="mean"),
        TokenHead(16, ["O", "B-LOC", "I-LOC"], layers=[0, 2]),
    ],
)
def test_save_load_roundtrip(head, tmp_path):
    torch.manual_seed(0)
    head.eval()
    loaded = _roundtrip(head, tmp_path).eval()
    assert type(loaded) is type(head) and loaded.get_config_dict() == head.get_config_dict()
    if head.level == "sentence":
        features = {"sentence_embedding": torch.randn(3, 16)}
    else:
        hidden = tuple(torch.randn(2, 5, 16) for _ in range(3))
        features = {
            "token_embeddings": hidden[-1],
            "all_layer_embeddings": hidden,
            "piece_word": torch.tensor([[-1, 0, 0, 1, -1], [-1, 0, 1, 2, -1]]),
        }
    assert torch.allclose(head(features), loaded(features))
    config = json.loads((tmp_path / "head" / "config.json").read_text())
    assert config["kind"] == head.kind and config["config"]["labels"] == head.labels


def test_multi_label_decoding():
    head = MLPHead(4, ["a", "b", "c"], multi_label=True, threshold=0.5)
    decoded = head.decode(torch.tensor([0.9, 0.2, 0.6]))
    assert decoded["label"] == ["a", "c"] and decoded["score"] == pytest.approx([0.9, 0.6])
    loss = head.loss(torch.zeros(2, 3), torch.tensor([[1, 0, 1], [0, 0, 0]]))
    assert loss.item() == pytest.approx(torch.log(torch.tensor(2.0)).item(), abs=1e-6)


def test_single_label_predict_and_loss():
    head = MLPHead(4, ["a", "b"], hidden=[])
    with torch.no_grad():
        head.mlp[0].weight.zero_()
        head.mlp[0].bias.copy_(torch.tensor([0.0, 2.0]))
    assert head.predict(torch.randn(3, 4)) == ["b", "b", "b"]
    assert head.encode_labels(["b", "a"]).tolist() == [1, 0]
    with pytest.raises(InputError, match="Unknown label 'c'. Valid: a, b."):
        head.encode_labels(["c"])


def test_token_head_loss_ignores_padding():
    head = TokenHead(4, ["O", "B-PER", "I-PER"])
    logits = torch.randn(1, 3, 3)
    full = head.loss(logits[:, :2], torch.tensor([[0, 1]]))
    padded = head.loss(logits, torch.tensor([[0, 1, -100]]))
    assert torch.allclose(full, padded)


def test_heads_encode_their_targets_and_mask_what_they_cannot_learn():
    token = TokenHead(4, ["O", "B-PER", "I-PER"])
    targets = token.encode_targets([["B-PER", "I-PER", "O"], ["O"]])
    assert targets.tolist() == [[1, 2, 0], [0, token.ignore_index, token.ignore_index]]
    logits = torch.randn(2, 3, 3)
    read = torch.tensor([[True, True, False], [True, False, False]])  # word 3 of text 1 not read
    expected = token.loss(logits, torch.tensor([[1, 2, -100], [0, -100, -100]]))
    assert torch.allclose(token.training_loss(logits, targets, read), expected)
    assert token.training_loss(logits, targets, torch.zeros(2, 3, dtype=torch.bool)) is None
    multi = MLPHead(4, ["a", "b", "c"], multi_label=True)
    assert multi.encode_targets([["a", "c"], "b"]).tolist() == [[1, 0, 1], [0, 1, 0]]
    assert MLPHead(4, ["a", "b"]).encode_targets(["b", "a"]).tolist() == [1, 0]
    assert MLPHead(4, ["a", "b"]).calibrates and not multi.calibrates and not token.calibrates


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: MLPHead(16, []), "non-empty list"),
        (lambda: MLPHead(16, ["a", "a"]), "repeated: a"),
        (lambda: MLPHead(0, ["a"]), "in_features"),
        (lambda: MLPHead(16, ["a"], dropout=1.5), "dropout"),
        (lambda: MLPHead(16, ["a"], activation="os.system"), "Unknown activation 'os.system'"),
        (lambda: TokenHead(16, ["O", "PER"]), "IOB2"),
        (lambda: TokenHead(16, ["O", "B-X"], alignment="last"), "Valid: first, mean"),
    ],
)
def test_bad_head_settings(build, message):
    with pytest.raises(InputError, match=message):
        build()


def test_load_rejects_bad_directories(tmp_path):
    head = MLPHead(8, ["a", "b"])
    head.save(tmp_path / "h")
    weights = tmp_path / "h" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])  # truncated
    with pytest.raises(ModelLoadError, match="not a readable safetensors file"):
        Head.load(tmp_path / "h")
    with pytest.raises(ModelLoadError, match="config.json is missing"):
        Head.load(tmp_path)
    head.save(tmp_path / "h2")
    config = json.loads((tmp_path / "h2" / "config.json").read_text())
    config["config"]["hidden"] = [128]  # config no longer matches the weights
    (tmp_path / "h2" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="has shape"):
        Head.load(tmp_path / "h2")
    config["kind"] = "nope"
    (tmp_path / "h2" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="Unknown head kind 'nope'. Valid: hybrid, mlp, token"):
        Head.load(tmp_path / "h2")
    with pytest.raises(ModelLoadError, match="not a 'token' head"):
        head.save(tmp_path / "h3") or TokenHead.load(tmp_path / "h3")


class CosineHead(Head):
    """A custom kind: scores labels by cosine similarity with learned prototypes."""

    kind: ClassVar[str] = "test-cosine"
    level: ClassVar[Literal["sentence", "token"]] = "sentence"
    config_keys: ClassVar[list[str]] = ["in_features", "labels", "scale"]

    def __init__(self, in_features, labels, scale=10.0):
        super().__init__(in_features, labels)
        self.scale = scale
        self.prototypes = nn.Parameter(torch.randn(len(labels), in_features))

    def forward(self, features):
        x = nn.functional.normalize(features["sentence_embedding"], dim=-1)
        return self.scale * x @ nn.functional.normalize(self.prototypes, dim=-1).T

    def probabilities(self, logits):
        return torch.softmax(logits, -1)

    def loss(self, logits, targets):
        return nn.functional.cross_entropy(logits, targets)

    def decode(self, probabilities):
        best = int(probabilities.argmax())
        return {"label": self.labels[best], "score": float(probabilities[best]), "probabilities": {}}


def test_custom_head_kind_via_register(tmp_path, monkeypatch):
    import st_multitask.heads as heads

    monkeypatch.setattr(heads, "_REGISTRY", dict(heads._REGISTRY))  # registered for this test only
    register_head(CosineHead)
    assert "test-cosine" in head_kinds() and get_head_class("test-cosine") is CosineHead
    head = CosineHead(8, ["a", "b"], scale=5.0)
    loaded = _roundtrip(head, tmp_path)
    assert isinstance(loaded, CosineHead) and loaded.scale == 5.0
    with pytest.raises(InputError, match="already registered"):
        register_head(type("Other", (CosineHead,), {}))


def test_custom_head_kind_via_entry_point(tmp_path, monkeypatch):
    """A third-party package declares a kind in the `st_multitask.heads` entry point group."""
    package = tmp_path / "plugin"
    (package / "my_heads").mkdir(parents=True)
    (package / "my_heads" / "__init__.py").write_text(
        textwrap.dedent("""
        from st_multitask.heads.mlp import MLPHead

        class WideHead(MLPHead):
            kind = "wide"
    """)
    )
    dist = package / "my_heads-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-heads\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[st_multitask.heads]\nwide = my_heads:WideHead\n")
    monkeypatch.syspath_prepend(str(package))
    import st_multitask.heads as heads

    monkeypatch.setattr(heads, "_entry_points_loaded", False)
    cls = get_head_class("wide")
    assert cls.__name__ == "WideHead" and cls.kind == "wide"
    loaded = _roundtrip(cls(8, ["a", "b"]), tmp_path)
    assert type(loaded).__name__ == "WideHead"
    heads._REGISTRY.pop("wide")
    sys.modules.pop("my_heads", None)


def test_context_head_roundtrip_and_padding_invariance(tmp_path):
    from st_multitask.heads import ContextTokenHead

    torch.manual_seed(0)
    head = ContextTokenHead(8, ["O", "B-PER", "I-PER"], layers=[0, 1], lstm_hidden=6, dropout=0.0).eval()
    hidden = tuple(torch.randn(2, 6, 8) for _ in range(2))
    features = {
        "token_embeddings": hidden[-1],
        "all_layer_embeddings": hidden,
        "piece_word": torch.tensor([[-1, 0, 1, 2, -1, -1], [-1, 0, 0, 1, -1, -1]]),
        "word_shape": torch.rand(2, 3, 10).round(),
        "word_count": torch.tensor([3, 2]),
    }
    logits = head(features)
    assert logits.shape == (2, 3, 3)
    # the shorter sentence alone gives the same logits: padding does not leak into the BiLSTM
    alone = {
        "token_embeddings": hidden[-1][1:],
        "all_layer_embeddings": tuple(h[1:] for h in hidden),
        "piece_word": features["piece_word"][1:],
        "word_shape": features["word_shape"][1:, :2],
        "word_count": torch.tensor([2]),
    }
    assert torch.allclose(head(alone)[0], logits[1, :2], atol=1e-6)
    loaded = _roundtrip(head, tmp_path).eval()
    assert torch.allclose(loaded(features), logits)
    assert torch.allclose(head(head.inputs(features)), logits)  # cached inputs give the same result


def test_mlp_head_mixing_hidden_layers(tmp_path):
    torch.manual_seed(0)
    head = MLPHead(8, ["a", "b"], hidden=[4], layers=[1, 2], dropout=0.0).eval()
    assert head.needs_hidden_states
    hidden = tuple(torch.randn(3, 5, 8) for _ in range(3))
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 1, 0, 0, 0]])
    features = {
        "all_layer_embeddings": hidden,
        "attention_mask": mask,
        "sentence_embedding": torch.randn(3, 8),
    }
    inputs = head.inputs(features)
    assert inputs["pooled_layers"].shape == (3, 2, 8)
    # mean over the real tokens only
    assert torch.allclose(inputs["pooled_layers"][0, 0], hidden[1][0, :3].mean(0), atol=1e-6)
    logits = head(features)
    assert torch.allclose(head(inputs), logits)  # cached inputs give the same result
    assert torch.allclose(_roundtrip(head, tmp_path).eval()(features), logits)


def test_a_new_head_kind_trains_without_touching_the_trainer(tiny_model_dir):
    """The trainer asks the head for its targets and its loss: a kind with other targets (here a
    score per text, learned by regression) trains as it is."""
    from st_multitask import MultiTaskModel, fit
    from st_multitask.data import SentenceExamples

    class ScoreHead(CosineHead):
        kind: ClassVar[str] = "test-score"

        def encode_targets(self, values):
            return torch.tensor([float(v == "high") for v in values])

        def training_loss(self, logits, targets, read):
            calls.append(len(targets))
            return nn.functional.mse_loss(logits[:, 1] - logits[:, 0], targets)

    calls: list[int] = []
    model = MultiTaskModel(str(tiny_model_dir), device="cpu")
    model.add_head("score", ScoreHead(model.dim, ["low", "high"]))
    data = SentenceExamples(["a calm day", "a wild storm"] * 4, ["low", "high"] * 4)
    before = model.heads["score"].prototypes.detach().clone()
    fit(model, {"score": data}, epochs=1, batch_size=4, freeze=["backbone"], calibrate=False)
    assert calls == [4, 4] and not torch.equal(before, model.heads["score"].prototypes)


@pytest.mark.parametrize("layers", [1, 2])
def test_context_head_bilstm_equals_a_packed_sequence(layers):
    """Each direction runs one-way over the words (the backward one on them reversed within each
    length): the same states as torch's packed BiLSTM, zero past each length, with no packing."""
    from st_multitask.heads import ContextTokenHead

    torch.manual_seed(0)
    head = ContextTokenHead(8, ["O", "B-PER", "I-PER"], lstm_hidden=5, lstm_layers=layers).eval()
    words, lengths = torch.randn(4, 7, head.lstm.input_size), torch.tensor([7, 3, 1, 5])
    packed = torch.nn.utils.rnn.pack_padded_sequence(words, lengths, batch_first=True, enforce_sorted=False)
    expected, _ = torch.nn.utils.rnn.pad_packed_sequence(
        head.lstm(packed)[0], batch_first=True, total_length=7
    )
    torch.testing.assert_close(head.context(words, lengths), expected, atol=1e-6, rtol=0)
