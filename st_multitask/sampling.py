"""Moved to :mod:`st_multitask.training.sampling`; this name keeps old imports working."""

from .training.sampling import SAMPLINGS, Sampling, TaskSampler

__all__ = ["SAMPLINGS", "Sampling", "TaskSampler"]
