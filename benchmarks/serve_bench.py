"""``stmt serve`` under load, against in-process ``embed()`` / ``predict`` on the same engine, in one run.

The server runs as a child process (``python -m st_multitask serve``, the default model on the
default engine: ``--backend auto``) on 127.0.0.1 and a free port; this process is the load
generator: a small keep-alive HTTP/1.1 client on asyncio (so the generator's own cost stays low),
and the official ``openai`` SDK for the 64-text requests. Every phase is bounded in requests and in
seconds. Figures:

- in-process: ``embed()`` in batches of 64 (texts/s), single-text ``embed()`` latency (p50),
  ``predict`` with every head in batches of 64 (texts/s);
- for each batching window (``--windows``, default 0,2,5,10 ms; a fresh server each): 1-text
  ``/v1/embeddings`` requests (base64, as the SDKs send them) at concurrency 1, 8 and 64: texts/s,
  p50/p95/p99 ms and the mean batch size from ``/metrics``; the window is then picked by the rule
  below;
- with the picked window: 1-text ``/embed`` (float JSON) at concurrency 64, ``/predict`` (every
  head) 1-text at concurrency 64, 64-text requests through ``openai`` at concurrency 4, a full queue
  (64-text requests at concurrency 16 against ``--max-queue 256``: 429 latency, Retry-After, and the
  accepted requests that kept flowing), and an RSS soak at concurrency 64 (``--soak-s``, default
  120 s rather than the issue's 10 minutes: RSS at the end vs RSS at half time).

Each ratio compares a server phase with the in-process figure measured right before it, in this
process (512 texts in batches of 64, or 100 single-text calls), since a shared machine's load
drifts between phases. Window rule: the largest concurrency-64 ratio among windows whose
concurrency-1 p50 meets the latency target (in-process single-text p50 + 5 ms); ties (within 3%)
go to the smaller window. Responses are checked: every status, and every 25th vector against the in-process one.

    HF_HUB_OFFLINE=1 python -m benchmarks.serve_bench [--windows 0,2,5,10] [--soak-s 120] [--texts 1536]

Writes ``benchmarks/results/<machine tag>/serve_bench.json`` (date, commit, command, CPU flags and
every figure). On a shared machine the cores are busy with other work too: say so with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np

from benchmarks._common import cpu_flags, store_result, sts_sentences

REPO = Path(__file__).resolve().parent.parent

TARGETS = {
    "c64_vs_embed": 0.8,  # 1-text requests at concurrency 64 vs in-process embed() in batches of 64
    "openai64_vs_embed": 0.9,  # 64-text requests through the openai client vs in-process embed()
    "c1_p50_extra_ms": 5.0,  # p50 of one 1-text request at concurrency 1 <= in-process single-text + 5 ms
    "predict_c64_vs_predict": 0.8,  # /predict 1-text at concurrency 64 vs in-process predict in batches
    "full_queue_429_ms": 50.0,  # a full queue answers 429 (with Retry-After) in under 50 ms
    "soak_rss_ratio": 1.1,  # RSS at the end within 1.1x of RSS at half time
}


def pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 2) if values else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- the server ---------------------------------------------------------------------------------
class Server:
    """``python -m st_multitask serve ARGS`` on a free port, its log in a temporary file."""

    def __init__(self, *args: str):
        self.port = free_port()
        self.log = Path(tempfile.mkstemp(prefix="serve-bench-", suffix=".log")[1])
        command = [sys.executable, "-m", "st_multitask", "serve", "--port", str(self.port), *args]
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"stmt serve exited:\n{self.log.read_text()}")
            try:
                if http_get(self.port, "/health")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("stmt serve did not become healthy in 300 s")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def metrics(self) -> dict[str, float]:
        text = http_get(self.port, "/metrics")[1].decode()
        values = {}
        for name in (
            "stmt_batch_texts_sum",
            "stmt_batch_texts_count",
            "stmt_batch_tokens_sum",
            "stmt_rejected_total",
        ):
            found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
            values[name] = float(found.group(1)) if found else 0.0
        return values

    def info(self) -> dict[str, Any]:
        return json.loads(http_get(self.port, "/info")[1])

    def rss_mib(self) -> float:
        with open(f"/proc/{self.process.pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
        return float("nan")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(30)


def http_get(port: int, path: str) -> tuple[int, bytes]:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


# -- the load generator -------------------------------------------------------------------------
async def _read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("the server closed the connection")
    status = int(status_line.split()[1])
    headers = {}
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers, body


def request_bytes(path: str, payload: dict[str, Any]) -> bytes:
    body = json.dumps(payload).encode()
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


async def _load(port: int, requests: list[bytes], concurrency: int, max_s: float) -> list[tuple]:
    """Send ``requests`` (in order, cycling) over ``concurrency`` keep-alive connections until all
    are answered or ``max_s`` passed. Returns (index, status, seconds, headers, body) per answer."""
    results: list[tuple] = []
    counter = iter(range(len(requests)))
    deadline = time.perf_counter() + max_s

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for i in counter:
                if time.perf_counter() > deadline:
                    break
                start = time.perf_counter()
                writer.write(requests[i])
                status, headers, body = await _read_response(reader)
                results.append((i, status, time.perf_counter() - start, headers, body))
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results


def run_load(
    server: Server, requests: list[bytes], concurrency: int, max_s: float
) -> tuple[list[tuple], float, dict]:
    before = server.metrics()
    start = time.perf_counter()
    results = asyncio.run(_load(server.port, requests, concurrency, max_s))
    wall = time.perf_counter() - start
    after = server.metrics()
    delta = {k: after[k] - before[k] for k in after}
    return results, wall, delta


def summarize(results: list[tuple], wall: float, delta: dict, texts_per_request: int) -> dict[str, Any]:
    ok = [r for r in results if r[1] == 200]
    latencies = [r[2] * 1000 for r in ok]
    statuses: dict[str, int] = {}
    for r in results:
        statuses[str(r[1])] = statuses.get(str(r[1]), 0) + 1
    calls = delta["stmt_batch_texts_count"]
    return {
        "requests": len(results),
        "statuses": statuses,
        "wall_s": round(wall, 2),
        "texts_per_s": round(len(ok) * texts_per_request / wall, 1) if wall else None,
        "p50_ms": pct(latencies, 50),
        "p95_ms": pct(latencies, 95),
        "p99_ms": pct(latencies, 99),
        "mean_batch_texts": round(delta["stmt_batch_texts_sum"] / calls, 2) if calls else None,
        "mean_batch_tokens": round(delta["stmt_batch_tokens_sum"] / calls, 1) if calls else None,
    }


def check_vectors(results: list[tuple], expected: np.ndarray, texts_of: list[int], fmt: str) -> float:
    """Largest difference between served vectors (every 25th answer) and the in-process ones."""
    worst = 0.0
    for i, status, _, _, body in results[::25]:
        if status != 200:
            continue
        payload = json.loads(body)
        if fmt == "base64":
            got = np.frombuffer(base64.b64decode(payload["data"][0]["embedding"]), dtype="<f4")
        elif fmt == "v1-float":
            got = np.asarray(payload["data"][0]["embedding"], dtype=np.float32)
        else:
            got = np.asarray(payload["embeddings"][0], dtype=np.float32)
        worst = max(worst, float(np.abs(got - expected[texts_of[i]]).max()))
    return worst


# -- the phases ---------------------------------------------------------------------------------
def in_process(texts: list[str]) -> dict[str, Any]:
    """The baseline: the engine ``stmt serve`` loads by default, called in this process."""
    from st_multitask import embed, load

    model = load(backend="auto", precision="fp32")  # what stmt serve loads by default
    embed(texts[:128], model=model, batch_size=64)  # warm-up
    start = time.perf_counter()
    vectors = embed(texts, model=model, batch_size=64)
    embed_s = time.perf_counter() - start
    single = []
    for text in texts[:200]:
        t0 = time.perf_counter()
        embed([text], model=model)
        single.append((time.perf_counter() - t0) * 1000)
    model.predict(texts[:64], batch_size=64)
    start = time.perf_counter()
    model.predict(texts, batch_size=64)
    predict_s = time.perf_counter() - start
    return {
        "engine": f"{type(model).__name__} {getattr(model, 'backend', 'torch')} {getattr(model, 'precision', 'fp32')}",
        "embed_batch64_texts_per_s": round(len(texts) / embed_s, 1),
        "embed_single_p50_ms": pct(single, 50),
        "embed_single_p99_ms": pct(single, 99),
        "predict_batch64_texts_per_s": round(len(texts) / predict_s, 1),
        "_vectors": vectors,
        "_model": model,
    }


def paired(model: Any, texts: list[str], what: str) -> float:
    """The in-process figure measured right before a server phase (the machine's load drifts, so
    each ratio compares neighbours): ``embed`` / ``predict`` texts/s in batches of 64 over 512
    texts, or ``single``: the p50 ms of 100 single-text ``embed()`` calls."""
    from st_multitask import embed

    if what == "single":
        times = []
        for text in texts[:100]:
            t0 = time.perf_counter()
            embed([text], model=model)
            times.append((time.perf_counter() - t0) * 1000)
        return pct(times, 50) or 0.0
    start = time.perf_counter()
    if what == "embed":
        embed(texts[:512], model=model, batch_size=64)
    else:
        model.predict(texts[:512], batch_size=64)
    return round(min(512, len(texts)) / (time.perf_counter() - start), 1)


def one_text_requests(
    texts: list[str], path: str, fmt: str | None, rounds: int
) -> tuple[list[bytes], list[int]]:
    requests, owners = [], []
    for _ in range(rounds):
        for i, text in enumerate(texts):
            payload: dict[str, Any] = (
                {"input": [text], "encoding_format": fmt} if path == "/v1/embeddings" else {"inputs": [text]}
            )
            requests.append(request_bytes(path, payload))
            owners.append(i)
    return requests, owners


def window_sweep(
    texts: list[str], expected: np.ndarray, windows: list[float], args: argparse.Namespace, model: Any
) -> dict:
    sweep = {}
    requests, owners = one_text_requests(texts, "/v1/embeddings", "base64", 2)
    for window in windows:
        server = Server("--batch-window-ms", str(window), "--max-queue", "256", "--max-client-batch", "64")
        try:
            run_load(server, requests[:100], 8, 30)  # warm-up
            row: dict[str, Any] = {}
            for concurrency, count, max_s in (
                (1, 300, args.phase_s),
                (8, 1536, args.phase_s),
                (64, 3072, args.phase_s),
            ):
                before = paired(model, texts, "single" if concurrency == 1 else "embed")
                results, wall, delta = run_load(server, requests[:count], concurrency, max_s)
                phase = row[f"c{concurrency}"] = summarize(results, wall, delta, 1)
                phase["max_abs_diff"] = check_vectors(results, expected, owners, "base64")
                if concurrency == 1:
                    phase["in_process_single_p50_ms"] = before
                else:
                    phase["in_process_embed_texts_per_s"] = before
                    phase["vs_in_process"] = round((phase["texts_per_s"] or 0) / before, 3)
            sweep[str(window)] = row
            print(f"window {window} ms: {json.dumps(row)}", flush=True)
        finally:
            server.stop()
    return sweep


def pick_window(sweep: dict) -> tuple[str, str]:
    """By the c64 ratio to the in-process figure measured next to it (the load drifts)."""
    limit = TARGETS["c1_p50_extra_ms"]
    meets = {
        w: r
        for w, r in sweep.items()
        if r["c1"]["p50_ms"] is not None and r["c1"]["p50_ms"] <= r["c1"]["in_process_single_p50_ms"] + limit
    }
    pool = meets or sweep
    best = max(r["c64"]["vs_in_process"] for r in pool.values())
    chosen = min((w for w, r in pool.items() if r["c64"]["vs_in_process"] >= 0.97 * best), key=float)
    why = (
        f"largest c64 ratio to in-process embed ({pool[chosen]['c64']['vs_in_process']}, "
        "ties within 3% to the smaller window)"
        + (
            " among windows meeting the c1 latency target"
            if meets
            else "; no window met the c1 latency target"
        )
    )
    return chosen, why


def openai_phase(
    server: Server, texts: list[str], expected: np.ndarray, concurrency: int = 4
) -> dict[str, Any]:
    from openai import OpenAI

    client = OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0, timeout=300)
    chunks = [list(range(start, min(start + 64, len(texts)))) for start in range(0, len(texts), 64)]
    client.embeddings.create(model=server.info()["model"], input=texts[:64])  # warm-up
    latencies, worst = [], 0.0
    lock = threading.Lock()
    name = server.info()["model"]

    def call(rows: list[int]) -> None:
        nonlocal worst
        t0 = time.perf_counter()
        response = client.embeddings.create(model=name, input=[texts[i] for i in rows])  # SDK default: base64
        elapsed = (time.perf_counter() - t0) * 1000
        got = np.asarray([d.embedding for d in response.data], dtype=np.float32)
        with lock:
            latencies.append(elapsed)
            worst = max(worst, float(np.abs(got - expected[rows]).max()))

    before = server.metrics()
    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(call, chunks))
    wall = time.perf_counter() - start
    delta = {k: v - before[k] for k, v in server.metrics().items()}
    out = summarize([(0, 200, ms / 1000, {}, b"") for ms in latencies], wall, delta, 64)
    out.update({"concurrency": concurrency, "texts_per_request": 64, "max_abs_diff": worst})
    out["texts_per_s"] = round(sum(len(c) for c in chunks) / wall, 1)
    return out


def full_queue_phase(server: Server, texts: list[str], max_s: float) -> dict[str, Any]:
    """64-text requests at concurrency 16 against a 256-text queue for ``max_s`` seconds; a client
    that gets a 429 sends its next request at once."""
    requests = [
        request_bytes("/embed", {"inputs": texts[s : s + 64]}) for s in range(0, len(texts) - 63, 64)
    ] * 500
    results, wall, delta = run_load(server, requests, 16, max_s)
    refused = [r for r in results if r[1] == 429]
    accepted = [r for r in results if r[1] == 200]
    return {
        "concurrency": 16,
        "texts_per_request": 64,
        "max_queue": 256,
        "requests": len(results),
        "statuses": {str(s): sum(1 for r in results if r[1] == s) for s in sorted({r[1] for r in results})},
        "retry_after_on_every_429": all("retry-after" in r[3] for r in refused),
        "429_p50_ms": pct([r[2] * 1000 for r in refused], 50),
        "429_p99_ms": pct([r[2] * 1000 for r in refused], 99),
        "429_max_ms": round(max((r[2] * 1000 for r in refused), default=0.0), 2) if refused else None,
        "accepted_texts_per_s": round(len(accepted) * 64 / wall, 1),
        "wall_s": round(wall, 2),
        "mean_batch_texts": round(delta["stmt_batch_texts_sum"] / delta["stmt_batch_texts_count"], 2)
        if delta["stmt_batch_texts_count"]
        else None,
    }


def soak_phase(server: Server, texts: list[str], soak_s: float) -> dict[str, Any]:
    requests, _ = one_text_requests(texts, "/v1/embeddings", "base64", 1000)
    samples: list[tuple[float, float]] = []
    done = threading.Event()

    def sample() -> None:
        start = time.perf_counter()
        while not done.wait(5):
            samples.append((round(time.perf_counter() - start, 1), server.rss_mib()))

    sampler = threading.Thread(target=sample, daemon=True)
    rss_start = server.rss_mib()
    sampler.start()
    results, wall, delta = run_load(server, requests, 64, soak_s)
    done.set()
    sampler.join()
    half = [rss for t, rss in samples if t <= soak_s / 2]
    mid = half[-1] if half else rss_start
    end = samples[-1][1] if samples else server.rss_mib()
    out = summarize(results, wall, delta, 1)
    out.update(
        {
            "soak_s": soak_s,
            "rss_start_mib": rss_start,
            "rss_half_time_mib": mid,
            "rss_end_mib": end,
            "rss_end_over_half": round(end / mid, 3),
            "rss_samples": samples,
        }
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--windows", default="0,2,5,10", help="batching windows to measure, ms")
    parser.add_argument("--texts", type=int, default=1536, help="unique STS-B test sentences")
    parser.add_argument("--phase-s", type=float, default=15.0, help="time bound of each load phase")
    parser.add_argument("--soak-s", type=float, default=120.0, help="length of the RSS soak (0: skip)")
    args = parser.parse_args()
    windows = [float(w) for w in args.windows.split(",") if w.strip()]
    flags = cpu_flags()
    print(
        f"CPU flags: {' '.join(flags) or 'none of interest'}; {os.cpu_count()} cores; loadavg {os.getloadavg()}",
        flush=True,
    )
    texts = sts_sentences(args.texts, "test")
    base = in_process(texts)
    expected, model = base.pop("_vectors"), base.pop("_model")
    print(f"in-process: {json.dumps(base)}", flush=True)
    loadavg_start = os.getloadavg()

    sweep = window_sweep(texts, expected, windows, args, model)
    chosen, why = pick_window(sweep)
    print(f"window: {chosen} ms ({why})", flush=True)

    server = Server("--batch-window-ms", chosen, "--max-queue", "256", "--max-client-batch", "64")
    try:
        info = server.info()
        requests, owners = one_text_requests(texts, "/embed", None, 2)
        run_load(server, requests[:100], 8, 30)
        before = paired(model, texts, "embed")
        results, wall, delta = run_load(server, requests, 64, args.phase_s)
        embed_float = summarize(results, wall, delta, 1)
        embed_float["max_abs_diff"] = check_vectors(results, expected, owners, "float")
        embed_float["in_process_embed_texts_per_s"] = before
        embed_float["vs_in_process"] = round(embed_float["texts_per_s"] / before, 3)
        predict_requests = [request_bytes("/predict", {"inputs": [t]}) for t in texts]
        before = paired(model, texts, "predict")
        results, wall, delta = run_load(server, predict_requests, 64, args.phase_s * 2)
        predict = summarize(results, wall, delta, 1)
        predict["in_process_predict_texts_per_s"] = before
        predict["vs_in_process"] = round(predict["texts_per_s"] / before, 3)
        before = paired(model, texts, "embed")
        openai64 = openai_phase(server, texts, expected)
        openai64["in_process_embed_texts_per_s"] = before
        openai64["vs_in_process"] = round(openai64["texts_per_s"] / before, 3)
        full = full_queue_phase(server, texts, args.phase_s)
        soak = soak_phase(server, texts, args.soak_s) if args.soak_s > 0 else None
    finally:
        exit_code = server.stop()
    loadavg_end = os.getloadavg()

    c1 = sweep[chosen]["c1"]
    ratios = {
        "c64_vs_embed": sweep[chosen]["c64"]["vs_in_process"],
        "openai64_vs_embed": openai64["vs_in_process"],
        "c1_p50_extra_ms": round(c1["p50_ms"] - c1["in_process_single_p50_ms"], 2) if c1["p50_ms"] else None,
        "predict_c64_vs_predict": predict["vs_in_process"],
        "full_queue_429_ms": full["429_p99_ms"],
        "soak_rss_ratio": soak["rss_end_over_half"] if soak else None,
    }
    met = {}
    for key, target in TARGETS.items():
        value = ratios[key]
        if value is None:
            met[key] = None
        elif key in ("c1_p50_extra_ms", "full_queue_429_ms", "soak_rss_ratio"):
            met[key] = value <= target
        else:
            met[key] = value >= target
    met["full_queue_429_ms"] = (
        met["full_queue_429_ms"] and full["retry_after_on_every_429"] and "200" in full["statuses"]
    )
    result = {
        "texts": f"{len(texts)} unique STS-B test sentences",
        "engine": info["backend"] + " " + info["precision"],
        "server_limits": info["limits"],
        "in_process": base,
        "window_sweep": sweep,
        "window_ms": float(chosen),
        "window_why": why,
        "embed_float_c64": embed_float,
        "predict_c64": predict,
        "openai_64_text": openai64,
        "full_queue": full,
        "soak": soak,
        "server_exit_code_after_sigterm": exit_code,
        "targets": TARGETS,
        "measured": ratios,
        "met": met,
        "loadavg_start": loadavg_start,
        "loadavg_end": loadavg_end,
        "note": "one run on a machine whose cores other work shared (see loadavg); the load generator "
        "ran on the same cores as the server. The soak is short (soak_s), not the issue's 10 minutes.",
    }
    path = store_result("serve_bench", result)
    print(json.dumps({"measured": ratios, "met": met}, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
