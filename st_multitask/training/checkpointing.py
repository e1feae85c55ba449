"""Training checkpoints: weights, optimizer, scheduler, loop and RNG state as safetensors + JSON,
and the best weights kept beside them (``best*.safetensors`` + JSON), so a resumed run ends on them.

No pickle anywhere: tensors go to safetensors files, everything else to JSON. A checkpoint is
written into a temporary folder and renamed into place, so a run killed mid-write leaves the
previous checkpoint intact.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ..atomic import atomic_directory, atomic_file
from ..errors import Hint, InputError

__all__ = [
    "latest_checkpoint",
    "load_checkpoint",
    "prepare_output",
    "read_beside",
    "rng_state",
    "save_checkpoint",
    "set_rng_state",
    "write_beside",
]

_PREFIX = "step-"


def rng_state() -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Python, numpy and torch RNG states: (JSON part, tensor part)."""
    version, state, gauss = random.getstate()
    numpy_state = np.random.get_state(legacy=False)
    numpy_state["state"]["key"] = numpy_state["state"]["key"].tolist()
    json_part = {"python": [version, list(state), gauss], "numpy": numpy_state}
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda{i}"] = s
    return json_part, tensors


def set_rng_state(json_part: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
    version, state, gauss = json_part["python"]
    random.setstate((version, tuple(state), gauss))
    numpy_state = dict(json_part["numpy"])
    numpy_state["state"] = {
        **numpy_state["state"],
        "key": np.asarray(numpy_state["state"]["key"], dtype=np.uint32),
    }
    np.random.set_state(numpy_state)
    torch.set_rng_state(tensors["torch"])
    cuda = [tensors[k] for k in sorted(tensors) if k.startswith("cuda")]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)


def _optimizer_to_files(optimizer: torch.optim.Optimizer) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    meta: dict[str, Any] = {}
    for index, values in state["state"].items():
        meta[str(index)] = {}
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{index}.{key}"] = value.detach().cpu().contiguous()
                meta[str(index)][key] = "tensor"
            else:
                meta[str(index)][key] = value
    return {"state": meta, "param_groups": state["param_groups"]}, tensors


def _optimizer_from_files(meta: dict[str, Any], tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    state = {}
    for index, values in meta["state"].items():
        state[int(index)] = {
            key: tensors[f"{index}.{key}"] if value == "tensor" else value for key, value in values.items()
        }
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(
    directory: Path,
    step: int,
    weights: dict[str, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    trainer_state: dict[str, Any],
    keep: int = 2,
) -> Path:
    """Write ``directory/step-N`` atomically and keep only the ``keep`` newest checkpoints."""
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / f"{_PREFIX}{step:08d}"
    with atomic_directory(final, overwrite=True) as tmp:
        save_file(
            {k: v.detach().cpu().contiguous() for k, v in weights.items()}, str(tmp / "weights.safetensors")
        )
        opt_meta, opt_tensors = _optimizer_to_files(optimizer)
        save_file(opt_tensors, str(tmp / "optimizer.safetensors"))
        rng_json, rng_tensors = rng_state()
        save_file(rng_tensors, str(tmp / "rng.safetensors"))
        state = {**trainer_state, "step": step, "optimizer": opt_meta, "rng": rng_json}
        (tmp / "trainer_state.json").write_text(json.dumps(state, indent=1) + "\n", encoding="utf-8")
    for old in sorted(directory.glob(f"{_PREFIX}*"))[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(directory: Path) -> Path | None:
    """The newest complete checkpoint under ``directory`` (temporary folders are ignored)."""
    found = sorted(p for p in directory.glob(f"{_PREFIX}*") if (p / "trainer_state.json").is_file())
    return found[-1] if found else None


def load_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, torch.Tensor]]:
    """(weights, trainer state with ``optimizer`` rebuilt as a state dict, RNG tensors)."""
    try:
        weights = load_file(str(path / "weights.safetensors"))
        state = json.loads((path / "trainer_state.json").read_text(encoding="utf-8"))
        opt_tensors = load_file(str(path / "optimizer.safetensors"))
        rng_tensors = load_file(str(path / "rng.safetensors"))
    except (OSError, ValueError) as exc:
        raise InputError(
            f"Checkpoint {path} is unreadable ({exc}); delete it to resume from an earlier one."
        ) from exc
    state["optimizer"] = _optimizer_from_files(state["optimizer"], opt_tensors)
    return weights, state, rng_tensors


def write_beside(directory: Path, name: str, weights: dict[str, torch.Tensor], metrics: Any) -> None:
    """Write ``name.safetensors`` and ``name.json`` into ``directory``, each atomically."""
    directory.mkdir(parents=True, exist_ok=True)
    with atomic_file(directory / f"{name}.safetensors") as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in weights.items()}, str(tmp))
    with atomic_file(directory / f"{name}.json") as tmp:
        tmp.write_text(json.dumps(metrics), encoding="utf-8")


def read_beside(directory: Path, name: str) -> tuple[dict[str, torch.Tensor], Any] | None:
    """What :func:`write_beside` wrote under ``name``, or None when it is not there."""
    weights, metrics = directory / f"{name}.safetensors", directory / f"{name}.json"
    if not (weights.is_file() and metrics.is_file()):
        return None
    return load_file(str(weights)), json.loads(metrics.read_text(encoding="utf-8"))


def prepare_output(out: Path, overwrite: bool, resume: bool) -> None:
    """Make ``out`` ready for a run: empty (replaced only with ``overwrite``), or holding a
    checkpoint to ``resume`` from."""
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} is a file; give a directory for the model.")
    if resume:
        if latest_checkpoint(out / "checkpoints") is None:
            raise InputError(f"Nothing to resume in {out}: no checkpoint under {out / 'checkpoints'}.")
        return
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise InputError(
                f"{out} exists and is not empty; pass ",
                Hint("overwrite"),
                " to replace it, or ",
                Hint("resume"),
                ".",
            )
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
