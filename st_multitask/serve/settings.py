"""ServeSettings: what ``stmt serve`` and :func:`~st_multitask.serve.create_app` are told (model, engine,
limits, auth, CORS), checked once when the app is made.

    >>> settings = ServeSettings(max_client_batch=64)
    >>> settings.max_client_batch, settings.host
    (64, '127.0.0.1')
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..errors import InputError
from ..runtime import EngineSpec, resolve_engine

__all__ = ["DEFAULT_SERVED_NAME", "ServeSettings"]

DEFAULT_SERVED_NAME = "st-multitask-default"


@dataclass
class ServeSettings:
    """Everything the server is configured by; every limit has a sane default."""

    model: str | None = None  # a model directory saved by st_multitask; None: the bundled default model
    index: str | None = None  # an index directory (stmt index build): /search is on with one
    backend: str = "auto"  # auto, torch, onnx, openvino (as --backend everywhere else)
    precision: str = "fp32"  # fp32, bf16, int8
    device: str | None = None  # cpu, cuda, ...; None picks as the library does
    threads: int | None = None  # the runtime's threads; None: one a core this process may run on
    # the runtime's idle threads busy-wait (ONNX Runtime's allow_spinning). Off: spinning threads
    # take the CPU the event loop needs to queue requests (benchmarks/serve_bench.py --server-args=--spin)
    spin: bool = False
    host: str = "127.0.0.1"  # where stmt serve listens; 0.0.0.0 has to be asked for
    port: int = 8080
    api_key: str | None = None  # with it, every route but /health needs "Authorization: Bearer KEY"
    served_model_name: str | None = None  # the name /v1/models lists and /v1/embeddings accepts
    max_client_batch: int = 512  # texts in one request
    max_queue: int = 4096  # texts waiting for the model; past it a request gets 429
    max_body_bytes: int = 4 * 1024 * 1024  # request body; past it 413
    max_batch_tokens: int = 16384  # tokens (with special tokens) in one merged model call
    # how long the oldest waiting text waits for company before a model call. 0: benchmarks/serve_bench.py
    # found the same mean batch sizes for windows of 0, 2, 5 and 10 ms (at concurrency 8 and 64 the
    # queue refills while the model runs), and a window only delays a lone request by its length
    batch_window_ms: float = 0.0
    forward_batch_size: int = 64  # texts per backbone forward pass inside one model call
    retry_after_s: int = 1  # the Retry-After of a 429
    # how long an idle keep-alive connection stays open. uvicorn's default of 5 s equals the idle
    # expiry of client pools such as httpx's: a client reusing a connection as the server closes it
    # loses that request ("connection closed without a response"). Longer than the clients', they
    # close first (nginx's default is 75 s)
    keep_alive_s: int = 75
    cors_allow_origins: list[str] = field(default_factory=list)  # CORS is off unless origins are given

    def __post_init__(self) -> None:
        for name in (
            "max_client_batch",
            "max_queue",
            "max_body_bytes",
            "max_batch_tokens",
            "forward_batch_size",
            "retry_after_s",
            "keep_alive_s",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{name} must be a positive integer, got {value!r}.")
        if self.max_queue < self.max_client_batch:
            raise InputError(
                f"max_queue ({self.max_queue}) must be at least max_client_batch ({self.max_client_batch}): "
                "otherwise a full-sized request could never be queued."
            )
        if not 0 <= float(self.batch_window_ms) <= 1000:
            raise InputError(f"batch_window_ms must be between 0 and 1000, got {self.batch_window_ms!r}.")
        if self.threads is not None and (
            isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1
        ):
            raise InputError(f"threads must be a positive integer or None, got {self.threads!r}.")
        if self.api_key is not None and not self.api_key.strip():
            raise InputError("api_key is blank; give a key or leave it out.")

    def engine(self) -> EngineSpec:
        """The engine the server loads its model on: ``backend``/``precision``/``device`` resolved
        as everywhere else, with ``threads`` (default: the cores this process may use) and ``spin``."""
        threads = self.threads if self.threads is not None else len(os.sched_getaffinity(0))
        spec = resolve_engine(self.backend, self.precision, self.device, threads)
        return replace(spec, spin=self.spin)

    @property
    def model_name(self) -> str:
        """The served name: ``served_model_name``, else the model directory's name."""
        if self.served_model_name:
            return self.served_model_name
        if self.model is None:
            return DEFAULT_SERVED_NAME
        return Path(os.fspath(self.model)).expanduser().resolve().name or DEFAULT_SERVED_NAME
