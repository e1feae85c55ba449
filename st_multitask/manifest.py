"""The manifest of a saved model (``st_multitask.json``) and the checks every loader makes.

Torch-free, so the fast path verifies a model exactly as :meth:`MultiTaskModel.load` does: the
format version, no pickle files, and every head file against its sha256.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .errors import ModelLoadError
from .file_hashes import sha256_file

__all__ = [
    "CONFIG_NAME",
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "PICKLE_SUFFIXES",
    "WEIGHTS_NAME",
    "check_branch_files",
    "check_head_files",
    "read_manifest",
    "refuse_pickles",
    "sha256_file",
]

MANIFEST_NAME = "st_multitask.json"
CONFIG_NAME = "config.json"  # a head's constructor arguments
WEIGHTS_NAME = "model.safetensors"  # a head's weights
FORMAT_VERSION = 1
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".joblib", ".ckpt")


def graph_files(manifest: dict[str, Any]) -> set[str]:
    """Every file the manifest lists under ``graphs`` (relative paths)."""
    graphs = manifest.get("graphs", {})
    names: set[str] = set()
    if isinstance(graphs, dict):
        for record in graphs.values():
            if isinstance(record, dict) and isinstance(record.get("files"), dict):
                names.update(record["files"])
    return names


def refuse_pickles(directory: Path, allowed: Iterable[str] = ()) -> None:
    """Refuse a directory that holds pickle-based weight files. ``allowed`` are relative paths of
    non-pickle files with such a suffix (OpenVINO's ``.bin`` weights, listed with their hashes)."""
    allowed = set(allowed)
    for path in directory.rglob("*"):
        if path.suffix.lower() in PICKLE_SUFFIXES and path.is_file():
            if path.relative_to(directory).as_posix() in allowed:
                continue
            raise ModelLoadError(
                f"Refusing to load {path}: pickle-based weight files can run code. "
                "st_multitask models hold safetensors and JSON only."
            )


def read_manifest(path: Path) -> dict[str, Any]:
    """The checked manifest of the model directory ``path``."""
    if not path.is_dir():
        raise ModelLoadError(f"{path} is not a directory; pass the folder written by MultiTaskModel.save().")
    manifest_path = path / MANIFEST_NAME
    if not manifest_path.is_file():
        hint = (
            " (it looks like a plain sentence-transformers model: use --model for embeddings)"
            if (path / "modules.json").is_file()
            else ""
        )
        raise ModelLoadError(f"{path} is not a st_multitask model: {MANIFEST_NAME} is missing{hint}.")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        version = manifest["format_version"]
        if not isinstance(manifest["heads"], dict) or not isinstance(manifest["backbone"], dict):
            raise TypeError("heads and backbone must be objects")
    except (ValueError, KeyError, TypeError, RecursionError) as exc:  # ValueError: bad JSON or UTF-8
        raise ModelLoadError(f"{manifest_path} is not a valid manifest ({exc}).") from None
    if version != FORMAT_VERSION:
        raise ModelLoadError(
            f"{manifest_path} has format version {version}; this st_multitask reads {FORMAT_VERSION}."
        )
    if manifest["backbone"].get("type") not in ("packaged", "directory"):
        raise ModelLoadError(f"{manifest_path}: unknown backbone type {manifest['backbone'].get('type')!r}.")
    for name, info in manifest["heads"].items():
        _check_head_record(manifest_path, name, info)
    _check_branches(manifest_path, manifest)
    refuse_pickles(path, graph_files(manifest))
    return manifest


def _plain_name(name: Any) -> bool:
    """A name that stays one folder or file inside the model directory."""
    return (
        isinstance(name, str)
        and name not in ("", ".", "..")
        and "/" not in name
        and "\\" not in name
        and "\0" not in name
    )


def _check_head_record(manifest_path: Path, name: str, info: Any) -> None:
    """A head's entry in the manifest: a plain folder name, its kind, labels and file hashes."""
    problem = None
    if not _plain_name(name):
        problem = f"head name {name!r} is not a folder name"
    elif not isinstance(info, dict):
        problem = f"head {name!r} must be an object, not {type(info).__name__}"
    elif not isinstance(info.get("kind"), str) or not isinstance(info.get("labels"), list):
        problem = f"head {name!r} needs a kind (a string) and labels (a list)"
    elif not isinstance(info.get("files", {}), dict) or not all(
        _plain_name(f) and isinstance(h, str) for f, h in info.get("files", {}).items()
    ):
        problem = f"head {name!r} must list its files as {{file name: sha256}}"
    if problem:
        raise ModelLoadError(f"{manifest_path} is not a valid manifest ({problem}).")


def _check_branches(manifest_path: Path, manifest: dict[str, Any]) -> None:
    """The optional ``branches``: ``{name: {"layers": K, "start": layer, "heads": [...], "files": {...}}}``,
    each head on one branch at most, and only heads the manifest lists."""
    branches = manifest.get("branches", {})
    problem = None
    seen: set[str] = set()
    if not isinstance(branches, dict):
        problem = "branches must be an object"
    for name, info in branches.items() if problem is None else ():
        if not _plain_name(name) or not isinstance(info, dict):
            problem = f"branch {name!r} must be a folder name with an object"
        elif not all(
            isinstance(info.get(k), int) and not isinstance(info.get(k), bool) for k in ("layers", "start")
        ):
            problem = f"branch {name!r} needs layers and start (integers)"
        elif not isinstance(info.get("heads"), list) or not all(
            h in manifest["heads"] for h in info["heads"]
        ):
            problem = f"branch {name!r} must list heads the manifest has"
        elif seen.intersection(info["heads"]):
            problem = f"head {sorted(seen.intersection(info['heads']))[0]!r} is on two branches"
        elif not isinstance(info.get("files"), dict) or not all(
            _plain_name(f) and isinstance(h, str) for f, h in info["files"].items()
        ):
            problem = f"branch {name!r} must list its files as {{file name: sha256}}"
        else:
            seen.update(info["heads"])
        if problem:
            break
    if problem:
        raise ModelLoadError(f"{manifest_path} is not a valid manifest ({problem}).")


def _check_files(folder: Path, info: dict[str, Any]) -> Path:
    for filename, expected in info.get("files", {}).items():
        file = folder / filename
        if not file.is_file():
            raise ModelLoadError(f"{file} is missing (listed in {MANIFEST_NAME}).")
        if sha256_file(file) != expected:
            raise ModelLoadError(f"{file} does not match the hash in {MANIFEST_NAME}: truncated or altered.")
    return folder


def check_head_files(path: Path, name: str, info: dict[str, Any]) -> Path:
    """Check the files of head ``name`` against the manifest's hashes; returns the head folder."""
    return _check_files(path / "heads" / name, info)


def check_branch_files(path: Path, name: str, info: dict[str, Any]) -> Path:
    """Check the files of branch ``name`` against the manifest's hashes; returns its folder."""
    return _check_files(path / "branches" / name, info)
