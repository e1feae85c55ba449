"""A real ``stmt serve`` (uvicorn in a subprocess on 127.0.0.1 and a free port), called by real
clients: the official ``openai`` SDK and httpx. Bounded in count; no time is asserted."""

from __future__ import annotations

import base64
import re
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

from st_multitask import embed

pytestmark = pytest.mark.slow

KEY = "test-key-123"
TEXTS = ["Apple is buying a U.K. startup for $1 billion.", "The film was a joy from start to finish.", "Hi"]


@pytest.fixture(scope="module")
def server(server_factory):
    """The default model in torch, with an API key."""
    return server_factory("--api-key", KEY, "--served-model-name", "stmt-test")


@pytest.fixture(scope="module")
def small_server(server_factory):
    """No API key; a small queue and client batch, to overload it."""
    return server_factory("--max-queue", "64", "--max-client-batch", "8")


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {KEY}"}


def metric(url: str, name: str, headers: dict | None = None) -> float:
    text = httpx.get(f"{url}/metrics", headers=headers or {}, timeout=30).text
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_openai_client_float_and_base64_match_embed(server, default_model):
    from openai import AuthenticationError, OpenAI

    expected = embed(TEXTS, model=default_model.backbone)
    client = OpenAI(base_url=f"{server.url}/v1", api_key=KEY, max_retries=0)
    floats = client.embeddings.create(model="stmt-test", input=TEXTS, encoding_format="float")
    np.testing.assert_allclose([d.embedding for d in floats.data], expected, atol=1e-5)
    response = client.embeddings.create(model="stmt-test", input=TEXTS, encoding_format="base64")
    decoded = [np.frombuffer(base64.b64decode(d.embedding), dtype="<f4") for d in response.data]  # asked: raw
    np.testing.assert_allclose(decoded, expected, atol=1e-5)
    default = client.embeddings.create(model="stmt-test", input=TEXTS[0])  # the SDK asks for base64 itself
    np.testing.assert_allclose(default.data[0].embedding, expected[0], atol=1e-5)
    assert response.usage.prompt_tokens == sum(
        len(default_model.backbone.tokenizer(t)["input_ids"]) for t in TEXTS
    )
    assert [m.id for m in client.models.list()] == ["stmt-test"]
    with pytest.raises(AuthenticationError):
        OpenAI(base_url=f"{server.url}/v1", api_key="wrong", max_retries=0).embeddings.create(
            model="stmt-test", input="x"
        )


def test_predict_equals_model_predict(server, default_model, same_predictions):
    response = httpx.post(f"{server.url}/predict", json={"inputs": TEXTS}, headers=auth(), timeout=60)
    assert response.status_code == 200
    assert same_predictions(response.json()["predictions"], default_model.predict(TEXTS))


def test_auth_on(server):
    assert httpx.get(f"{server.url}/health", timeout=30).status_code == 200
    refused = httpx.post(f"{server.url}/embed", json={"inputs": "x"}, timeout=30)
    assert refused.status_code == 401 and "www-authenticate" in refused.headers
    assert httpx.get(f"{server.url}/info", headers=auth(), timeout=30).status_code == 200


def test_64_concurrent_clients_each_get_their_own_results(server, default_model, same_predictions):
    topics = ["markets", "football", "elections", "films", "phones", "rain", "cooking", "trains"]
    texts = [f"Client {i} sends a note about {topics[i % 8]} and the number {i * 7}." for i in range(64)]
    expected = embed(texts, model=default_model.backbone)
    wanted = default_model.predict(texts[::8], tasks=["ner"])
    before = metric(server.url, "stmt_batch_texts_count", auth())

    def call(i: int):
        with httpx.Client(timeout=120, headers=auth()) as client:
            if i % 8 == 0:  # some clients ask for a head: they share batches with the embedding ones
                body = client.post(f"{server.url}/predict", json={"inputs": [texts[i]], "tasks": ["ner"]})
                return body.status_code, body.json()["predictions"][0]
            body = client.post(f"{server.url}/embed", json={"inputs": [texts[i]]})
            return body.status_code, body.json()["embeddings"][0]

    with ThreadPoolExecutor(64) as pool:
        results = list(pool.map(call, range(64)))
    assert all(status == 200 for status, _ in results)
    for i, (_, value) in enumerate(results):
        if i % 8 == 0:
            assert value == {"ner": wanted[i // 8]["ner"]} or value["ner"] == pytest.approx(
                wanted[i // 8]["ner"]
            )
        else:
            np.testing.assert_allclose(value, expected[i], atol=1e-5)
    calls = metric(server.url, "stmt_batch_texts_count", auth()) - before
    assert 1 <= calls < 64  # requests were merged into fewer model calls


def test_an_idle_keep_alive_connection_still_answers(server):
    """A pooled connection reused after 6 s idle (past uvicorn's default keep-alive of 5 s, which
    is also httpx's pool expiry) gets its answer: the server does not close it under the client."""
    import socket

    host, port = server.url.removeprefix("http://").split(":")
    body = b'{"inputs": ["a text"]}'
    request = (
        f"POST /embed HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    with socket.create_connection((host, int(port)), timeout=60) as conn:
        answers = []
        for pause in (0, 6):
            time.sleep(pause)
            conn.sendall(request)
            data = b""
            while b"\r\n\r\n" not in data:  # the head
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1)) if head else 0
            while len(body) < length:  # the whole body, so the next answer starts clean
                chunk = conn.recv(65536)
                if not chunk:
                    break
                body += chunk
            answers.append((head.split(b"\r\n", 1)[0], len(body) == length > 0))
    assert answers == [(b"HTTP/1.1 200 OK", True)] * 2


def test_auth_off(small_server):
    assert httpx.get(f"{small_server.url}/info", timeout=30).status_code == 200


def test_overload_gives_429_with_retry_after_never_5xx(small_server):
    texts = [f"Request text {i} " + "with some words to read " * 8 for i in range(8)]

    def call(_: int) -> httpx.Response:
        return httpx.post(f"{small_server.url}/embed", json={"inputs": texts}, timeout=120)

    with ThreadPoolExecutor(48) as pool:
        responses = list(pool.map(call, range(48)))
    statuses = {r.status_code for r in responses}
    assert statuses <= {200, 429} and statuses == {200, 429}
    refused = [r for r in responses if r.status_code == 429]
    assert all(r.headers["retry-after"] == "1" and "queue is full" in r.json()["error"] for r in refused)
    assert metric(small_server.url, "stmt_rejected_total") == len(refused)


def test_sigterm_answers_every_accepted_request_and_exits_0(small_server):
    """Eight requests of eight long texts (64 texts, what the queue holds) are all accepted, then
    SIGTERM arrives while the model still works on them: each is answered, and the server exits 0."""
    url = small_server.url
    texts = [
        [f"Text {r}.{i}: " + "a long sentence about many different things " * 25 for i in range(8)]
        for r in range(8)
    ]
    baseline = metric(url, "stmt_batch_texts_sum")
    answered: list[int] = []
    lock = threading.Lock()

    def call(r: int) -> httpx.Response:
        response = httpx.post(f"{url}/embed", json={"inputs": texts[r]}, timeout=300)
        with lock:
            answered.append(r)
        return response

    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(call, r) for r in range(8)]
        while True:  # every text is queued or taken: all eight requests were accepted
            taken = metric(url, "stmt_batch_texts_sum") - baseline
            if taken + metric(url, "stmt_queue_depth") >= 64 or all(f.done() for f in futures):
                break
            time.sleep(0.005)
        with lock:
            pending = 8 - len(answered)
        code = small_server.stop(signal.SIGTERM, timeout=300)
        responses = [f.result() for f in futures]
    assert pending > 0  # the signal came while requests were in flight
    assert [r.status_code for r in responses] == [200] * 8
    assert all(len(r.json()["embeddings"]) == 8 for r in responses)
    assert code == 0
    log = small_server.log.read_text()
    assert "Traceback" not in log and log.count("POST /embed 200") >= 8
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/health", timeout=5)


def test_an_onnx_server_never_loads_torch(server_factory):
    """``stmt serve --backend onnx``: neither torch nor transformers in the server process (its
    mapped libraries), whatever it answers."""
    from pathlib import Path

    from st_multitask import load

    load(backend="onnx").predict(["warm the graph cache"])  # exports here, not in the server
    server = server_factory("--backend", "onnx")
    for route, body in (("/predict", {"inputs": TEXTS}), ("/embed", {"inputs": TEXTS})):
        httpx.post(f"{server.url}{route}", json=body, timeout=60).raise_for_status()
    assert httpx.get(f"{server.url}/info", timeout=30).json()["backend"] == "onnx"
    maps = Path(f"/proc/{server.process.pid}/maps").read_text(encoding="utf-8", errors="replace")
    assert "libtorch" not in maps and "/torch/" not in maps
