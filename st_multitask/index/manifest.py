"""The manifest of an index directory (``manifest.json``): what built it and the hash of every file.

An index is trusted only as far as its manifest: loading checks that the directory is an index,
that every listed file is there with its size and sha256, and that the model asking is the model
that built it. Each failure is one :class:`InputError` naming the file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..errors import Hint, InputError, ModelLoadError
from ..manifest import sha256_file

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "check_model",
    "describe",
    "describe_files",
    "model_identity",
    "read_index_manifest",
    "write_manifest",
]

MANIFEST_NAME = "manifest.json"
FORMAT = "st_multitask-index"
FORMAT_VERSION = 1


def describe_files(directory: Path, names: list[str]) -> dict[str, dict[str, Any]]:
    """{name: {"bytes": size, "sha256": hex}} for files of ``directory``."""
    return {
        name: {"bytes": (directory / name).stat().st_size, "sha256": sha256_file(directory / name)}
        for name in names
    }


def write_manifest(directory: Path, manifest: dict[str, Any]) -> None:
    """Write ``manifest.json`` atomically (a temporary file renamed over it): the commit point."""
    tmp = directory / f".{MANIFEST_NAME}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, directory / MANIFEST_NAME)


def read_index_manifest(directory: str | os.PathLike[str], verify: bool = True) -> dict[str, Any]:
    """The manifest of the index at ``directory``, after checking every file it lists (sizes
    always, sha256 hashes with ``verify``). The vector storage is ``index.storage``, read from
    ``index.precision`` in manifests written before it had that name."""
    directory = Path(directory)
    if not directory.is_dir():
        what = "does not exist" if not directory.exists() else "is a file"
        raise InputError(f"{directory} {what}; expected an index directory (stmt index build).")
    path = directory / MANIFEST_NAME
    if not path.is_file():
        raise InputError(f"{directory} is not a st_multitask index: {MANIFEST_NAME} is missing.")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        if manifest.get("format") != FORMAT:
            raise KeyError("format")
        version = manifest["format_version"]
        files, model, settings = manifest["files"], manifest["model"], manifest["index"]
        if not all(isinstance(x, dict) for x in (files, model, settings)):
            raise TypeError("files, model and index must be objects")
    except (
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
        RecursionError,
    ) as exc:  # ValueError: JSON, UTF-8
        raise InputError(f"{path} is not a st_multitask index manifest ({exc}).") from None
    if "storage" not in settings and "precision" in settings:  # saved before the setting was renamed
        settings["storage"] = settings.pop("precision")
    if version != FORMAT_VERSION:
        raise InputError(f"{path} has format version {version}; this st_multitask reads {FORMAT_VERSION}.")
    problem = _shape_problem(manifest)
    if problem:
        raise InputError(f"{path} is not a st_multitask index manifest ({problem}).")
    for name, info in files.items():
        file = directory / name
        if not file.is_file():
            raise InputError(f"{file} is missing (listed in {MANIFEST_NAME}); rebuild the index.")
        size = file.stat().st_size
        if size != info.get("bytes"):
            change = "truncated" if size < info.get("bytes", 0) else "altered"
            raise InputError(
                f"{file} is {change}: {size} bytes, {MANIFEST_NAME} lists {info.get('bytes')}; rebuild the index."
            )
        if verify and sha256_file(file) != info.get("sha256"):
            raise InputError(
                f"{file} does not match its sha256 in {MANIFEST_NAME}: altered; rebuild the index."
            )
    return manifest


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _shape_problem(manifest: dict[str, Any]) -> str | None:
    """What is wrong with the types that every reader of the manifest relies on, or None."""
    files, model, settings = manifest["files"], manifest["model"], manifest["index"]
    texts, roles = manifest.get("texts", {}), manifest.get("roles")
    if not all(
        isinstance(info, dict) and _count(info.get("bytes")) and isinstance(info.get("sha256"), str)
        for info in files.values()
    ):
        return "every file needs its bytes and sha256"
    if any(name in ("", ".", "..") or "/" in name or "\\" in name or "\0" in name for name in files):
        return "file names must be plain names inside the index directory"
    if not _count(manifest.get("count")) or not _count(manifest.get("generation")):
        return "count and generation must be whole numbers"
    if not isinstance(model.get("name"), str) or not _count(model.get("dim")) or not model["dim"]:
        return "the model needs a name and a positive dim"
    if not isinstance(model.get("fingerprint"), (str, type(None))):
        return "the model fingerprint must be a string"
    if not isinstance(roles, dict) or not {"index", "texts"} <= set(roles):
        return "roles must name the index and texts files"
    if not all(isinstance(name, str) and name in files for name in roles.values()):
        return "every role must name a file listed in files"
    if not isinstance(texts, dict) or not isinstance(texts.get("column"), (str, type(None))):
        return "texts must be an object with a column name"
    if not isinstance(texts.get("sources", []), list):
        return "texts.sources must be a list"
    names = texts.get("id_columns", [])
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        return "texts.id_columns must be a list of column names"
    if len(set(names)) != len(names):
        return "texts.id_columns must not name a column twice"
    if not isinstance(settings.get("kind"), str) or not isinstance(settings.get("storage"), str):
        return "index needs its kind and storage"
    scale = settings.get("int8_scale")
    if scale is not None and not (
        isinstance(scale, list)
        and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in scale)
    ):
        return "index.int8_scale must be a list of numbers"
    return None


def model_identity(encoder: Any, requested: Any = None) -> dict[str, Any]:
    """Who embeds: a display name, the sha256 fingerprint of the model files (when they are a
    local sentence-transformers directory), the width, and the engine and its precision.

    ``requested`` is what the caller asked for: ``None`` (the packaged model), a name or path, or
    the loaded ``encoder`` itself. Without an ``encoder`` the identity is read from the files alone.

    >>> identity = model_identity(None)
    >>> identity["name"], identity["dim"], len(identity["fingerprint"])
    ('all-MiniLM-L6-v2', 384, 64)
    """
    from ..backbone import DEFAULT_ALIASES, DEFAULT_MODEL_NAME, default_model_path, embedding_dim
    from ..runtime.model_files import read_model_files

    if requested is None:
        source: str | None = DEFAULT_MODEL_NAME
    elif isinstance(requested, (str, os.PathLike)):
        source = os.fspath(requested)
    else:  # a loaded pipeline knows its folder; a SentenceTransformer tells its own
        folder = getattr(encoder, "model_dir", None)
        source = (
            str(folder)
            if folder is not None
            else _source_dir(getattr(getattr(encoder, "runner", None), "backbone", encoder))
        )
    files = None
    if source is not None:
        try:
            files = read_model_files(source)
        except ModelLoadError:
            files = None
    if source is None:
        display = type(encoder).__name__
    elif source in DEFAULT_ALIASES or (files is not None and files.path == default_model_path().resolve()):
        display = DEFAULT_MODEL_NAME
    else:
        path = Path(source).expanduser()
        display = str(path.resolve()) if path.exists() else source
    return {
        "name": display,
        "fingerprint": files.fingerprint() if files is not None else None,
        "dim": embedding_dim(encoder) if encoder is not None else (files.dim if files else None),
        "backend": None if encoder is None else getattr(encoder, "backend", "torch"),
        "precision": None if encoder is None else getattr(encoder, "precision", "fp32"),
    }


def _source_dir(model: Any) -> str | None:
    """The folder a loaded SentenceTransformer was read from, where it tells."""
    try:
        return str(model[0].auto_model.config._name_or_path)
    except (AttributeError, IndexError, KeyError, TypeError):
        return None


def check_model(manifest: dict[str, Any], asking: dict[str, Any], where: Path) -> None:
    """Refuse a model other than the index's builder, naming the builder."""
    built = manifest["model"]
    same = (
        built.get("fingerprint") == asking.get("fingerprint")
        if built.get("fingerprint") and asking.get("fingerprint")
        else built.get("name") == asking.get("name")
    )
    if not same or built.get("dim") != asking.get("dim"):
        raise InputError(
            f"{where} was built by the model {built.get('name')} (fingerprint "
            f"{str(built.get('fingerprint'))[:12]}, dimension {built.get('dim')}); it cannot be searched "
            f"with {asking.get('name')}. Pass ",
            Hint("model", built.get("name")),
            ", or build an index with this model.",
        )


def describe(path: str | os.PathLike[str], verify: bool = True) -> dict[str, Any]:
    """What ``stmt index info`` shows: count, model, kind, storage, rescoring, the text and id
    columns, size on disk.

    The files are checked as :meth:`Index.load` checks them, but nothing is loaded.
    """
    manifest = read_index_manifest(path, verify=verify)
    stored = manifest["index"]
    return {
        "count": manifest["count"],
        "model": manifest["model"]["name"],
        "fingerprint": manifest["model"].get("fingerprint"),
        "dimension": manifest["model"]["dim"],
        "encoder": " ".join(
            str(manifest["model"].get(key) or "") for key in ("backend", "precision")
        ).strip(),
        "kind": stored["kind"],
        "storage": stored["storage"],
        "rescore": stored.get("rescore"),
        "column": manifest.get("texts", {}).get("column"),
        "id_columns": manifest.get("texts", {}).get("id_columns", []),
        "sources": len(manifest.get("texts", {}).get("sources", [])),
        "bytes": sum(int(info["bytes"]) for info in manifest["files"].values())
        + (Path(path) / "manifest.json").stat().st_size,
    }
