"""Index: embed a corpus once, keep it on disk, search it many times.

Texts stream in chunks: each chunk is embedded, added to the FAISS structure, and its texts (with
their source line numbers and, when given, their ids, such as ``post_id``) go to SQLite, so
building a million-line index costs no more working memory than a thousand-line one. ``save``
writes a directory whose ``manifest.json`` names the model that built it and the sha256 of every
file; ``load`` checks them all.

    >>> import tempfile
    >>> index = Index.build(["The cat sat.", "Stocks fell.", "A dog barked."])
    >>> [hit["text"] for hit in index.search("a pet animal", top_k=2)[0]]
    ['A dog barked.', 'The cat sat.']
    >>> folder = tempfile.mkdtemp() + "/pets"
    >>> index.save(folder)
    >>> Index.load(folder).search("falling share prices", top_k=1)[0][0]["line"]
    2
    >>> posts = Index.build(["The cat sat.", "Stocks fell."], ids={"post_id": [17, 18]})
    >>> posts.search("a pet animal", top_k=1)[0][0]["ids"]
    {'post_id': 17}
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..atomic import atomic_directory
from ..errors import Hint, InputError
from ..similarity import as_embeddings, check_top_k, is_texts
from .disk import next_generation, open_generation, private_copies, write_generation
from .generation import Generation
from .manifest import check_model, model_identity
from .quantize import unit_rows
from .settings import IdColumns, IndexHit, IndexSettings, paired_rows, text_rows

if TYPE_CHECKING:
    from ..pipeline import LongMode

__all__ = ["Index"]


class Index:
    """A persistent vector index over texts. Build it with :meth:`build` or :meth:`from_embeddings`,
    grow it with :meth:`add`, query it with :meth:`search`, keep it with :meth:`save` / :meth:`load`.

    ``id_columns`` names the ids each text was given (``ids={"post_id": [...]}``); every hit of
    such an index returns its row's as ``hit["ids"]``."""

    def __init__(self, data: Generation, *, home: Path | None = None, workdir: Path | None = None):
        """Use :meth:`build`, :meth:`from_embeddings` or :meth:`load`."""
        self._data = data  # the settings, the builder, the FAISS structure and the stores
        self.settings = data.settings
        self.model = data.model  # the identity of the model that built the index
        self.column = data.column
        self.id_columns = data.id_columns  # the ids kept with every text, in this order
        self._home = home  # the directory it was loaded from
        self._workdir = workdir  # private writable copies of the stores
        self._dirty = False
        self._encoder: Any = None
        self._request: Any = None  # the model asked for at load (None: the builder's)
        self._backend: str | None = None
        self._precision: str | None = None  # the engine's precision (fp32, bf16, int8)

    # ------------------------------------------------------------------ construction

    @classmethod
    def _empty(
        cls,
        model: dict[str, Any],
        settings: IndexSettings,
        workdir: str | os.PathLike[str] | None,
        column: str | None,
        id_columns: Sequence[str] = (),
    ) -> Index:
        work = Path(tempfile.mkdtemp(prefix=".stmt-index-", dir=workdir))
        index = cls(Generation.empty(work, settings, model, column, tuple(id_columns)), workdir=work)
        weakref.finalize(index, shutil.rmtree, work, True)
        return index

    @classmethod
    def build(
        cls,
        texts: Iterable[str] | Iterable[tuple[int, str]],
        model: Any = None,
        *,
        kind: str = "flat",
        storage: str = "fp32",
        source: str = "<texts>",
        column: str | None = None,
        backend: str | None = None,
        precision: str | None = None,
        batch_size: int = 64,
        chunk_size: int = 4096,
        long: LongMode = "truncate",
        ids: Mapping[str, Iterable[Any]] | None = None,
        workdir: str | os.PathLike[str] | None = None,
        **settings: Any,
    ) -> Index:
        """Embed ``texts`` (strings, or ``(line, text)`` pairs; any iterable, read in chunks of
        ``chunk_size``) with ``model`` and index them.

        Args:
            kind: ``flat`` (exact) or ``hnsw`` (approximate).
            storage: vectors in the search structure: ``fp32``, ``int8`` or ``binary``.
            source: the name hits give as their ``source`` (the CLI passes the file name).
            column: the column the texts came from (``add`` insists on the same one).
            backend, precision: the engine that embeds and its precision (``fp32``, ``bf16``,
                ``int8``), as in :func:`embed`.
            ids: ``{column: values}``, one value a text (numbers, text or None), returned with each
                hit as ``hit["ids"]``: ``{"post_id": [17, 18]}`` gives ``{"post_id": 17}``.
            workdir: where the working files go until :meth:`save` (default: the system temp folder).
            settings: more :class:`IndexSettings` (``rescore``, ``hnsw_m``, ``ef_search``, ...).
        """
        from ..embedding import resolve_model

        options = IndexSettings(kind=kind, storage=storage, **settings)
        encoder = resolve_model(model, backend, precision)
        given = IdColumns(ids, source)
        index = cls._empty(model_identity(encoder, model), options, workdir, column, given.names)
        index._encoder = encoder
        index._addtext_rows(text_rows(texts), source, batch_size, chunk_size, long, given)
        if index.count == 0:
            raise InputError("No texts to index: pass at least one string.")
        given.check_used(index.count)
        return index

    @classmethod
    def from_embeddings(
        cls,
        vectors: Any,
        texts: Iterable[str] | Iterable[tuple[int, str]],
        model: Any = None,
        *,
        kind: str = "flat",
        storage: str = "fp32",
        source: str = "<texts>",
        column: str | None = None,
        ids: Mapping[str, Iterable[Any]] | None = None,
        workdir: str | os.PathLike[str] | None = None,
        **settings: Any,
    ) -> Index:
        """Index ready embeddings (n, dim) of ``texts``, made by ``model`` (a name or path, checked
        against the width; ``None``: the packaged all-MiniLM-L6-v2), which text queries will use.
        ``ids`` and the settings as in :meth:`build`.

        >>> import numpy as np
        >>> index = Index.from_embeddings(np.eye(384, dtype=np.float32)[:2], ["first", "second"])
        >>> index.search(np.eye(384, dtype=np.float32)[1:2], top_k=1)[0][0]["text"]
        'second'
        """
        array, rows = paired_rows(vectors, texts)
        identity = model_identity(
            model if not isinstance(model, (str, os.PathLike, type(None))) else None, model
        )
        if identity["dim"] not in (None, array.shape[1]):
            raise InputError(
                f"The vectors have dimension {array.shape[1]}; the model {identity['name']} makes {identity['dim']}."
            )
        identity["dim"] = array.shape[1]
        given = IdColumns(ids, source)
        options = IndexSettings(kind=kind, storage=storage, **settings)
        index = cls._empty(identity, options, workdir, column, given.names)
        if isinstance(model, (str, os.PathLike, type(None))):
            index._request = model
        else:
            index._encoder = model
        index._add_rows(array, rows, source, given)
        return index

    # ------------------------------------------------------------------ growing

    def add(
        self,
        texts: Iterable[str] | Iterable[tuple[int, str]],
        vectors: Any = None,
        *,
        source: str = "<added>",
        column: str | None = None,
        ids: Mapping[str, Iterable[Any]] | None = None,
        batch_size: int = 64,
        chunk_size: int = 4096,
        long: LongMode = "truncate",
    ) -> Index:
        """Add texts (embedded with the index's model, or given as ``vectors``); returns self.

        ``ids`` must name the index's id columns (texts added without them have null ids). A
        loaded index changes on disk only when it is saved again, all at once.
        """
        if column is not None and (column or "text") != (self.column or "text"):
            raise InputError(
                f"{source}: the index was built from the column {self.column or 'text'!r}, not {column!r}; "
                "pass ",
                Hint("column", self.column or "text"),
                " or build a new index.",
            )
        given = IdColumns(ids, source)
        if given.names and set(given.names) != set(self.id_columns):
            kept = ", ".join(map(repr, self.id_columns)) or "none"
            raise InputError(
                f"{source}: the index keeps the ids {kept}, not {', '.join(map(repr, given.names))}; "
                "give the same id columns or build a new index."
            )
        if given.names:
            given = given.ordered(self.id_columns)
        self._writable()
        if vectors is None:
            before = self.count
            self._addtext_rows(text_rows(texts), source, batch_size, chunk_size, long, given)
            given.check_used(self.count - before)
        else:
            self._add_rows(*paired_rows(vectors, texts), source, given)
        return self

    def _add_rows(
        self, vectors: np.ndarray, rows: list[tuple[int, str]], source: str, given: IdColumns
    ) -> None:
        """Add ready vectors with their ``(line, text)`` rows and their ids (one a row)."""
        given.check_used(len(rows))
        self._add_vectors(
            [n for n, _ in rows], [t for _, t in rows], vectors, source, given.rows(0, len(rows))
        )

    def _addtext_rows(
        self,
        rows: Iterator[tuple[int, str]],
        source: str,
        batch_size: int,
        chunk_size: int,
        long: LongMode,
        given: IdColumns,
    ) -> None:
        from ..embedding import embed

        position = 0  # of the chunk's first text in the input, to find its ids
        while chunk := list(itertools.islice(rows, chunk_size)):
            texts = [t for _, t in chunk]
            ids = given.rows(position, position + len(chunk))  # checked before the chunk is embedded
            vectors = embed(texts, model=self._query_encoder(), batch_size=batch_size, long=long)
            self._add_vectors([n for n, _ in chunk], texts, vectors, source, ids)
            position += len(chunk)

    def _add_vectors(
        self,
        lines: list[int],
        texts: list[str],
        vectors: np.ndarray,
        source: str,
        ids: list[tuple[Any, ...]] | None = None,
    ) -> None:
        if vectors.shape[1] != self.model["dim"]:
            raise InputError(
                f"The vectors have dimension {vectors.shape[1]}; the index holds {self.model['dim']}."
            )
        self._data.add(lines, texts, unit_rows(vectors), source, ids)
        self._dirty = True

    def _writable(self) -> None:
        """Copy the stores of a loaded index before the first change (the files stay as they are)."""
        if self._workdir is not None:
            return
        assert self._home is not None
        self._workdir, self._data.texts, self._data.vectors = private_copies(
            self._home, self._data.texts, self._data.vectors
        )
        weakref.finalize(self, shutil.rmtree, self._workdir, True)

    # ------------------------------------------------------------------ searching

    @property
    def count(self) -> int:
        """How many texts the index holds."""
        return self._data.count

    def sources(self) -> list[str]:
        """The names of the sources (files) the texts came from, in the order they were added."""
        return self._data.texts.sources()

    @property
    def builder(self) -> str | None:
        """The model to load for text queries: the builder's name or path (None: the packaged model)."""
        from ..backbone import DEFAULT_MODEL_NAME

        return None if self.model["name"] == DEFAULT_MODEL_NAME else self.model["name"]

    def use_model(self, model: Any) -> Index:
        """Embed text queries and added texts with the loaded ``model``, which must be the builder."""
        check_model({"model": self.model}, model_identity(model, model), self._home or Path("the index"))
        self._encoder = model
        return self

    def _query_encoder(self) -> Any:
        """The builder's model (or the one asked for at load, once checked against the builder)."""
        if self._encoder is None:
            from ..embedding import resolve_model

            request = self.builder if self._request is None else self._request
            encoder = resolve_model(request, self._backend, self._precision)
            check_model(
                {"model": self.model}, model_identity(encoder, request), self._home or Path("the index")
            )
            self._encoder = encoder
        return self._encoder

    def search(self, queries: Any, top_k: int = 10) -> list[list[IndexHit]]:
        """For each query (a text, texts, or vectors), the ``top_k`` nearest texts, best first.

        Hits are the dicts of :func:`st_multitask.search` (``corpus_id``, ``score``, ``text``) with
        the text's ``line`` and ``source`` and, when the index has id columns, its ``ids``
        (``{"post_id": 17}``). Scores are cosine similarities (rescored where the index keeps rescoring
        vectors; for binary without rescoring, ``1 - 2 * hamming / dim``).
        """
        check_top_k(top_k)
        encoder = self._query_encoder() if is_texts(queries) else None
        q = as_embeddings(queries, encoder, 64, "queries")
        if q.shape[1] != self.model["dim"]:
            raise InputError(f"The queries have dimension {q.shape[1]}; the index holds {self.model['dim']}.")
        q = unit_rows(q)
        if self.count == 0:
            return [[] for _ in q]
        best = self._data.nearest(q, min(top_k, self.count))
        found = self._data.texts.get([i for row in best for i, _ in row])
        return [[self._hit(i, score, found) for i, score in row] for row in best]

    def _hit(
        self, i: int, score: float, found: dict[int, tuple[int, str, str, tuple[Any, ...] | None]]
    ) -> IndexHit:
        line, source, text, values = found[i]
        hit = IndexHit(corpus_id=i, score=score, text=text, line=line, source=source)
        if self.id_columns:  # a text added without ids has null ones
            hit["ids"] = dict(zip(self.id_columns, values or [None] * len(self.id_columns)))
        return hit

    # ------------------------------------------------------------------ saving and loading

    def save(self, path: str | os.PathLike[str], overwrite: bool = False) -> None:
        """Write the index to the directory ``path`` (see the module docstring).

        A new directory appears whole or not at all. Saving a loaded index back to its own
        directory (after :meth:`add`) writes the new files beside the old ones and switches to
        them by replacing ``manifest.json`` in one rename; the old files are removed after
        (:mod:`st_multitask.index.disk`).
        """
        path = Path(path)
        if self._home is not None and path.resolve() == self._home.resolve():
            if self._dirty:
                self._data = next_generation(self._home, self._data)
                self._workdir, self._dirty = None, False
            return
        with atomic_directory(path, overwrite) as tmp:
            write_generation(tmp, replace(self._data, number=1))
        self._data.number, self._dirty = 1, False

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        model: Any = None,
        *,
        backend: str | None = None,
        precision: str | None = None,
        verify: bool = True,
    ) -> Index:
        """Open the index at ``path``, checking every file against the manifest (sha256 with
        ``verify``). Text queries use ``model`` (default: the model that built the index), which
        must be the builder, on the engine ``backend`` / ``precision`` (see :func:`embed`)."""
        path = Path(path)
        stored = open_generation(path, verify)
        index = cls(stored, home=path)
        index._request, index._backend, index._precision = model, backend, precision
        if model is not None and isinstance(model, (str, os.PathLike)):  # refuse another model now
            check_model({"model": stored.model}, model_identity(None, model), path)
        return index

    def __repr__(self) -> str:
        return (
            f"Index({self.count} texts, {self.settings.kind}, {self.settings.storage}, "
            f"model={self.model['name']!r})"
        )
