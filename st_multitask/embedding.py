"""Sentence embeddings on any engine: texts in, float32 vectors out.

``embed`` runs the model through :func:`st_multitask.load`'s pipeline on the fastest installed exact
runtime (``backend="auto"``): an exported ONNX Runtime or OpenVINO graph on a CPU, without
importing torch, or torch on a GPU. Texts past the model window are truncated (with a logged
warning) or embedded whole in overlapping windows. ``embed_tokens`` gives word-piece vectors (torch).

    >>> from st_multitask import embed, embed_tokens
    >>> embed(["The dog ran across the grass."]).shape
    (1, 384)
    >>> tokens = embed_tokens(["Apple is buying a startup."])[0]
    >>> tokens.tokens[:2], tokens.offsets[:2]
    (['apple', 'is'], [(0, 5), (6, 8)])
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Union

import numpy as np

from .backbone import DEFAULT_MODEL_NAME, forward_batch
from .errors import Hint, InputError
from .pipeline import LONG_MODES, LongMode, Pipeline
from .texts import check_texts

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = [
    "LONG_MODES",
    "Encoder",
    "TokenEmbeddings",
    "count_over_window",
    "embed",
    "embed_tokens",
    "resolve_model",
    "window_size",
]

logger = logging.getLogger(__name__)

# what embeds: a loaded Pipeline, or a SentenceTransformer (run in torch through one)
Encoder = Union[Pipeline, "SentenceTransformer"]
_LOADED_ALREADY = " applies to a model given by name or path; this one is loaded already."


def resolve_model(
    model: Encoder | str | os.PathLike[str] | None = None,
    backend: str | None = None,
    precision: str | None = None,
    device: str | None = None,
) -> Pipeline:
    """``model`` as a :class:`~st_multitask.pipeline.Pipeline`: itself if it is one; a loaded
    SentenceTransformer in torch; else :func:`st_multitask.load` of the name (``None``: the
    packaged all-MiniLM-L6-v2, without heads), whose opened engine is kept for the process."""
    from .loader import load

    if isinstance(model, Pipeline):
        if backend not in (None, "auto") and backend != model.backend:
            raise InputError(Hint("backend", backend), _LOADED_ALREADY)
        return model
    if model is not None and not isinstance(model, (str, os.PathLike)):
        if backend not in (None, "auto", "torch"):
            raise InputError(Hint("backend", backend), _LOADED_ALREADY)
        return _torch_pipeline(model)
    return load(
        DEFAULT_MODEL_NAME if model is None else model, backend=backend, precision=precision, device=device
    )


def _torch_pipeline(backbone: SentenceTransformer) -> Pipeline:
    """A loaded SentenceTransformer (or anything with ``.pipeline()``) as a torch pipeline."""
    make_pipeline = getattr(backbone, "pipeline", None)
    if make_pipeline is not None:
        pipeline: Pipeline = make_pipeline()
        return pipeline
    from .runtime import EngineSpec
    from .runtime.runners.torch import TorchRunner
    from .runtime.tokenizer import TextTokenizer

    runner = TorchRunner(backbone, {}, EngineSpec("torch", "fp32", str(backbone.device)))
    return Pipeline(runner, TextTokenizer.from_backbone(backbone), name="a SentenceTransformer object")


def window_size(model: Encoder) -> int:
    """How many word pieces of a text the model reads (its window less the special tokens)."""
    return resolve_model(model).window


def count_over_window(texts: Sequence[str], model: Encoder | str | os.PathLike[str] | None = None) -> int:
    """How many of ``texts`` are longer than the model's window (and would be truncated)."""
    texts = check_texts(texts) if not isinstance(texts, str) or texts else []
    return resolve_model(model).count_over_window(texts) if texts else 0


def embed(
    texts: str | Sequence[str],
    model: Encoder | str | os.PathLike[str] | None = None,
    batch_size: int = 64,
    normalize: bool = True,
    show_progress: bool | None = None,
    long: LongMode = "truncate",
    backend: str | None = None,
    precision: str | None = None,
) -> np.ndarray:
    """Embed texts into a float32 array of shape ``(n, dim)``.

    Same vectors as ``SentenceTransformer.encode`` of the same model. Texts longer than the model's
    window are truncated as the model does (``long="truncate"``, a logged warning says how many), or
    cut into overlapping windows whose embeddings are mean-pooled (``long="chunk"``).

    Args:
        texts: a string or a sequence of strings.
        model: a :class:`~st_multitask.pipeline.Pipeline`, a loaded SentenceTransformer, a model
            path or name, or ``None`` for the packaged all-MiniLM-L6-v2.
        batch_size: texts per forward pass.
        normalize: scale every vector to unit length (so dot product == cosine).
        show_progress: show a progress bar.
        long: ``"truncate"`` or ``"chunk"``.
        backend: ``"auto"`` (the default, or ``$STMT_BACKEND``), ``"torch"``, ``"onnx"`` or
            ``"openvino"``, for a model given by name or path. auto runs the fastest installed
            exact fp32 runtime on a CPU (within 1e-4 of ``SentenceTransformer.encode``), torch on a GPU.
        precision: ``"fp32"`` (exact, the default, or ``$STMT_PRECISION``), ``"bf16"`` or ``"int8"``
            (opt-in: faster, not bit-compatible with sentence-transformers).

    >>> embed(["Why is the sky blue?", "The cat jumped into the weeds."]).dtype
    dtype('float32')
    """
    if long not in LONG_MODES:
        raise InputError(f"Unknown long-text mode {long!r}. Valid: {', '.join(LONG_MODES)}.")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch_size must be a positive integer, got {batch_size!r}.")
    texts = check_texts(texts)
    pipeline = resolve_model(model, backend, precision)
    return pipeline.embed(
        texts, batch_size=batch_size, normalize=normalize, long=long, show_progress=show_progress
    )


@dataclass
class TokenEmbeddings:
    """The word-piece embeddings of one text, with each piece's character span in that text.

    Special tokens ([CLS], [SEP]) are left out; pieces past the model window are not present.
    ``text[start:end]`` is the original text of a piece (the tokenizer may lowercase ``tokens``).
    """

    text: str
    tokens: list[str]
    offsets: list[tuple[int, int]]
    embeddings: np.ndarray  # (n_tokens, dim) float32
    truncated: bool = False


def embed_tokens(
    texts: str | Sequence[str],
    model: SentenceTransformer | str | os.PathLike[str] | None = None,
    batch_size: int = 32,
) -> list[TokenEmbeddings]:
    """Word-piece embeddings (``output_value="token_embeddings"``) with character offsets.

    >>> item = embed_tokens("Héllo wörld")[0]
    >>> [item.text[s:e] for s, e in item.offsets]
    ['Héllo', 'wörld']
    """
    texts = check_texts(texts)
    if model is None or isinstance(model, (str, os.PathLike)):
        from .backbone import cached_backbone

        model = cached_backbone(None if model is None else os.fspath(model))
    if model.max_seq_length is None:  # sentence-transformers gives None for a model without a window
        raise InputError(
            "This model has no max_seq_length: its window is unknown, so its word pieces cannot be read."
        )
    window = int(model.max_seq_length) - model.tokenizer.num_special_tokens_to_add(pair=False)
    results: list[TokenEmbeddings] = []
    for start in range(0, len(texts), batch_size):
        batch = texts[start : start + batch_size]
        out = forward_batch(model, batch)
        tokens = out["token_embeddings"].float().cpu().numpy()  # (batch, seq, dim)
        for row, text in enumerate(batch):
            # the backbone's outputs are on its device, the tokenizer's masks on the CPU
            keep = (out["attention_mask"][row].bool().cpu() & ~out["special_tokens_mask"][row].bool()).numpy()
            ids = out["input_ids"][row].cpu().numpy()[keep]
            offsets = [(int(s), int(e)) for s, e in out["offset_mapping"][row].numpy()[keep]]
            results.append(
                TokenEmbeddings(
                    text=text,
                    tokens=model.tokenizer.convert_ids_to_tokens(ids.tolist()),
                    offsets=offsets,
                    embeddings=tokens[row][keep].astype(np.float32),
                    truncated=len(offsets) >= window and bool(text[offsets[-1][1] :].strip())
                    if offsets
                    else False,
                )
            )
    return results
