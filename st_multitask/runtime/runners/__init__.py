"""Runners: one module per engine, behind one small contract.

A runner takes the inputs of :mod:`st_multitask.runtime.feeds` by name and returns the named
outputs (``sentence_embedding`` and ``probabilities.<task>``) as float32 numpy arrays. The
registry maps a backend to its module; each module's ``open_runner(source, spec)`` opens the
model described by a :class:`ModelSource` on the engine an :class:`EngineSpec` names, so a new
engine is one file and one line here. The module of a backend is imported only when that backend
runs: torch is never imported for ``onnx`` or ``openvino``.

    >>> sorted(RUNNERS)
    ['onnx', 'openvino', 'torch']
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .. import EngineSpec

__all__ = ["RUNNERS", "ModelSource", "Runner", "open_runner", "variant_for"]

# backend -> the module that runs it
RUNNERS = {
    "torch": "st_multitask.runtime.runners.torch",
    "onnx": "st_multitask.runtime.runners.onnx",
    "openvino": "st_multitask.runtime.runners.openvino",
}


@dataclass(frozen=True)
class ModelSource:
    """What to run, resolved from what the user named: a model directory (a st_multitask model
    with heads, or a sentence-transformers backbone), or a model name in the local Hugging Face
    cache (torch only)."""

    name: str  # how it is shown: the default model's name, a folder, a cached name
    path: Path | None  # the directory; None for a cached name
    heads: bool = False  # a st_multitask model directory whose manifest lists heads
    cached_name: str | None = None  # a name in the local Hugging Face cache (torch only)


class Runner(Protocol):
    """The contract every engine implements."""

    spec: EngineSpec
    dim: int  # the width of sentence_embedding
    record: dict[str, Any]  # where the graph came from (backend, precision, files); {} in torch

    @property
    def input_names(self) -> list[str]:
        """What the graph reads (token inputs, then what its heads read)."""
        ...

    @property
    def output_names(self) -> list[str]:
        """What the graph answers (``sentence_embedding``, then ``probabilities.<task>``)."""
        ...

    def run(self, feeds: dict[str, np.ndarray], outputs: Sequence[str]) -> dict[str, np.ndarray]: ...


def open_runner(source: ModelSource, spec: EngineSpec) -> Runner:
    """Open ``source`` on the engine ``spec`` names, through the registry."""
    module = importlib.import_module(RUNNERS[spec.backend])
    runner: Runner = module.open_runner(source, spec)
    return runner


def variant_for(outputs: Sequence[str]) -> str | None:
    """The graph variant a call for ``outputs`` runs on a model with task branches: ``"embed"``
    (the sentence embedding alone), ``"heads"`` (no embedding: no top layers) or ``None`` (all)."""
    if list(outputs) == ["sentence_embedding"]:
        return "embed"
    return "heads" if "sentence_embedding" not in outputs else None
