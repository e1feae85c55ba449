"""ContextTokenHead: a token tagger with a light context layer and word-shape features.

all-MiniLM-L6-v2 is uncased and tuned for sentences, so a probe on its last layer sees neither
capital letters nor much word-level context. This head adds what it misses:

- a learned mix of hidden layers (``layers``), pooled into words as in :class:`TokenHead`;
- word-shape features read from the original characters (capitalised, ALL CAPS, digits...);
- optionally a character CNN over each word's original characters (``char_dim > 0``): case,
  affixes and spelling that the uncased backbone cannot see (Ma & Hovy 2016);
- a bidirectional LSTM over the words of the sentence, then an MLP to IOB2 tags.

    >>> import torch
    >>> head = ContextTokenHead(8, ["O", "B-PER", "I-PER"], lstm_hidden=4)
    >>> features = {"token_embeddings": torch.randn(1, 4, 8), "piece_word": torch.tensor([[-1, 0, 0, 1]]),
    ...             "word_shape": torch.zeros(1, 2, 10), "word_count": torch.tensor([2])}
    >>> head(features).shape
    torch.Size([1, 2, 3])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Literal

import torch
from torch import Tensor, nn

from ..alignment import CHAR_VOCABULARY, SHAPE_FEATURES
from ..errors import InputError
from .base import Features
from .mlp import build_mlp
from .token import TokenHead

__all__ = ["ContextTokenHead"]


class ContextTokenHead(TokenHead):
    """Word-level IOB2 tagger: layer mix + word shapes → BiLSTM → MLP.

    Args (beyond :class:`TokenHead`'s):
        shape_features: add the word-shape features (``alignment.SHAPE_FEATURES``).
        shape_dim: width of their learned projection.
        lstm_hidden: hidden size of each LSTM direction.
        lstm_layers: stacked LSTM layers.
        char_dim: width of the character embeddings of the char CNN; 0 turns it off.
        char_filters: filters (output width per word) of the char CNN (kernel 3, ReLU, max-pool).
    """

    kind: ClassVar[str] = "token_context"
    level: ClassVar[Literal["sentence", "token"]] = "token"
    config_keys: ClassVar[list[str]] = [
        *TokenHead.config_keys,
        "shape_features",
        "shape_dim",
        "lstm_hidden",
        "lstm_layers",
        "char_dim",
        "char_filters",
    ]

    def __init__(
        self,
        in_features: int,
        labels: Sequence[str],
        hidden: Sequence[int] = (),
        activation: str = "torch.nn.GELU",
        dropout: float = 0.2,
        alignment: Literal["first", "mean"] = "first",
        layers: Sequence[int] | None = None,
        shape_features: bool = True,
        shape_dim: int = 16,
        lstm_hidden: int = 256,
        lstm_layers: int = 1,
        char_dim: int = 0,
        char_filters: int = 50,
    ):
        super().__init__(in_features, labels, hidden, activation, dropout, alignment, layers)
        if lstm_hidden < 1 or lstm_layers < 1 or shape_dim < 1 or char_filters < 1:
            raise InputError("lstm_hidden, lstm_layers, shape_dim and char_filters must be positive.")
        if isinstance(char_dim, bool) or not isinstance(char_dim, int) or char_dim < 0:
            raise InputError(f"char_dim must be 0 (no char CNN) or a positive integer, got {char_dim!r}.")
        self.char_dim = int(char_dim)
        self.char_filters = int(char_filters)
        self.shape_features = bool(shape_features)
        self.shape_dim = int(shape_dim)
        self.lstm_hidden = int(lstm_hidden)
        self.lstm_layers = int(lstm_layers)
        width = in_features
        if self.shape_features:
            self.shape_proj = nn.Linear(len(SHAPE_FEATURES), self.shape_dim)
            width += self.shape_dim
        if self.char_dim:
            self.char_embedding = nn.Embedding(CHAR_VOCABULARY, self.char_dim, padding_idx=0)
            self.char_conv = nn.Conv1d(self.char_dim, self.char_filters, kernel_size=3, padding=1)
            width += self.char_filters
        self.input_dropout = nn.Dropout(self.dropout)
        self.lstm = nn.LSTM(
            width,
            self.lstm_hidden,
            num_layers=self.lstm_layers,
            batch_first=True,
            bidirectional=True,
            dropout=self.dropout if self.lstm_layers > 1 else 0.0,
        )
        self.mlp = build_mlp(
            2 * self.lstm_hidden, self.hidden, self.num_labels, self.activation, self.dropout
        )

    @property
    def uses_word_shape(self) -> bool:
        """The model computes ``word_shape`` features only when a head asks for them."""
        return self.shape_features

    @property
    def uses_word_chars(self) -> bool:
        """The model computes ``word_chars`` only when a head asks for them."""
        return self.char_dim > 0

    def char_vectors(self, chars: Tensor) -> Tensor:
        """(batch, words, char_filters) from character ids (batch, words, chars): embed, convolve,
        ReLU, max over the word's characters (padding counts as 0)."""
        batch, words, width = chars.shape
        x = self.char_embedding(chars.reshape(-1, width)).transpose(1, 2)  # (batch * words, dim, chars)
        x = torch.relu(self.char_conv(x)) * (chars.reshape(-1, 1, width) > 0)
        return x.amax(dim=2).reshape(batch, words, self.char_filters)

    def inputs(self, features: Features) -> dict[str, Tensor]:
        if "word_inputs" in features:
            return features
        word_inputs = self.word_inputs(features)
        n_words = word_inputs.shape[1]
        out = {"word_inputs": word_inputs, "lengths": features["word_count"]}
        if self.shape_features:
            out["word_shape"] = features["word_shape"][:, :n_words]
        if self.char_dim:
            out["word_chars"] = features["word_chars"][:, :n_words]
        return out

    def forward(self, features: Features) -> Tensor:
        inputs = self.inputs(features)
        words = self.mix(inputs["word_inputs"])  # (batch, words, dim)
        if self.shape_features:
            shapes = inputs["word_shape"].to(words.dtype)
            words = torch.cat([words, self.shape_proj(shapes)], dim=-1)  # (batch, words, dim + shape_dim)
        if self.char_dim:
            words = torch.cat([words, self.char_vectors(inputs["word_chars"]).to(words.dtype)], dim=-1)
        words = self.input_dropout(words)
        lengths = inputs["lengths"].to(words.device).clamp(min=1, max=words.shape[1])
        return self.mlp(self.context(words, lengths))  # (batch, words, labels)

    def context(self, words: Tensor, lengths: Tensor) -> Tensor:
        """The BiLSTM over each text's words, padding ignored: (batch, words, 2 * lstm_hidden), zero
        past each text's length (as a packed sequence gives).

        Each direction runs as a one-way LSTM over the words in reading order: the backward one on
        each text's words reversed within its length. Trailing padding then never reaches a real
        word, on any runtime, with no ``sequence_lens`` (which OpenVINO's reverse LSTM does not
        honour) and no packing (which graphs do not export)."""
        positions = torch.arange(words.shape[1], device=words.device).unsqueeze(0)  # (1, words)
        inside = positions < lengths.unsqueeze(1)  # (batch, words)
        flipped = torch.where(inside, lengths.unsqueeze(1) - 1 - positions, positions)

        def reverse(x: Tensor) -> Tensor:
            return x.gather(1, flipped.unsqueeze(-1).expand_as(x))

        x = words
        for layer in range(self.lstm_layers):
            forward = self._one_way(x, layer, "")
            backward = reverse(self._one_way(reverse(x), layer, "_reverse"))
            x = torch.cat([forward, backward], dim=-1) * inside.unsqueeze(-1).to(words.dtype)
            if layer < self.lstm_layers - 1:
                x = nn.functional.dropout(x, self.lstm.dropout, self.training)
        return x

    def _one_way(self, x: Tensor, layer: int, suffix: str) -> Tensor:
        """One direction of one layer of ``self.lstm``, run forward over ``x`` (batch, words, dim)."""
        weights = [
            getattr(self.lstm, f"{name}_l{layer}{suffix}")
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        ]
        state = x.new_zeros(1, x.shape[0], self.lstm_hidden)
        out, _, _ = torch._VF.lstm(x, (state, state), weights, True, 1, 0.0, self.training, False, True)
        return out
