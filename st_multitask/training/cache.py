"""The frozen-backbone fast path: when no backbone weight trains, what each head reads is computed
once per example and split, kept in memory or spilled to memory-mapped files, and batched from
there instead of running the backbone again."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence

from ..alignment import split_words
from ..model import MultiTaskModel
from .config import TrainingConfig
from .optim import autocast

__all__ = ["SPILL_BYTES", "EmbeddingCache"]

SPILL_BYTES = 4 * 2**30  # cache_embeddings="auto" spills to disk past this size


def _n_words(item: str | list[str]) -> int:
    return len(split_words(item)) if isinstance(item, str) else len(item)


def _pad_value(key: str) -> int:
    return -1 if key.startswith("ragged_") and key.endswith("_ids") else 0


class EmbeddingCache:
    """Cached head inputs, one table per ``(stream or task, split)``; ``None`` from :meth:`get`
    when the cache is off (a backbone that trains, or ``cache_embeddings="off"``)."""

    def __init__(
        self, model: MultiTaskModel, config: TrainingConfig, enabled: bool, spill_dir: Path | None = None
    ):
        self.model = model
        self.config = config
        self.enabled = enabled and config.cache_embeddings != "off"
        self.spill_dir = spill_dir  # where a disk cache goes (a temporary folder inside it)
        self._tables: dict[tuple[str, str], dict[str, Any]] = {}
        self._folder: Path | None = None

    def get(self, name: str, items: list, tasks: list[str], split: str) -> dict[str, Any] | None:
        if not self.enabled:
            return None
        key = (name, split)
        if key not in self._tables:
            self._tables[key] = self._build(items, tasks)
        return self._tables[key]

    def _build(self, items: list, tasks: list[str]) -> dict[str, Any]:
        """Per example and task, what the head reads (computed once: the backbone is frozen)."""
        table: dict[str, Any] = {task: {} for task in tasks}
        table["_read"] = [None] * len(items)
        order = sorted(range(len(items)), key=lambda i: -_n_words(items[i]))
        size = self.config.eval_batch_size
        for start in range(0, len(order), size):
            batch = order[start : start + size]
            with autocast(self.config):
                inputs, read = self.model.head_inputs([items[i] for i in batch], tasks, grad=False)
            for row, index in enumerate(batch):
                n_words = _n_words(items[index])
                table["_read"][index] = read[row, :n_words].clone()
                for task in tasks:
                    for key, value in inputs[task].items():
                        pad = -1 if key.endswith("_ids") else 0
                        column = table[task].setdefault(key, [None] * len(items))
                        if key.startswith("word_"):
                            piece = value[row, :n_words]
                        elif key.startswith("ragged_"):  # padded per batch: keep the row's own width
                            piece = value[row, : max(int((value[row] != pad).sum()), 1)]
                        else:
                            piece = value[row]
                        column[index] = piece.detach().cpu().clone()
        mode = self.config.cache_embeddings
        if mode == "disk" or (mode == "auto" and _bytes(table) > SPILL_BYTES):
            table = self._to_disk(table)
        return table

    def _to_disk(self, table: dict[str, Any]) -> dict[str, Any]:
        """Move cached tensors into memory-mapped files (large data sets)."""
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="st_multitask-cache-", dir=self.spill_dir))
        folder = self._folder

        def spill(values: list[Tensor]) -> list[Tensor]:
            flat = torch.cat([v.reshape(-1) for v in values]).numpy()
            path = folder / f"{len(list(folder.iterdir()))}.npy"
            mm = np.lib.format.open_memmap(path, mode="w+", dtype=flat.dtype, shape=flat.shape)
            mm[:] = flat
            mm.flush()
            mm = np.load(path, mmap_mode="c")  # copy-on-write: tensors over it are writable
            views, offset = [], 0
            for v in values:
                views.append(torch.from_numpy(mm[offset : offset + v.numel()]).reshape(v.shape))
                offset += v.numel()
            return views

        return {
            task: {key: spill(column) for key, column in value.items()}
            if isinstance(value, dict)
            else spill(value)
            for task, value in table.items()
        }

    def batch(
        self, table: dict[str, Any], indices: list[int], tasks: list[str]
    ) -> tuple[dict[str, dict[str, Tensor]], Tensor]:
        """The head inputs of ``indices`` as ``model.head_inputs`` gives them, and the read mask."""
        inputs: dict[str, dict[str, Tensor]] = {}
        for task in tasks:
            inputs[task] = {}
            for key, column in table[task].items():
                values = [column[i] for i in indices]
                if key.startswith(("word_", "ragged_")):  # (batch, longest, ...)
                    batch = pad_sequence(values, batch_first=True, padding_value=_pad_value(key))
                else:
                    batch = torch.stack(values)
                inputs[task][key] = batch.to(self.model.device)
        read = pad_sequence([table["_read"][i] for i in indices], batch_first=True, padding_value=False)
        return inputs, read  # read: (batch, words)

    def close(self) -> None:
        """Drop the tables and delete the spill folder."""
        self._tables.clear()
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None


def _columns(table: dict[str, Any]) -> Iterator[list[Tensor]]:
    for value in table.values():
        yield from value.values() if isinstance(value, dict) else [value]


def _bytes(table: dict[str, Any]) -> int:
    return sum(t.numel() * t.element_size() for column in _columns(table) for t in column)
