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
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import InputError
from .branches import Branch, attention_mask_4d, encoder_layers, trunk_states
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
    """A backbone, its branches and heads as one module: feeds in (by :attr:`input_names`), the
    sentence embedding and each head's probabilities out (by :attr:`output_names`).

    ``branches`` (:class:`~st_multitask.runtime.branches.Branch` by name) and ``branch_of`` (task ->
    branch) put heads on task branches; the other heads read the backbone itself."""

    def __init__(
        self,
        backbone: Any,
        heads: dict[str, Head],
        branches: Mapping[str, Branch] | None = None,
        branch_of: Mapping[str, str] | None = None,
    ):
        super().__init__()
        self.backbone = backbone
        self.heads = nn.ModuleDict(heads)
        self.branches = nn.ModuleDict(dict(branches or {}))
        self.branch_of = {task: name for task, name in (branch_of or {}).items() if task in heads}
        unknown = sorted(set(self.branch_of.values()) - set(self.branches))
        if unknown:
            raise InputError(f"Heads are on branch {unknown[0]!r}, which the model does not have.")
        self.plan = FeedPlan.for_heads(dict(heads))
        self.input_names = self.plan.input_names()
        self.output_names = [SENTENCE_EMBEDDING, *[output_name(task) for task in heads]]
        self._normalizes = _normalizes(backbone)

    def _hidden(self, branch: str | None) -> bool:
        """Whether a head on ``branch`` (None: the backbone) reads every layer's states."""
        return any(h.needs_hidden_states for t, h in self.heads.items() if self.branch_of.get(t) == branch)

    def trunk_layers(self) -> list[int]:
        """Which of the trunk's states the branches read (:func:`trunk_states` numbering): each
        branch's input, and every state below it for a branch whose heads mix layers."""
        needed: set[int] = set()
        for name, branch in self._branches().items():
            if name in self.branch_of.values():
                needed.update(range(branch.start + 1) if self._hidden(name) else [branch.start])
        return sorted(needed)

    def features(
        self,
        feeds: dict[str, Tensor],
        texts: list[str] | None = None,
        embedding: bool = True,
        trunk: dict[int, Tensor] | None = None,
    ) -> dict[str, Any]:
        """What heads read (``token_embeddings``, ``sentence_embedding``, ``piece_word``, ...),
        from one backbone pass over the batch's rows; a branch's heads read ``features["branches"][name]``.
        ``embedding=False`` skips the backbone's top layers where no head needs them; ``trunk``
        gives the trunk's states (:meth:`trunk_layers`, computed before: a training cache) instead."""
        mask = feeds["attention_mask"]
        if "window_mean" in feeds:
            n = feeds["window_mean"].shape[0]
        elif "piece_word" in feeds:
            n = feeds["piece_word"].shape[0]
        else:
            n = mask.shape[0]
        shared: dict[str, Any] = {}
        if "piece_word" in feeds:
            shared["piece_word"] = feeds["piece_word"]
            shared["n_words"] = feeds["word_mask"].shape[1]
            shared["word_count"] = feeds["word_count"]
        for name in ("word_shape", "word_chars"):
            if name in feeds:
                shared[name] = feeds[name]
        if texts is not None:
            shared["texts"] = texts
        used = {name: b for name, b in self._branches().items() if name in self.branch_of.values()}
        if not used:
            with hidden_states(self.backbone, self._hidden(None)):
                out = self.backbone({k: feeds[k] for k in TOKEN_INPUTS})
            return {**self._derive(out, feeds, n, self._hidden(None)), **shared}
        plain = any(task not in self.branch_of for task in self.heads)
        top = embedding or plain
        total = len(encoder_layers(self.backbone))
        upto = total if top else max(b.start for b in used.values())
        if trunk is None or top:
            computed, extended = trunk_states(self.backbone, {k: feeds[k] for k in TOKEN_INPUTS}, upto)
            states = dict(enumerate(computed))
        else:
            states = trunk
            extended = attention_mask_4d(self.backbone, mask, next(iter(trunk.values())))
        features: dict[str, Any] = {"attention_mask": mask[:n], **shared}
        if top:
            out = self._pool(states[total], mask, [states[i] for i in range(total + 1)])
            features.update(self._derive(out, feeds, n, self._hidden(None)))
        features["branches"] = {}
        for name, branch in used.items():
            layers = branch(states[branch.start], extended)
            below = [states[i] for i in range(branch.start + 1)] if self._hidden(name) else []
            out = self._pool(layers[-1], mask, [*below, *layers])
            features["branches"][name] = {**self._derive(out, feeds, n, self._hidden(name)), **shared}
        return features

    def _branches(self) -> dict[str, Branch]:
        return cast("dict[str, Branch]", dict(self.branches.items()))  # a ModuleDict of Branch

    def _pool(self, last: Tensor, mask: Tensor, layers: list[Tensor]) -> dict[str, Tensor]:
        """The backbone's modules after the transformer (pooling, normalisation) over ``last``."""
        out: dict[str, Any] = {
            "token_embeddings": last,
            "attention_mask": mask,
            "all_layer_embeddings": layers,
        }
        for module in list(self.backbone)[1:]:
            out = module(out)
        return out

    def _derive(self, out: dict[str, Any], feeds: dict[str, Tensor], n: int, hidden: bool) -> dict[str, Any]:
        """The rows' features from one pass's output: token states, sentence embedding, and for
        texts past the window the mean of their windows."""
        mask = feeds["attention_mask"]
        features: dict[str, Any] = {
            "token_embeddings": out["token_embeddings"][:n],
            "attention_mask": mask[:n],
            SENTENCE_EMBEDDING: out[SENTENCE_EMBEDDING][:n],
        }
        layers = out.get("all_layer_embeddings") if hidden else None
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
        return features

    def features_of(self, task: str, features: dict[str, Any]) -> dict[str, Any]:
        """What the head ``task`` reads: its branch's features, or the backbone's."""
        branch = self.branch_of.get(task)
        return features if branch is None else features["branches"][branch]

    def head_features(self, task: str, features: dict[str, Any], feeds: dict[str, Tensor]) -> dict[str, Any]:
        """``features`` plus the inputs fed for this head alone (a hybrid head's TF-IDF rows)."""
        features = self.features_of(task, features)
        ids, weights = ngram_inputs(task)
        if ids not in feeds:
            return features
        from ..heads.hybrid import IDS, WEIGHTS

        return {**features, IDS: feeds[ids], WEIGHTS: feeds[weights]}

    def compute(self, feeds: dict[str, Tensor], names: Sequence[str]) -> dict[str, Tensor]:
        """The outputs ``names`` only: without ``sentence_embedding``, a model whose heads are all
        on branches skips the backbone's top layers."""
        embedding = SENTENCE_EMBEDDING in names
        features = self.features(feeds, embedding=embedding)
        out: dict[str, Tensor] = {SENTENCE_EMBEDDING: features[SENTENCE_EMBEDDING]} if embedding else {}
        for task, module in self.heads.items():
            if output_name(task) in names:
                head = cast("Head", module)  # a ModuleDict of Head
                out[output_name(task)] = head.probabilities(head(self.head_features(task, features, feeds)))
        return out

    def forward(self, *inputs: Tensor) -> tuple[Tensor, ...]:
        out = self.compute(dict(zip(self.input_names, inputs)), self.output_names)
        return tuple(out[name] for name in self.output_names)

    def tensors(self, feeds: dict[str, np.ndarray]) -> dict[str, Tensor]:
        """numpy feeds as tensors on the backbone's device."""
        device = self.backbone.device
        return {
            name: torch.from_numpy(np.ascontiguousarray(feeds[name])).to(device) for name in self.input_names
        }

    def run(self, feeds: dict[str, np.ndarray], names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Run in torch, as a graph session runs: numpy feeds in, the outputs ``names`` (default
        all) by name."""
        tensors = self.tensors(feeds)
        with torch.inference_mode():
            outputs = self.compute(tensors, self.output_names if names is None else list(names))
        return {name: value.float().cpu().numpy() for name, value in outputs.items()}
