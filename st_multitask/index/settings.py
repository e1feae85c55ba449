"""How an index stores and searches its vectors (:class:`IndexSettings`), what a search returns
(:class:`IndexHit`), and the rows of texts (and their ids) an index is built from.

    >>> IndexSettings(kind="hnsw", storage="binary").rescore
    'int8'
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

import numpy as np

from ..errors import InputError
from ..similarity import Hit, as_embeddings
from .backends import check_settings

__all__ = ["RESCORE", "IdColumns", "IndexHit", "IndexSettings", "paired_rows", "text_rows"]

RESCORE = ("int8", "fp32")


class _HitIds(TypedDict, total=False):
    ids: dict[str, Any]  # only from an index with id columns


class IndexHit(Hit, _HitIds):
    """A search hit with where its text came from: the source file, its line number and, from an
    index with id columns, their values for its row (``"ids": {"post_id": 17}``)."""

    line: int
    source: str


class IdColumns:
    """The ids given with texts: ``{column: values}``, one value a text, kept as JSON values.

    >>> given = IdColumns({"post_id": [17, 18]}, "ids")
    >>> given.names, given.rows(1, 2)
    (('post_id',), [(18,)])
    """

    def __init__(self, ids: Mapping[str, Iterable[Any]] | None, where: str):
        if ids is None:
            ids = {}
        if not isinstance(ids, Mapping) or not all(
            isinstance(name, str)
            and name
            and isinstance(values, Iterable)
            and not isinstance(values, (str, bytes, Mapping))
            for name, values in ids.items()
        ):
            raise InputError(
                f"{where}: give ids as {{column name: values, one a text}}, e.g. {{'post_id': [17, 18]}}."
            )
        self.names = tuple(ids)
        self._values = [list(ids[name]) for name in self.names]  # lists, arrays, Arrow columns
        self._where = where
        lengths = {len(values) for values in self._values}
        if len(lengths) > 1:
            raise InputError(
                f"{where}: the id columns have different lengths ({', '.join(map(str, lengths))})."
            )
        self.count = lengths.pop() if lengths else None  # None: no ids given

    def ordered(self, names: Sequence[str]) -> IdColumns:
        """The same ids with the columns in the order of ``names`` (the same names)."""
        return IdColumns({name: self._values[self.names.index(name)] for name in names}, self._where)

    def rows(self, start: int, stop: int) -> list[tuple[Any, ...]] | None:
        """The ids of texts ``start`` to ``stop`` (positions in the input), or None without ids."""
        if not self.names:
            return None
        assert self.count is not None
        if stop > self.count:
            raise InputError(f"{self._where}: got {self.count} ids a column for more texts; give one a text.")
        return [
            tuple(_id_value(name, values[i]) for name, values in zip(self.names, self._values))
            for i in range(start, stop)
        ]

    def check_used(self, texts: int) -> None:
        """Raise :class:`InputError` unless there was one id a text."""
        if self.count is not None and self.count != texts:
            raise InputError(
                f"{self._where}: got {self.count} ids a column for {texts} texts; give one a text."
            )


def _id_value(name: str, value: Any) -> Any:
    """``value`` as a JSON value (numpy scalars become Python's), or an :class:`InputError`."""
    if isinstance(value, np.generic):
        value = value.item()
    elif hasattr(value, "as_py"):  # an Arrow scalar
        value = value.as_py()
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    raise InputError(
        f"The id {name!r} holds {value!r} ({type(value).__name__}); an index keeps ids that are "
        "whole numbers, finite numbers, text, true/false or null."
    )


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
