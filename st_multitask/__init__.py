"""st_multitask: sentence embeddings, similarity and multi-task heads on sentence-transformers.

The packaged all-MiniLM-L6-v2 is the default backbone and loads offline::

    >>> from st_multitask import embed, load
    >>> vectors = embed(["The dog ran across the grass.", "Why is the sky blue?"])
    >>> vectors.shape
    (2, 384)
    >>> load().predict(["The film was a joy from start to finish."])[0]["sentiment"]["label"]
    'positive'

:func:`load` is the one way to run a model on any engine; it returns a :class:`Pipeline`.

Names are imported lazily, so ``import st_multitask`` (and ``stmt --help``) does not pay for torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY = {
    "load": "loader",
    "Pipeline": "pipeline",
    "EngineSpec": "runtime",
    "Decoder": "decoding",
    "register_decoder": "decoding",
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
}
_DEPRECATED = {"MultiTaskPredictor": ("pipeline", "Pipeline")}  # old name -> (module, new name)

__all__ = [
    "DEFAULT_MODEL_NAME",
    "ContextTokenHead",
    "Decoder",
    "EngineSpec",
    "ExportedMultiTaskModel",
    "Head",
    "HybridHead",
    "Index",
    "InputError",
    "MLPHead",
    "ModelLoadError",
    "MultiTaskModel",
    "Pipeline",
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
    "load",
    "load_backbone",
    "load_recipe",
    "pairwise_similarity",
    "paraphrases",
    "register_decoder",
    "register_head",
    "search",
]

if TYPE_CHECKING:
    from .backbone import DEFAULT_MODEL_NAME, default_model_path, load_backbone
    from .data import SentenceExamples, TokenExamples
    from .decoding import Decoder, register_decoder
    from .embedding import TokenEmbeddings, count_over_window, embed, embed_tokens
    from .errors import InputError, ModelLoadError, RuntimeUnavailableError, StMultitaskError
    from .exported_model import ExportedMultiTaskModel
    from .heads import ContextTokenHead, Head, HybridHead, MLPHead, TokenHead, register_head
    from .index import Index
    from .loader import load
    from .model import MultiTaskModel
    from .pipeline import Pipeline
    from .recipe import load_recipe
    from .runtime import EngineSpec
    from .similarity import cosine_similarity, pairwise_similarity, paraphrases, search
    from .training import TaskData, Trainer, TrainingConfig, TrainingResult, fit


def __getattr__(name: str) -> Any:
    if name in _DEPRECATED:
        import warnings

        module, new = _DEPRECATED[name]
        warnings.warn(
            f"st_multitask.{name} is deprecated: use st_multitask.{new}.", DeprecationWarning, stacklevel=2
        )
        return getattr(importlib.import_module(f".{module}", __name__), new)
    lazy = _LAZY.get(name)
    if lazy is None:
        raise AttributeError(f"module 'st_multitask' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{lazy}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
