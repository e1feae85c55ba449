"""The one tokenizer adapter: a model's fast tokenizer with its window, as sentence-transformers
applies it, for every engine (torch, ONNX Runtime, OpenVINO) and every caller (the pipeline, the
server's queue, the CLI's window notes, training).

Texts are tokenised once (:meth:`TextTokenizer.encode`): the result (:class:`Encoded`) holds
each text's encoding cut to the model window, with the special tokens, and the number of word
pieces it had before the cut. Window checks, ``usage`` token counts and the padded batches all
come from it. ``tokenizers`` reads the model's ``tokenizer.json``; nothing here imports torch.

    >>> from st_multitask.runtime.model_files import read_model_files
    >>> tokenizer = TextTokenizer.from_files(read_model_files(None))
    >>> encoded = tokenizer.encode(["Apple is buying a startup.", "word " * 300])
    >>> encoded.lengths, encoded.over_window(), tokenizer.window
    ([6, 300], [1], 254)
    >>> [len(e.ids) for e in encoded.encodings]
    [8, 256]
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ModelLoadError
from .feeds import TokenBatch

if TYPE_CHECKING:
    from tokenizers import Encoding, Tokenizer

    from .model_files import ModelFiles

__all__ = ["Encoded", "TextTokenizer"]


@dataclass
class Encoded:
    """Texts tokenised once: per text its encoding (cut to the window, special tokens added),
    its word pieces before the cut (``lengths``), and, for texts past the window, the character
    span of every piece (what cutting them into overlapping windows needs)."""

    texts: list[str]
    encodings: list[Encoding]
    lengths: list[int]
    window: int
    offsets: dict[int, list[tuple[int, int]]] = field(default_factory=dict)  # texts past the window

    def __len__(self) -> int:
        return len(self.texts)

    def over_window(self) -> list[int]:
        """Indices of the texts longer than the window (truncated unless chunked)."""
        return [i for i, n in enumerate(self.lengths) if n > self.window]

    def cost(self) -> list[int]:
        """Tokens the model reads per text: its encoding, special tokens included."""
        return [len(e.ids) for e in self.encodings]

    def select(self, rows: Sequence[int]) -> Encoded:
        """The texts at ``rows``, in that order."""
        return Encoded(
            [self.texts[i] for i in rows],
            [self.encodings[i] for i in rows],
            [self.lengths[i] for i in rows],
            self.window,
            {new: self.offsets[old] for new, old in enumerate(rows) if old in self.offsets},
        )

    @staticmethod
    def gather(rows: Sequence[tuple[Encoded, int]]) -> Encoded:
        """One :class:`Encoded` of texts taken from several (a server batch of queued requests):
        ``rows`` are ``(encoded, index)`` pairs, in the order wanted."""
        out = Encoded([], [], [], rows[0][0].window if rows else 0)
        for encoded, i in rows:
            if i in encoded.offsets:
                out.offsets[len(out.texts)] = encoded.offsets[i]
            out.texts.append(encoded.texts[i])
            out.encodings.append(encoded.encodings[i])
            out.lengths.append(encoded.lengths[i])
        return out


class TextTokenizer:
    """A fast tokenizer (``tokenizers.Tokenizer``) with the model's window and lower-casing."""

    def __init__(self, tokenizer: Tokenizer, max_seq_length: int, do_lower_case: bool, pad_token: str | None):
        tokenizer.no_padding()
        tokenizer.no_truncation()
        if do_lower_case:  # as sentence-transformers does: a Lowercase normalizer keeps offsets
            from tokenizers import normalizers

            existing = tokenizer.normalizer
            tokenizer.normalizer = normalizers.Sequence(
                [normalizers.Lowercase(), *([existing] if existing is not None else [])]
            )
        self._tokenizer = tokenizer
        self.max_seq_length = int(max_seq_length)
        pad = tokenizer.token_to_id(pad_token) if pad_token else None
        self.pad_id = 0 if pad is None else int(pad)
        processor = tokenizer.post_processor
        self.num_special_tokens = processor.num_special_tokens_to_add(False) if processor else 0
        self.window = self.max_seq_length - self.num_special_tokens

    @classmethod
    def from_files(cls, files: ModelFiles) -> TextTokenizer:
        """The tokenizer of a model directory (its ``tokenizer.json``)."""
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(files.tokenizer_file))
        return cls(tokenizer, files.max_seq_length, files.do_lower_case, files.pad_token)

    @classmethod
    def from_backbone(cls, backbone: Any) -> TextTokenizer:
        """The tokenizer of a loaded SentenceTransformer (a copy of its fast tokenizer)."""
        from tokenizers import Tokenizer

        hf = backbone.tokenizer
        fast = getattr(hf, "backend_tokenizer", None)
        if fast is None:
            raise ModelLoadError(
                f"The backbone's tokenizer ({type(hf).__name__}) is not a fast tokenizer; st_multitask "
                "needs a tokenizer.json (save the model with a fast tokenizer)."
            )
        lower = bool(getattr(backbone[0], "do_lower_case", False))
        return cls(Tokenizer.from_str(fast.to_str()), backbone.max_seq_length, lower, hf.pad_token)

    # -- tokenising once ---------------------------------------------------------------------
    def encode(self, texts: Sequence[str]) -> Encoded:
        """Tokenise ``texts`` once: encodings cut to the window, with special tokens, and the
        word pieces of each text before the cut."""
        texts = list(texts)
        if len(texts) <= 8:  # a few texts one by one: encode_batch waits for a shared thread pool
            encodings = [self._tokenizer.encode(t, add_special_tokens=False) for t in texts]
        else:
            encodings = self._tokenizer.encode_batch(texts, add_special_tokens=False)
        lengths = [len(e.ids) for e in encodings]
        offsets: dict[int, list[tuple[int, int]]] = {}
        for i, encoding in enumerate(encodings):
            if lengths[i] > self.window:
                offsets[i] = [tuple(o) for o in encoding.offsets]  # type: ignore[misc]
                encoding.truncate(self.window)
            encodings[i] = self._tokenizer.post_process(encoding)
        return Encoded(texts, encodings, lengths, self.window, offsets)

    def lengths(self, texts: Sequence[str]) -> list[int]:
        """Word pieces per text, without special tokens or window."""
        return [len(e.ids) for e in self._tokenizer.encode_batch(list(texts), add_special_tokens=False)]

    def offsets(self, text: str) -> list[tuple[int, int]]:
        """Character span of every word piece of ``text`` (no special tokens, no window)."""
        return [tuple(o) for o in self._tokenizer.encode(text, add_special_tokens=False).offsets]  # type: ignore[misc]

    def pieces(self, encoded: Encoded) -> list[list[dict[str, Any]]]:
        """Per text, the pieces the model reads (special tokens included, cut at the window):
        ``{"id", "text", "start", "end", "special"}``."""
        return [
            [
                {"id": i, "text": t, "start": 0 if m else s, "end": 0 if m else f, "special": bool(m)}
                for i, t, (s, f), m in zip(e.ids, e.tokens, e.offsets, e.special_tokens_mask)
            ]
            for e in encoded.encodings
        ]

    # -- batches -------------------------------------------------------------------------------
    def pad(self, encodings: Sequence[Encoding]) -> TokenBatch:
        """A right-padded batch of encodings."""
        width = max(len(e.ids) for e in encodings)
        n = len(encodings)
        ids = np.full((n, width), self.pad_id, dtype=np.int64)
        mask = np.zeros((n, width), dtype=np.int64)
        types = np.zeros((n, width), dtype=np.int64)
        special = np.ones((n, width), dtype=np.int64)
        offsets = np.zeros((n, width, 2), dtype=np.int64)
        for row, e in enumerate(encodings):
            k = len(e.ids)
            ids[row, :k] = e.ids
            mask[row, :k] = 1
            types[row, :k] = e.type_ids
            special[row, :k] = e.special_tokens_mask
            offsets[row, :k] = e.offsets
        offsets[special.astype(bool)] = 0
        return TokenBatch(ids, mask, types, special, offsets)

    def batch(self, texts: Sequence[str]) -> TokenBatch:
        """Tokenise and pad ``texts`` to their longest member (cut to the window)."""
        return self.pad(self.encode(texts).encodings)

    def batches(
        self, texts: Sequence[str] | Encoded, batch_size: int
    ) -> Iterator[tuple[list[int], TokenBatch]]:
        """``(indices, padded batch)`` over texts tokenised once, grouped by token length
        (longest first, stable) so that batches pad little."""
        encoded = texts if isinstance(texts, Encoded) else self.encode(texts)
        encodings = encoded.encodings
        order = sorted(range(len(encodings)), key=lambda i: -len(encodings[i].ids))
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            yield rows, self.pad([encodings[i] for i in rows])
