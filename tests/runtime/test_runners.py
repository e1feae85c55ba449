"""Runner options that travel in the EngineSpec: ONNX Runtime's spinning off for servers."""

from __future__ import annotations

import numpy as np

from st_multitask import embed, load
from st_multitask.runtime import EngineSpec

TEXTS = ["The film was a joy.", "Apple is buying a U.K. startup for $1 billion."]


def test_onnx_spin_off_sets_the_session_options_and_changes_no_vector():
    spinning = load(backend=EngineSpec("onnx", "fp32", threads=1))
    quiet = load(backend=EngineSpec("onnx", "fp32", threads=1, spin=False))
    options = quiet.runner._session.get_session_options()  # type: ignore[attr-defined]
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert options.get_session_config_entry("session.inter_op.allow_spinning") == "0"
    assert spinning.spec.describe() == "onnx fp32, 1 thread"
    assert quiet.spec.describe() == "onnx fp32, 1 thread, no spinning"
    np.testing.assert_allclose(embed(TEXTS, model=quiet), embed(TEXTS, model=spinning), atol=1e-6)
