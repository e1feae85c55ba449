"""Moved to :mod:`st_multitask.training.checkpointing`; this name keeps old imports working."""

from .training.checkpointing import (
    latest_checkpoint,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)

__all__ = ["latest_checkpoint", "load_checkpoint", "rng_state", "save_checkpoint", "set_rng_state"]
