"""The vector search structure of an index: FAISS, exact (flat) or approximate (HNSW), over fp32,
int8 or binary codes. Everything FAISS-specific lives here; FAISS is imported on first use.

    >>> index = new_index(dim=8, kind="hnsw", storage="int8", hnsw_m=16)
    >>> type(index).__name__
    'IndexHNSWSQ'
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..errors import InputError, RuntimeUnavailableError
from .quantize import to_binary

__all__ = [
    "KINDS",
    "STORAGES",
    "add_vectors",
    "check_settings",
    "faiss_version",
    "new_index",
    "read_index",
    "search_index",
    "write_index",
]

KINDS = ("flat", "hnsw")
STORAGES = ("fp32", "int8", "binary")  # how the vectors are stored
_PARALLEL_FROM = 8  # queries in one call from which FAISS searches with all its threads


def _faiss() -> Any:
    try:
        import faiss
    except ImportError:
        raise RuntimeUnavailableError(
            "The vector index needs FAISS: pip install 'st-multitask[index]' (or pip install faiss-cpu)."
        ) from None
    return faiss


def faiss_version() -> str:
    """The installed FAISS version (recorded in every index manifest)."""
    return str(_faiss().__version__)


def check_settings(kind: str, storage: str) -> None:
    """Raise :class:`InputError` for an unknown kind or storage, naming the valid ones."""
    if kind not in KINDS:
        raise InputError(f"Unknown index kind {kind!r}. Valid: {', '.join(KINDS)}.")
    if storage not in STORAGES:
        raise InputError(f"Unknown index storage {storage!r}. Valid: {', '.join(STORAGES)}.")


def new_index(dim: int, kind: str, storage: str, hnsw_m: int = 16, ef_construction: int = 40) -> Any:
    """An empty FAISS index scoring by inner product (cosine, as vectors are unit length);
    binary codes are compared by Hamming distance."""
    check_settings(kind, storage)
    faiss = _faiss()
    if storage == "binary":
        if dim % 8:
            raise InputError(f"Binary codes need a dimension divisible by 8, got {dim}.")
        index = faiss.IndexBinaryFlat(dim) if kind == "flat" else faiss.IndexBinaryHNSW(dim, hnsw_m)
    elif storage == "int8":
        qtype, ip = faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
        if kind == "flat":
            index = faiss.IndexScalarQuantizer(dim, qtype, ip)
        else:
            index = faiss.IndexHNSWSQ(dim, qtype, hnsw_m, ip)
    else:
        index = (
            faiss.IndexFlatIP(dim)
            if kind == "flat"
            else faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
        )
    if kind == "hnsw":
        index.hnsw.efConstruction = ef_construction
    return index


def add_vectors(index: Any, vectors: np.ndarray, storage: str) -> None:
    """Add unit-length float32 vectors (n, dim); an untrained index (int8) is trained on them first."""
    codes = to_binary(vectors) if storage == "binary" else np.ascontiguousarray(vectors, dtype=np.float32)
    if not index.is_trained:
        index.train(codes)
    index.add(codes)


def search_index(
    index: Any, queries: np.ndarray, k: int, storage: str, ef_search: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(scores, ids), each (queries, k), best first; ids are -1 where fewer than k were found.
    Binary scores are ``1 - 2 * hamming / dim``, a rough cosine."""
    if ef_search is not None and hasattr(index, "hnsw"):
        index.hnsw.efSearch = max(ef_search, k)
    faiss = _faiss()
    threads = faiss.omp_get_max_threads()
    few = len(queries) < _PARALLEL_FROM
    if few:  # one query gains nothing from threads, and waits for them on a busy machine (24 ms vs 0.15)
        faiss.omp_set_num_threads(1)
    try:
        if storage == "binary":
            distances, ids = index.search(to_binary(queries), k)
            return 1.0 - 2.0 * distances.astype(np.float32) / index.d, ids
        return index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
    finally:
        if few:
            faiss.omp_set_num_threads(threads)


def write_index(index: Any, path: str | os.PathLike[str], storage: str) -> None:
    faiss = _faiss()
    (faiss.write_index_binary if storage == "binary" else faiss.write_index)(index, os.fspath(path))


def read_index(path: str | os.PathLike[str], storage: str) -> Any:
    faiss = _faiss()
    try:
        return (faiss.read_index_binary if storage == "binary" else faiss.read_index)(os.fspath(path))
    except RuntimeError as exc:  # FAISS reports a bad file as a RuntimeError with a C++ trace
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "unreadable"
        raise InputError(f"{path} is not a readable FAISS index ({first}).") from None
