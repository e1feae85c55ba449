"""Hypothesis settings for the fuzz tests, and where Hypothesis may write.

Profiles (pick one with ``HYPOTHESIS_PROFILE``; CI sets ``CI=true`` and gets ``ci``):

- ``ci``: few examples, derandomized, so the suite stays fast and a CI run is repeatable;
- ``dev`` (the default elsewhere): a few more, random each run;
- ``thorough``: 2,000 examples per reader test (``HYPOTHESIS_PROFILE=thorough pytest tests/fuzz``).

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
settings.register_profile("dev", max_examples=60, **_COMMON)
settings.register_profile("thorough", max_examples=2000, **_COMMON)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI", "").lower() == "true" else "dev")
)
