"""The torch runner: the backbone and heads as one :class:`~st_multitask.runtime.torch_graph.ModelGraph`
module, fed the same inputs as the exported graphs and answering by the same output names."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .. import EngineSpec
from ..feeds import SENTENCE_EMBEDDING, output_name
from . import ModelSource

__all__ = ["TorchRunner", "open_runner"]


class TorchRunner:
    """Runs ``backbone`` and the heads whose outputs a call asks for, in torch.

    ``heads`` is read at every call, so the heads of a live
    :class:`~st_multitask.model.MultiTaskModel` (added, removed, being trained) are what runs.
    """

    def __init__(
        self,
        backbone: Any,
        heads: Mapping[str, Any],
        spec: EngineSpec,
        owner: Any = None,
        branches: Mapping[str, Any] | None = None,
        branch_of: Mapping[str, str] | None = None,
    ):
        from ...backbone import embedding_dim

        self.backbone = backbone
        self.heads = heads
        self.branches = branches if branches is not None else {}  # live, as the heads
        self.branch_of = branch_of if branch_of is not None else {}
        self.spec = spec
        self.record: dict[str, Any] = {}
        self.dim = embedding_dim(backbone)
        self._owner = owner  # the module whose train/eval modes a call must leave as they were

    @property
    def input_names(self) -> list[str]:
        from ..feeds import FeedPlan

        return FeedPlan.for_heads(dict(self.heads)).input_names()

    @property
    def output_names(self) -> list[str]:
        return [SENTENCE_EMBEDDING, *[output_name(task) for task in self.heads]]

    def run(self, feeds: dict[str, np.ndarray], outputs: Sequence[str]) -> dict[str, np.ndarray]:
        from ..torch_graph import ModelGraph

        wanted = {task: head for task, head in self.heads.items() if output_name(task) in outputs}
        owner = self._owner if self._owner is not None else self.backbone
        modes = {module: module.training for module in owner.modules()}  # a trainer's mix stays
        owner.eval()
        try:
            graph = ModelGraph(self.backbone, wanted, dict(self.branches), self.branch_of)
            values = graph.run(feeds, outputs)
        finally:
            for module, mode in modes.items():
                module.training = mode
        return {name: values[name] for name in outputs}


def open_runner(source: ModelSource, spec: EngineSpec) -> TorchRunner:
    """Load the backbone (and the heads a model directory lists) in torch."""
    from ...backbone import load_backbone
    from ...heads import read_heads
    from ...manifest import read_manifest

    if spec.threads:
        import torch

        torch.set_num_threads(spec.threads)
    backbone = load_backbone(source.cached_name or source.path, spec.device)
    heads: dict[str, Any] = {}
    branches: dict[str, Any] = {}
    branch_of: dict[str, str] = {}
    if source.heads and source.path is not None:
        from ...backbone import embedding_dim
        from ..branches import read_branches

        manifest = read_manifest(source.path)
        heads = read_heads(source.path, manifest, embedding_dim(backbone))
        branches, branch_of = read_branches(source.path, manifest, backbone)
        for module in [*heads.values(), *branches.values()]:
            module.to(backbone.device).eval()
    return TorchRunner(backbone, heads, spec, None, branches, branch_of)
