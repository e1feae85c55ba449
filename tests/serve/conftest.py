"""Fixtures of the server tests: the bundled default model in torch (loaded once), in-process apps,
and real ``stmt serve`` processes on 127.0.0.1 and a free port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def default_model():
    """The bundled default model (topic, sentiment, NER) in torch."""
    from st_multitask import MultiTaskModel

    return MultiTaskModel.default()


@pytest.fixture
def make_client(default_model):
    """make_client(**settings) -> a TestClient of an app over the loaded default model."""
    from fastapi.testclient import TestClient

    from st_multitask.serve import ServeSettings, create_app

    clients = []

    def make(model=None, **settings):
        client = TestClient(create_app(model or default_model, ServeSettings(**settings)))
        client.__enter__()
        clients.append(client)
        deadline = time.monotonic() + 60
        while client.get("/health").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.01)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def _close(got, want) -> bool:
    if isinstance(want, dict):
        return (
            isinstance(got, dict) and got.keys() == want.keys() and all(_close(got[k], want[k]) for k in want)
        )
    if isinstance(want, list):
        return (
            isinstance(got, list) and len(got) == len(want) and all(_close(g, w) for g, w in zip(got, want))
        )
    if isinstance(want, float):
        return abs(got - want) <= 1e-5
    return got == want


@pytest.fixture(scope="session")
def same_predictions():
    """same_predictions(got, want): equal labels and entities, numbers within 1e-5 (what JSON and
    a batch of other texts may change)."""
    return _close


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def port() -> int:
    """A free TCP port on 127.0.0.1."""
    return free_port()


@dataclass
class Server:
    """A running ``stmt serve``: its base URL, process and log file."""

    url: str
    process: subprocess.Popen
    log: Path

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout)


def start_server(log: Path, *args: str) -> Server:
    """``stmt serve --backend torch ARGS`` on a free port; returns once /health says 200."""
    import httpx

    port = free_port()
    command = [
        sys.executable,
        "-m",
        "st_multitask",
        "serve",
        "--backend",
        "torch",
        "--port",
        str(port),
        *args,
    ]
    env = {**os.environ, "STMT_API_KEY": ""}
    env.pop("STMT_API_KEY")
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    server = Server(f"http://127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"stmt serve exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{server.url}/health", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    server.stop(signal.SIGKILL)
    raise RuntimeError(f"stmt serve did not become healthy:\n{log.read_text()}")


@pytest.fixture(scope="module")
def server_factory(tmp_path_factory) -> Iterator:
    """server_factory(*args) -> a started Server, stopped (SIGKILL if need be) after the module."""
    servers: list[Server] = []

    def start(*args: str) -> Server:
        log = tmp_path_factory.mktemp("serve") / "server.log"
        server = start_server(log, *args)
        servers.append(server)
        return server

    yield start
    for server in servers:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait(30)
