"""ServeMiddleware: what every request goes through, as one ASGI layer: a request id, the body-size
limit (413), the fault catcher (500 with the id, logged), metrics, and one access-log line.

The access line: ``request <id> <METHOD> <route> <status> texts=<n> tokens=<n> <ms>ms``; routes set
``request.state.texts`` / ``request.state.tokens`` for it.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import MutableMapping
from typing import Any

from .errors import error_response, server_fault
from .metrics import ServeMetrics

__all__ = ["ServeMiddleware"]

access_log = logging.getLogger("st_multitask.serve.access")


class _BodyTooLarge(Exception):
    pass


class ServeMiddleware:
    """Wraps the app: ``ServeMiddleware(app, metrics=..., max_body_bytes=...)``."""

    def __init__(self, app: Any, metrics: ServeMetrics, max_body_bytes: int):
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        given = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if given and len(given) <= 64 and given.isprintable() else uuid.uuid4().hex[:16]
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        path = scope.get("path", "")
        status = 500
        started = False
        limit = self.max_body_bytes

        async def send_with_id(message: MutableMapping[str, Any]) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
                message = {
                    **message,
                    "headers": [*message.get("headers", []), (b"x-request-id", request_id.encode())],
                }
            await send(message)

        try:
            body = await _read_body(scope, receive, limit)
        except _BodyTooLarge:
            response = error_response(
                path, 413, f"The request body is larger than the limit of {limit} bytes (--max-body-bytes)."
            )
            await response(scope, receive, send_with_id)
            self._record(scope, state, request_id, path, 413, start)
            return
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        try:
            await self.app(scope, replay, send_with_id)
        except Exception as exc:  # a real fault: logged with the id; the client gets JSON, no traceback
            if not started:
                await server_fault(path, request_id, exc)(scope, receive, send_with_id)
            else:
                raise
        finally:
            self._record(scope, state, request_id, path, status, start)

    def _record(
        self, scope: dict, state: dict, request_id: str, path: str, status: int, start: float
    ) -> None:
        elapsed = time.perf_counter() - start
        route = scope.get("route")
        name = getattr(route, "path", None) or "unmatched"
        self.metrics.requests.labels(route=name, status=str(status)).inc()
        self.metrics.latency.labels(route=name).observe(elapsed)
        access_log.info(
            "request %s %s %s %d texts=%d tokens=%d %.1fms",
            request_id,
            scope.get("method", "-"),
            path,
            status,
            state.get("texts", 0),
            state.get("tokens", 0),
            elapsed * 1000,
        )


async def _read_body(scope: dict, receive: Any, limit: int) -> bytes:
    """The whole request body, refused as soon as it passes ``limit`` bytes (declared or sent)."""
    length = dict(scope.get("headers") or []).get(b"content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise _BodyTooLarge
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client left
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)
