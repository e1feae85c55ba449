"""contrastive_pairs: SetFit's pair sampling, seeded."""

from __future__ import annotations

import pytest

from st_multitask.errors import InputError
from st_multitask.training.pairs import contrastive_pairs

LABELS = ["a"] * 3 + ["b"] * 2  # 15 pairs with replacement: 6 + 3 positive, 6 negative


def kinds(pairs):
    return sum(p.target == 1.0 for p in pairs), sum(p.target == 0.0 for p in pairs)


@pytest.mark.parametrize(
    "strategy, expected", [("oversampling", (9, 9)), ("undersampling", (6, 6)), ("unique", (9, 6))]
)
def test_strategies_balance_the_pairs(strategy, expected):
    pairs = contrastive_pairs(LABELS, seed=1, strategy=strategy)
    assert kinds(pairs) == expected
    assert all((LABELS[p.first] == LABELS[p.second]) == (p.target == 1.0) for p in pairs)
    assert pairs[0].target == 1.0 and pairs[1].target == 0.0  # interleaved, as SetFit yields them


def test_pairs_are_seeded():
    assert contrastive_pairs(LABELS, seed=3) == contrastive_pairs(LABELS, seed=3)
    assert contrastive_pairs(LABELS, seed=3) != contrastive_pairs(LABELS, seed=4)
    unique = {(p.first, p.second) for p in contrastive_pairs(LABELS, strategy="unique")}
    assert len(unique) == 15 and (0, 0) in unique  # every pair once, a text with itself too


def test_bad_pair_settings():
    with pytest.raises(InputError, match="Unknown pair strategy 'random'. Valid: oversampling"):
        contrastive_pairs(LABELS, strategy="random")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="at least two labels"):
        contrastive_pairs(["a", "a"])
