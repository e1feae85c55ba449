"""Hypothesis settings for the fuzz tests, and where Hypothesis may write.

Profiles (pick one with ``HYPOTHESIS_PROFILE``):

- ``ci`` (the default, in CI and locally): few examples, derandomized, so the suite is fast and
  every run of it tries the same inputs (a red suite means a change, not a lucky draw);
- ``thorough``: 2,000 random examples per reader test, 30 files per command, 200 requests per
  route (``HYPOTHESIS_PROFILE=thorough pytest tests/fuzz``): the exploring run.

Nothing lands in the repository: no example database, and Hypothesis' own cache (its Unicode
tables) goes to a temporary folder.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis.configuration import set_hypothesis_home_dir

sys.path.insert(0, str(Path(__file__).parent))  # the shared strategies: import fuzz_inputs

_home = tempfile.mkdtemp(prefix="stmt-hypothesis-")
atexit.register(shutil.rmtree, _home, True)
set_hypothesis_home_dir(_home)

_COMMON = {
    "database": None,
    "deadline": None,  # never assert a time
    "print_blob": True,
    "suppress_health_check": [
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
}
settings.register_profile("ci", max_examples=40, derandomize=True, **_COMMON)
settings.register_profile("thorough", max_examples=2000, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
