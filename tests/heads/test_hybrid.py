"""The hybrid ("wide and deep") head: TF-IDF n-grams of the text beside the backbone's states."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from st_multitask.errors import InputError, ModelLoadError
from st_multitask.heads import Head, HybridHead, get_head_class
from st_multitask.text_features import SparseFeatures, check_settings

TRAIN = ["a great film", "a dull film", "great fun", "dull and long", "great great cast"]


def _features(texts: list[str]) -> dict:
    return {"sentence_embedding": torch.zeros(len(texts), 8), "texts": texts}


def test_registered_and_reads_text():
    assert get_head_class("hybrid") is HybridHead
    head = HybridHead(8, ["neg", "pos"], hidden=[], features={"min_df": 1})
    head.fit_features(TRAIN)
    assert head.is_fitted and "great film" in head._sparse.terms
    with torch.no_grad():
        head.wide[head._sparse.terms.index("great")] = torch.tensor([-3.0, 3.0])
        head.mlp[0].weight.zero_()
        head.mlp[0].bias.zero_()
    logits = head(_features(["Great!", "dull", ""]))  # case-free words; a blank text has no features
    assert logits[0, 1] > logits[0, 0] and logits[1].abs().sum() == 0 and logits[2].abs().sum() == 0


def test_sparse_inputs_equal_sklearn_tfidf():
    from sklearn.feature_extraction.text import TfidfVectorizer

    features = SparseFeatures.fit(TRAIN, {"min_df": 1, "ngram_range": [1, 2]})
    reference = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit(TRAIN)
    ids, weights = features.transform(["great great film", "unknown words only"])
    dense = np.zeros((2, len(features)), dtype=np.float32)
    for row in range(2):
        for i, w in zip(ids[row], weights[row]):
            if i >= 0:
                dense[row, i] = w
    np.testing.assert_allclose(
        dense, reference.transform(["great great film", "unknown words only"]).toarray(), atol=1e-6
    )
    assert (ids[1] == -1).all() and (weights[1] == 0).all()


def test_save_load_roundtrip_keeps_vocabulary_and_logits(tmp_path):
    torch.manual_seed(0)
    head = HybridHead(8, ["neg", "pos"], hidden=[4], features={"min_df": 1})
    head.fit_features(TRAIN)
    torch.nn.init.normal_(head.wide)
    head.eval()
    head.save(tmp_path / "h")
    assert json.loads((tmp_path / "h" / "vocabulary.json").read_text())["terms"] == head._sparse.terms
    assert "vocabulary" not in json.loads((tmp_path / "h" / "config.json").read_text())["config"]
    loaded = Head.load(tmp_path / "h").eval()
    texts = ["great film", "dull dull"]
    feats = {"sentence_embedding": torch.randn(2, 8), "texts": texts}
    torch.testing.assert_close(loaded(feats), head(feats))
    (tmp_path / "h" / "vocabulary.json").unlink()
    with pytest.raises(ModelLoadError, match="vocabulary.json is missing"):
        Head.load(tmp_path / "h")


def test_bad_settings_and_empty_vocabulary():
    with pytest.raises(InputError, match="Unknown feature setting 'ngrams'. Valid: ngram_range"):
        HybridHead(8, ["a", "b"], features={"ngrams": 2})
    with pytest.raises(InputError, match="ngram_range"):
        check_settings({"ngram_range": [2, 1]})
    head = HybridHead(8, ["a", "b"], features={"min_df": 1})
    with pytest.raises(InputError, match="blank or hold no words"):
        head.fit_features(["", "  ", "!!"])
    with pytest.raises(InputError, match="no vocabulary yet"):
        head(_features(["text"]))
    with pytest.raises(InputError, match="cannot be saved"):
        head.save_extra(None)  # type: ignore[arg-type]


def test_long_mode_is_checked():
    from st_multitask.heads import MLPHead

    with pytest.raises(InputError, match="Unknown long mode 'whole'. Valid: truncate, chunk"):
        MLPHead(8, ["a", "b"], long="whole")
    head = MLPHead(8, ["a", "b"], hidden=[], long="chunk")
    windows = torch.randn(2, 8)
    feats = {"sentence_embedding": torch.zeros(2, 8), "window_sentence_embedding": windows}
    torch.testing.assert_close(head(feats), head.mlp(windows))
    assert MLPHead(8, ["a", "b"]).inputs(feats)["sentence_embedding"].abs().sum() == 0


def test_unknown_norm_counts_unknown_ngrams_in_the_norm():
    plain = SparseFeatures.fit(TRAIN, {"min_df": 1})
    counted = SparseFeatures(plain.terms, plain.idf, {"min_df": 1, "unknown_norm": True})
    # every n-gram known: the same weights as plain TF-IDF
    for features in (plain, counted):
        _ids, weights = features.transform(["great film"])
        assert np.isclose(np.linalg.norm(weights[0]), 1.0)
    np.testing.assert_allclose(
        counted.transform(["great film"])[1], plain.transform(["great film"])[1], rtol=1e-6
    )
    # unknown n-grams take their share of the norm: the known terms keep their ratios, shrunk
    text = ["great film from another domain entirely"]
    ids_p, w_p = plain.transform(text)
    ids_c, w_c = counted.transform(text)
    np.testing.assert_array_equal(ids_p, ids_c)
    assert 0 < np.linalg.norm(w_c[0]) < 0.6 and np.isclose(np.linalg.norm(w_p[0]), 1.0)
    np.testing.assert_allclose(w_c[0] / np.linalg.norm(w_c[0]), w_p[0], rtol=1e-5)
    # the head keeps the setting through save and load
    assert check_settings({"unknown_norm": True})["unknown_norm"] is True
    with pytest.raises(InputError, match="unknown_norm must be true or false"):
        check_settings({"unknown_norm": "yes"})


def test_unknown_norm_survives_save_and_load(tmp_path):
    head = HybridHead(8, ["neg", "pos"], hidden=[], features={"min_df": 1, "unknown_norm": True})
    head.fit_features(TRAIN)
    torch.nn.init.normal_(head.wide)
    head.eval()
    head.save(tmp_path / "h")
    loaded = Head.load(tmp_path / "h")
    texts = ["great film and many words it never saw"]
    with torch.no_grad():
        torch.testing.assert_close(loaded(_features(texts)), head(_features(texts)))
    assert loaded._sparse.settings["unknown_norm"] is True


def test_wide_gradient_is_the_same_every_run():
    """A seeded training run is reproducible to the bit only if every backward is: the wide
    part's gradient (many texts sharing n-gram rows) must be summed in a fixed order. Indexing's
    multi-threaded CPU backward adds rows in any order, and on 2 cores it failed this test in
    about 4 runs of 5."""
    generator = torch.Generator().manual_seed(0)
    labels = [f"label{i}" for i in range(5)]
    head = HybridHead(8, labels, hidden=[], vocabulary=[f"w{i}" for i in range(1_000)])
    ids = torch.randint(0, 100, (64, 1_000), generator=generator)  # many texts share each row
    ids[:, -50:] = -1  # padding
    features = {
        "sentence_embedding": torch.zeros(64, 8),
        "ragged_ngram_ids": ids,
        "ragged_ngram_weights": torch.rand(64, 1_000, generator=generator) * (ids >= 0),
    }
    upstream = torch.randn(64, 5, generator=generator)
    grads = []
    for _ in range(30):
        head.zero_grad(set_to_none=True)
        head(features).backward(upstream)
        grads.append(head.wide.grad.clone())
    assert all(torch.equal(grads[0], g) for g in grads[1:])
    assert grads[0][100:].abs().sum() == 0 and grads[0][:100].abs().sum() > 0


def test_terms_in_any_order_give_the_same_features():
    """Fitting gives sorted terms (found by binary search); any other order (found by a dict)
    gives the same weights for the same terms."""
    from st_multitask.text_features import SparseFeatures

    terms = ["bank", "good", "not", "not good", "rates"]
    idf = np.array([1.2, 1.5, 1.7, 2.0, 1.1])
    order = [3, 0, 4, 1, 2]
    texts = ["Not good at all, not good", "The bank raised rates", "nothing known"]
    ids, weights = SparseFeatures(terms, idf).transform(texts)
    other_ids, other_weights = SparseFeatures([terms[i] for i in order], idf[order]).transform(texts)
    for row in range(len(texts)):
        mine = {terms[i]: w for i, w in zip(ids[row], weights[row]) if i >= 0}
        theirs = {terms[order[i]]: w for i, w in zip(other_ids[row], other_weights[row]) if i >= 0}
        assert mine.keys() == theirs.keys() and all(np.isclose(mine[t], theirs[t]) for t in mine)
    assert len([i for i in ids[2] if i >= 0]) == 0
