"""Exported graphs: where they live, how they are verified, and where they come from.

A graph is found, in order:

1. in the model directory, written by ``stmt export`` and listed in its manifest
   (``st_multitask.json``, key ``graphs``) with the sha256 of each file;
2. in the per-user cache (``$STMT_CACHE``, else ``$XDG_CACHE_HOME/st_multitask``, else
   ``~/.cache/st_multitask``), keyed on the model files' hashes, the backend, the precision and the
   runtime version, so a stale entry is never used;
3. otherwise it is exported once into that cache (this needs torch; a note on stderr says so).

Every file is checked against its sha256 before it is opened (hashed again only when its size or
modification time changed, :mod:`st_multitask.file_hashes`), and a graph records the identity
of the model it was exported from: the backbone's files and, for a graph with heads, the heads'
files. A graph outputs ``sentence_embedding`` and one ``probabilities.<task>`` per head.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from ..errors import Hint, ModelLoadError
from ..file_hashes import cache_root, sha256_of
from . import EngineSpec
from .layout import ENTRY_NAME, EXPORT_FORMAT, FP32_LAYERS, graph_key, graph_precision
from .model_files import (
    MANIFEST_NAME,
    ModelFiles,
    heads_fingerprint,
    read_json,
    read_model_files,
)

__all__ = ["cache_root", "find_graph", "verify_graph"]

logger = logging.getLogger(__name__)


def verify_graph(
    root: Path, record: dict[str, Any], fingerprint: str, where: str, heads: str | bool | None = False
) -> Path:
    """Check every file of ``record`` under ``root`` against its sha256, and that it was exported
    from the model whose identity is ``fingerprint`` (and, unless ``heads`` is False, with the heads
    whose identity is ``heads``). Returns the main graph file."""
    try:
        files = dict(record["files"])
        source = record["source"]
        graph_format = record.get("format")
    except (KeyError, TypeError, ValueError, AttributeError):
        raise ModelLoadError(f"{where}: the graph record is malformed; export it again.") from None
    if graph_format != EXPORT_FORMAT:
        raise ModelLoadError(
            f"{where}: its {record.get('backend')} {record.get('precision')} graph was exported by an "
            f"earlier st_multitask (graph format {graph_format}; this version reads {EXPORT_FORMAT}, with "
            "the heads inside the graph); export it again with stmt export --overwrite."
        )
    for name, expected in files.items():
        file = root / name
        if not file.is_file():
            raise ModelLoadError(f"{file} is missing (listed in {where}); export it again with stmt export.")
        if sha256_of(file) != expected:
            raise ModelLoadError(
                f"{file} does not match its sha256 in {where}: truncated or altered; export it again with ",
                Hint("overwrite"),
                ".",
            )
    if source != fingerprint:
        raise ModelLoadError(
            f"{root / next(iter(files))} was exported from another model (its weights or tokenizer "
            f"differ from those in {root}); export it again with ",
            Hint("overwrite"),
            ".",
        )
    if heads is not False and record.get("heads") != heads:
        raise ModelLoadError(
            f"{root / next(iter(files))} was exported with other heads than those {where} lists; "
            "export it again with stmt export --overwrite."
        )
    return root / next(iter(files))


def _cache_key(files: ModelFiles, heads: str | None, backend: str, precision: str, runtime: str) -> str:
    text = json.dumps(
        {
            "model": files.fingerprint(),
            "heads": heads,
            "graph": graph_key(backend, precision),
            "runtime": runtime,
            "format": EXPORT_FORMAT,
            "fp32_layers": FP32_LAYERS[backend] if precision == "int8" else None,  # a new policy re-exports
        },
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _manifest_graph(model_dir: Path, key: str) -> dict[str, Any] | None:
    manifest = model_dir / MANIFEST_NAME
    if not manifest.is_file():
        return None
    graphs = read_json(manifest).get("graphs", {})
    return graphs.get(key) if isinstance(graphs, dict) else None


def find_graph(
    name_or_path: str | os.PathLike[str] | None, choice: EngineSpec, heads: bool = False
) -> tuple[Path, dict, ModelFiles]:
    """The verified graph for the model and engine: ``(main file, record, model files)``.

    ``heads=True``: the graph of the whole model, with the heads its directory lists; ``False``:
    any graph of the backbone (a graph the model directory holds has its heads: an embedding-only
    run feeds them nothing)."""
    from .layout import runtime_version

    files = read_model_files(name_or_path)
    precision = graph_precision(choice)
    key = graph_key(choice.backend, precision)
    model_dir = None if name_or_path is None else Path(name_or_path).expanduser()
    model_dir = model_dir if model_dir is not None and model_dir.is_dir() else None
    wanted = heads_fingerprint(model_dir) if heads else None
    # 1. exported into the model directory
    if model_dir is not None:
        record = _manifest_graph(model_dir, key)
        if record is not None:
            where = str(model_dir / MANIFEST_NAME)
            main = verify_graph(model_dir, record, files.fingerprint(), where, wanted if heads else False)
            return main, record, files
    # 2. the per-user cache
    runtime = runtime_version(choice.backend)
    root = cache_root()
    entry = root / _cache_key(files, wanted, choice.backend, precision, runtime)
    if entry.is_dir():
        try:
            record = read_json(entry / ENTRY_NAME)
            main = verify_graph(entry, record, files.fingerprint(), str(entry / ENTRY_NAME), wanted)
            return main, record, files
        except ModelLoadError as exc:
            _note(f"the cached graph in {entry} is damaged ({exc}); exporting it again.")
            shutil.rmtree(entry, ignore_errors=True)
    # 3. export once into the cache
    from ..backbone import DEFAULT_MODEL_NAME, default_model_path

    name = DEFAULT_MODEL_NAME if files.path == default_model_path().resolve() else files.path.name
    if wanted is not None:
        name = f"{model_dir.name if model_dir else name} with its heads"
    _note(f"exporting {name} to {choice.backend} {precision} once into {root} (later runs reuse it)...")
    from .export import export_graph

    root.mkdir(parents=True, exist_ok=True)
    _prune(root, files.fingerprint(), wanted, choice.backend, precision)
    tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=root))
    try:
        record = export_graph(files, choice.backend, precision, tmp, model_dir=model_dir if wanted else None)
        (tmp / ENTRY_NAME).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        with contextlib.suppress(OSError):  # another process finished the same entry first: keep it
            os.replace(tmp, entry)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    record = read_json(entry / ENTRY_NAME)
    return verify_graph(entry, record, files.fingerprint(), str(entry / ENTRY_NAME), wanted), record, files


def _prune(root: Path, fingerprint: str, heads: str | None, backend: str, precision: str) -> None:
    """Remove what a new export replaces: entries of the same model and graph made by another
    runtime version or export format, and folders of exports killed more than a day ago."""
    import time

    for entry in root.iterdir():
        if entry.name.startswith(".export-"):
            with contextlib.suppress(OSError):
                if time.time() - entry.stat().st_mtime > 86400:
                    shutil.rmtree(entry, ignore_errors=True)
            continue
        try:
            record = json.loads((entry / ENTRY_NAME).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if (record.get("source"), record.get("heads"), record.get("backend"), record.get("precision")) == (
            fingerprint,
            heads,
            backend,
            precision,
        ):
            shutil.rmtree(entry, ignore_errors=True)


def _note(message: str) -> None:
    """Export notes go to stderr whatever the logging set-up: the user is waiting on them."""
    print(f"note: {message}", file=sys.stderr, flush=True)
    logger.info(message)
