"""The parts of ``benchmarks/serve_bench.py``: the cores each side runs on, a server in a child
process (``stmt serve`` or a peer), the in-process baseline in a child process of its own, and a
small keep-alive HTTP/1.1 load generator on asyncio that counts dropped connections instead of
stopping at the first.

The load generator runs in the benchmark's own process, pinned (with every thread it starts) to
the client's cores; the server and the baseline run pinned to the other cores, so the client does
not take the server's CPU and the baseline runs on the same cores the server had.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent


def pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 2) if values else None


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def split_cores() -> tuple[list[int], list[int]]:
    """(server cores, client cores): the client gets the last core this process may use, the
    server (and the in-process baseline) the rest; one core: both share it."""
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        return cores, cores
    return cores[:-1], cores[-1:]


def pinned(command: list[str], cores: list[int]) -> list[str]:
    """``command`` under ``taskset`` on ``cores`` (as it is where taskset is missing)."""
    from shutil import which

    if which("taskset") is None:
        return command
    return ["taskset", "-c", ",".join(map(str, cores)), *command]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class Server:
    """``command`` (given ``{port}``) run on ``cores`` until ``GET /health`` answers 200; its log in a
    temporary file. ``metrics_prefix``: where ``/metrics`` has stmt's batch counters (None: a peer)."""

    def __init__(self, command: list[str], cores: list[int], stmt: bool = True, env: dict | None = None):
        self.port = free_port()
        self.stmt = stmt
        self.log = Path(tempfile.mkstemp(prefix="serve-bench-", suffix=".log")[1])
        args = [part.format(port=self.port) for part in command]
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                pinned(args, cores), stdout=out, stderr=subprocess.STDOUT, cwd=REPO, env=env
            )
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{args[0]} exited:\n{self.log.read_text()[-4000:]}")
            try:
                if http_get(self.port, "/health")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{args[0]} did not become healthy in 600 s")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def metrics(self) -> dict[str, float]:
        names = (
            "stmt_batch_texts_sum",
            "stmt_batch_texts_count",
            "stmt_batch_tokens_sum",
            "stmt_rejected_total",
        )
        values = dict.fromkeys(names, 0.0)
        if not self.stmt:
            return values
        for line in http_get(self.port, "/metrics")[1].decode().splitlines():
            name, _, value = line.partition(" ")
            if name in values:
                values[name] = float(value)
        return values

    def cpu_s(self) -> dict[str, float]:
        """CPU seconds the server used so far: in the model (``stmt_model_cpu_seconds``: the thread
        that runs it; a one-thread engine runs there) and the rest of the process (the event loop:
        HTTP, JSON, tokenising; a multi-threaded engine's pool too)."""
        model = 0.0
        for line in http_get(self.port, "/metrics")[1].decode().splitlines():
            if line.startswith("stmt_model_cpu_seconds_total "):
                model = float(line.split()[1])
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
        return {"model": model, "other": total - model}

    def rss_mib(self) -> float:
        """The server's resident memory (the process under taskset: taskset execs it)."""
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


class Baseline:
    """The in-process figures, from a child process on the server's cores with the engine the
    server runs (same backend, precision and threads): ``ask("embed"|"predict"|"single")``."""

    def __init__(self, texts_file: Path, cores: list[int], threads: int):
        command = [sys.executable, "-m", "benchmarks._serve_load", str(texts_file), str(threads)]
        self.process = subprocess.Popen(
            pinned(command, cores), stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=REPO, text=True
        )
        self.info = self._read()

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the baseline process exited")
        return dict(json.loads(line))

    def ask(self, what: str) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(what + "\n")
        self.process.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(60)


def _baseline_worker(texts_file: str, threads: int) -> None:
    """The child of :class:`Baseline`: loads what ``stmt serve`` loads by default, answers on stdout."""
    from st_multitask import embed, load

    texts = json.loads(Path(texts_file).read_text(encoding="utf-8"))
    model = load(backend="auto", precision="fp32", threads=threads)
    vectors = embed(texts, model=model, batch_size=64)  # warm-up too
    model.predict(texts[:64], batch_size=64)
    expected = Path(texts_file).with_suffix(".npy")
    np.save(expected, vectors)
    engine = f"{getattr(model, 'backend', 'torch')} {getattr(model, 'precision', 'fp32')}, {threads} threads"
    print(json.dumps({"engine": engine, "expected": str(expected)}), flush=True)
    for line in sys.stdin:
        what, start, out = line.strip(), time.perf_counter(), {}
        if what == "single":  # p50 of 100 one-text calls
            times = []
            for text in texts[:100]:
                t0 = time.perf_counter()
                embed([text], model=model)
                times.append((time.perf_counter() - t0) * 1000)
            out = {"single_p50_ms": pct(times, 50)}
        elif what in ("embed", "predict"):  # texts/s over 512 texts in batches of 64, and CPU a text
            chunk, cpu = texts[:512], time.process_time()
            if what == "embed":
                embed(chunk, model=model, batch_size=64)
            else:
                model.predict(chunk, batch_size=64)
            out = {
                f"{what}_texts_per_s": round(len(chunk) / (time.perf_counter() - start), 1),
                "cpu_ms_per_text": round((time.process_time() - cpu) * 1000 / len(chunk), 2),
            }
        print(json.dumps(out), flush=True)


# -- the load generator -------------------------------------------------------------------------
async def _read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("the server closed the connection without a response")
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
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _load(port: int, requests: list[bytes], concurrency: int, max_s: float) -> tuple[list, list]:
    """Send ``requests`` over ``concurrency`` keep-alive connections until all are sent or ``max_s``
    passed. Returns the answers (index, status, seconds, headers, body) and the dropped requests
    (index, what happened): a connection closed or reset without a response (then a new one)."""
    results: list[tuple] = []
    dropped: list[tuple[int, str]] = []
    counter = iter(range(len(requests)))
    deadline = time.perf_counter() + max_s

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for i in counter:
                if time.perf_counter() > deadline:
                    break
                start = time.perf_counter()
                try:
                    writer.write(requests[i])
                    status, headers, body = await _read_response(reader)
                except (ConnectionError, asyncio.IncompleteReadError) as exc:
                    dropped.append((i, f"{type(exc).__name__}: {exc}"))
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    continue
                results.append((i, status, time.perf_counter() - start, headers, body))
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results, dropped


def run_load(server: Server, requests: list[bytes], concurrency: int, max_s: float) -> tuple[list, dict]:
    """The load, with what a row records around it: wall time, the client's CPU share, dropped
    requests, /metrics deltas and the load average before and after."""
    before, load_before, cpu = server.metrics(), loadavg(), os.times()
    served_cpu = server.cpu_s() if server.stmt else {}
    start = time.perf_counter()
    results, dropped = asyncio.run(_load(server.port, requests, concurrency, max_s))
    wall = time.perf_counter() - start
    used = os.times()
    after = server.metrics()
    served = {k: v - served_cpu[k] for k, v in server.cpu_s().items()} if server.stmt else {}
    return results, {
        "server_cpu": served,
        "wall": wall,
        "delta": {k: after[k] - before[k] for k in after},
        "dropped": dropped,
        "client_cpu": (used.user - cpu.user + used.system - cpu.system) / wall,
        "loadavg": [load_before, loadavg()],
    }


def summarize(results: list[tuple], run: dict, texts_per_request: int) -> dict[str, Any]:
    ok = [r for r in results if r[1] == 200]
    latencies = [r[2] * 1000 for r in ok]
    statuses: dict[str, int] = {}
    for r in results:
        statuses[str(r[1])] = statuses.get(str(r[1]), 0) + 1
    delta, wall = run["delta"], run["wall"]
    calls = delta["stmt_batch_texts_count"]
    return {
        "requests": len(results) + len(run["dropped"]),
        "statuses": statuses,
        "dropped": len(run["dropped"]),
        "dropped_examples": run["dropped"][:3],
        "wall_s": round(wall, 2),
        "texts_per_s": round(len(ok) * texts_per_request / wall, 1) if wall else None,
        "p50_ms": pct(latencies, 50),
        "p99_ms": pct(latencies, 99),
        "texts_per_model_call": round(delta["stmt_batch_texts_sum"] / calls, 2) if calls else None,
        "client_cpu_share": round(run["client_cpu"], 3),
        **server_cpu(run["server_cpu"], len(ok), len(ok) * texts_per_request),
        "loadavg_before_after": run["loadavg"],
    }


def server_cpu(cpu: dict[str, float], requests: int, texts: int) -> dict[str, Any]:
    """The server's CPU per text in the model and per request outside it (the request path), and
    in all per text: what other work on the machine changes least (it changes wall time most)."""
    if not cpu or not requests:
        return {}
    return {
        "server_model_cpu_ms_per_text": round(cpu["model"] * 1000 / texts, 2),
        "server_other_cpu_ms_per_request": round(cpu["other"] * 1000 / requests, 2),
        "server_cpu_ms_per_text": round((cpu["model"] + cpu["other"]) * 1000 / texts, 2),
    }


def cpu_ratio(row: dict[str, Any]) -> float | None:
    """In-process CPU a text over the server's CPU a text (1.0: the server costs no more CPU than
    calling the model in-process), from a row with its paired in-process figure."""
    served, local = row.get("server_cpu_ms_per_text"), (row.get("in_process") or {}).get("cpu_ms_per_text")
    return round(local / served, 3) if served and local else None


if __name__ == "__main__":  # the baseline worker: python -m benchmarks._serve_load TEXTS.json THREADS
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    _baseline_worker(sys.argv[1], int(sys.argv[2]))
