"""Batch embedding and prediction past one process: one Arrow-table predictor
(:class:`~st_multitask.batch.core.BatchPredictor`) that the local engine, Ray Data
(:mod:`st_multitask.batch.ray`) and Spark (:mod:`st_multitask.batch.spark`) all run, Parquet in
and out with the model's fingerprint in the metadata, and an index built from stored embeddings.

Names are imported lazily: Ray and Spark are optional (``pip install 'st-multitask[ray]'`` /
``'st-multitask[spark]'``) and load only when their engine runs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_LAZY = {
    "BatchPredictor": "core",
    "BatchSpec": "core",
    "BatchJob": "dataset",
    "embed_dataset": "dataset",
    "predict_dataset": "dataset",
    "index_from_embeddings": "stored",
    "open_sink": "sinks",
    "open_source": "sources",
    "read_embeddings": "stored",
}

__all__ = [
    "BatchJob",
    "BatchPredictor",
    "BatchSpec",
    "embed_dataset",
    "index_from_embeddings",
    "open_sink",
    "open_source",
    "predict_dataset",
    "read_embeddings",
]

if TYPE_CHECKING:
    from .core import BatchPredictor, BatchSpec
    from .dataset import BatchJob, embed_dataset, predict_dataset
    from .sinks import open_sink
    from .sources import open_source
    from .stored import index_from_embeddings, read_embeddings


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'st_multitask.batch' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
