"""The HTTP API: ``create_app(model, settings)`` returns a FastAPI app serving embeddings (OpenAI's
``/v1/embeddings`` and TEI's ``/embed``), every head (``/predict``), ``/similarity``, ``/search`` (with
an index), ``/tokenize``, ``/health``, ``/info`` and ``/metrics``.

The model loads in the lifespan, in a thread: ``/health`` answers 503 meanwhile and 200 after.
Texts of concurrent requests are merged into model calls by :mod:`~st_multitask.serve.batching`.

    >>> from fastapi.testclient import TestClient
    >>> from st_multitask import MultiTaskModel
    >>> with TestClient(create_app(MultiTaskModel.default())) as client:
    ...     client.post("/predict", json={"inputs": "The film was a joy."}).json()["predictions"][0]["sentiment"]["label"]
    'positive'
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
from fastapi import Depends, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response

from .. import __version__
from ..vectors import unit_rows
from .auth import require_api_key
from .errors import NOT_FOUND, APIError, install_error_handlers
from .metrics import ServeMetrics
from .middleware import ServeMiddleware
from .requests import measure, ready, reply, run, shape, state_of, texts_of, truncated_header
from .schemas import (
    EmbeddingsRequest,
    EmbeddingsResponse,
    EmbedRequest,
    EmbedResponse,
    HealthResponse,
    Info,
    ModelsResponse,
    PredictRequest,
    PredictResponse,
    SearchRequest,
    SearchResponse,
    SimilarityRequest,
    TokenizeRequest,
    TokenizeResponse,
)
from .settings import ServeSettings
from .state import ModelSource, ServerState

__all__ = ["ServerState", "create_app"]

logger = logging.getLogger("st_multitask.serve")


def create_app(model: ModelSource = None, settings: ServeSettings | None = None) -> FastAPI:
    """The ASGI app. ``model``: a loaded multi-task model (the app starts ready), a callable that
    loads one, or ``None`` for ``settings.model`` (default: the bundled model); those two load in
    the lifespan, in a thread, while ``/health`` answers 503."""
    settings = settings or ServeSettings()
    metrics = ServeMetrics()
    state = ServerState(settings, metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loading = asyncio.create_task(state.load(model))
        if hasattr(model, "predict_and_embed"):  # loaded already: ready once warmed up and started
            await loading
        try:
            yield
        finally:
            if not loading.done():
                loading.cancel()
            await asyncio.to_thread(state.close)

    app = FastAPI(
        **_no_native_telemetry(),
        title="st_multitask",
        version=__version__,
        summary="Sentence embeddings, every head of a multi-task model, similarity and search.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    app.state.serve = state
    install_error_handlers(app)
    if settings.cors_allow_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_allow_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(ServeMiddleware, metrics=metrics, max_body_bytes=settings.max_body_bytes)
    auth = [Depends(require_api_key)]

    @app.get("/health", response_model=HealthResponse, tags=["service"])
    async def health() -> JSONResponse:
        """200 once the model is loaded, 503 while it loads (or if it failed). No auth."""
        body = {"status": state.status, "detail": state.error}
        return JSONResponse(body, status_code=200 if state.status == "ok" else 503)

    @app.get("/openapi.json", include_in_schema=False, dependencies=auth)
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False, dependencies=auth)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="st_multitask API")

    @app.get("/metrics", tags=["service"], dependencies=auth, response_class=PlainTextResponse)
    async def prometheus() -> Response:
        """Prometheus text: requests by route and status, latency, batch sizes, queue depth, tokens."""
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    @app.get("/info", response_model=Info, tags=["service"], dependencies=auth)
    async def info(request: Request) -> JSONResponse:
        """Model name, dimension, window, heads and labels, backend, precision, version, limits."""
        state = ready(request)
        m = state.model
        details = m.info()
        heads = {
            name: {"level": h["level"], "kind": h["kind"], "labels": h["labels"], "trained": h["trained"]}
            for name, h in details["heads"].items()
        }
        s = state.settings
        return JSONResponse(
            {
                "model": s.model_name,
                "backbone": details["backbone"]["name"],
                "dimension": m.dim,
                "window_tokens": m.window,
                "max_seq_length": m.max_seq_length,
                "heads": heads,
                "backend": getattr(m, "backend", "torch"),
                "precision": getattr(m, "precision", "fp32"),
                "version": __version__,
                "index": None if state.index is None else {"texts": state.index.count, "path": s.index},
                "limits": {
                    "max_client_batch": s.max_client_batch,
                    "max_queue": s.max_queue,
                    "max_body_bytes": s.max_body_bytes,
                    "max_batch_tokens": s.max_batch_tokens,
                    "batch_window_ms": s.batch_window_ms,
                },
            }
        )

    @app.get("/v1/models", response_model=ModelsResponse, tags=["openai"], dependencies=auth)
    async def models(request: Request) -> JSONResponse:
        """The served model, in OpenAI's list shape."""
        name = state_of(request).settings.model_name
        card = {"id": name, "object": "model", "created": state.started, "owned_by": "st_multitask"}
        return JSONResponse({"object": "list", "data": [card]})

    @app.post(
        "/v1/embeddings",
        response_model=EmbeddingsResponse,
        tags=["openai"],
        dependencies=auth,
        responses={404: {"description": "The model named in the request is not the one served."}},
    )
    async def embeddings(body: EmbeddingsRequest, request: Request) -> Response:
        """OpenAI's embeddings API: float or base64 (little-endian float32), ``dimensions`` truncates
        then renormalises, ``usage`` counts real tokens. Texts past the window are truncated; the
        ``X-Truncated-Inputs`` header lists them."""
        state = ready(request)
        name = state.settings.model_name
        if body.model is not None and body.model != name:
            raise APIError(
                404,
                f"The model {body.model!r} does not exist here; this server serves {name!r} (GET /v1/models).",
                NOT_FOUND,
                param="model",
                code="model_not_found",
            )
        texts = texts_of(body.input, "input", state)
        encoded, over = measure(request, state, texts, "input")
        result = await run(state, encoded)
        vectors = shape(result.vectors, True, body.dimensions, state.model.dim, "dimensions")
        if body.encoding_format == "base64":
            values: list[Any] = [
                base64.b64encode(np.ascontiguousarray(row, dtype="<f4").tobytes()).decode() for row in vectors
            ]
        else:
            values = list(np.ascontiguousarray(vectors, dtype=np.float32))
        data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(values)]
        tokens = sum(encoded.cost())
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        return reply({"object": "list", "data": data, "model": name, "usage": usage}, truncated_header(over))

    @app.post("/embed", response_model=EmbedResponse, tags=["embeddings"], dependencies=auth)
    async def embed_route(body: EmbedRequest, request: Request) -> Response:
        """Embeddings, TEI-style: ``normalize``, ``truncate`` (false: a text past the window is a
        422 naming it) and ``dimensions``; ``truncated`` lists the texts cut at the window."""
        state = ready(request)
        texts = texts_of(body.inputs, "inputs", state)
        encoded, over = measure(request, state, texts, "inputs", body.truncate)
        result = await run(state, encoded)
        vectors = shape(result.vectors, body.normalize, body.dimensions, state.model.dim, "dimensions")
        return reply(
            {
                "embeddings": np.ascontiguousarray(vectors, dtype=np.float32),
                "dimensions": int(vectors.shape[1]),
                "truncated": over,
                "usage": {"texts": len(texts), "tokens": sum(encoded.cost())},
            },
            truncated_header(over),
        )

    @app.post("/predict", response_model=PredictResponse, tags=["heads"], dependencies=auth)
    async def predict(body: PredictRequest, request: Request) -> Response:
        """Every head (or ``tasks``) on each text: what ``MultiTaskModel.predict`` returns (labels,
        scores, probabilities; entities with character offsets). One backbone pass serves them all."""
        state = ready(request)
        tasks = list(state.model.select([] if body.tasks is None and body.labels is not None else body.tasks))
        zero_shot = (
            await asyncio.to_thread(state.model.zero_shot, body.labels) if body.labels is not None else None
        )
        texts = texts_of(body.inputs, "inputs", state)
        encoded, over = measure(request, state, texts, "inputs", body.truncate)
        result = await run(state, encoded, tasks, body.min_score)
        predictions = result.predictions or [{} for _ in texts]
        for answer, row in zip(
            zero_shot.predict(result.vectors, body.min_score) if zero_shot else [], predictions
        ):
            row["zero_shot"] = answer
        return reply(
            {
                "predictions": predictions,
                "truncated": over,
                "usage": {"texts": len(texts), "tokens": sum(encoded.cost())},
            },
            truncated_header(over),
        )

    @app.post("/tokenize", response_model=TokenizeResponse, tags=["embeddings"], dependencies=auth)
    async def tokenize(body: TokenizeRequest, request: Request) -> JSONResponse:
        """The word pieces the model reads, with character offsets into each text."""
        state = ready(request)
        texts = texts_of(body.inputs, "inputs", state, queued=False)
        encoded = state.model.tokenize(texts)
        request.state.texts, request.state.tokens = len(texts), sum(encoded.cost())
        return JSONResponse(
            {
                "tokens": state.model.tokenizer.pieces(encoded),
                "lengths": encoded.lengths,
                "window": encoded.window,
                "truncated": encoded.over_window(),
            }
        )

    @app.post("/similarity", tags=["similarity"], dependencies=auth)
    async def similarity(body: SimilarityRequest, request: Request) -> JSONResponse:
        """Cosine similarity of texts ``a`` with texts ``b``, as ``stmt similarity --format json``:
        ``best`` (each a with its ``top_k`` closest b), ``pairwise`` (a[i] with b[i]), ``matrix``."""
        from ..similarity import similarity_records

        state = ready(request)
        if body.mode == "pairwise" and len(body.a) != len(body.b):
            raise APIError(
                422,
                f"pairwise needs as many texts in a as in b: got {len(body.a)} and {len(body.b)}.",
                param="b",
            )
        a, b = texts_of(body.a, "a", state), texts_of(body.b, "b", state)
        encoded, _ = measure(request, state, a + b, "a+b")
        vectors = (await run(state, encoded)).vectors
        records = similarity_records(
            a, b, body.mode, body.top_k, embeddings_a=vectors[: len(a)], embeddings_b=vectors[len(a) :]
        )
        return JSONResponse(records)

    @app.post(
        "/search",
        response_model=SearchResponse,
        tags=["similarity"],
        dependencies=auth,
        responses={404: {"description": "The server runs without an index: start it with --index DIR."}},
    )
    async def search(body: SearchRequest, request: Request) -> JSONResponse:
        """The ``top_k`` texts of the index closest to each query (needs ``stmt serve --index DIR``)."""
        state = ready(request)
        if state.index is None:
            raise APIError(
                404,
                "This server has no index, so /search is off. Build one with `stmt index build` and start "
                "the server with `stmt serve --index DIR`.",
                NOT_FOUND,
                code="no_index",
            )
        queries = texts_of(body.queries, "queries", state)
        encoded, _ = measure(request, state, queries, "queries")
        vectors = unit_rows((await run(state, encoded)).vectors)
        loop = asyncio.get_running_loop()
        results = await loop.run_in_executor(state.index_thread, state.index.search, vectors, body.top_k)
        return JSONResponse(
            {
                "results": [
                    [
                        {
                            "text": h["text"],
                            "line": h["line"],
                            "score": h["score"],
                            "source": h["source"],
                            "ids": h.get("ids", {}),
                        }
                        for h in row
                    ]
                    for row in results
                ]
            }
        )

    return app


def _no_native_telemetry() -> dict[str, Any]:
    """FastAPI's native OpenTelemetry off (FastAPI versions that have it): asking whether a tracer is
    configured read the environment on every request, the largest single cost of the event loop in a
    py-spy profile under load. ``/metrics`` and the access log stay."""
    import inspect

    if "telemetry" not in inspect.signature(FastAPI.__init__).parameters:
        return {}
    return {"telemetry": {"tracing": False, "metrics": False, "logs": False}}
