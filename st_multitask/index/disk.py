"""An index directory's generations: which files each one holds, writing one beside the last,
opening the one the manifest names, and removing what earlier ones (or killed writers) left.

Generation 1 is ``index.faiss``, ``texts.sqlite`` and, with rescoring, ``vectors.int8`` (or
``vectors.fp32``); generation ``n`` puts ``.n`` before each extension. Saving a grown index back
to its own directory writes the next generation beside the current one, then replaces
``manifest.json`` (which lists the generation's files by role) in one rename: a reader sees the
old generation or the new one, never a mix.

    >>> generation_files(1, None)
    {'index': 'index.faiss', 'texts': 'texts.sqlite'}
    >>> generation_files(3, "int8")["vectors"]
    'vectors.3.int8'
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .backends import faiss_version, read_index, write_index
from .generation import DTYPES, Generation
from .manifest import FORMAT, FORMAT_VERSION, describe_files, read_index_manifest, write_manifest
from .settings import IndexSettings
from .store import TextStore, VectorStore

__all__ = [
    "WORK_PREFIX",
    "generation_files",
    "next_generation",
    "open_generation",
    "private_copies",
    "write_generation",
]

WORK_PREFIX = ".add-"  # the private copies of a loaded index that grows, inside its directory
_ROLES = ("index", "texts", "vectors")  # the files of a generation, by what they hold


def generation_files(generation: int, rescore: str | None) -> dict[str, str]:
    """{role: file name} of ``generation`` (``rescore``: the kind of rescoring vectors, or None)."""
    tag = "" if generation == 1 else f".{generation}"
    names = {"index": f"index{tag}.faiss", "texts": f"texts{tag}.sqlite"}
    if rescore is not None:
        names["vectors"] = f"vectors{tag}.{rescore}"
    return names


def write_generation(directory: Path, generation: Generation) -> None:
    """Write every file of ``generation`` into ``directory``, then the manifest that lists them."""
    names = generation_files(
        generation.number, generation.settings.rescore if generation.vectors is not None else None
    )
    for name in names.values():  # what a killed writer may have left under these names
        (directory / name).unlink(missing_ok=True)
    write_index(generation.structure, directory / names["index"], generation.settings.storage)
    generation.texts.copy_to(directory / names["texts"])
    if generation.vectors is not None:
        shutil.copyfile(generation.vectors.path, directory / names["vectors"])
    settings: dict[str, Any] = {"library": "faiss", "library_version": faiss_version(), "metric": "cosine"}
    settings.update(asdict(generation.settings))
    settings["int8_scale"] = generation.scale.tolist() if generation.scale is not None else None
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "generation": generation.number,
        "count": int(generation.structure.ntotal),
        "model": generation.model,
        "index": settings,
        "texts": {
            "column": generation.column,
            "sources": generation.texts.sources(),
            "id_columns": list(generation.id_columns),
        },
        "roles": names,
        "files": describe_files(directory, sorted(names.values())),
    }
    write_manifest(directory, manifest)


def open_generation(path: Path, verify: bool = True) -> Generation:
    """The generation the manifest of the index at ``path`` names, every file checked against it
    (sizes always, sha256 with ``verify``)."""
    manifest = read_index_manifest(path, verify=verify)
    try:
        stored = manifest["index"]
        settings = IndexSettings(**{f.name: stored[f.name] for f in fields(IndexSettings)})
        roles, model = manifest["roles"], manifest["model"]
        dim = int(model["dim"])
        scale = np.asarray(stored["int8_scale"], dtype=np.float32) if stored.get("int8_scale") else None
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{path / 'manifest.json'} is not a valid index manifest ({exc}).") from None
    structure = read_index(path / roles["index"], settings.storage)
    if structure.ntotal != manifest["count"] or structure.d != dim:
        raise InputError(f"{path / roles['index']} does not match {path / 'manifest.json'}: altered.")
    vectors = (
        VectorStore(path / roles["vectors"], dim, DTYPES[settings.rescore]) if "vectors" in roles else None
    )
    return Generation(
        settings,
        model,
        structure,
        TextStore(path / roles["texts"], readonly=True),
        vectors,
        column=manifest.get("texts", {}).get("column"),
        id_columns=tuple(manifest.get("texts", {}).get("id_columns", [])),  # none before ids were kept
        scale=scale,
        number=int(manifest["generation"]),
    )


def private_copies(
    home: Path, texts: TextStore, vectors: VectorStore | None
) -> tuple[Path, TextStore, VectorStore | None]:
    """Writable copies of a loaded index's stores in a new work folder inside ``home`` (the
    directory's files stay as they are): (the folder, the texts, the vectors). ``texts`` is closed."""
    work = Path(tempfile.mkdtemp(prefix=WORK_PREFIX, dir=home))
    texts.copy_to(work / "texts.sqlite")
    texts.close()
    if vectors is not None:
        shutil.copyfile(vectors.path, work / "vectors")
        vectors = VectorStore(work / "vectors", vectors.dim, vectors.dtype.name)
    return work, TextStore(work / "texts.sqlite"), vectors


def next_generation(home: Path, data: Generation) -> Generation:
    """Write ``data`` (grown in private copies) as the next generation of the index in ``home``,
    switch the manifest to it, and remove the files of earlier generations and every work folder:
    the same generation, read from its new files."""
    number = data.number + 1
    write_generation(home, replace(data, number=number))
    names = generation_files(number, data.settings.rescore)
    data.texts.close()
    vectors = data.vectors
    if vectors is not None:
        vectors = VectorStore(home / names["vectors"], vectors.dim, vectors.dtype.name)
    texts = TextStore(home / names["texts"], readonly=True)
    for entry in home.iterdir():  # what earlier generations, or killed writers, left
        if entry.name.startswith(WORK_PREFIX):
            shutil.rmtree(entry, ignore_errors=True)
        elif entry.is_file() and entry.name.split(".")[0] in _ROLES and entry.name not in names.values():
            entry.unlink()
    return replace(data, texts=texts, vectors=vectors, number=number)
