"""The frozen-backbone fast path: when no backbone weight trains, what each head reads is computed
once per example and split, kept in memory or spilled to memory-mapped files, and batched from
there instead of running the backbone again.

With ``cache_dir`` the tables also persist across runs, as safetensors files named by a hash of
everything that decides them: the backbone's weights, each head's input settings and fitted
features, and the texts. Runs of several seeds or recipe variants on the same data then compute
them once. A head's inputs never depend on its trainable weights, so the key holds none."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence

from ..alignment import split_words
from ..model import MultiTaskModel
from ..runtime.branches import trunk_states
from ..runtime.feeds import TOKEN_INPUTS, FeedPlan, build_feeds
from ..texts import texts_and_spans
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
        self._backbone_hash: str | None = None

    def get(self, name: str, items: list, tasks: list[str], split: str) -> dict[str, Any] | None:
        if not self.enabled or any(task in self.model.branch_of for task in tasks):
            return None  # a branch's heads read what the branch computes now
        key = (name, split)
        if key not in self._tables:
            if self.config.cache_dir is None:
                self._tables[key] = self._build(items, tasks)
            else:
                self._tables[key] = self._persistent(items, tasks)
        return self._tables[key]

    # -- the cache across runs ---------------------------------------------------------------------
    def key(self, items: list, tasks: list[str]) -> str:
        """The hash that names a table: backbone weights, the heads' input settings, the texts."""
        digest = hashlib.sha256()
        if self._backbone_hash is None:
            weights = hashlib.sha256()
            for name, tensor in sorted(self.model.backbone.state_dict().items()):
                weights.update(name.encode())
                weights.update(
                    tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes()
                )
            weights.update(str(self.model.backbone.max_seq_length).encode())
            self._backbone_hash = weights.hexdigest()
        digest.update(self._backbone_hash.encode())
        digest.update(str(self.config.mixed_precision).encode())
        for task in tasks:
            head = self.model.heads[task]
            digest.update(json.dumps([task, head.kind], sort_keys=True).encode())
            for name, buffer in sorted(head.named_buffers()):
                digest.update(name.encode())
                digest.update(buffer.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
            digest.update(json.dumps(head.input_fingerprint(), sort_keys=True, default=str).encode())
        digest.update(json.dumps(items, ensure_ascii=False).encode())
        return digest.hexdigest()[:32]

    def _persistent(self, items: list, tasks: list[str]) -> dict[str, Any]:
        from safetensors.torch import load_file, save_file

        assert self.config.cache_dir is not None  # the cache across runs lives there
        folder = Path(self.config.cache_dir)
        path = folder / f"{self.key(items, tasks)}.safetensors"
        if path.is_file():
            return _unflatten(load_file(str(path)))
        table = self._build(items, tasks)
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
        os.close(fd)
        try:
            save_file(_flatten(table), tmp)
            os.replace(tmp, path)  # a cache file is complete or absent
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return table

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


class TrunkCache:
    """Per data set, the states of the frozen trunk that the branches of its tasks read (each
    example's (tokens, dim) per layer): an epoch then runs only the branches' layers and the heads.
    ``None`` from :meth:`get` where it does not apply (a task off a branch, windows, cache off)."""

    def __init__(self, model: MultiTaskModel, config: TrainingConfig, enabled: bool):
        self.model = model
        self.config = config
        self.enabled = enabled and config.cache_embeddings != "off"
        self._tables: dict[tuple[str, str], list[dict[int, Tensor]]] = {}

    def get(self, name: str, items: list, tasks: list[str], split: str) -> list[dict[int, Tensor]] | None:
        model = self.model
        if not self.enabled or not all(task in model.branch_of for task in tasks):
            return None
        if model.graph({task: model.heads[task] for task in tasks}).plan.windows:
            return None  # long texts read as several windows: rows are not examples
        key = (name, split)
        if key not in self._tables:
            table: list[dict[int, Tensor]] = [{} for _ in items]
            order = sorted(range(len(items)), key=lambda i: -_n_words(items[i]))
            size = self.config.eval_batch_size
            for start in range(0, len(order), size):
                batch = order[start : start + size]
                for index, states in zip(batch, self._states([items[i] for i in batch], tasks)):
                    table[index] = states
            self._tables[key] = table
        return self._tables[key]

    def _states(self, items: list, tasks: list[str]) -> list[dict[int, Tensor]]:
        """Per item, the trunk's states the branches of ``tasks`` read, each (tokens, dim)."""
        model = self.model
        texts, spans = texts_and_spans(items)
        graph = model.graph({task: model.heads[task] for task in tasks})
        layers = graph.trunk_layers()
        feeds, _ = build_feeds(FeedPlan(), model._text_tokenizer(), texts, spans)
        tensors = {k: torch.from_numpy(feeds[k]).to(model.device) for k in TOKEN_INPUTS if k in feeds}
        with torch.no_grad():
            states, _ = trunk_states(model.backbone, tensors, max(layers))
        lengths = tensors["attention_mask"].sum(1).tolist()
        return [{i: states[i][row, : int(n)].clone() for i in layers} for row, n in enumerate(lengths)]

    def inputs(
        self, table: list[dict[int, Tensor]], items: list, indices: list[int], tasks: list[str], grad: bool
    ) -> tuple[dict[str, dict[str, Tensor]], Tensor]:
        """``model.head_inputs`` of ``indices``, from the cached trunk states."""
        batch = [items[i] for i in indices]
        return self.model.head_inputs(batch, tasks, grad=grad, trunk=[table[i] for i in indices])

    def close(self) -> None:
        self._tables.clear()


def cached_inputs(
    embeddings: EmbeddingCache,
    trunk: TrunkCache,
    name: str,
    items: list,
    tasks: list[str],
    split: str,
    grad: bool,
) -> Callable[[list[int]], tuple[dict[str, dict[str, Tensor]], Tensor]] | None:
    """How to get the head inputs of examples by index from a cache (``model.head_inputs``' answer),
    or ``None`` where no cache applies: the heads' cached inputs, else the trunk's cached states."""
    table = embeddings.get(name, items, tasks, split)
    if table is not None:
        return functools.partial(embeddings.batch, table, tasks=tasks)
    states = trunk.get(name, items, tasks, split)
    if states is not None:
        return functools.partial(trunk.inputs, states, items, tasks=tasks, grad=grad)
    return None


def _flatten(table: dict[str, Any]) -> dict[str, Tensor]:
    """A table as flat tensors: per column its values end to end and each value's shape."""
    out: dict[str, Tensor] = {}
    columns = {
        "_read": table["_read"],
        **{f"{t}/{k}": c for t, v in table.items() if isinstance(v, dict) for k, c in v.items()},
    }
    for name, column in columns.items():
        values = [torch.as_tensor(v) for v in column]
        rank = max((v.dim() for v in values), default=0)
        shapes = torch.tensor([list(v.shape) + [0] * (rank - v.dim()) for v in values], dtype=torch.long)
        out[f"{name}|data"] = torch.cat([v.reshape(-1) for v in values]) if values else torch.zeros(0)
        out[f"{name}|shapes"] = shapes.reshape(len(values), rank)
    return out


def _unflatten(flat: dict[str, Tensor]) -> dict[str, Any]:
    table: dict[str, Any] = {}
    for name in sorted({key.rsplit("|", 1)[0] for key in flat}):
        data, shapes = flat[f"{name}|data"], flat[f"{name}|shapes"].tolist()
        values, offset = [], 0
        for shape in shapes:
            size = int(np.prod(shape)) if shape else 1
            values.append(data[offset : offset + size].reshape(shape))
            offset += size
        if name == "_read":
            table["_read"] = values
        else:
            task, key = name.split("/", 1)
            table.setdefault(task, {})[key] = values
    return table


def _columns(table: dict[str, Any]) -> Iterator[list[Tensor]]:
    for value in table.values():
        yield from value.values() if isinstance(value, dict) else [value]


def _bytes(table: dict[str, Any]) -> int:
    return sum(t.numel() * t.element_size() for column in _columns(table) for t in column)
