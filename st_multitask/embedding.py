"""Sentence embeddings on any engine: texts in, float32 vectors out.

``embed`` runs the model on the fastest installed exact runtime (``backend="auto"``): an exported
ONNX Runtime or OpenVINO graph on a CPU, without importing torch, or torch on a GPU. Texts past the
model window are truncated (with a logged warning) or embedded whole in overlapping windows.

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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Union

import numpy as np

from .backbone import cached_backbone, forward_batch
from .errors import InputError
from .runtime import load_on, resolve_backend
from .runtime.encoder import FastEncoder
from .runtime.feeds import chunk_text
from .runtime.load import load_encoder

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

LONG_MODES = ("truncate", "chunk")
LongMode = Literal["truncate", "chunk"]
# what embeds: a SentenceTransformer (torch) or a FastEncoder (an exported graph)
Encoder = Union["SentenceTransformer", FastEncoder]


def resolve_model(
    model: Encoder | str | os.PathLike[str] | None = None,
    backend: str | None = None,
    precision: str | None = None,
    device: str | None = None,
) -> Encoder:
    """Return ``model`` if it is already loaded, else load (once per process) the named one on the
    engine that ``backend`` / ``precision`` resolve to.

    With ``auto``, a model the fast runtimes cannot run (extra modules, or a name from the Hugging
    Face cache rather than a directory) runs in torch.
    """
    if model is not None and not isinstance(model, (str, os.PathLike)):
        if backend not in (None, "auto") and (backend == "torch") != (not isinstance(model, FastEncoder)):
            raise InputError(
                f"backend={backend!r} applies to a model given by name or path; this one is loaded already."
            )
        return model
    name = None if model is None else os.fspath(model)
    from .runtime.model_files import read_model_files

    return load_on(
        resolve_backend(backend, precision, device),
        name or "the default model",
        fast=lambda: load_encoder(name, backend, precision),
        torch=lambda: cached_backbone(name, device),
        check=lambda: read_model_files(name),
    )


def window_size(model: Encoder) -> int:
    """How many word pieces of a text the model reads (its window less the special tokens)."""
    if isinstance(model, FastEncoder):
        return int(model.max_seq_length) - model.tokenizer.num_special_tokens
    return int(model.max_seq_length) - model.tokenizer.num_special_tokens_to_add(pair=False)


def _check_texts(texts: str | Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        return [texts]
    if isinstance(texts, Iterable):
        texts = list(texts)
    else:
        raise InputError(f"Expected a list of strings, got {type(texts).__name__}.")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise InputError(f"Text {i} is a {type(text).__name__}, not a string.")
    return texts


def _token_lengths(model: Encoder, texts: list[str]) -> list[int]:
    if isinstance(model, FastEncoder):
        return model.tokenizer.lengths(texts)
    encoded = model.tokenizer(texts, add_special_tokens=False, truncation=False, verbose=False)
    return [len(ids) for ids in encoded["input_ids"]]


def count_over_window(texts: Sequence[str], model: Encoder | str | os.PathLike[str] | None = None) -> int:
    """How many of ``texts`` are longer than the model's window (and would be truncated)."""
    model = resolve_model(model)
    texts = _check_texts(texts)
    limit = window_size(model)
    return sum(n > limit for n in _token_lengths(model, texts)) if texts else 0


def _piece_offsets(model: Encoder, text: str) -> list[tuple[int, int]]:
    if isinstance(model, FastEncoder):
        return model.tokenizer.offsets(text)
    return model.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)[
        "offset_mapping"
    ]


def _chunks(model: Encoder, text: str, window: int) -> list[str]:
    """Overlapping windows (half a window of overlap) of ``text``, as substrings of it."""
    return chunk_text(text, _piece_offsets(model, text), window)


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
        model: a loaded SentenceTransformer, a model path or name, or ``None`` for the default.
        batch_size: texts per forward pass.
        normalize: scale every vector to unit length (so dot product == cosine).
        show_progress: show a progress bar; ``None`` lets sentence-transformers decide.
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
    texts = _check_texts(texts)
    if not texts:
        raise InputError("No texts to embed: pass at least one string.")
    model = resolve_model(model, backend, precision)
    window = window_size(model)
    lengths = _token_lengths(model, texts)
    over = [i for i, n in enumerate(lengths) if n > window]
    if long == "truncate" or not over:
        if over:
            logger.warning(
                "%d of %d texts are longer than the model window (%d word pieces) and were truncated; "
                "use long='chunk' to embed them whole.",
                len(over),
                len(texts),
                window,
            )
        vectors = model.encode(
            texts,
            batch_size=batch_size,
            normalize_embeddings=normalize,
            show_progress_bar=show_progress,
            convert_to_numpy=True,
        )
        return np.asarray(vectors, dtype=np.float32)

    # chunk mode: short texts as they are, long ones as windows, all in one encode call
    pieces: list[str] = []
    owner: list[int] = []
    for i, text in enumerate(texts):
        parts = _chunks(model, text, window) if lengths[i] > window else [text]
        pieces.extend(parts)
        owner.extend([i] * len(parts))
    vectors = model.encode(
        pieces, batch_size=batch_size, show_progress_bar=show_progress, convert_to_numpy=True
    ).astype(np.float32)
    out = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
    np.add.at(out, np.asarray(owner), vectors)
    out /= np.bincount(owner, minlength=len(texts))[:, None].astype(np.float32)
    if normalize:
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return out


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
    texts = _check_texts(texts)
    if not texts:
        raise InputError("No texts to embed: pass at least one string.")
    model = resolve_model(model, "torch")
    window = window_size(model)
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
