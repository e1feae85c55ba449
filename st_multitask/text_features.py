"""Sparse word n-gram features of the original text (TF-IDF), for the hybrid ("wide and deep") head.

The vocabulary and the inverse document frequencies are fitted once on the training texts with
scikit-learn's :class:`~sklearn.feature_extraction.text.TfidfVectorizer`, saved beside the head
(``vocabulary.json`` + the head's safetensors), and rebuilt exactly at load time. A text becomes
its non-zero features as two padded rows: the term ids and their TF-IDF weights. This module
imports neither torch nor transformers, so the fast inference path uses it too.

>>> features = SparseFeatures.fit(["a great film", "a dull film", "great fun"], {"min_df": 1})
>>> ids, weights = features.transform(["great film"])
>>> [features.terms[i] for i in ids[0] if i >= 0]
['film', 'great', 'great film']
"""

from __future__ import annotations

import bisect
import itertools
import json
import operator
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError, ModelLoadError

__all__ = ["DEFAULT_SETTINGS", "VOCABULARY_NAME", "SparseFeatures", "check_settings", "read_vocabulary"]

VOCABULARY_NAME = "vocabulary.json"
DEFAULT_SETTINGS: dict[str, Any] = {
    "ngram_range": [1, 2],
    "min_df": 2,
    "max_features": 100_000,
    "sublinear_tf": True,
    "lowercase": True,
    "unknown_norm": False,
}


def check_settings(settings: dict[str, Any] | None) -> dict[str, Any]:
    """The full feature settings: ``settings`` over the defaults, each checked.

    >>> check_settings({"ngram_range": [1, 3]})["ngram_range"]
    [1, 3]
    """
    settings = dict(settings or {})
    unknown = sorted(set(settings) - set(DEFAULT_SETTINGS))
    if unknown:
        raise InputError(
            f"Unknown feature setting{'s' * (len(unknown) > 1)} {', '.join(map(repr, unknown))}. "
            f"Valid: {', '.join(DEFAULT_SETTINGS)}."
        )
    out = {**DEFAULT_SETTINGS, **settings}
    low_high = out["ngram_range"]
    if (
        not isinstance(low_high, (list, tuple))
        or len(low_high) != 2
        or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in low_high)
        or low_high[0] > low_high[1]
    ):
        raise InputError(f"ngram_range must be two positive integers [low, high], got {low_high!r}.")
    out["ngram_range"] = [int(n) for n in low_high]
    for key in ("min_df", "max_features"):
        value = out[key]
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise InputError(f"{key} must be a positive integer, got {value!r}.")
    for key in ("sublinear_tf", "lowercase", "unknown_norm"):
        if not isinstance(out[key], bool):
            raise InputError(f"{key} must be true or false, got {out[key]!r}.")
    return out


def _vectorizer(settings: dict[str, Any], vocabulary: dict[str, int] | None = None) -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(
        ngram_range=tuple(settings["ngram_range"]),
        min_df=1 if vocabulary is not None else settings["min_df"],
        max_features=None if vocabulary is not None else settings["max_features"],
        sublinear_tf=settings["sublinear_tf"],
        lowercase=settings["lowercase"],
        vocabulary=vocabulary,
        norm=None if vocabulary is not None and settings["unknown_norm"] else "l2",
        dtype=np.float32,
    )


_TOKEN = re.compile(r"(?u)\b\w\w+\b")  # scikit-learn's default token_pattern


class SparseFeatures:
    """A fitted TF-IDF vocabulary: ``terms`` (id order) and their ``idf``.

    Fitting uses scikit-learn's ``TfidfVectorizer``; transforming texts with the fitted vocabulary
    is the same computation in numpy (its analyzer, sublinear tf, idf, L2 norm), so predicting
    never imports scikit-learn (seconds of a cold start).

    >>> features = SparseFeatures(["good", "not good"], np.array([1.5, 2.0]), {"min_df": 1})
    >>> ids, weights = features.transform(["Not good at all", "nothing"])
    >>> ids.tolist(), [[round(float(w), 3) for w in row] for row in weights]
    ([[0, 1], [-1, -1]], [[0.6, 0.8], [0.0, 0.0]])
    """

    def __init__(self, terms: Sequence[str], idf: np.ndarray, settings: dict[str, Any] | None = None):
        self.settings = check_settings(settings)
        self.terms = list(terms)
        if not self.terms:
            raise InputError("The vocabulary is empty: the hybrid head has no word features to read.")
        idf = np.asarray(idf, dtype=np.float64).reshape(-1)
        if idf.shape[0] != len(self.terms):
            raise ModelLoadError(f"{len(self.terms)} vocabulary terms but {idf.shape[0]} idf weights.")
        self._idf = idf
        # fitting gives the terms sorted: a binary search finds a term without a dict of every term
        # (built at load, 0.1 s of a cold start for the default heads); other orders get the dict
        self._sorted = all(map(operator.lt, self.terms, itertools.islice(self.terms, 1, None)))
        self._vocabulary: dict[str, int] | None = None

    @classmethod
    def fit(
        cls, texts: Sequence[str | Sequence[str]], settings: dict[str, Any] | None = None
    ) -> SparseFeatures:
        """Fit the vocabulary and idf on ``texts`` (the training texts)."""
        settings = check_settings(settings)
        vectorizer = _vectorizer(settings)
        texts = [t if isinstance(t, str) else " ".join(t) for t in texts]
        try:
            vectorizer.fit(texts)
        except ValueError as exc:  # "empty vocabulary; perhaps the documents only contain stop words"
            raise InputError(
                f"No word features could be built from the {len(texts)} training texts ({exc}): they are "
                "blank or hold no words after cleaning (or min_df is higher than the number of texts)."
            ) from None
        return cls(vectorizer.get_feature_names_out().tolist(), vectorizer.idf_, settings)

    @property
    def idf(self) -> np.ndarray:
        return np.asarray(self._idf, dtype=np.float32)

    def __len__(self) -> int:
        return len(self.terms)

    def grams(self, text: str) -> list[str]:
        """The word n-grams of ``text``, as scikit-learn's word analyzer gives them."""
        tokens = _TOKEN.findall(text.lower() if self.settings["lowercase"] else text)
        low, high = self.settings["ngram_range"]
        grams = list(tokens) if low == 1 else []
        for n in range(max(low, 2), min(high, len(tokens)) + 1):
            grams += [" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
        return grams

    def _term_id(self, gram: str) -> int | None:
        if self._sorted:
            i = bisect.bisect_left(self.terms, gram)
            return i if i < len(self.terms) and self.terms[i] == gram else None
        if self._vocabulary is None:
            self._vocabulary = dict(zip(self.terms, range(len(self.terms))))
        return self._vocabulary.get(gram)

    def row(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """One text's non-zero features: term ids (sorted) and TF-IDF weights, L2-normalised over
        its known terms, or with the ``unknown_norm`` setting over all its n-grams (the unknown
        ones counted at the highest idf of the vocabulary: a term as rare as any kept; plain TF-IDF
        gives the two known words of a text from another domain full strength, this keeps their share)."""
        known: dict[int, int] = {}
        unknown: dict[str, int] = {}
        for gram in self.grams(text):
            term = self._term_id(gram)
            if term is None:
                unknown[gram] = unknown.get(gram, 0) + 1
            else:
                known[term] = known.get(term, 0) + 1
        ids = np.fromiter(sorted(known), dtype=np.int64, count=len(known))
        tf = np.array([known[int(i)] for i in ids], dtype=np.float32)
        if self.settings["sublinear_tf"]:
            tf = np.log(tf) + np.float32(1.0)
        weights = (tf * self._idf[ids]).astype(np.float32)
        squares = float(np.sum(weights.astype(np.float64) ** 2))
        if self.settings["unknown_norm"]:
            extra = np.fromiter(unknown.values(), dtype=np.float64, count=len(unknown))
            if self.settings["sublinear_tf"]:
                extra = 1.0 + np.log(extra)
            squares += float(np.sum((extra * float(np.max(self._idf))) ** 2))
        norm = np.sqrt(squares)
        return ids, (weights / norm if norm > 0 else weights).astype(np.float32)

    def transform(self, texts: Sequence[str | Sequence[str]]) -> tuple[np.ndarray, np.ndarray]:
        """Per text its non-zero features, padded: ids (batch, width) int64 (``-1`` pads) and
        weights (batch, width) float32 (``0`` pads)."""
        rows = [self.row(t if isinstance(t, str) else " ".join(t)) for t in texts]
        width = max([len(ids) for ids, _ in rows] + [1])
        ids = np.full((len(rows), width), -1, dtype=np.int64)
        weights = np.zeros((len(rows), width), dtype=np.float32)
        for i, (row_ids, row_weights) in enumerate(rows):
            ids[i, : len(row_ids)] = row_ids
            weights[i, : len(row_ids)] = row_weights
        return ids, weights

    def save(self, directory: str | Path) -> None:
        """Write the terms as ``vocabulary.json`` (the idf goes into the head's safetensors)."""
        payload = {"settings": self.settings, "terms": self.terms}
        (Path(directory) / VOCABULARY_NAME).write_text(
            json.dumps(payload, ensure_ascii=False), encoding="utf-8"
        )


def read_vocabulary(directory: str | Path) -> list[str]:
    """The terms saved in ``directory/vocabulary.json``, naming the file when it is missing or bad."""
    path = Path(directory) / VOCABULARY_NAME
    if not path.is_file():
        raise ModelLoadError(f"{path} is missing: a hybrid head needs its vocabulary.")
    try:
        terms = json.loads(path.read_text(encoding="utf-8"))["terms"]
        if not isinstance(terms, list) or not set(map(type, terms)) <= {str}:
            raise TypeError("terms must be a list of strings")
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"{path} is not a valid vocabulary file ({exc}).") from None
    return terms
