"""Every route of ``stmt serve`` meets requests generated from the app's own ``/openapi.json``.

Schemathesis calls the app in-process (ASGI), with the bundled default model loaded once: no
response may be a 5xx, and each response must match the schema documented for its status code.
Bounded in examples: a few per route in CI, more with ``HYPOTHESIS_PROFILE=thorough``.
"""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance


def _routes() -> list[tuple[str, str]]:
    """(METHOD, path) of every documented route; building the app loads no model."""
    from st_multitask.serve import create_app

    paths = create_app(None).openapi()["paths"]
    return [(method.upper(), path) for path, methods in paths.items() for method in methods]


@pytest.fixture(scope="module")
def api_schema():
    """The app over the bundled model, without an index: /search answers 404. (With an index the
    calls fail with 503: schemathesis' ASGI calls run the app's lifespan more than once, and the
    second startup finds the index thread pool that the first shutdown closed.)"""
    from st_multitask import MultiTaskModel
    from st_multitask.serve import ServeSettings, create_app

    app = create_app(MultiTaskModel.default(), ServeSettings())
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def _examples() -> int:
    return 200 if settings.get_current_profile_name() == "thorough" else 8


@pytest.fixture(scope="module")
def statuses():
    """Status codes by route; with STMT_FUZZ_SUMMARY=DIR written to DIR/server-statuses.json."""
    seen: dict[str, Counter[int]] = defaultdict(Counter)
    yield seen
    if os.environ.get("STMT_FUZZ_SUMMARY"):
        path = Path(os.environ["STMT_FUZZ_SUMMARY"]) / "server-statuses.json"
        path.write_text(json.dumps(seen, indent=2, sort_keys=True) + "\n", encoding="utf-8")


@pytest.mark.parametrize(("method", "path"), _routes())
def test_route(api_schema, statuses, method, path):
    operation = api_schema[path][method]

    @given(case=operation.as_strategy())
    @settings(max_examples=_examples(), suppress_health_check=list(HealthCheck))
    def call(case):
        response = case.call_and_validate(checks=[not_a_server_error, response_schema_conformance])
        statuses[f"{method} {path}"][response.status_code] += 1

    call()
