"""ServeSettings: the engine the server loads (its threads, spinning off) and the limits' checks."""

from __future__ import annotations

import os

import pytest

from st_multitask.errors import InputError
from st_multitask.serve import ServeSettings


def test_the_served_engine_has_a_thread_a_usable_core_and_no_spinning():
    spec = ServeSettings(backend="onnx").engine()
    assert (spec.backend, spec.precision, spec.spin) == ("onnx", "fp32", False)
    assert spec.threads == len(os.sched_getaffinity(0))
    assert ServeSettings(backend="onnx", threads=3, spin=True).engine().threads == 3
    assert ServeSettings(backend="onnx", spin=True).engine().spin


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("threads", 0, "threads must be a positive integer or None, got 0."),
        ("keep_alive_s", 0, "keep_alive_s must be a positive integer, got 0."),
        ("max_queue", 8, "max_queue (8) must be at least max_client_batch (512)"),
    ],
)
def test_bad_settings_name_the_field(field, value, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ServeSettings(**{field: value})
