"""``stmt serve`` under load, against in-process ``embed()`` / ``predict`` on the same engine, in one run.

The server (``stmt serve`` with its defaults: the default model on ``--backend auto``) runs in a
child process pinned to every core but the last; the load generator (this process: a small
keep-alive HTTP/1.1 client on asyncio, and the ``openai`` SDK for 64-text requests) runs pinned to
the last core; the in-process baseline runs in a child process pinned to the server's cores, with
the server's engine and thread count, so both sides of each ratio had the same CPU. On a 2-core
machine: server and baseline on core 0, client on core 1. Rows (each bounded in requests and
seconds, each with the load average before and after it, the client's CPU share, dropped
connections and non-200 answers):

- 1-text ``/v1/embeddings`` (base64, as the SDKs send) at concurrency 1, 8 and 64: texts/s,
  p50/p99 ms, texts per model call (from ``/metrics``);
- 64-text requests through ``openai`` at concurrency 4;
- ``/predict`` (every head) 1-text at concurrency 64;
- overload: 64-text requests at concurrency 16 against a server with ``--max-queue 256``;
- ``--loss-check N``: N 1-text requests at concurrency 64 (the issue's: 10000), dropped counted;
- ``--soak-s S``: S seconds at concurrency 16 (the issue's: 600), RSS sampled every 5 s;
- ``--peer infinity``: the same 1-text and 64-text rows against infinity-emb (torch engine,
  batch 32) started from its own environment (``--peer-python``, default ``$INFINITY_PYTHON`` or
  ``.venv-infinity/bin/python``), skipped when it is not there. To make that environment:
  ``python3.11 -m venv .venv-infinity && .venv-infinity/bin/pip install torch==2.13.0 && .venv-infinity/bin/pip
  install 'infinity-emb[server]==0.0.78' 'numpy<2' 'sentence-transformers<4' 'transformers<4.49'``.

Each ratio compares a row with the in-process figure measured right before it (the machine's load
drifts). Responses are checked: every status, and every 25th vector against the in-process one.

    HF_HUB_OFFLINE=1 python -m benchmarks.serve_bench [--loss-check 10000] [--soak-s 600] [--peer infinity]

Writes ``benchmarks/results/<machine tag>/serve_bench.json`` (date, commit, command, CPU flags,
every figure). About 3 minutes with the defaults.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shlex
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
from benchmarks._serve_load import (
    REPO,
    Baseline,
    Server,
    cpu_ratio,
    http_get,
    loadavg,
    pct,
    request_bytes,
    run_load,
    server_cpu,
    split_cores,
    summarize,
)

TARGETS = {  # the issue's
    "c64_vs_embed": (">=", 0.8),  # 1-text /v1/embeddings at concurrency 64 vs in-process embed, batch 64
    "openai64_vs_embed": (">=", 0.9),  # 64-text requests at concurrency 4 vs in-process embed
    "predict_c64_vs_predict": (">=", 0.8),  # /predict 1-text at concurrency 64 vs in-process predict
    "c64_texts_per_model_call": (">=", 16.0),
    "c1_p50_extra_ms": ("<=", 3.0),  # p50 at concurrency 1 minus in-process one-text embed p50
    "overload_429_p99_ms": ("<=", 50.0),  # a full queue answers 429 (Retry-After, never 5xx) fast
    "dropped": ("<=", 0),  # connections closed without a response, over every row
    "soak_rss_ratio": ("<=", 1.1),  # RSS at the end / RSS after the first minute
}


def one_text_requests(texts: list[str], path: str, payload: dict[str, Any], rounds: int) -> list[bytes]:
    key = "input" if path.endswith("embeddings") else "inputs"
    return [request_bytes(path, {**payload, key: [t]}) for _ in range(rounds) for t in texts]


def check_vectors(results: list[tuple], expected: np.ndarray, fmt: str) -> float:
    """Largest difference between served vectors (every 25th answer) and the in-process ones."""
    worst = 0.0
    for i, status, _, _, body in results[::25]:
        if status != 200:
            continue
        data = json.loads(body)["data"][0]["embedding"]
        got = (
            np.frombuffer(base64.b64decode(data), "<f4") if fmt == "base64" else np.asarray(data, np.float32)
        )
        worst = max(worst, float(np.abs(got - expected[i % len(expected)]).max()))
    return worst


def one_text_rows(
    server: Server, texts: list[str], expected: np.ndarray, base: Baseline | None, args
) -> dict:
    """1-text embeddings at concurrency 1, 8 and 64 (``base``: the paired in-process figures)."""
    path, payload, fmt = ("/v1/embeddings", {"encoding_format": "base64"}, "base64")
    if not server.stmt:  # infinity: OpenAI's route without the /v1 prefix, floats
        path, payload, fmt = "/embeddings", {"model": "peer"}, "float"
    requests = one_text_requests(texts, path, payload, 4)
    run_load(server, requests[:100], 8, 30)  # warm-up
    rows = {}
    for concurrency, count in ((1, 300), (8, 1536), (64, 3072)):
        paired = base.ask("single" if concurrency == 1 else "embed") if base else {}
        results, run = run_load(server, requests[:count], concurrency, args.phase_s)
        row = rows[f"c{concurrency}"] = {**summarize(results, run, 1), "in_process": paired}
        row["max_abs_diff"] = check_vectors(results, expected, fmt)
        if "embed_texts_per_s" in paired:
            row["vs_in_process"] = round((row["texts_per_s"] or 0) / paired["embed_texts_per_s"], 3)
            row["cpu_vs_in_process"] = cpu_ratio(row)
        print(f"c{concurrency}: {json.dumps(row)}", flush=True)
    return rows


def openai_row(server: Server, texts: list[str], expected: np.ndarray, base: Baseline | None) -> dict:
    """64-text requests through the ``openai`` SDK at concurrency 4 (base64, the SDK's default)."""
    from openai import OpenAI

    url = f"{server.url}/v1" if server.stmt else server.url
    client = OpenAI(base_url=url, api_key="unused", max_retries=0, timeout=300)
    name = json.loads(http_get(server.port, "/info")[1])["model"] if server.stmt else "peer"
    chunks = [list(range(s, min(s + 64, len(texts)))) for s in range(0, len(texts), 64)]
    client.embeddings.create(model=name, input=texts[:64])  # warm-up
    latencies, worst, errors, lock = [], 0.0, [], threading.Lock()

    def call(rows: list[int]) -> None:
        nonlocal worst
        t0 = time.perf_counter()
        try:
            response = client.embeddings.create(model=name, input=[texts[i] for i in rows])
        except Exception as exc:  # counted, not raised: a row reports its errors
            with lock:
                errors.append(f"{type(exc).__name__}: {exc}"[:200])
            return
        got = np.asarray([d.embedding for d in response.data], dtype=np.float32)
        with lock:
            latencies.append((time.perf_counter() - t0) * 1000)
            worst = max(worst, float(np.abs(got - expected[rows]).max()))

    paired = base.ask("embed") if base else {}
    served_cpu = server.cpu_s() if server.stmt else {}
    before, load_before, cpu = server.metrics(), loadavg(), os.times()
    start = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(call, chunks))
    wall = time.perf_counter() - start
    used = os.times()
    delta = {k: v - before[k] for k, v in server.metrics().items()}
    served = {k: v - served_cpu[k] for k, v in server.cpu_s().items()} if server.stmt else {}
    calls = delta["stmt_batch_texts_count"]
    row = {
        "requests": len(chunks),
        "texts_per_request": 64,
        "concurrency": 4,
        "errors": errors[:3],
        "error_count": len(errors),
        "texts_per_s": round(sum(len(c) for c in chunks[: len(latencies)]) / wall, 1),
        "p50_ms": pct(latencies, 50),
        "p99_ms": pct(latencies, 99),
        "texts_per_model_call": round(delta["stmt_batch_texts_sum"] / calls, 2) if calls else None,
        "client_cpu_share": round((used.user - cpu.user + used.system - cpu.system) / wall, 3),
        "loadavg_before_after": [load_before, loadavg()],
        "max_abs_diff": worst,
        "in_process": paired,
        **server_cpu(served, len(latencies), 64 * len(latencies)),
    }
    if "embed_texts_per_s" in paired:
        row["vs_in_process"] = round(row["texts_per_s"] / paired["embed_texts_per_s"], 3)
        row["cpu_vs_in_process"] = cpu_ratio(row)
    print(f"openai 64-text c4: {json.dumps(row)}", flush=True)
    return row


def predict_row(server: Server, texts: list[str], base: Baseline, args) -> dict:
    paired = base.ask("predict")
    requests = one_text_requests(texts, "/predict", {}, 2)
    results, run = run_load(server, requests, 64, args.phase_s)
    row = {**summarize(results, run, 1), "in_process": paired}
    row["vs_in_process"] = round((row["texts_per_s"] or 0) / paired["predict_texts_per_s"], 3)
    row["cpu_vs_in_process"] = cpu_ratio(row)
    print(f"predict c64: {json.dumps(row)}", flush=True)
    return row


def overload_row(command: list[str], cores: list[int], texts: list[str], args) -> dict:
    """64-text ``/embed`` requests at concurrency 16 against ``--max-queue 256``; a client that
    gets a 429 sends its next request at once."""
    server = Server([*command, "--max-queue", "256", "--max-client-batch", "64"], cores)
    try:
        requests = [
            request_bytes("/embed", {"inputs": texts[s : s + 64]}) for s in range(0, len(texts) - 63, 64)
        ]
        results, run = run_load(server, requests * 100, 16, args.phase_s)
    finally:
        exit_code = server.stop()
    refused = [r for r in results if r[1] == 429]
    row = summarize(results, run, 64)
    row.update(
        {
            "texts_per_s": row["texts_per_s"],  # of the accepted requests
            "retry_after_on_every_429": all("retry-after" in r[3] for r in refused),
            "429_p50_ms": pct([r[2] * 1000 for r in refused], 50),
            "429_p99_ms": pct([r[2] * 1000 for r in refused], 99),
            "any_5xx": any(r[1] >= 500 for r in results),
            "exit_code_after_sigterm": exit_code,
        }
    )
    print(f"overload: {json.dumps(row)}", flush=True)
    return row


def soak_row(server: Server, texts: list[str], seconds: float) -> dict:
    """1-text requests at concurrency 16 for ``seconds``; RSS every 5 s."""
    requests = one_text_requests(texts, "/v1/embeddings", {"encoding_format": "base64"}, 2000)
    samples: list[tuple[float, float]] = []
    done = threading.Event()

    def sample() -> None:
        start = time.perf_counter()
        while not done.wait(5):
            samples.append((round(time.perf_counter() - start, 1), server.rss_mib()))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    results, run = run_load(server, requests, 16, seconds)
    done.set()
    sampler.join()
    first = [rss for t, rss in samples if t <= 60] or [server.rss_mib()]
    row = summarize(results, run, 1)
    rss = [r for _, r in samples] or [first[-1]]
    row.update(
        {"soak_s": seconds, "rss_after_1min_mib": first[-1], "rss_max_mib": max(rss), "rss_end_mib": rss[-1]}
    )
    row["rss_ratio"] = round(max(rss) / first[-1], 3)
    row["rss_samples"] = samples
    print(f"soak: {json.dumps({k: v for k, v in row.items() if k != 'rss_samples'})}", flush=True)
    return row


def peer_rows(args, cores: list[int], texts: list[str], expected: np.ndarray) -> dict:
    """infinity-emb from its own environment, on the server's cores; skipped when not installed."""
    python = Path(args.peer_python)
    if not python.exists():
        return {"skipped": f"{python} not found: make infinity-emb's environment as the docstring says"}
    from st_multitask.backbone import default_model_path

    model = str(default_model_path())
    flags = "--engine torch --device cpu --batch-size 32 --served-model-name peer --host 127.0.0.1"
    command = [str(python.parent / "infinity_emb"), "v2", "--model-id", model, *flags.split()]
    command += ["--port", "{port}", "--url-prefix", ""]
    server = Server(command, cores, stmt=False, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    try:
        rows = one_text_rows(server, texts, expected, None, args)
        rows["openai64"] = openai_row(server, texts, expected, None)
    finally:
        server.stop()
    return {"engine": "infinity-emb torch, batch 32", **rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=1536, help="unique STS-B test sentences")
    parser.add_argument("--phase-s", type=float, default=20.0, help="time bound of each load row")
    parser.add_argument("--server-args", default="", help="more stmt serve options, e.g. '--spin'")
    parser.add_argument(
        "--loss-check", type=int, default=0, help="1-text requests at concurrency 64 (0: skip)"
    )
    parser.add_argument("--soak-s", type=float, default=0.0, help="soak length at concurrency 16 (0: skip)")
    parser.add_argument("--peer", choices=["none", "infinity"], default="none")
    parser.add_argument(
        "--peer-python",
        default=os.environ.get("INFINITY_PYTHON", str(REPO / ".venv-infinity" / "bin" / "python")),
        help="the python of infinity-emb's own environment",
    )
    parser.add_argument("--out", type=Path, help="where the result goes [default: benchmarks/results/...]")
    args = parser.parse_args()

    server_cores, client_cores = split_cores()
    os.sched_setaffinity(0, client_cores)  # this process (the client) and every thread it starts
    print(
        f"CPU flags: {' '.join(cpu_flags())}; server cores {server_cores}, client {client_cores}", flush=True
    )
    texts = sts_sentences(args.texts, "test")
    texts_file = Path(tempfile.mkdtemp(prefix="serve-bench-")) / "texts.json"
    texts_file.write_text(json.dumps(texts), encoding="utf-8")
    base = Baseline(texts_file, server_cores, len(server_cores))
    expected = np.load(base.info["expected"])
    command = [
        sys.executable,
        "-m",
        "st_multitask",
        "serve",
        "--port",
        "{port}",
        *shlex.split(args.server_args),
    ]
    load_start = loadavg()
    server = Server(command, server_cores)
    try:
        info = json.loads(http_get(server.port, "/info")[1])
        rows: dict[str, Any] = one_text_rows(server, texts, expected, base, args)
        rows["openai64"] = openai_row(server, texts, expected, base)
        rows["predict_c64"] = predict_row(server, texts, base, args)
        if args.loss_check:
            requests = one_text_requests(
                texts, "/v1/embeddings", {"encoding_format": "base64"}, 1 + args.loss_check // len(texts)
            )
            results, run = run_load(server, requests[: args.loss_check], 64, 3600)
            rows["loss_check"] = summarize(results, run, 1)
            print(f"loss check: {json.dumps(rows['loss_check'])}", flush=True)
        if args.soak_s:
            rows["soak"] = soak_row(server, texts, args.soak_s)
    finally:
        exit_code = server.stop()
    rows["overload"] = overload_row(command, server_cores, texts, args)
    base.close()
    peer = None
    if args.peer != "none":
        try:
            peer = peer_rows(args, server_cores, texts, expected)
        except Exception as exc:  # the peer's failure is reported, and stmt's rows are kept
            peer = {"error": f"{type(exc).__name__}: {exc}"[-2000:]}

    c1 = rows["c1"]
    measured = {
        "c64_vs_embed": rows["c64"].get("vs_in_process"),
        "openai64_vs_embed": rows["openai64"].get("vs_in_process"),
        "predict_c64_vs_predict": rows["predict_c64"].get("vs_in_process"),
        "c64_texts_per_model_call": rows["c64"]["texts_per_model_call"],
        "c1_p50_extra_ms": round(c1["p50_ms"] - c1["in_process"]["single_p50_ms"], 2)
        if c1["p50_ms"]
        else None,
        "overload_429_p99_ms": rows["overload"]["429_p99_ms"],
        "dropped": sum(r.get("dropped", 0) for r in rows.values()),
        "soak_rss_ratio": rows["soak"]["rss_ratio"] if "soak" in rows else None,
    }
    # no target: in-process CPU a text over the server's, which other work on the machine changes
    # least (the targets are in wall time, as the issue set them)
    cpu_ratios = {
        f"{key}_cpu_vs_in_process": rows[key].get("cpu_vs_in_process")
        for key in ("c64", "openai64", "predict_c64")
    }
    met = {
        k: None if measured[k] is None else (measured[k] >= t if op == ">=" else measured[k] <= t)
        for k, (op, t) in TARGETS.items()
    }
    if peer and "c64" in peer:  # ahead of the peer at every row, in this run
        for key in ("c1", "c8", "c64", "openai64"):
            ours, theirs = rows[key]["texts_per_s"], peer[key]["texts_per_s"]
            measured[f"vs_peer_{key}"] = round(ours / theirs, 3) if ours and theirs else None
            met[f"vs_peer_{key}"] = (
                None if measured[f"vs_peer_{key}"] is None else measured[f"vs_peer_{key}"] > 1
            )
    overload = rows["overload"]
    met["overload_429_p99_ms"] = bool(
        met["overload_429_p99_ms"] and overload["retry_after_on_every_429"] and not overload["any_5xx"]
    )
    result = {
        "texts": f"{len(texts)} unique STS-B test sentences",
        "engine": f"{info['backend']} {info['precision']}",
        "server_command": " ".join(command[2:]),
        "server_limits": info["limits"],
        "cores": {
            "server": server_cores,
            "client": client_cores,
            "baseline": server_cores,
            "note": "server and in-process baseline pinned to the same cores, with the same engine and "
            "threads; the load generator pinned to the others (one core: all shared)",
        },
        "in_process_engine": base.info["engine"],
        "rows": rows,
        "peer": peer,
        "server_exit_code_after_sigterm": exit_code,
        "targets": {k: f"{op} {t}" for k, (op, t) in TARGETS.items()},
        "measured": measured,
        "met": met,
        "cpu_ratios": cpu_ratios,
        "loadavg_start_end": [load_start, loadavg()],
        "note": "loadavg counts every process on the machine: other work shared these cores unless it "
        "stays near 1-2 (the server and the client themselves).",
    }
    path = store_result("serve_bench", result, path=args.out)
    print(json.dumps({"measured": measured, "met": met}, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
