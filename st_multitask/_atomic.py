"""Write a directory atomically: build it in a hidden folder beside the target, then swap it in.

An interrupted writer leaves the previous directory (or none) in place, never half of a new one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import InputError

__all__ = ["atomic_directory"]


def _usual_permissions(directory: Path) -> None:
    """mkdtemp makes private folders; give the result the permissions of any new file."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(directory, 0o777 & ~mask)
    for path in directory.rglob("*"):
        os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~mask)


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike[str], overwrite: bool = False) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``path``; on success it replaces ``path``.

    Raises :class:`InputError` when ``path`` exists and ``overwrite`` is false, or is a file.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise InputError(f"{path} exists already; pass overwrite=True (--overwrite) to replace it.")
    if path.exists() and not path.is_dir():
        raise InputError(f"{path} is a file; give a directory name.")
    parent = path.parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent))
    try:
        yield tmp
        _usual_permissions(tmp)
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=parent))
            os.replace(path, old / "previous")
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
