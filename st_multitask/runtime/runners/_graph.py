"""What the two graph runners share: find (or export) the verified graph, keep its record."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .. import EngineSpec
from ..graphs import find_graph
from . import ModelSource

__all__ = ["graph_for"]


def graph_for(source: ModelSource, spec: EngineSpec) -> tuple[Path, dict[str, Any], int]:
    """``(graph file, record, embedding width)`` for ``source`` on ``spec``: the model
    directory's own graph (``stmt export``), else the per-user cache's, else exported once."""
    graph, record, files = find_graph(source.path, spec, heads=source.heads)
    return graph, record, files.dim
