"""The steps every text route shares: the request's texts checked, tokenised once, queued for the
model, and the answer shaped and written."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from fastapi import Request
from fastapi.responses import Response

from ..runtime.tokenizer import Encoded
from ..vectors import unit_rows
from .batching import QueueFull
from .errors import RATE, APIError
from .state import ServerState

__all__ = [
    "measure",
    "queue_full",
    "ready",
    "reply",
    "run",
    "shape",
    "state_of",
    "texts_of",
    "truncated_header",
]


def state_of(request: Request) -> ServerState:
    return request.app.state.serve


def ready(request: Request) -> ServerState:
    state = state_of(request)
    state.ready()
    return state


# -- shared steps of the text routes ----------------------------------------------------------
def texts_of(value: str | list[str], field: str, state: ServerState, queued: bool = True) -> list[str]:
    """The request's texts, checked: not empty, within --max-client-batch, none blank, and (for
    what goes to the model) room in the queue, checked before any tokenizing so a 429 is cheap."""
    texts = [value] if isinstance(value, str) else list(value)
    if not texts:
        raise APIError(422, f"{field} is empty: send at least one text.", param=field)
    limit = state.settings.max_client_batch
    if len(texts) > limit:
        raise APIError(
            422,
            f"{field} has {len(texts)} texts; this server takes at most {limit} a request (--max-client-batch).",
            param=field,
            code="too_many_inputs",
        )
    for i, text in enumerate(texts):
        if not text.strip():
            raise APIError(422, f"{field}[{i}] is blank; send text to embed.", param=f"{field}[{i}]")
    if queued and state.batcher is not None and not state.batcher.has_room(len(texts)):
        queue_full(
            state, QueueFull(f"The queue is full ({state.batcher.queued} texts waiting); retry shortly.")
        )
    return texts


def queue_full(state: ServerState, exc: QueueFull) -> None:
    state.metrics.rejected.inc()
    retry = str(state.settings.retry_after_s)
    raise APIError(429, str(exc), RATE, code="queue_full", headers={"Retry-After": retry}) from None


def measure(
    request: Request, state: ServerState, texts: list[str], field: str, truncate: bool = True
) -> tuple[Encoded, list[int]]:
    """The texts tokenised once (what the queue holds, and what ``usage`` counts), and the
    indices of those past the window (422 unless ``truncate``)."""
    encoded = state.model.tokenize(texts)
    over = encoded.over_window()
    if over and not truncate:
        i = over[0]
        raise APIError(
            422,
            f"{field}[{i}] has {encoded.lengths[i]} tokens, more than the model window of "
            f"{encoded.window}; shorten it or send truncate: true.",
            param=f"{field}[{i}]",
            code="input_too_long",
        )
    request.state.texts, request.state.tokens = len(texts), sum(encoded.cost())
    return encoded, over


async def run(state: ServerState, encoded: Encoded, tasks: Any = (), min_score: float | None = None) -> Any:
    assert state.batcher is not None
    try:
        return await state.batcher.submit(encoded, encoded.cost(), tasks, min_score)
    except QueueFull as exc:
        queue_full(state, exc)


def shape(vectors: np.ndarray, normalize: bool, dimensions: int | None, dim: int, param: str) -> np.ndarray:
    """Truncate to ``dimensions`` (then renormalise) and/or normalise."""
    if dimensions is not None:
        if dimensions > dim:
            raise APIError(422, f"dimensions is {dimensions}; this model gives {dim}-d vectors.", param=param)
        vectors = vectors[:, :dimensions]
    return unit_rows(vectors) if normalize else vectors


def reply(content: Any, headers: dict[str, str] | None = None) -> Response:
    """A JSON response; numpy arrays go in as they are. orjson (in the ``serve`` extra) writes a
    64 x 384 float response in about 2 ms where ``json`` takes about 30."""
    try:
        import orjson
    except ImportError:  # the standard library, numpy arrays as lists
        body = json.dumps(content, default=lambda o: o.tolist(), separators=(",", ":")).encode()
    else:
        body = orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)
    return Response(body, media_type="application/json", headers=headers)


def truncated_header(over: list[int]) -> dict[str, str]:
    return {"X-Truncated-Inputs": ",".join(map(str, over))} if over else {}
