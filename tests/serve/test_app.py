"""In-process tests of the app (TestClient): routes, the error matrix, limits, auth, CORS, metrics."""

from __future__ import annotations

import base64
import logging
import threading
import time

import numpy as np
import pytest

from st_multitask import embed
from st_multitask.serve import ServeSettings, create_app

pytestmark = pytest.mark.slow  # the packaged model runs for real

TEXTS = ["Apple is buying a U.K. startup for $1 billion.", "The film was a joy from start to finish."]
LONG = "word " * 300  # past the 254-piece window


@pytest.fixture
def client(make_client):
    return make_client()


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_health_is_503_while_loading_then_200(default_model):
    from fastapi.testclient import TestClient

    release = threading.Event()

    def slow_load():
        release.wait(30)
        return default_model

    with TestClient(create_app(slow_load, ServeSettings())) as client:
        assert client.get("/health").status_code == 503
        loading = client.post("/embed", json={"inputs": "hi"})
        assert loading.status_code == 503 and loading.headers["retry-after"] == "1"
        release.set()
        deadline = time.monotonic() + 30
        while client.get("/health").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert client.get("/health").json() == {"status": "ok", "detail": None}


def test_a_model_that_fails_to_load_is_reported(tmp_path):
    from fastapi.testclient import TestClient

    with TestClient(create_app(settings=ServeSettings(model=str(tmp_path), backend="torch"))) as client:
        deadline = time.monotonic() + 30
        while client.get("/health").json()["status"] == "loading" and time.monotonic() < deadline:
            time.sleep(0.01)
        health = client.get("/health")
        assert health.status_code == 503 and health.json()["status"] == "failed"
        assert str(tmp_path) in health.json()["detail"]


def test_info_reads_heads_and_labels_from_the_model(client, default_model):
    info = client.get("/info").json()
    assert info["dimension"] == default_model.dim and info["window_tokens"] == 254
    assert {name: h["labels"] for name, h in info["heads"].items()} == {
        name: head.labels for name, head in default_model.heads.items()
    }
    assert info["backend"] == "torch" and info["limits"]["max_client_batch"] == 512


def test_openai_embeddings_float_base64_and_dimensions(client, default_model):
    expected = embed(TEXTS, model=default_model.backbone)
    body = client.post("/v1/embeddings", json={"input": TEXTS, "model": "st-multitask-default"}).json()
    assert body["object"] == "list" and body["model"] == "st-multitask-default"
    assert [d["index"] for d in body["data"]] == [0, 1] and body["data"][0]["object"] == "embedding"
    np.testing.assert_allclose([d["embedding"] for d in body["data"]], expected, atol=1e-5)
    lengths = [len(default_model.backbone.tokenizer(t)["input_ids"]) for t in TEXTS]  # with [CLS], [SEP]
    assert body["usage"] == {"prompt_tokens": sum(lengths), "total_tokens": sum(lengths)}

    b64 = client.post("/v1/embeddings", json={"input": TEXTS, "encoding_format": "base64"}).json()
    decoded = [np.frombuffer(base64.b64decode(d["embedding"]), dtype="<f4") for d in b64["data"]]
    np.testing.assert_allclose(decoded, expected, atol=1e-5)

    cut = client.post("/v1/embeddings", json={"input": TEXTS, "dimensions": 32}).json()
    np.testing.assert_allclose([d["embedding"] for d in cut["data"]], unit(expected[:, :32]), atol=1e-5)


def test_embed_reports_truncation_and_refuses_it_when_asked(client, default_model):
    body = client.post("/embed", json={"inputs": [TEXTS[0], LONG], "normalize": False}).json()
    assert body["truncated"] == [1] and body["dimensions"] == default_model.dim
    np.testing.assert_allclose(
        body["embeddings"], embed([TEXTS[0], LONG], model=default_model.backbone), atol=1e-5
    )
    refused = client.post("/embed", json={"inputs": [TEXTS[0], LONG], "truncate": False})
    assert refused.status_code == 422
    assert "inputs[1] has 300 tokens" in refused.json()["error"] and refused.json()["param"] == "inputs[1]"


def test_predict_equals_model_predict(client, default_model, same_predictions):
    body = client.post("/predict", json={"inputs": TEXTS}).json()
    assert same_predictions(body["predictions"], default_model.predict(TEXTS))
    some = client.post("/predict", json={"inputs": TEXTS[0], "tasks": ["ner"], "min_score": 0.99}).json()
    assert list(some["predictions"][0]) == ["ner"]
    abstain = client.post("/predict", json={"inputs": TEXTS[1], "tasks": ["topic"], "min_score": 1.0}).json()
    assert abstain["predictions"][0]["topic"]["label"] is None


def test_predict_with_zero_shot_labels(client, default_model):
    labels = "sports,health,tech,finance,education,other"
    only = client.post("/predict", json={"inputs": TEXTS[:2], "labels": labels}).json()["predictions"]
    expected = default_model.pipeline().predict(TEXTS[:2], labels=labels)
    assert [list(p) for p in only] == [["zero_shot"]] * 2
    assert [p["zero_shot"]["label"] for p in only] == [e["zero_shot"]["label"] for e in expected]
    both = client.post("/predict", json={"inputs": TEXTS[0], "labels": labels.split(","), "tasks": ["topic"]})
    assert sorted(both.json()["predictions"][0]) == ["topic", "zero_shot"]
    for bad in ("tech,tech", [], "a,,b"):
        response = client.post("/predict", json={"inputs": "ok", "labels": bad})
        assert response.status_code == 422 and "abel" in response.json()["error"]


def test_tokenize_similarity(client, default_model):
    tokens = client.post("/tokenize", json={"inputs": [TEXTS[0], LONG]}).json()
    pieces = [t for t in tokens["tokens"][0] if not t["special"]]
    assert [TEXTS[0][t["start"] : t["end"]].lower() for t in pieces][:2] == ["apple", "is"]
    assert tokens["truncated"] == [1] and len(tokens["tokens"][1]) == 256

    from st_multitask import cosine_similarity

    a, b = ["a dog barked", "stocks fell"], ["a cat", "shares dropped", "the weather"]
    matrix = client.post("/similarity", json={"a": a, "b": b, "mode": "matrix"}).json()
    np.testing.assert_allclose(
        matrix["scores"], cosine_similarity(a, b, model=default_model.backbone), atol=1e-5
    )
    best = client.post("/similarity", json={"a": a, "b": b}).json()
    assert [r["b"] for r in best] == ["a cat", "shares dropped"] and "rank" not in best[0]
    one_b = client.post("/similarity", json={"a": a, "b": b[:1], "top_k": 3}).json()
    assert len(one_b) == 2 and "rank" not in one_b[0]  # one match a text: no rank, as in the CLI
    pairs = client.post("/similarity", json={"a": a, "b": b[:2], "mode": "pairwise"}).json()
    assert [r["line"] for r in pairs] == [1, 2]
    unequal = client.post("/similarity", json={"a": a, "b": b, "mode": "pairwise"})
    assert unequal.status_code == 422


def test_search_with_and_without_an_index(make_client, default_model, tmp_path):
    from st_multitask.index import Index

    missing = make_client().post("/search", json={"queries": "a pet"})
    assert missing.status_code == 404 and "stmt serve --index DIR" in missing.json()["error"]
    folder = tmp_path / "pets"
    Index.build(["The cat sat.", "Stocks fell.", "A dog barked."], model=default_model.backbone).save(folder)
    client = make_client(index=str(folder))
    hits = client.post("/search", json={"queries": ["a pet animal"], "top_k": 2}).json()["results"][0]
    assert [h["text"] for h in hits] == ["A dog barked.", "The cat sat."] and hits[0]["line"] == 3
    assert hits[0]["ids"] == {}  # an index without id columns


def test_search_hits_return_their_ids(make_client, posts_index):
    client = make_client(index=str(posts_index))
    response = client.post("/search", json={"queries": ["a pet animal", "share prices dropped"], "top_k": 1})
    assert response.status_code == 200, response.text
    hits = [row[0] for row in response.json()["results"]]
    assert [h["ids"] for h in hits] == [{"post_id": 42}, {"post_id": 23}]
    assert hits[1]["text"] == "Stocks fell sharply on Monday."
    schema = client.get("/openapi.json").json()["components"]["schemas"]["SearchHit"]
    assert "ids" in schema["properties"]


@pytest.mark.parametrize(
    ("path", "body", "status", "param"),
    [
        ("/v1/embeddings", {"input": []}, 422, "input"),
        ("/v1/embeddings", {"input": ["ok", 3]}, 422, "input[1]"),
        ("/v1/embeddings", {"input": ["ok", "   "]}, 422, "input[1]"),
        ("/v1/embeddings", {"input": "ok", "model": "gpt-4"}, 404, "model"),
        ("/v1/embeddings", {"input": "ok", "encoding_format": "int8"}, 422, "encoding_format"),
        ("/v1/embeddings", {"input": "ok", "dimensions": 0}, 422, "dimensions"),
        ("/v1/embeddings", {"input": "ok", "dimensions": 385}, 422, "dimensions"),
        ("/v1/embeddings", {}, 422, "input"),
        ("/embed", {"inputs": 5}, 422, "inputs"),
        ("/embed", {"input": "ok"}, 422, "inputs"),
        ("/predict", {"inputs": "ok", "tasks": ["nope"]}, 422, None),
        ("/predict", {"inputs": "ok", "min_score": 2}, 422, "min_score"),
        ("/predict", {"inputs": "ok", "tasks": "ner"}, 422, "tasks"),
        ("/similarity", {"a": [], "b": ["x"]}, 422, "a"),
        ("/search", {"queries": "x", "top_k": 0}, 422, "top_k"),
    ],
)
def test_bad_input_is_4xx_json_naming_the_field(client, path, body, status, param):
    response = client.post(path, json=body)
    assert response.status_code == status and response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    if path.startswith("/v1/"):
        assert set(error) == {"message", "type", "param", "code"} and error["param"] == param
        assert error["type"] in ("invalid_request_error", "not_found_error")
    else:
        assert isinstance(error, str) and response.json()["error_type"] == "invalid_request_error"
        assert response.json().get("param") == param
    if param:
        assert param.split("[")[0] in (error["message"] if isinstance(error, dict) else error)


def test_malformed_json_unknown_route_and_method(client):
    bad = client.post("/v1/embeddings", content=b"{nope", headers={"content-type": "application/json"})
    assert bad.status_code == 400 and "not valid JSON" in bad.json()["error"]["message"]
    assert client.get("/nope").status_code == 404 and "error" in client.get("/nope").json()
    wrong = client.get("/predict")
    assert wrong.status_code == 405 and wrong.json()["error_type"] == "invalid_request_error"


def test_limits_name_themselves(make_client):
    client = make_client(max_client_batch=2, max_body_bytes=2000)
    many = client.post("/embed", json={"inputs": ["a", "b", "c"]})
    assert many.status_code == 422 and "--max-client-batch" in many.json()["error"]
    big = client.post("/embed", json={"inputs": ["x" * 3000]})
    assert big.status_code == 413 and "2000 bytes" in big.json()["error"]
    big_v1 = client.post("/v1/embeddings", json={"input": ["x" * 3000]})
    assert big_v1.status_code == 413 and big_v1.json()["error"]["type"] == "invalid_request_error"


def test_a_fault_is_a_500_with_a_request_id_logged(make_client, default_model, caplog):
    class Broken:
        def __init__(self, model):
            self._model = model

        def __getattr__(self, name):
            return getattr(self._model, name)

        def predict_and_embed(self, texts, *args, **kwargs):
            if "explode" in getattr(texts, "texts", texts):  # requests come tokenised once (Encoded)
                raise RuntimeError("boom")
            return self._model.predict_and_embed(texts, *args, **kwargs)

    client = make_client(Broken(default_model.pipeline()))
    with caplog.at_level(logging.ERROR, logger="st_multitask.serve"):
        response = client.post("/predict", json={"inputs": ["explode"]}, headers={"x-request-id": "abc123"})
    assert response.status_code == 500 and response.headers["x-request-id"] == "abc123"
    assert "abc123" in response.json()["error"] and "boom" not in response.text
    assert any("abc123" in r.getMessage() and r.exc_info for r in caplog.records)
    assert client.post("/predict", json={"inputs": ["fine"]}).status_code == 200  # the server goes on


def test_api_key(make_client):
    client = make_client(api_key="s3cret")
    assert client.get("/health").status_code == 200  # no auth
    for route in ("/info", "/metrics", "/v1/models", "/openapi.json", "/docs"):
        refused = client.get(route)
        assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
    assert client.get("/info", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/info", headers={"Authorization": "Basic s3cret"}).status_code == 401
    ok = client.post("/embed", json={"inputs": "hi"}, headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200
    v1 = client.post("/v1/embeddings", json={"input": "hi"})
    assert v1.status_code == 401 and v1.json()["error"]["type"] == "authentication_error"


def test_cors_only_when_asked(make_client):
    preflight = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}
    assert "access-control-allow-origin" not in make_client().options("/embed", headers=preflight).headers
    allowed = make_client(cors_allow_origins=["https://app.example"]).options("/embed", headers=preflight)
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"


def test_metrics_and_access_log(client, caplog):
    with caplog.at_level(logging.INFO, logger="st_multitask.serve.access"):
        client.post("/embed", json={"inputs": TEXTS}, headers={"x-request-id": "rid42"})
    lines = [r.getMessage() for r in caplog.records if "rid42" in r.getMessage()]
    assert len(lines) == 1 and "/embed 200 texts=2 tokens=" in lines[0] and lines[0].endswith("ms")
    text = client.get("/metrics").text
    assert 'stmt_requests_total{route="/embed",status="200"} 1.0' in text
    for name in ("stmt_request_duration_seconds_bucket", "stmt_batch_texts_sum", "stmt_batch_tokens_sum"):
        assert name in text
    assert "stmt_queue_depth 0.0" in text and "stmt_tokens_total" in text


def test_openapi_describes_every_route(client):
    paths = client.get("/openapi.json").json()["paths"]
    for route in (
        "/v1/embeddings",
        "/v1/models",
        "/embed",
        "/predict",
        "/similarity",
        "/search",
        "/tokenize",
    ):
        assert route in paths
    assert client.get("/docs").headers["content-type"].startswith("text/html")


def test_json_without_orjson_is_the_same(client, monkeypatch):
    import sys

    fast = client.post("/embed", json={"inputs": TEXTS}).json()
    monkeypatch.setitem(sys.modules, "orjson", None)  # import orjson now fails: the json module writes
    plain = client.post("/embed", json={"inputs": TEXTS}).json()
    np.testing.assert_allclose(plain["embeddings"], fast["embeddings"], atol=1e-7)
    assert plain["truncated"] == fast["truncated"] == []
