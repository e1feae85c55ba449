"""Every error the server answers, as JSON: OpenAI's shape under ``/v1/``, ``{"error", "error_type"}``
elsewhere. Library errors become 4xx, validation errors keep their field names, and a 500 (a real
fault) is logged with its request id; never an HTML page or a traceback.

    >>> error_body("/v1/embeddings", "Input is empty.", "invalid_request_error", param="input")
    {'error': {'message': 'Input is empty.', 'type': 'invalid_request_error', 'param': 'input', 'code': None}}
    >>> error_body("/embed", "Input is empty.", "invalid_request_error")
    {'error': 'Input is empty.', 'error_type': 'invalid_request_error'}
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import InputError, StMultitaskError

__all__ = ["APIError", "error_body", "error_response", "install_error_handlers", "server_fault"]

logger = logging.getLogger("st_multitask.serve")

# error types, as OpenAI names them
INVALID = "invalid_request_error"
AUTH = "authentication_error"
RATE = "rate_limit_error"
NOT_FOUND = "not_found_error"
OVERLOADED = "overloaded_error"
SERVER = "server_error"
_STATUS_TYPES = {400: INVALID, 401: AUTH, 404: NOT_FOUND, 405: INVALID, 413: INVALID, 422: INVALID, 429: RATE}


class APIError(Exception):
    """An answer other than 200, raised by a route: status, message, OpenAI type, param and code."""

    def __init__(
        self,
        status: int,
        message: str,
        type: str = INVALID,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status, self.message, self.type = status, message, type
        self.param, self.code, self.headers = param, code, headers or {}


def error_body(
    path: str, message: str, type: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """The JSON of an error on ``path``: OpenAI's shape under ``/v1/``, the plain one elsewhere."""
    if path.startswith("/v1/"):
        return {"error": {"message": message, "type": type, "param": param, "code": code}}
    body: dict[str, Any] = {"error": message, "error_type": type}
    if param is not None:
        body["param"] = param
    return body


def error_response(
    path: str,
    status: int,
    message: str,
    type: str | None = None,
    param: str | None = None,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    kind = type or _STATUS_TYPES.get(status, INVALID if status < 500 else SERVER)
    return JSONResponse(error_body(path, message, kind, param, code), status_code=status, headers=headers)


# pydantic puts the member of a union it tried into the location ("input", "list[str]", 0)
_UNION_MEMBER = re.compile(r"^(str|int|float|bool|none|list\[.*\]|dict\[.*\]|function-.*)$")


def _field(loc: tuple | list) -> str:
    """``("body", "input", "list[str]", 2)`` -> ``"input[2]"``: the field as the client wrote it."""
    parts = [
        p
        for p in loc
        if p not in ("body", "query", "path", "header")
        and not (isinstance(p, str) and _UNION_MEMBER.match(p))
    ]
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "body"


def _validation_response(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        detail = next(e for e in errors if e.get("type") == "json_invalid")
        reason = (detail.get("ctx") or {}).get("error", "")
        return error_response(request.url.path, 400, f"The request body is not valid JSON ({reason}).")

    # of a union's alternatives (a text, or a list of texts) keep the deepest: "input[1]: not a string"
    def top(e: dict) -> Any:
        return tuple(e.get("loc", ()))[:2]

    depth: dict[Any, int] = {}
    for e in errors:
        depth[top(e)] = max(depth.get(top(e), 0), len(e.get("loc", ())))
    errors = [e for e in errors if len(e.get("loc", ())) == depth[top(e)]]
    messages: list[str] = []
    for e in errors:
        message = f"{_field(e.get('loc', ()))}: {e.get('msg', 'invalid')}"
        if message not in messages:
            messages.append(message)
    more = f" (and {len(messages) - 5} more)" if len(messages) > 5 else ""
    first = _field(errors[0].get("loc", ())) if errors else None
    return error_response(request.url.path, 422, "; ".join(messages[:5]) + more, param=first)


def install_error_handlers(app: FastAPI) -> None:
    """Library errors -> 4xx, validation -> 422 (malformed JSON 400), HTTP errors keep their
    status. Anything else is a real fault: :class:`~st_multitask.serve.middleware.ServeMiddleware`
    logs it with the request id and answers 500 (:func:`server_fault`)."""

    @app.exception_handler(APIError)
    async def api_error(request: Request, exc: APIError) -> JSONResponse:
        return error_response(
            request.url.path, exc.status, exc.message, exc.type, exc.param, exc.code, exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _validation_response(request, exc)

    @app.exception_handler(StMultitaskError)
    async def library_error(request: Request, exc: StMultitaskError) -> JSONResponse:
        status = 422 if isinstance(exc, InputError) else 400
        return error_response(request.url.path, status, str(exc), code=type(exc).__name__)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = f"No route {request.method} {request.url.path}; GET /docs lists the routes."
        return error_response(request.url.path, exc.status_code, message, headers=exc.headers)


def server_fault(path: str, request_id: str, exc: BaseException) -> JSONResponse:
    """The 500 of a real fault, logged with its request id and traceback (the client gets neither)."""
    logger.error("request %s failed: %r", request_id, exc, exc_info=exc)
    return error_response(
        path, 500, f"Internal server error (request id {request_id}); the server log has the details.", SERVER
    )
