"""The model directory on disk: what :meth:`MultiTaskModel.save` writes and ``load`` reads back.

One owner of the format: the sentence-transformers backbone folder (or a reference to the packaged
MiniLM), ``heads/<name>/`` (``config.json``, ``model.safetensors`` and any extra files a head kind
saves, such as ``vocabulary.json``), the manifest ``st_multitask.json`` (format version, heads,
labels, the sha256 of every head file, training records) and the model card ``README.md``. The
low-level manifest checks live in :mod:`st_multitask.manifest`; atomicity is the caller's
(:func:`st_multitask.atomic.atomic_directory`).

>>> import tempfile
>>> from pathlib import Path
>>> from st_multitask.heads import MLPHead
>>> folder = Path(tempfile.mkdtemp())
>>> write_model_directory(folder, {"s": MLPHead(8, ["neg", "pos"])}, dimension=8, backbone=None)
>>> sorted(read_heads(folder, read_manifest(folder), dimension=8))
['s']
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .backbone import DEFAULT_MODEL_NAME
from .heads import Head, read_heads
from .manifest import FORMAT_VERSION, MANIFEST_NAME, read_manifest, sha256_file
from .model_card import CARD_NAME, render_model_card
from .runtime.branches import Branch, branch_records, read_branches

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = ["RECORD_KEYS", "read_branches", "read_heads", "read_manifest", "write_model_directory"]

RECORD_KEYS = ("metrics", "test_metrics", "training")  # what training records in the manifest


def write_model_directory(
    folder: Path,
    heads: Mapping[str, Head],
    dimension: int,
    backbone: SentenceTransformer | None,
    records: Mapping[str, Any] | None = None,
    title: str | None = None,
    branches: Mapping[str, Branch] | None = None,
    branch_of: Mapping[str, str] | None = None,
) -> None:
    """Write a model into ``folder`` (which should be a fresh temporary directory).

    ``backbone`` is saved as a sentence-transformers folder, or ``None`` to reference the packaged
    all-MiniLM-L6-v2; ``records`` are the :data:`RECORD_KEYS` facts kept in the manifest and card;
    ``branches`` and ``branch_of`` (task -> branch) the task branches, under ``branches/<name>/``.
    """
    folder = Path(folder)
    manifest: dict[str, Any] = {"format_version": FORMAT_VERSION, "dimension": dimension}
    manifest.update({k: v for k, v in (records or {}).items() if k in RECORD_KEYS})
    if backbone is not None:
        backbone.save(str(folder), safe_serialization=True)
        manifest["backbone"] = {"type": "directory"}
    else:
        manifest["backbone"] = {"type": "packaged", "name": DEFAULT_MODEL_NAME}
    manifest["heads"] = {}
    for name, head in heads.items():
        head_dir = folder / "heads" / name
        head.save(head_dir)
        manifest["heads"][name] = {
            "kind": head.kind,
            "level": head.level,
            "labels": head.labels,
            "files": {f.name: sha256_file(f) for f in sorted(head_dir.iterdir()) if f.is_file()},
        }
    if branches:
        manifest["branches"] = branch_records(folder, dict(branches), dict(branch_of or {}))
    (folder / MANIFEST_NAME).write_text(
        json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    (folder / CARD_NAME).write_text(render_model_card(manifest, title or folder.name), encoding="utf-8")
