"""mkdocs hook: the results page, rendered from benchmarks/results/ at every build.

``benchmarks/render.py`` renders every stored result (its command, commit, date, machine and CPU
flags, and all of its figures); building the page here means it always shows what is stored, and
no copy of a figure is kept in docs/ by hand.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

RENDER = Path(__file__).resolve().parents[2] / "benchmarks" / "render.py"


def _render_module() -> Any:
    spec = importlib.util.spec_from_file_location("benchmarks_render", RENDER)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def on_files(files: Files, config: Any) -> Files:
    render = _render_module()
    stale = files.get_file_from_path("results.md")  # a copy written by hand or by render.py --page
    if stale is not None:
        files.remove(stale)
    files.append(File.generated(config, "results.md", content=render.render_page(render.load_results())))
    return files
