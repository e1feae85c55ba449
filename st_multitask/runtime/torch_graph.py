"""The whole multi-task model as one torch module: what torch runs and what is exported.

:class:`ModelGraph` takes the inputs of :mod:`st_multitask.runtime.feeds` (token ids, the
pieces-to-words index, word shapes and characters, TF-IDF rows, window groups) and returns the
sentence embedding and every head's probabilities. ``MultiTaskModel`` runs it in torch (and its
:meth:`ModelGraph.features` feeds training); :mod:`st_multitask.runtime.export` gives the same
module to ``torch.onnx.export``, so the fast path runs the same computation in one graph.

    >>> import numpy as np, torch
    >>> from st_multitask import MultiTaskModel
    >>> from st_multitask.runtime.tokenizer import TextTokenizer
    >>> model = MultiTaskModel.default()
    >>> graph = ModelGraph(model.backbone, model.heads)
    >>> tokens = TextTokenizer.from_backbone(model.backbone)
    >>> feeds, _ = build_feeds(graph.plan, tokens, ["Apple opens a store."], [[(0, 5), (6, 11), (12, 13), (14, 19), (19, 20)]])
    >>> outputs = graph.run(feeds)
    >>> outputs["sentence_embedding"].shape, outputs["probabilities.ner"].shape[:2]
    ((1, 384), (1, 5))
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch
from torch import Tensor, nn

from .feeds import (
    SENTENCE_EMBEDDING,
    TOKEN_INPUTS,
    FeedPlan,
    build_feeds,
    ngram_inputs,
    output_name,
)

if TYPE_CHECKING:
    from ..heads import Head

__all__ = ["ModelGraph", "build_feeds", "hidden_states"]


@contextlib.contextmanager
def hidden_states(backbone: Any, needed: bool) -> Iterator[None]:
    """Make the backbone's transformer return every layer's states (``all_layer_embeddings``)."""
    config = backbone[0].auto_model.config
    before = getattr(config, "output_hidden_states", False)
    config.output_hidden_states = bool(needed) or before
    try:
        yield
    finally:
        config.output_hidden_states = before


def _normalizes(backbone: Any) -> bool:
    from sentence_transformers.models import Normalize

    return any(isinstance(module, Normalize) for module in backbone)


def _mean_pool(states: Tensor, mask: Tensor) -> Tensor:
    weights = mask.unsqueeze(-1).to(states.dtype)
    return (states * weights).sum(1) / weights.sum(1).clamp(min=1)


class ModelGraph(nn.Module):
    """A backbone and heads as one module: feeds in (by :attr:`input_names`), the sentence
    embedding and each head's probabilities out (by :attr:`output_names`)."""

    def __init__(self, backbone: Any, heads: dict[str, Head]):
        super().__init__()
        self.backbone = backbone
        self.heads = nn.ModuleDict(heads)
        self.plan = FeedPlan.for_heads(dict(heads))
        self.input_names = self.plan.input_names()
        self.output_names = [SENTENCE_EMBEDDING, *[output_name(task) for task in heads]]
        self._hidden = any(h.needs_hidden_states for h in heads.values())
        self._normalizes = _normalizes(backbone)

    def features(self, feeds: dict[str, Tensor], texts: list[str] | None = None) -> dict[str, Any]:
        """What heads read (``token_embeddings``, ``sentence_embedding``, ``piece_word``, ...),
        from one backbone pass over the batch's rows."""
        mask = feeds["attention_mask"]
        with hidden_states(self.backbone, self._hidden):
            out = self.backbone({k: feeds[k] for k in TOKEN_INPUTS})
        if "window_mean" in feeds:
            n = feeds["window_mean"].shape[0]
        elif "piece_word" in feeds:
            n = feeds["piece_word"].shape[0]
        else:
            n = mask.shape[0]
        features: dict[str, Any] = {
            "token_embeddings": out["token_embeddings"][:n],
            "attention_mask": mask[:n],
            SENTENCE_EMBEDDING: out[SENTENCE_EMBEDDING][:n],
        }
        layers = out.get("all_layer_embeddings") if self._hidden else None
        if layers is not None:
            features["all_layer_embeddings"] = [h[:n] for h in layers]
        if "window_mean" in feeds:  # texts past the window: their windows' mean (as embed(long="chunk"))
            means = feeds["window_mean"].to(out[SENTENCE_EMBEDDING].dtype)
            sentence = means @ out[SENTENCE_EMBEDDING]
            if self._normalizes:
                sentence = nn.functional.normalize(sentence, dim=-1)
            features["window_sentence_embedding"] = sentence
            if layers is not None:
                pooled = torch.stack([_mean_pool(h, mask) for h in layers], dim=1)  # (rows, layers, dim)
                features["window_pooled_layers"] = torch.einsum("tr,rld->tld", means, pooled)
        if "piece_word" in feeds:
            features["piece_word"] = feeds["piece_word"]
            features["n_words"] = feeds["word_mask"].shape[1]
            features["word_count"] = feeds["word_count"]
        for name in ("word_shape", "word_chars"):
            if name in feeds:
                features[name] = feeds[name]
        if texts is not None:
            features["texts"] = texts
        return features

    def head_features(self, task: str, features: dict[str, Any], feeds: dict[str, Tensor]) -> dict[str, Any]:
        """``features`` plus the inputs fed for this head alone (a hybrid head's TF-IDF rows)."""
        ids, weights = ngram_inputs(task)
        if ids not in feeds:
            return features
        from ..heads.hybrid import IDS, WEIGHTS

        return {**features, IDS: feeds[ids], WEIGHTS: feeds[weights]}

    def forward(self, *inputs: Tensor) -> tuple[Tensor, ...]:
        feeds = dict(zip(self.input_names, inputs))
        features = self.features(feeds)
        outputs = [features[SENTENCE_EMBEDDING]]
        for task, module in self.heads.items():
            head = cast("Head", module)  # a ModuleDict of Head
            outputs.append(head.probabilities(head(self.head_features(task, features, feeds))))
        return tuple(outputs)

    def tensors(self, feeds: dict[str, np.ndarray]) -> dict[str, Tensor]:
        """numpy feeds as tensors on the backbone's device."""
        device = self.backbone.device
        return {
            name: torch.from_numpy(np.ascontiguousarray(feeds[name])).to(device) for name in self.input_names
        }

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run in torch, as a graph session runs: numpy feeds in, outputs by name."""
        tensors = self.tensors(feeds)
        with torch.inference_mode():
            outputs = self(*[tensors[name] for name in self.input_names])
        return {name: value.float().cpu().numpy() for name, value in zip(self.output_names, outputs)}
