"""TokenHead: a token-level tagger (NER) over word vectors built from the backbone's word pieces.

The head reads ``token_embeddings`` (batch, seq, dim) from the same backbone pass as the sentence
heads, or a learned mix of hidden layers when ``layers`` is set, pools the pieces of each word
(``first`` piece or ``mean``), and tags every word with an IOB2 label.

    >>> import torch
    >>> head = TokenHead(8, ["O", "B-PER", "I-PER"], hidden=[])
    >>> features = {"token_embeddings": torch.randn(1, 4, 8), "piece_word": torch.tensor([[-1, 0, 0, 1]])}
    >>> head(features).shape  # (batch, words, labels)
    torch.Size([1, 2, 3])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Literal

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pad_sequence

from ..alignment import ALIGNMENTS, pool_words
from ..errors import InputError
from .base import Features, Head, activation_name
from .mlp import build_mlp

__all__ = ["TokenHead"]


class TokenHead(Head):
    """Word-level IOB2 tagger.

    Args:
        in_features: the backbone's hidden width.
        labels: IOB2 tags (``O``, ``B-X``, ``I-X``...), in id order.
        hidden: hidden layer sizes of the MLP applied to each word; ``[]`` is a linear probe.
        activation, dropout: as in :class:`~st_multitask.heads.MLPHead`.
        alignment: a word's vector is its ``first`` piece or the ``mean`` of its pieces.
        layers: hidden layers of the backbone to mix (indices into ``all_layer_embeddings``, 0 is
            the embedding layer); ``None`` uses the last layer's ``token_embeddings``.
    """

    kind: ClassVar[str] = "token"
    level: ClassVar[Literal["sentence", "token"]] = "token"
    config_keys: ClassVar[list[str]] = [
        "in_features",
        "labels",
        "hidden",
        "activation",
        "dropout",
        "alignment",
        "layers",
    ]

    def __init__(
        self,
        in_features: int,
        labels: Sequence[str],
        hidden: Sequence[int] = (),
        activation: str = "torch.nn.GELU",
        dropout: float = 0.1,
        alignment: Literal["first", "mean"] = "first",
        layers: Sequence[int] | None = None,
    ):
        super().__init__(in_features, labels)
        bad = [t for t in self.labels if t != "O" and not (t[:2] in ("B-", "I-") and len(t) > 2)]
        if bad:
            raise InputError(f"Token labels must be IOB2 tags (O, B-X, I-X); not: {', '.join(bad)}.")
        if alignment not in ALIGNMENTS:
            raise InputError(f"Unknown alignment {alignment!r}. Valid: {', '.join(ALIGNMENTS)}.")
        self.hidden = list(hidden)
        self.activation = activation_name(activation)
        self.dropout = float(dropout)
        self.alignment = alignment
        self.layers = None if layers is None else [int(i) for i in layers]
        if self.layers is not None:
            if not self.layers:
                raise InputError("layers must name at least one hidden layer (or be None for the last one).")
            self.layer_weights = nn.Parameter(torch.zeros(len(self.layers)))  # softmax-normalised mix
        self.mlp = build_mlp(in_features, self.hidden, self.num_labels, self.activation, self.dropout)

    @property
    def needs_hidden_states(self) -> bool:
        return self.layers is not None

    def word_inputs(self, features: Features) -> Tensor:
        """(batch, words, layers, dim): each word's vector in every mixed layer, before the mix.

        Pooling (first piece or mean) and the layer mix are both linear, so pooling each layer and
        then mixing equals mixing then pooling; this split lets training cache ``word_inputs`` once
        when the backbone is frozen.
        """
        piece_word = features["piece_word"]  # (batch, seq)
        if "n_words" in features:  # the batch's word count (a traced size in an exported graph)
            n_words = features["n_words"]
        else:
            n_words = int(piece_word.max().item()) + 1 if piece_word.numel() else 0
        if self.layers is None:
            states = [features["token_embeddings"]]
        else:
            hidden = features.get("all_layer_embeddings")
            if hidden is None:
                raise InputError(
                    "This token head mixes hidden layers; run the backbone with output_hidden_states."
                )
            if max(self.layers) >= len(hidden) or min(self.layers) < -len(hidden):
                raise InputError(
                    f"layers {self.layers} out of range: the backbone has {len(hidden)} hidden states."
                )
            states = [hidden[i] for i in self.layers]
        pooled = [
            pool_words(s, piece_word, n_words, self.alignment) for s in states
        ]  # each (batch, words, dim)
        return torch.stack(pooled, dim=2)

    def mix(self, word_inputs: Tensor) -> Tensor:
        """(batch, words, dim): the configured layers mixed with learned softmax weights."""
        if self.layers is None:
            return word_inputs[:, :, 0]
        weights = torch.softmax(self.layer_weights, dim=0).to(word_inputs.dtype)
        return torch.einsum("l,bwld->bwd", weights, word_inputs)

    def forward_words(self, word_inputs: Tensor) -> Tensor:
        """Logits (batch, words, labels) from :meth:`word_inputs`."""
        return self.mlp(self.mix(word_inputs))

    def inputs(self, features: Features) -> dict[str, Tensor]:
        if "word_inputs" in features:
            return features
        return {"word_inputs": self.word_inputs(features)}

    def forward(self, features: Features) -> Tensor:
        return self.forward_words(self.inputs(features)["word_inputs"])  # (batch, words, labels)

    def probabilities(self, logits: Tensor) -> Tensor:
        return torch.softmax(logits, dim=-1)

    def loss(self, logits: Tensor, targets: Tensor) -> Tensor:
        """Cross-entropy over words; targets (batch, words) hold ``ignore_index`` where there is no word."""
        return nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=self.ignore_index
        )

    def encode_targets(self, values: Sequence[Sequence[str]]) -> Tensor:
        """(batch, words) tag ids, padded with ``ignore_index`` past each sentence's end."""
        rows = [self.encode_labels(list(tags)) for tags in values]
        return pad_sequence(rows, batch_first=True, padding_value=self.ignore_index)

    def training_loss(self, logits: Tensor, targets: Tensor, read: Tensor) -> Tensor | None:
        """Words the model did not read (past its window) teach nothing: their targets are masked."""
        width = logits.shape[1]  # (batch, words, labels)
        targets = targets[:, :width]
        unread = ~read[:, :width].to(targets.device)
        targets = targets.masked_fill(unread[:, : targets.shape[1]], self.ignore_index)
        if (targets != self.ignore_index).sum() == 0:
            return None
        return self.loss(logits, targets)
