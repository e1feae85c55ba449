"""API-key auth as a FastAPI dependency: ``Authorization: Bearer KEY``, compared in constant time.

Every route but ``/health`` depends on :func:`require_api_key`; without a key configured it lets
everything through.
"""

from __future__ import annotations

import hmac

from fastapi import Request

from .errors import AUTH, APIError

__all__ = ["require_api_key"]


async def require_api_key(request: Request) -> None:
    """Refuse with 401 (and ``WWW-Authenticate: Bearer``) unless the request carries the key."""
    key: str | None = request.app.state.settings.api_key
    if key is None:
        return
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), key.encode()):
        raise APIError(
            401,
            "Missing or wrong API key: send 'Authorization: Bearer <key>'."
            if header
            else "This server needs an API key: send 'Authorization: Bearer <key>'.",
            AUTH,
            code="invalid_api_key",
            headers={"WWW-Authenticate": 'Bearer realm="stmt"'},
        )
