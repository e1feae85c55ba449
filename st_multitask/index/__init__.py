"""A persistent, verified vector index: embed a corpus once, search it many times.

``Index`` keeps FAISS vectors (exact ``flat`` or approximate ``hnsw``; stored as ``fp32``, ``int8``
or ``binary`` with rescoring), the texts with their source line numbers (SQLite), and a manifest
with the builder model's identity and the sha256 of every file. No torch is imported here: with
the fast backends, searching an index runs on numpy, ONNX Runtime and FAISS.
"""

from __future__ import annotations

from .backends import KINDS, STORAGES
from .index import Index
from .manifest import describe
from .settings import RESCORE, IndexHit, IndexSettings

__all__ = ["KINDS", "RESCORE", "STORAGES", "Index", "IndexHit", "IndexSettings", "describe"]
