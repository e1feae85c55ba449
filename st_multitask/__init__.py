"""st_multitask: sentence embeddings, similarity and multi-task heads on sentence-transformers.

The packaged all-MiniLM-L6-v2 is the default backbone and loads offline::

    >>> from st_multitask import embed, cosine_similarity
    >>> vectors = embed(["The dog ran across the grass.", "Why is the sky blue?"])
    >>> vectors.shape
    (2, 384)

Names are imported lazily, so ``import st_multitask`` (and ``stmt --help``) does not pay for torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY = {
    "load_backbone": "backbone",
    "embed": "embedding",
    "embed_tokens": "embedding",
    "count_over_window": "embedding",
    "TokenEmbeddings": "embedding",
    "DEFAULT_MODEL_NAME": "backbone",
    "default_model_path": "backbone",
    "cosine_similarity": "similarity",
    "pairwise_similarity": "similarity",
    "search": "similarity",
    "paraphrases": "similarity",
    "StMultitaskError": "errors",
    "Trainer": "training",
    "TrainingConfig": "training",
    "TaskData": "training",
    "TrainingResult": "training",
    "fit": "training",
    "MultiTaskModel": "model",
    "ExportedMultiTaskModel": "exported_model",
    "RuntimeUnavailableError": "errors",
    "Head": "heads",
    "MLPHead": "heads",
    "TokenHead": "heads",
    "register_head": "heads",
    "InputError": "errors",
    "ModelLoadError": "errors",
    "HybridHead": "heads",
    "ContextTokenHead": "heads",
    "SentenceExamples": "data",
    "TokenExamples": "data",
    "Index": "index",
    "load_recipe": "recipe",
    "MultiTaskPredictor": "inference",
}

__all__ = [
    "DEFAULT_MODEL_NAME",
    "ContextTokenHead",
    "ExportedMultiTaskModel",
    "Head",
    "HybridHead",
    "Index",
    "InputError",
    "MLPHead",
    "ModelLoadError",
    "MultiTaskModel",
    "MultiTaskPredictor",
    "RuntimeUnavailableError",
    "SentenceExamples",
    "StMultitaskError",
    "TaskData",
    "TokenEmbeddings",
    "TokenExamples",
    "TokenHead",
    "Trainer",
    "TrainingConfig",
    "TrainingResult",
    "__version__",
    "cosine_similarity",
    "count_over_window",
    "default_model_path",
    "embed",
    "embed_tokens",
    "fit",
    "load_backbone",
    "load_recipe",
    "pairwise_similarity",
    "paraphrases",
    "register_head",
    "search",
]

if TYPE_CHECKING:
    from .backbone import DEFAULT_MODEL_NAME, default_model_path, load_backbone
    from .data import SentenceExamples, TokenExamples
    from .embedding import TokenEmbeddings, count_over_window, embed, embed_tokens
    from .errors import InputError, ModelLoadError, RuntimeUnavailableError, StMultitaskError
    from .exported_model import ExportedMultiTaskModel
    from .heads import ContextTokenHead, Head, HybridHead, MLPHead, TokenHead, register_head
    from .index import Index
    from .inference import MultiTaskPredictor
    from .model import MultiTaskModel
    from .recipe import load_recipe
    from .similarity import cosine_similarity, pairwise_similarity, paraphrases, search
    from .training import TaskData, Trainer, TrainingConfig, TrainingResult, fit


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'st_multitask' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
