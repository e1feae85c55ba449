"""One torch-free decoder per head kind: the same answers on every engine, and a kind that brings
its own decoding has it on every engine."""

from __future__ import annotations

import numpy as np
import pytest

from st_multitask import MultiTaskModel, load
from st_multitask.decoding import SentenceDecoder, TokenDecoder, decoder_for
from st_multitask.errors import InputError


def test_decoders_come_from_the_saved_config():
    sentence = decoder_for(
        "mlp", "sentence", {"labels": ["other", "sport"], "other_label": "other", "other_threshold": 0.3}
    )
    assert isinstance(sentence, SentenceDecoder) and sentence.other == ("other", 0.3)
    assert sentence.decode(np.array([0.4, 0.6]), "", [], [])["label"] == "other"
    assert sentence.decode(np.array([0.2, 0.8]), "", [], [], min_score=0.9)["label"] is None
    token = decoder_for("token_context", "token", {"labels": ["O", "B-ORG", "I-ORG"]})
    assert isinstance(token, TokenDecoder)
    proba = np.array([[0.1, 0.8, 0.1], [0.9, 0.05, 0.05]])
    text = "Apple rises"
    entities = token.decode(proba, text, [(0, 5), (6, 11)], [True, True])
    assert [(e["text"], e["label"], e["start"]) for e in entities] == [("Apple", "ORG", 0)]
    assert token.label_of(proba, [(0, 5), (6, 11)], [True, False]) == ["B-ORG", "O"]  # past the window: O
    with pytest.raises(InputError, match="Unknown head level 'word'"):
        decoder_for("x", "word", {"labels": ["a"]})


@pytest.mark.export
def test_a_head_kind_brings_its_own_decoding_to_every_engine(tiny_model_dir, tmp_path, monkeypatch):
    import st_multitask.decoding as decoding
    import st_multitask.heads as heads
    from st_multitask.heads import MLPHead, register_head

    monkeypatch.setattr(heads, "_REGISTRY", dict(heads._REGISTRY))  # the kind is this test's alone
    monkeypatch.setattr(decoding, "_DECODERS", dict(decoding._DECODERS))

    class Loud(SentenceDecoder):
        def decode(self, proba, text, spans, read, min_score=None):
            answer = super().decode(proba, text, spans, read, min_score)
            return {**answer, "label": answer["label"].upper()}

    @register_head
    class LoudProbe(MLPHead):
        kind = "loud_probe_test"
        decoder_class = Loud

    model = MultiTaskModel(str(tiny_model_dir))
    model.add_head("mood", LoudProbe(model.dim, ["calm", "angry"]))
    model.save(tmp_path / "m")
    answers = [model.predict(["What a day."])[0]["mood"]["label"]]
    answers += [
        load(tmp_path / "m", backend=b).predict(["What a day."])[0]["mood"]["label"]
        for b in ("torch", "onnx")
    ]
    assert answers[0] in ("CALM", "ANGRY") and len(set(answers)) == 1
