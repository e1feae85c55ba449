"""Graph cuts: what a call of a model with task branches runs on the fast path.

ONNX Runtime runs every node of a graph whatever outputs a call names, so a graph whose heads sit
on task branches is also written cut to the heads alone (no original top layers) and to the
sentence embedding alone (no branches), each listed and hashed with the graph (``record["variants"]``);
OpenVINO cuts the graph it read at load time (the variants are listed with no file). The runners
pick a cut by the outputs a call asks for (:func:`~st_multitask.runtime.runners.variant_for`).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["check_against_torch", "cut_files", "export_cuts", "output_sets"]


def output_sets(graph: Any) -> dict[str, list[str]]:
    """What a call asks a graph with task branches for, beside everything: the heads alone (no
    top layers) and the sentence embedding alone (no branches)."""
    if not graph.branch_of:
        return {}
    return {"heads": list(graph.output_names[1:]), "embed": list(graph.output_names[:1])}


def export_cuts(graph: Any, main: Path, backend: str) -> dict[str, str | None]:
    """ONNX graphs of the output sets of :func:`output_sets`, cut from the main graph (ONNX
    Runtime runs every node of a graph whatever a call asks for; OpenVINO cuts them at load time)."""
    sets = output_sets(graph)
    if backend != "onnx" or not sets:
        return cut_files(main, backend, graph)
    import onnx.utils

    inputs = [i.name for i in onnx.load(str(main), load_external_data=False).graph.input]
    variants: dict[str, str | None] = {}
    for variant, outputs in sets.items():
        target = main.with_name(f"{main.stem}_{variant}{main.suffix}")
        onnx.utils.extract_model(str(main), str(target), inputs, outputs)
        variants[variant] = f"{main.parent.name}/{target.name}"
    return variants


def cut_files(main: Path, backend: str, graph: Any) -> dict[str, str | None]:
    """Per variant, its file (ONNX) or None (OpenVINO: cut from the main graph at load)."""
    if backend != "onnx":
        return {v: None for v in output_sets(graph)}
    return {v: f"{main.parent.name}/{main.stem}_{v}{main.suffix}" for v in output_sets(graph)}


def check_against_torch(
    graph: Any, feeds: dict[str, np.ndarray], path: Path, backend: str, precision: str
) -> float:
    """Largest difference between the exported graph's and torch's outputs on ``feeds`` (fp32: every
    output; int8: the unit-length sentence embeddings), for every set of outputs a call asks for."""
    from . import EngineSpec
    from .runners import RUNNERS

    runner_class = {"onnx": "OnnxRunner", "openvino": "OpenVINORunner"}[backend]
    runner = getattr(importlib.import_module(RUNNERS[backend]), runner_class)(
        path, EngineSpec(backend, precision), {"variants": cut_files(path, backend, graph)}
    )
    theirs = graph.run(feeds)
    worst = 0.0
    for names in [graph.output_names, *output_sets(graph).values()]:
        names = names if precision == "fp32" else [n for n in names if n == "sentence_embedding"]
        ours = runner.run(feeds, names) if names else {}
        worst = max([worst, *[float(np.abs(ours[n].astype(np.float32) - theirs[n]).max()) for n in names]])
    return worst
