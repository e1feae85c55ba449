"""File hashes computed once per change of the file, not once per load.

A model's weights and its exported graph (about 90 MB each for MiniLM) are checked against their
sha256 whenever they are opened. Hashing them costs a few hundred milliseconds on every cold
start, so the hash of each file is kept with its size and modification time, in the process and
in ``hashes.json`` under the per-user cache: a file whose size or mtime changed (altered,
truncated, replaced) is hashed again, and a mismatch is still reported by the caller.

    >>> import tempfile
    >>> from pathlib import Path
    >>> file = Path(tempfile.mkdtemp()) / "weights.bin"
    >>> _ = file.write_bytes(b"abc")
    >>> sha256_of(file)[:12]
    'ba7816bf8f01'
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import threading
from pathlib import Path

__all__ = ["cache_root", "sha256_file", "sha256_of"]

_STORE = "hashes.json"
_SMALL = 1 << 20  # files under 1 MiB are hashed every time: cheaper than the bookkeeping
_lock = threading.Lock()


def cache_root() -> Path:
    """The per-user cache (``$STMT_CACHE``, else ``$XDG_CACHE_HOME/st_multitask``, else
    ``~/.cache/st_multitask``): exported graphs and these hashes."""
    if os.environ.get("STMT_CACHE"):
        return Path(os.environ["STMT_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "st_multitask"


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_of(path: Path) -> str:
    """The sha256 of ``path``, hashed again only when its size or modification time changed."""
    stat = Path(path).stat()
    if stat.st_size < _SMALL:
        return sha256_file(Path(path))
    return _cached(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _cached(path: str, size: int, mtime_ns: int) -> str:
    key = f"{size}:{mtime_ns}"
    store = cache_root() / _STORE
    known = _read(store).get(path)
    if isinstance(known, list) and len(known) == 2 and known[0] == key and isinstance(known[1], str):
        return known[1]
    digest = sha256_file(Path(path))
    with _lock, contextlib.suppress(OSError):  # a read-only cache only costs the next run a hash
        entries = {k: v for k, v in _read(store).items() if os.path.exists(k)}  # forget deleted files
        entries[path] = [key, digest]
        store.parent.mkdir(parents=True, exist_ok=True)
        tmp = store.with_name(f".{_STORE}.{os.getpid()}.{threading.get_ident()}")
        tmp.write_text(json.dumps(entries, indent=0, sort_keys=True), encoding="utf-8")
        os.replace(tmp, store)
    return digest


def _read(store: Path) -> dict[str, object]:
    try:
        entries = json.loads(store.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return entries if isinstance(entries, dict) else {}
