"""FastEncoder: sentence embeddings from an exported graph, without torch.

``tokenizers`` reads the model's ``tokenizer.json`` and the runtime runs the graph, which pools and
normalises as the model's own ``1_Pooling`` and ``modules.json`` say. Batches are formed from
texts of similar token length, so almost no compute goes into padding.
:func:`st_multitask.runtime.load.load_encoder` finds (or exports) the graph and opens one.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from .feeds import SENTENCE_EMBEDDING, TokenBatch, dummy_feeds
from .model_files import ModelFiles
from .session import GraphSession

__all__ = ["FastEncoder", "TextTokenizer", "TokenBatch", "normalize_rows"]


class TextTokenizer:
    """The model's fast tokenizer with its window, as sentence-transformers applies it."""

    def __init__(self, files: ModelFiles):
        from tokenizers import Tokenizer

        self.files = files
        self._tokenizer = Tokenizer.from_file(str(files.tokenizer_file))
        self._tokenizer.no_padding()
        self._tokenizer.no_truncation()
        self._plain = Tokenizer.from_file(str(files.tokenizer_file))  # no window: lengths and offsets
        self._plain.no_padding()
        self._plain.no_truncation()
        if files.do_lower_case:  # as sentence-transformers does: a Lowercase normalizer keeps offsets
            from tokenizers import normalizers

            for tokenizer in (self._tokenizer, self._plain):
                existing = tokenizer.normalizer
                steps = [normalizers.Lowercase(), *([existing] if existing is not None else [])]
                tokenizer.normalizer = normalizers.Sequence(steps)
        self._tokenizer.enable_truncation(max_length=files.max_seq_length)
        pad = self._tokenizer.token_to_id(files.pad_token)
        self.pad_id = 0 if pad is None else int(pad)
        self.num_special_tokens = (
            self._plain.post_processor.num_special_tokens_to_add(False) if self._plain.post_processor else 0
        )
        self.window = files.max_seq_length - self.num_special_tokens

    def lengths(self, texts: Sequence[str]) -> list[int]:
        """Word pieces per text, without special tokens or truncation."""
        encoded = self._plain.encode_batch(list(texts), add_special_tokens=False)
        return [len(e.ids) for e in encoded]

    def offsets(self, text: str) -> list[tuple[int, int]]:
        """Character span of every word piece of ``text`` (no special tokens, no window)."""
        return [tuple(o) for o in self._plain.encode(text, add_special_tokens=False).offsets]

    def encode(self, texts: Sequence[str]) -> list[Any]:
        """Each text's encoding, with special tokens, truncated to the window (not padded)."""
        return self._tokenizer.encode_batch(list(texts))

    def batch(self, texts: Sequence[str]) -> TokenBatch:
        """Tokenize and pad ``texts`` to their longest member (truncated to the window)."""
        return self.pad(self.encode(texts))

    def pad(self, encoded: Sequence[Any]) -> TokenBatch:
        """A right-padded batch of encodings from :meth:`encode`."""
        width = max(len(e.ids) for e in encoded)
        n = len(encoded)
        ids = np.full((n, width), self.pad_id, dtype=np.int64)
        mask = np.zeros((n, width), dtype=np.int64)
        types = np.zeros((n, width), dtype=np.int64)
        special = np.ones((n, width), dtype=np.int64)
        offsets = np.zeros((n, width, 2), dtype=np.int64)
        for row, e in enumerate(encoded):
            k = len(e.ids)
            ids[row, :k] = e.ids
            mask[row, :k] = 1
            types[row, :k] = e.type_ids
            special[row, :k] = e.special_tokens_mask
            offsets[row, :k] = e.offsets
        offsets[special.astype(bool)] = 0
        return TokenBatch(ids, mask, types, special, offsets)

    def batches(self, texts: Sequence[str], batch_size: int) -> Iterator[tuple[list[int], TokenBatch]]:
        """``(indices, padded batch)`` over ``texts``, tokenized once, grouped by token length
        (longest first, stable) so that batches pad little."""
        encoded = self.encode(texts)
        order = sorted(range(len(texts)), key=lambda i: -len(encoded[i].ids))
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            yield rows, self.pad([encoded[i] for i in rows])


def normalize_rows(vectors: np.ndarray) -> np.ndarray:
    """Unit-length rows, as torch.nn.functional.normalize (eps 1e-12)."""
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


class FastEncoder:
    """Sentence embeddings from an exported graph (the ``onnx`` and ``openvino`` backends).

    It answers what the library asks of a backbone: ``encode``, ``max_seq_length``,
    ``get_sentence_embedding_dimension``, and token lengths and offsets for window checks.
    """

    def __init__(self, files: ModelFiles, session: GraphSession, backend: str, precision: str):
        self.files = files
        self.session = session
        self.backend = backend
        self.precision = precision
        self.tokenizer = TextTokenizer(files)
        self.max_seq_length = files.max_seq_length

    def __repr__(self) -> str:
        return (
            f"FastEncoder({self.files.path.name!r}, backend={self.backend!r}, precision={self.precision!r})"
        )

    def get_sentence_embedding_dimension(self) -> int:
        return self.files.dim

    def forward(self, batch: TokenBatch, outputs: Sequence[str]) -> dict[str, np.ndarray]:
        """Run the graph on a tokenized batch (heads' inputs, if the graph has heads, left empty)."""
        feeds = dummy_feeds(self.session.input_names, batch)
        return dict(zip(outputs, self.session.run(feeds, list(outputs))))

    def batches(self, texts: Sequence[str], batch_size: int) -> Iterator[tuple[list[int], TokenBatch]]:
        return self.tokenizer.batches(texts, batch_size)

    def encode(
        self,
        texts: Sequence[str],
        batch_size: int = 32,
        normalize_embeddings: bool = True,
        show_progress_bar: bool | None = None,
        convert_to_numpy: bool = True,
        **_: Any,
    ) -> np.ndarray:
        """(n, dim) float32 embeddings, as ``SentenceTransformer.encode`` computes them."""
        texts = [str(t) for t in texts]
        out = np.zeros((len(texts), self.files.dim), dtype=np.float32)
        progress = None
        if show_progress_bar:
            from tqdm.auto import tqdm

            progress = tqdm(total=len(texts), unit="text", desc="Embedding")
        for rows, batch in self.batches(texts, batch_size):
            vectors = self.forward(batch, [SENTENCE_EMBEDDING])[SENTENCE_EMBEDDING].astype(
                np.float32, copy=False
            )
            if normalize_embeddings:  # the graph applies the model's own Normalize module
                vectors = normalize_rows(vectors)
            out[rows] = vectors
            if progress is not None:
                progress.update(len(rows))
        if progress is not None:
            progress.close()
        return out
