"""Task samplers for joint training: which task the next batch comes from.

>>> sampler = TaskSampler({"topic": 900, "ner": 100}, "temperature", sampling_temperature=2.0, seed=0)
>>> {task: round(p, 3) for task, p in sampler.probabilities.items()}
{'topic': 0.75, 'ner': 0.25}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np

from ..errors import InputError

__all__ = ["SAMPLINGS", "TaskSampler"]

SAMPLINGS = ("proportional", "round_robin", "uniform", "temperature")
Sampling = Literal["proportional", "round_robin", "uniform", "temperature"]


class TaskSampler:
    """Draws task names.

    - ``proportional``: p(task) ∝ its number of examples;
    - ``uniform``: every task equally likely;
    - ``temperature``: p ∝ n^(1/T) (T=1 is proportional, large T tends to uniform);
    - ``round_robin``: tasks in turn, in the given order (deterministic).

    The state (``state_dict`` / ``load_state_dict``) is JSON, so a resumed run draws the same tasks.
    """

    def __init__(
        self,
        sizes: Mapping[str, int],
        strategy: Sampling = "proportional",
        sampling_temperature: float = 1.0,
        seed: int = 0,
    ):
        if strategy not in SAMPLINGS:
            raise InputError(f"Unknown sampling {strategy!r}. Valid: {', '.join(SAMPLINGS)}.")
        if not sizes:
            raise InputError("TaskSampler needs at least one task.")
        if any(n <= 0 for n in sizes.values()):
            empty = [t for t, n in sizes.items() if n <= 0]
            raise InputError(f"Task {empty[0]!r} has no training examples.")
        if sampling_temperature <= 0:
            raise InputError(f"sampling_temperature must be positive, got {sampling_temperature!r}.")
        self.tasks = list(sizes)
        self.strategy = strategy
        counts = np.array([sizes[t] for t in self.tasks], dtype=np.float64)
        if strategy == "proportional":
            weights = counts
        elif strategy == "temperature":
            weights = counts ** (1.0 / sampling_temperature)
        else:
            weights = np.ones_like(counts)
        self._p = weights / weights.sum()
        self._rng = np.random.default_rng(seed)
        self._turn = 0

    @property
    def probabilities(self) -> dict[str, float]:
        return {t: float(p) for t, p in zip(self.tasks, self._p)}

    def __iter__(self) -> TaskSampler:
        return self

    def __next__(self) -> str:
        if self.strategy == "round_robin":
            task = self.tasks[self._turn % len(self.tasks)]
            self._turn += 1
            return task
        return self.tasks[int(self._rng.choice(len(self.tasks), p=self._p))]

    def state_dict(self) -> dict[str, Any]:
        return {"turn": self._turn, "rng": self._rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._turn = int(state["turn"])
        self._rng.bit_generator.state = state["rng"]
