"""The server's state: the settings, the model (loaded in the lifespan, in a thread, then warmed
up), its batcher, the index, and whether it is ready."""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .batching import Batcher, model_runner
from .errors import OVERLOADED, APIError
from .metrics import ServeMetrics
from .settings import ServeSettings

__all__ = ["ModelSource", "ServerState"]

logger = logging.getLogger("st_multitask.serve")

ModelSource = Any  # a loaded multi-task model, a zero-argument callable that loads one, or None


class ServerState:
    """What the routes share: the settings, the model once loaded, its batcher, the index."""

    def __init__(self, settings: ServeSettings, metrics: ServeMetrics):
        self.settings = settings
        self.metrics = metrics
        self.status = "loading"
        self.error: str | None = None
        self.model: Any = None
        self.batcher: Batcher | None = None
        self.index: Any = None
        self.index_thread = ThreadPoolExecutor(1, thread_name_prefix="stmt-index")  # sqlite: one thread
        self.started = int(time.time())

    def _default_model(self) -> Any:
        from ..loader import load

        return load(self.settings.model, backend=self.settings.engine())

    def _load_index(self, path: str) -> Any:
        from ..index import Index

        index = Index.load(path)
        return index.use_model(self.model)

    async def load(self, source: ModelSource) -> None:
        """Load the model (and index), warm it up, start the batcher; on failure keep the reason."""
        try:
            if source is None:
                model = await asyncio.to_thread(self._default_model)
            elif callable(source) and not hasattr(source, "predict_and_embed"):
                model = await asyncio.to_thread(source)
            else:
                model = source
            if not hasattr(model, "tokenize"):  # a MultiTaskModel: served through its torch pipeline
                model = model.pipeline()
            self.model = model
            if self.settings.index is not None:
                loop = asyncio.get_running_loop()
                self.index = await loop.run_in_executor(
                    self.index_thread, self._load_index, self.settings.index
                )
            run = model_runner(model, self.settings.forward_batch_size)
            await asyncio.to_thread(run, ["warm up"], tuple(model.heads), None)  # first-call costs
            self.batcher = Batcher(
                run,
                self.settings.max_batch_tokens,
                self.settings.max_queue,
                self.settings.batch_window_ms / 1000,
                self.metrics,
                pass_size=self.settings.forward_batch_size,
            )
            self.batcher.start()
            self.status = "ok"
            logger.info("model loaded: %s; serving as %r", _describe(model), self.settings.model_name)
        except Exception as exc:
            self.status, self.error = "failed", str(exc) or type(exc).__name__
            logger.error("could not load the model: %s", self.error, exc_info=not _is_user_error(exc))

    def close(self) -> None:
        if self.batcher is not None:
            self.batcher.stop()
        self.index_thread.shutdown(wait=True)

    def ready(self) -> None:
        """Refuse with 503 unless the model is loaded."""
        if self.status == "ok":
            return
        if self.status == "failed":
            raise APIError(503, f"The model failed to load: {self.error}", OVERLOADED, code="model_failed")
        raise APIError(
            503,
            "The model is still loading; retry when GET /health answers 200.",
            OVERLOADED,
            code="model_loading",
            headers={"Retry-After": "1"},
        )


def _is_user_error(exc: Exception) -> bool:
    from ..errors import StMultitaskError

    return isinstance(exc, StMultitaskError)


def _describe(model: Any) -> str:
    backend = getattr(model, "backend", "torch")
    precision = getattr(model, "precision", "fp32")
    return f"{type(model).__name__} with heads {', '.join(model.heads) or 'none'} on {backend} ({precision})"
