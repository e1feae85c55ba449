"""Counting and showing word pieces for the server, on the event loop's own tokenizer.

The model's worker thread tokenizes too, and a Hugging Face tokenizer called from two threads with
different truncation settings fails ("Already borrowed"), so a torch backbone's tokenizer is copied
for the event loop; the fast path's tokenizer never changes its settings and is shared.

    >>> from st_multitask.embedding import resolve_model
    >>> pieces = TokenCounter(resolve_model(None, backend="torch"))
    >>> pieces.window, pieces.lengths(["Apple is buying a startup."]), pieces.cost([300])
    (254, [6], [256])
"""

from __future__ import annotations

import copy
from typing import Any

from ..embedding import window_size
from ..runtime.encoder import FastEncoder

__all__ = ["TokenCounter"]


class TokenCounter:
    """Word pieces of texts as the backbone ``encoder`` reads them."""

    def __init__(self, encoder: Any):
        self.fast = isinstance(encoder, FastEncoder)
        self.tokenizer = encoder.tokenizer if self.fast else copy.deepcopy(encoder.tokenizer)
        self.window = window_size(encoder)  # word pieces read, special tokens aside
        self.max_seq_length = int(encoder.max_seq_length)
        self.specials = self.max_seq_length - self.window

    def lengths(self, texts: list[str]) -> list[int]:
        """Word pieces per text, without special tokens or window (as ``embed`` counts them)."""
        if self.fast:  # a few texts one by one: encode_batch would wait for the worker's thread pool
            return (
                [len(self.tokenizer.offsets(t)) for t in texts]
                if len(texts) <= 8
                else self.tokenizer.lengths(texts)
            )
        encoded = self.tokenizer(texts, add_special_tokens=False, truncation=False, verbose=False)
        return [len(ids) for ids in encoded["input_ids"]]

    def cost(self, lengths: list[int]) -> list[int]:
        """Tokens the model reads per text: its pieces up to the window, plus the special tokens."""
        return [min(n, self.window) + self.specials for n in lengths]

    def pieces(self, texts: list[str]) -> list[list[dict[str, Any]]]:
        """Per text, the pieces the model reads (special tokens included, cut at the window):
        ``{"id", "text", "start", "end", "special"}``."""
        out = []
        if self.fast:
            for e in self.tokenizer.encode(texts):
                out.append(
                    [
                        {"id": i, "text": t, "start": s, "end": f, "special": bool(m)}
                        for i, t, (s, f), m in zip(e.ids, e.tokens, e.offsets, e.special_tokens_mask)
                    ]
                )
            return out
        encoded = self.tokenizer(
            texts,
            truncation=True,
            max_length=self.max_seq_length,
            return_offsets_mapping=True,
            return_special_tokens_mask=True,
            verbose=False,
        )
        for ids, offsets, special in zip(
            encoded["input_ids"], encoded["offset_mapping"], encoded["special_tokens_mask"]
        ):
            tokens = self.tokenizer.convert_ids_to_tokens(ids)
            out.append(
                [
                    {"id": i, "text": t, "start": 0 if m else s, "end": 0 if m else f, "special": bool(m)}
                    for i, t, (s, f), m in zip(ids, tokens, offsets, special)
                ]
            )
        return out
