"""``stmt serve``: the HTTP server (st_multitask.serve on uvicorn), until SIGTERM or Ctrl-C."""

from __future__ import annotations

from typing import Any

import click

from ._common import UserError, backend_options, multitask_model_option, note


@click.command()
@multitask_model_option
@click.option(
    "--index",
    "index_dir",
    type=click.Path(exists=True, file_okay=False),
    help="An index directory (stmt index build): turns on POST /search.",
)
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to listen on; 0.0.0.0: every interface."
)
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@backend_options
@click.option("--device", envvar="STMT_DEVICE", show_envvar=True, help="cpu, cuda, cuda:N, mps.")
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    help="The runtime's threads [default: the cores this process may run on].",
)
@click.option(
    "--spin/--no-spin",
    default=False,
    show_default=True,
    help="Let ONNX Runtime's idle threads busy-wait (off: they leave the event loop its core).",
)
@click.option(
    "--api-key",
    envvar="STMT_API_KEY",
    show_envvar=True,
    help="Require 'Authorization: Bearer KEY' on every route but /health.",
)
@click.option(
    "--served-model-name", help="The model name of /v1/models and /v1/embeddings [default: the directory's]."
)
@click.option(
    "--max-client-batch", type=click.IntRange(min=1), default=512, show_default=True, help="Texts a request."
)
@click.option(
    "--max-queue",
    type=click.IntRange(min=1),
    default=4096,
    show_default=True,
    help="Texts waiting; past it 429.",
)
@click.option(
    "--max-body-bytes",
    type=click.IntRange(min=1),
    default=4 * 1024 * 1024,
    show_default=True,
    help="Past it 413.",
)
@click.option(
    "--max-batch-tokens",
    type=click.IntRange(min=1),
    default=16384,
    show_default=True,
    help="Tokens of merged requests in one model call.",
)
@click.option(
    "--batch-window-ms",
    type=click.FloatRange(0, 1000),
    default=0.0,
    show_default=True,
    help="How long the first waiting text waits for others before a model call (measured: no larger "
    "batches at 2-10 ms; see docs/serving.md).",
)
@click.option(
    "--keep-alive-s",
    type=click.IntRange(min=1),
    default=75,
    show_default=True,
    help="How long an idle keep-alive connection stays open (longer than clients' pools keep theirs).",
)
@click.option(
    "--cors-allow-origin",
    "cors_origins",
    multiple=True,
    help="Allow browser calls from this origin (repeat for several; '*' for any). CORS is off without it.",
)
@click.option(
    "--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info", show_default=True
)
def serve(
    model_dir: str | None,
    index_dir: str | None,
    host: str,
    port: int,
    backend: str,
    precision: str,
    device: str | None,
    threads: int | None,
    spin: bool,
    api_key: str | None,
    served_model_name: str | None,
    max_client_batch: int,
    max_queue: int,
    max_body_bytes: int,
    max_batch_tokens: int,
    batch_window_ms: float,
    keep_alive_s: int,
    cors_origins: tuple[str, ...],
    log_level: str,
) -> None:
    """Serve embeddings, every head of a multi-task model, similarity and search over HTTP.

    Routes: POST /v1/embeddings (OpenAI), /embed, /predict, /similarity, /search (with --index),
    /tokenize; GET /health, /info, /metrics, /v1/models, /docs. SIGTERM finishes the requests in
    flight, then exits 0.

    \b
    Examples:
      stmt serve
      stmt serve --model my-model --index faq-index --port 9000
      STMT_API_KEY=secret stmt serve --host 0.0.0.0
      curl -s localhost:8080/predict -H 'content-type: application/json' \\
           -d '{"inputs": ["Apple is buying a U.K. startup"]}'
    """
    import logging
    import signal

    try:
        import uvicorn

        from st_multitask.serve import ServeSettings, create_app
    except ImportError as exc:
        raise UserError(
            f"stmt serve needs its extra ({exc.name} is missing): pip install 'st-multitask[serve]'."
        ) from None
    from ._common import load_pipeline

    settings = ServeSettings(
        model=model_dir,
        index=index_dir,
        backend=backend,
        precision=precision,
        device=device,
        threads=threads,
        spin=spin,
        host=host,
        port=port,
        api_key=api_key,
        served_model_name=served_model_name,
        max_client_batch=max_client_batch,
        max_queue=max_queue,
        max_body_bytes=max_body_bytes,
        max_batch_tokens=max_batch_tokens,
        batch_window_ms=batch_window_ms,
        keep_alive_s=keep_alive_s,
        cors_allow_origins=list(cors_origins),
    )
    engine = settings.engine()  # a wrong engine is an error now, not after startup
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("st_multitask.embedding").setLevel(logging.ERROR)  # responses report truncation
    logging.getLogger("st_multitask.serve").setLevel(log_level.upper())  # loading quiets st_multitask
    if host not in ("127.0.0.1", "localhost", "::1") and api_key is None:
        note(f"listening on {host} without --api-key: anyone who can reach it can use it.")
    app = create_app(lambda: load_pipeline(model_dir, device, engine, precision), settings)
    server = _server(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level=log_level,
            access_log=False,
            lifespan="on",
            timeout_keep_alive=keep_alive_s,
        )
    )
    # uvicorn re-raises SIGTERM once it has shut down gracefully; a handler of our own makes that exit 0
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    server.run()
    failure = app.state.serve.error
    if failure is not None:
        raise UserError(f"could not load the model: {failure}")


def _server(config: Any) -> Any:
    """uvicorn's Server, which also stops when the model fails to load."""
    import uvicorn

    class Server(uvicorn.Server):
        async def on_tick(self, counter: int) -> bool:
            if config.app.state.serve.status == "failed":
                return True
            return await super().on_tick(counter)

    return Server(config)
