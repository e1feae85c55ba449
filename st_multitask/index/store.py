"""The texts of an index on disk: SQLite rows of (id, source line number, source file, text, the
row's ids), and an append-only file of rescoring vectors. Lookups read only the hits, so a
million-text index costs no memory for its texts.

A row's ids (the values of the index's id columns, e.g. ``post_id``) are one JSON array, in the
order of the manifest's ``texts.id_columns``; stores written before ids existed have no ``ids``
column and read as rows without ids.

    >>> import pathlib, tempfile
    >>> store = TextStore(pathlib.Path(tempfile.mkdtemp()) / "texts.sqlite")
    >>> store.append([1, 3], ["first", "third"], "corpus.txt", [(17,), ("a-9",)])
    >>> store.count(), store.get([1])
    (2, {1: (3, 'corpus.txt', 'third', ('a-9',))})
"""

from __future__ import annotations

import json
import os
import sqlite3
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["TextStore", "VectorStore"]

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS sources (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)",
    "CREATE TABLE IF NOT EXISTS texts (id INTEGER PRIMARY KEY, line INTEGER NOT NULL, "
    "source INTEGER NOT NULL REFERENCES sources(id), text TEXT NOT NULL, ids TEXT)",
)


class TextStore:
    """Texts by corpus id (0, 1, ...), each with its source file and line number."""

    def __init__(self, path: str | os.PathLike[str], readonly: bool = False):
        self.path = Path(path)
        if readonly:
            self._db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro&immutable=1", uri=True)
        else:
            self._db = sqlite3.connect(self.path)
            self._db.execute("PRAGMA journal_mode=OFF")  # a private work copy: the index commits by rename
            self._db.execute("PRAGMA synchronous=OFF")
            for statement in _SCHEMA:
                self._db.execute(statement)
            if not self._has_ids():  # a copy of a store written before ids existed
                self._db.execute("ALTER TABLE texts ADD COLUMN ids TEXT")
        self._ids = self._has_ids()

    def _has_ids(self) -> bool:
        return any(row[1] == "ids" for row in self._db.execute("PRAGMA table_info(texts)"))

    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM texts").fetchone()[0])

    def sources(self) -> list[str]:
        return [name for (name,) in self._db.execute("SELECT name FROM sources ORDER BY id")]

    def append(
        self,
        lines: Sequence[int],
        texts: Sequence[str],
        source: str,
        ids: Sequence[Sequence[Any]] | None = None,
    ) -> None:
        """Add texts after the last id, all from ``source``, with each row's ``ids`` (JSON values)."""
        rows = [None] * len(texts) if ids is None else [json.dumps(list(values)) for values in ids]
        with self._db:
            self._db.execute("INSERT OR IGNORE INTO sources(name) VALUES (?)", (source,))
            (source_id,) = self._db.execute("SELECT id FROM sources WHERE name = ?", (source,)).fetchone()
            start = self.count()
            self._db.executemany(
                "INSERT INTO texts(id, line, source, text, ids) VALUES (?, ?, ?, ?, ?)",
                (
                    (start + i, int(line), source_id, text, row)
                    for i, (line, text, row) in enumerate(zip(lines, texts, rows))
                ),
            )

    def get(self, ids: Sequence[int]) -> dict[int, tuple[int, str, str, tuple[Any, ...] | None]]:
        """{id: (line, source, text, the row's ids or None)} for the given ids."""
        wanted = sorted({int(i) for i in ids})
        found: dict[int, tuple[int, str, str, tuple[Any, ...] | None]] = {}
        stored = "t.ids" if self._ids else "NULL"
        for start in range(0, len(wanted), 500):  # SQLite limits the parameters of one statement
            part = wanted[start : start + 500]
            rows = self._db.execute(
                f"SELECT t.id, t.line, s.name, t.text, {stored} FROM texts t JOIN sources s ON s.id = t.source "
                f"WHERE t.id IN ({','.join('?' * len(part))})",
                part,
            )
            found.update(
                {
                    i: (line, source, text, None if row is None else tuple(json.loads(row)))
                    for i, line, source, text, row in rows
                }
            )
        return found

    def copy_to(self, path: str | os.PathLike[str]) -> None:
        """A consistent copy of the whole store at ``path``."""
        target = sqlite3.connect(path)
        try:
            self._db.backup(target)
        finally:
            target.close()

    def close(self) -> None:
        self._db.close()


class VectorStore:
    """Fixed-width vectors (int8 or float32 rows of ``dim``) appended to a raw file, read back by id
    with ``pread``: the rows stay on disk (in the page cache), not in the process's memory."""

    def __init__(self, path: str | os.PathLike[str], dim: int, dtype: str):
        self.path = Path(path)
        self.dim = dim
        self.dtype = np.dtype(dtype)
        if not self.path.exists():
            self.path.touch()
        self._fd: int | None = None

    def count(self) -> int:
        return self.path.stat().st_size // (self.dim * self.dtype.itemsize)

    def append(self, rows: np.ndarray) -> None:
        with open(self.path, "ab") as f:
            f.write(np.ascontiguousarray(rows, dtype=self.dtype).tobytes())

    def get(self, ids: np.ndarray) -> np.ndarray:
        """Rows ``ids`` (any order) as an array of shape (len(ids), dim)."""
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDONLY)
            weakref.finalize(self, os.close, self._fd)
        width = self.dim * self.dtype.itemsize
        data = b"".join(os.pread(self._fd, width, int(i) * width) for i in np.asarray(ids, dtype=np.int64))
        return np.frombuffer(data, dtype=self.dtype).reshape(-1, self.dim)
