"""Contrastive pairs from a few labelled examples, as SetFit samples them (``setfit/sampler.py``).

Every pair of examples (with replacement, so a text with itself too) is *positive* (same label,
target cosine 1) or *negative* (different labels, target 0). SetFit's default strategy,
``oversampling``, repeats the rarer kind until there are as many of each; ``undersampling`` cuts
the commoner kind down to the rarer; ``unique`` keeps every pair once (the rest of the
commoner kind after the rarer runs out). The pairs come shuffled by a
seeded generator, positive and negative interleaved, so the same seed gives the same pairs.

    >>> pairs = contrastive_pairs(["a", "a", "b", "b"], seed=0)
    >>> len(pairs), sum(p.target for p in pairs)   # 4 positive pairs among 10: oversampled to 6 + 6
    (12, 6.0)
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..errors import InputError

__all__ = ["PAIR_STRATEGIES", "Pair", "PairStrategy", "contrastive_pairs"]

PairStrategy = Literal["oversampling", "undersampling", "unique"]
PAIR_STRATEGIES: tuple[str, ...] = ("oversampling", "undersampling", "unique")


@dataclass(frozen=True)
class Pair:
    """Two examples by index and the cosine their embeddings should have (1 same label, 0 not)."""

    first: int
    second: int
    target: float


def contrastive_pairs(
    labels: Sequence[str], seed: int = 42, strategy: PairStrategy = "oversampling"
) -> list[Pair]:
    """The pairs of the examples with these ``labels`` (see the module doc), in a seeded order."""
    if strategy not in PAIR_STRATEGIES:
        raise InputError(f"Unknown pair strategy {strategy!r}. Valid: {', '.join(PAIR_STRATEGIES)}.")
    if len(set(labels)) < 2:
        raise InputError("Contrastive pairs need examples of at least two labels.")
    rng = np.random.default_rng(seed)
    combos = list(itertools.combinations_with_replacement(range(len(labels)), 2))
    positive = [Pair(a, b, 1.0) for a, b in combos if labels[a] == labels[b]]
    negative = [Pair(a, b, 0.0) for a, b in combos if labels[a] != labels[b]]
    positive = [positive[i] for i in rng.permutation(len(positive))]
    negative = [negative[i] for i in rng.permutation(len(negative))]
    if strategy == "unique":
        mixed = itertools.zip_longest(positive, negative)
        return [pair for both in mixed for pair in both if pair is not None]
    pick = max if strategy == "oversampling" else min
    size = pick(len(positive), len(negative))
    return [kind[i % len(kind)] for i in range(size) for kind in (positive, negative)]
