"""How an index stores and searches its vectors (:class:`IndexSettings`), what a search returns
(:class:`IndexHit`), and the rows of texts an index is built from.

    >>> IndexSettings(kind="hnsw", storage="binary").rescore
    'int8'
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError
from ..similarity import Hit, as_embeddings
from .backends import check_settings

__all__ = ["RESCORE", "IndexHit", "IndexSettings", "paired_rows", "text_rows"]

RESCORE = ("int8", "fp32")


class IndexHit(Hit):
    """A search hit with where its text came from: the source file and its line number."""

    line: int
    source: str


@dataclass
class IndexSettings:
    """How the vectors are stored and searched."""

    kind: str = "flat"  # flat: exact; hnsw: approximate, a graph
    storage: str = "fp32"  # vectors in the search structure: fp32, int8 or binary (1 bit a dimension)
    rescore: str | None = (
        "auto"  # vectors kept on disk to rescore candidates: int8, fp32, None (auto: int8 for binary)
    )
    rescore_multiplier: int = 20  # candidates fetched per wanted hit when rescoring
    # hnsw defaults: chosen at 1M vectors by benchmarks/index_bench.py on its selection queries
    # (recall@10 >= 0.95 at >= 100x exact FAISS; results/2c-avx512/index_bench.json)
    hnsw_m: int = 32  # graph neighbours a vector (hnsw); 16 takes about 0.8x the memory, finds less
    ef_construction: int = 200  # candidate list while building the graph (hnsw): 40 builds faster
    ef_search: int = 64  # candidate list while searching (hnsw): more finds more, more slowly

    def __post_init__(self) -> None:
        check_settings(self.kind, self.storage)
        if self.rescore == "auto":
            self.rescore = "int8" if self.storage == "binary" else None
        if self.rescore is not None and self.rescore not in RESCORE:
            raise InputError(f"Unknown rescore {self.rescore!r}. Valid: {', '.join(RESCORE)}, None.")
        for name in ("rescore_multiplier", "hnsw_m", "ef_construction", "ef_search"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{name} must be a positive integer, got {value!r}.")


def text_rows(texts: Any) -> Iterator[tuple[int, str]]:
    """(line, text) from texts (numbered from 1) or from (line, text) pairs."""
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, Iterable):
        raise InputError(f"Expected texts (or (line, text) pairs), got {type(texts).__name__}.")
    for i, item in enumerate(texts, 1):
        if isinstance(item, str):
            yield i, item
        elif isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], str):
            yield int(item[0]), item[1]
        else:
            raise InputError(f"Text {i} is a {type(item).__name__}, not a string or a (line, text) pair.")


def paired_rows(vectors: Any, texts: Any) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """Ready vectors as a float32 array, and their texts' rows: one vector a text."""
    array = as_embeddings(vectors, None, 64, "vectors")
    rows = list(text_rows(texts))
    if len(rows) != len(array):
        raise InputError(f"Got {len(array)} vectors for {len(rows)} texts; pass one vector a text.")
    return array, rows
