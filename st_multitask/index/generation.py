"""What an index holds in memory: its settings, its builder's identity, the FAISS structure, the
texts and the rescoring vectors (one :class:`Generation`), and the two things done with them
together: adding unit vectors with their texts, and finding the nearest corpus ids of queries
(FAISS candidates, rescored by the kept vectors). Its files are :mod:`st_multitask.index.disk`'s.

    >>> import numpy as np, pathlib, tempfile
    >>> model = {"name": "toy", "dim": 2}
    >>> data = Generation.empty(pathlib.Path(tempfile.mkdtemp()), IndexSettings(), model, None, ())
    >>> data.add([1, 2], ["east", "north"], np.array([[1.0, 0.0], [0.0, 1.0]]), "<texts>", None)
    >>> data.nearest(np.array([[0.6, 0.8]], dtype=np.float32), 2)
    [[(1, 0.800000011920929), (0, 0.6000000238418579)]]
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .backends import add_vectors, new_index, search_index
from .quantize import from_int8, int8_scale, to_int8
from .settings import IndexSettings
from .store import TextStore, VectorStore

__all__ = ["DTYPES", "Generation"]

DTYPES: dict[str | None, str] = {"int8": "int8", "fp32": "float32"}  # rescoring vectors on disk


@dataclass
class Generation:
    """One generation of an index: its settings, builder, FAISS structure and stores."""

    settings: IndexSettings
    model: dict[str, Any]  # the identity of the model that built the index
    structure: Any  # the FAISS index
    texts: TextStore
    vectors: VectorStore | None  # the rescoring vectors, where the settings keep them
    column: str | None  # the column the texts came from
    id_columns: tuple[str, ...]  # the ids kept with every text, in this order
    scale: np.ndarray | None  # int8 rescoring: per-dimension scale
    number: int  # 0 until it is written

    @classmethod
    def empty(
        cls,
        work: Path,
        settings: IndexSettings,
        model: dict[str, Any],
        column: str | None,
        id_columns: tuple[str, ...],
    ) -> Generation:
        """A new, empty generation whose stores are files in the folder ``work``."""
        dim = model["dim"]
        structure = new_index(dim, settings.kind, settings.storage, settings.hnsw_m, settings.ef_construction)
        vectors = VectorStore(work / "vectors", dim, DTYPES[settings.rescore]) if settings.rescore else None
        texts = TextStore(work / "texts.sqlite")
        return cls(settings, model, structure, texts, vectors, column, id_columns, None, 0)

    @property
    def count(self) -> int:
        """How many texts it holds."""
        return int(self.structure.ntotal)

    def add(
        self,
        lines: list[int],
        texts: list[str],
        unit: np.ndarray,
        source: str,
        ids: list[tuple[Any, ...]] | None,
    ) -> None:
        """Add unit-length vectors (n, dim) with their texts, source lines and ids."""
        add_vectors(self.structure, unit, self.settings.storage)
        self.texts.append(lines, texts, source, ids)
        if self.vectors is not None:
            if self.settings.rescore == "int8":
                if self.scale is None:  # calibrated on the first chunk, as quantize_embeddings does
                    self.scale = int8_scale(unit)
                self.vectors.append(to_int8(unit, self.scale))
            else:
                self.vectors.append(unit)

    def nearest(self, unit: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        """For each unit-length query, up to ``k`` ``(corpus id, score)``, by score, then by id."""
        settings = self.settings
        fetch = min(self.count, k * settings.rescore_multiplier) if self.vectors is not None else k
        scores, ids = search_index(self.structure, unit, fetch, settings.storage, settings.ef_search)
        best = []
        for query, row_scores, row_ids in zip(unit, scores, ids):
            keep = row_ids >= 0
            row_ids, row_scores = row_ids[keep], row_scores[keep]
            if self.vectors is not None:
                stored = self.vectors.get(row_ids)
                if settings.rescore == "int8":
                    assert self.scale is not None  # int8 vectors are stored with their scale
                    stored = from_int8(stored, self.scale)
                row_scores = stored @ query
            order = np.lexsort((row_ids, -row_scores))[:k]  # by score, then by corpus position
            best.append([(int(row_ids[i]), float(row_scores[i])) for i in order])
        return best
