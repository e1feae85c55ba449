"""The persistent index at scale (issue 12): latency, recall@10, memory and build memory of ``Index``.

Method, one run:

1. Real texts: every unique text the data packages hold (STS-B sentences of all splits, Rotten
   Tomatoes snippets, CoNLL-2003 sentences, BBC News sentences), shuffled with seed 0. The first
   ``--queries`` are held out as queries; the rest are the real part of the corpus. All are embedded
   with the packaged all-MiniLM-L6-v2 (``st_multitask.embed``, fp32; cached in benchmarks/out/).
2. The corpus is filled up to ``--size`` vectors with noisy copies: a copy of a random real vector
   ``e`` is ``normalize(e + s * g)``, ``g`` standard normal noise in every dimension and ``s`` drawn
   uniformly from [0.02, 0.06] per copy (cosine to its source about 0.93 to 0.63).
3. Ground truth: the exact top 10 of every query by FAISS ``IndexFlatIP`` (fp32). Recall is
   also given for each half of the queries apart: a default breadth is chosen on the first
   half (selection) and quoted on the second (held out).
4. Exact baseline latency: ``IndexFlatIP.search`` one query at a time (median over
   ``--latency-queries`` queries). Each index configuration: built with ``Index.from_embeddings``
   (timed), saved, then recall@10 over all queries and single-query latency of ``Index.search``
   (hits with their texts from SQLite) at several search breadths (efSearch / rescoring multiplier).
5. Resident memory of a loaded index: a fresh process runs ``Index.load`` and 200 queries and reports
   VmRSS / VmHWM (``/proc/self/status``), and the RSS of the same process before loading.
6. FAISS against usearch: HNSW over int8 at ``--compare-size`` vectors, same data, same queries.
7. Build memory: ``stmt index build`` (flat fp32) of 10,000 and ``--build-lines`` lines as child
   processes, peak RSS from ``getrusage(RUSAGE_CHILDREN)``, less the index file's size. The model is
   a 1-layer random BERT (hidden 32, MiniLM's vocabulary) built here, so a million lines embed in
   minutes on 2 cores; what the pipeline holds (reading, chunks, SQLite, the encoder) does not grow
   with the weights.

    HF_HUB_OFFLINE=1 python -m benchmarks.index_bench [--size 1000000] [--queries 1000]
        [--latency-queries 200] [--compare-size 200000] [--build-lines 1000000] [--skip STAGES]

Stores benchmarks/results/<machine>/index_bench.json (the built indexes stay under
benchmarks/out/index_bench/).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np

from benchmarks._common import OUT_DIR, OtherLoad, small_model, store_result

WORK = OUT_DIR / "index_bench"
K = 10
# name -> Index settings; searched at each breadth (efSearch for HNSW, rescoring multiplier for binary)
CONFIGS: dict[str, dict[str, Any]] = {
    "hnsw-int8-M16": {"kind": "hnsw", "storage": "int8", "hnsw_m": 16, "ef_construction": 40},
    "hnsw-int8-M32": {"kind": "hnsw", "storage": "int8", "hnsw_m": 32, "ef_construction": 40},
    "hnsw-int8-M32-efC200": {"kind": "hnsw", "storage": "int8", "hnsw_m": 32, "ef_construction": 200},
    "hnsw-int8-M16-efC200": {"kind": "hnsw", "storage": "int8", "hnsw_m": 16, "ef_construction": 200},
    "flat-binary-rescore": {"kind": "flat", "storage": "binary"},
    "hnsw-binary-M32-rescore": {"kind": "hnsw", "storage": "binary", "hnsw_m": 32, "ef_construction": 40},
}
BREADTHS = {
    "hnsw-int8-M16": [{"ef_search": e} for e in (64, 128, 256, 512)],
    "hnsw-int8-M32": [{"ef_search": e} for e in (64, 128, 256)],
    "hnsw-int8-M32-efC200": [{"ef_search": e} for e in (32, 64, 128, 256)],
    "hnsw-int8-M16-efC200": [{"ef_search": e} for e in (32, 64, 128, 256)],
    "flat-binary-rescore": [{"rescore_multiplier": m} for m in (5, 10, 20)],
    "hnsw-binary-M32-rescore": [{"rescore_multiplier": m, "ef_search": e} for m, e in ((10, 128), (20, 256))],
}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# data


def real_texts() -> tuple[list[str], dict[str, int]]:
    """Every unique text of the data packages, and how many each contributed."""
    from st_multitask import corpora

    parts: dict[str, list[str]] = {"sts_b": [], "rotten_tomatoes": [], "conll2003": [], "bbc_sentences": []}
    for split in ("train", "dev", "test"):
        frame = corpora.load_sts_b(split)
        parts["sts_b"] += [*frame["sentence1"], *frame["sentence2"]]
        parts["rotten_tomatoes"] += corpora.load_rotten_tomatoes(split).texts
        parts["conll2003"] += [" ".join(words) for words in corpora.load_conll2003(split).words]
        for article in corpora.load_bbc(split).texts:
            parts["bbc_sentences"] += re.split(r"(?<=[.!?])\s+|\n+", article)
    seen: dict[str, None] = {}
    counts = {}
    for name, texts in parts.items():
        before = len(seen)
        for text in texts:
            text = " ".join(str(text).split())
            if len(text) >= 3:
                seen.setdefault(text, None)
        counts[name] = len(seen) - before
    texts = list(seen)
    np.random.default_rng(0).shuffle(texts)
    return texts, counts


def real_embeddings(texts: list[str]) -> np.ndarray:
    cache = WORK / f"real-{len(texts)}.npy"
    if cache.is_file():
        return np.load(cache)
    from st_multitask import embed

    log(f"embedding {len(texts):,} real texts (once; cached in {cache})")
    vectors = embed(texts, batch_size=64)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache, vectors)
    return vectors


def noisy_corpus(real: np.ndarray, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``size`` unit vectors: the real ones, then noisy copies; and each row's source row."""
    rng = np.random.default_rng(seed)
    out = np.empty((size, real.shape[1]), dtype=np.float32)
    n = min(len(real), size)
    out[:n] = real[:n]
    source = np.arange(size)
    for start in range(n, size, 100_000):
        stop = min(size, start + 100_000)
        src = rng.integers(0, n, stop - start)
        noise = rng.standard_normal((stop - start, real.shape[1]), dtype=np.float32)
        scale = rng.uniform(0.02, 0.06, (stop - start, 1)).astype(np.float32)
        block = real[src] + scale * noise
        out[start:stop] = block / np.linalg.norm(block, axis=1, keepdims=True)
        source[start:stop] = src
    return out, source


# ---------------------------------------------------------------------------------------------
# measurements


def recall(found: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(a[a >= 0]) & set(b)) / K for a, b in zip(found, exact)]))


def median_ms(fn: Any, queries: np.ndarray) -> float:
    fn(queries[:1])  # warm
    times = []
    for q in queries:
        start = time.perf_counter()
        fn(q[None, :])
        times.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(times), 4)


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


RSS_SCRIPT = r"""
import json, sys, time
import numpy as np
def status():
    fields = {}
    for line in open('/proc/self/status'):
        key, _, value = line.partition(':')
        if key in ('VmRSS', 'VmHWM'):
            fields[key] = int(value.split()[0]) / 1024
    return fields
from st_multitask.index import Index
import faiss
queries = np.load(sys.argv[2])
before = status()
start = time.perf_counter()
index = Index.load(sys.argv[1])
load_s = time.perf_counter() - start
for q in queries:
    index.search(q[None, :], top_k=10)
after = status()
print(json.dumps({'rss_before_load_mib': before['VmRSS'], 'rss_loaded_mib': after['VmRSS'],
                  'peak_mib': after['VmHWM'], 'load_s': load_s}))
"""


def loaded_rss(path: Path, queries: np.ndarray) -> dict[str, Any]:
    qfile = WORK / "rss-queries.npy"
    np.save(qfile, queries[:200])
    out = subprocess.run(
        [sys.executable, "-c", RSS_SCRIPT, str(path), str(qfile)], capture_output=True, text=True, check=True
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["index_rss_mib"] = round(result["rss_loaded_mib"] - result["rss_before_load_mib"], 1)
    return result


def exact_latency(flat: Any, queries: np.ndarray, latency_queries: int) -> dict[str, Any]:
    """Single-query latency of exact FAISS ``IndexFlatIP``, with all threads and with one, and the
    share of CPU other processes used meanwhile."""
    import faiss

    few = queries[: min(latency_queries, 100)]
    with OtherLoad() as load:
        lat = median_ms(lambda q, ix=flat: ix.search(q, K), few)
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        lat_one = median_ms(lambda q, ix=flat: ix.search(q, K), few)
        faiss.omp_set_num_threads(threads)
    return {
        "faiss_flat_ip_ms_per_query": lat,
        "faiss_threads": threads,
        "faiss_flat_ip_ms_per_query_1_thread": lat_one,
        "other_cpu_load": load.fraction,
    }


def exact_stage(
    corpus: np.ndarray, queries: np.ndarray, latency_queries: int
) -> tuple[Any, np.ndarray, dict]:
    """The exact index, the ground truth (top 10 of every query) and exact latency now."""
    import faiss

    flat = faiss.IndexFlatIP(corpus.shape[1])
    flat.add(corpus)
    start = time.perf_counter()
    _, exact = flat.search(queries, K)
    batch_s = time.perf_counter() - start
    return (
        flat,
        exact,
        {**exact_latency(flat, queries, latency_queries), "ground_truth_batch_s": round(batch_s, 1)},
    )


def config_stage(
    name: str,
    corpus: np.ndarray,
    texts: list[str],
    queries: np.ndarray,
    exact: np.ndarray,
    latency_queries: int,
    flat: Any,
) -> dict[str, Any]:
    """Build one configuration, then its recall and latency at each breadth beside exact FAISS's
    latency measured again just before (a build takes long; the machine may have changed)."""
    from st_multitask.index import Index

    target = WORK / name
    shutil.rmtree(target, ignore_errors=True)
    with OtherLoad() as load:
        start = time.perf_counter()
        index = Index.from_embeddings(corpus, texts, **CONFIGS[name], workdir=WORK)
        build_s = time.perf_counter() - start
    index.save(target)
    record: dict[str, Any] = {
        "settings": CONFIGS[name],
        "build_s": round(build_s, 1),
        "build_other_cpu_load": load.fraction,
        "disk_bytes": dir_bytes(target),
        "files": {p.name: p.stat().st_size for p in target.iterdir()},
        "breadths": [],
    }
    record["exact_now"] = exact_latency(flat, queries, latency_queries)
    exact_ms = record["exact_now"]["faiss_flat_ip_ms_per_query"]
    for breadth in BREADTHS[name]:
        for key, value in breadth.items():
            setattr(index.settings, key, value)
        hits = index.search(queries, top_k=K)
        found = np.array([[h["corpus_id"] for h in row] + [-1] * (K - len(row)) for row in hits])
        lat = median_ms(lambda q, ix=index: ix.search(q, top_k=K), queries[:latency_queries])
        half = len(queries) // 2  # a breadth is chosen on the first half, reported on the second
        record["breadths"].append(
            {
                **breadth,
                "recall_at_10": round(recall(found, exact), 4),
                "recall_at_10_selection_half": round(recall(found[:half], exact[:half]), 4),
                "recall_at_10_held_out_half": round(recall(found[half:], exact[half:]), 4),
                "ms_per_query": lat,
                "times_faster_than_exact": round(exact_ms / lat, 1),
            }
        )
        log(f"{name} {breadth}: {record['breadths'][-1]}")
    record["loaded"] = loaded_rss(target, queries)
    log(f"{name}: build {build_s:.0f}s, disk {record['disk_bytes'] / 1e6:.0f} MB, {record['loaded']}")
    del index
    return record


def compare_stage(corpus: np.ndarray, queries: np.ndarray, latency_queries: int) -> dict[str, Any]:
    """FAISS IndexHNSWSQ (8-bit) against usearch (i8) at the same size, links and breadth."""
    import faiss
    from usearch.index import Index as UIndex

    flat = faiss.IndexFlatIP(corpus.shape[1])
    flat.add(corpus)
    _, exact = flat.search(queries, K)
    del flat
    results: dict[str, Any] = {"size": len(corpus)}
    for m in (16, 32):
        start = time.perf_counter()
        fx = faiss.IndexHNSWSQ(corpus.shape[1], faiss.ScalarQuantizer.QT_8bit, m, faiss.METRIC_INNER_PRODUCT)
        fx.hnsw.efConstruction = 40
        fx.train(corpus)
        fx.add(corpus)
        f_build = time.perf_counter() - start
        fx.hnsw.efSearch = 128
        _, f_ids = fx.search(queries, K)
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)  # one query at a time, as Index.search does
        f_lat = median_ms(lambda q, ix=fx: ix.search(q, K), queries[:latency_queries])
        faiss.omp_set_num_threads(threads)
        del fx
        start = time.perf_counter()
        ux = UIndex(
            ndim=corpus.shape[1],
            metric="ip",
            dtype="i8",
            connectivity=m,
            expansion_add=40,
            expansion_search=128,
        )
        ux.add(np.arange(len(corpus)), corpus)
        u_build = time.perf_counter() - start
        u_ids = ux.search(queries, K).keys
        u_lat = median_ms(lambda q, ix=ux: ix.search(q, K, threads=1), queries[:latency_queries])
        u_mem = ux.memory_usage
        del ux
        results[f"M{m}"] = {
            "faiss_hnsw_sq8": {
                "build_s": round(f_build, 1),
                "recall_at_10": round(recall(f_ids, exact), 4),
                "ms_per_query": f_lat,
            },
            "usearch_i8": {
                "build_s": round(u_build, 1),
                "recall_at_10": round(recall(np.asarray(u_ids, dtype=np.int64), exact), 4),
                "ms_per_query": u_lat,
                "memory_bytes": int(u_mem),
            },
        }
        log(f"faiss vs usearch M={m}: {results[f'M{m}']}")
    return results


LAUNCHER = (
    "import json, resource, subprocess, sys, time\n"
    "start = time.perf_counter()\n"
    "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)\n"
    "print(json.dumps({'maxrss_kib': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,"
    " 'wall_s': time.perf_counter() - start}))\n"
)


def build_memory_stage(texts: list[str], sizes: list[int]) -> dict[str, Any]:
    stmt = str(Path(sys.executable).parent / "stmt")
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(dir=WORK) as tmp:
        tmp_path = Path(tmp)
        model = small_model(tmp_path / "small")
        for n in [100, *sizes]:  # the first, unmeasured, exports the model's graph (with torch) once
            corpus = tmp_path / f"lines-{n}.txt"
            with open(corpus, "w", encoding="utf-8") as f:
                for i in range(n):
                    f.write(texts[i % len(texts)] + "\n")
            target = tmp_path / f"idx-{n}"
            cmd = [
                sys.executable,
                "-c",
                LAUNCHER,
                stmt,
                "index",
                "build",
                str(corpus),
                "-o",
                str(target),
                "--model",
                str(model),
            ]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
            measured = json.loads(proc.stdout.strip().splitlines()[-1])
            index_bytes = (target / "index.faiss").stat().st_size
            peak = measured["maxrss_kib"] / 1024
            out[str(n)] = {
                "peak_rss_mib": round(peak, 1),
                "index_file_mib": round(index_bytes / 2**20, 1),
                "peak_less_index_mib": round(peak - index_bytes / 2**20, 1),
                "wall_s": round(measured["wall_s"], 1),
            }
            log(f"build memory {n} lines: {out[str(n)]}")
        del out["100"]
    small, large = out[str(sizes[0])], out[str(sizes[-1])]
    out["ratio_less_index"] = round(large["peak_less_index_mib"] / small["peak_less_index_mib"], 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--latency-queries", type=int, default=200)
    parser.add_argument("--compare-size", type=int, default=200_000)
    parser.add_argument("--build-lines", type=int, default=1_000_000)
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--skip", default="", help="comma-separated: configs, compare, build")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    WORK.mkdir(parents=True, exist_ok=True)
    import faiss

    result: dict[str, Any] = {"size": args.size, "k": K}
    texts, counts = real_texts()
    queries_text, corpus_text = texts[: args.queries], texts[args.queries :]
    result["real_texts"] = {"total": len(texts), "by_source": counts, "queries": len(queries_text)}
    if {"configs", "compare"} <= skip:  # build memory alone: no vectors needed
        result["build_memory"] = build_memory_stage(texts, [10_000, args.build_lines])
        log(f"wrote {store_result('index_bench_build', result, path=args.out)}")
        return
    vectors = real_embeddings(texts)
    queries, real = vectors[: args.queries], vectors[args.queries :]
    corpus, source = noisy_corpus(real, args.size)
    names = [
        corpus_text[s] if i < len(real) else f"[copy of {s}] {corpus_text[s]}" for i, s in enumerate(source)
    ]
    result["corpus"] = {"real": min(len(real), args.size), "noisy_copies": max(0, args.size - len(real))}
    log(
        f"corpus {args.size:,} vectors ({len(real):,} real), {len(queries):,} queries; faiss {faiss.__version__}"
    )
    result["faiss_version"] = faiss.__version__
    flat, exact, result["exact"] = exact_stage(corpus, queries, args.latency_queries)
    log(f"exact: {result['exact']}")
    if "configs" not in skip:
        result["configs"] = {}
        for name in args.configs.split(","):
            result["configs"][name] = config_stage(
                name, corpus, names, queries, exact, args.latency_queries, flat
            )
            path = store_result(
                "index_bench", result, path=args.out
            )  # partial results survive a later failure
    if "compare" not in skip:
        result["faiss_vs_usearch"] = compare_stage(corpus[: args.compare_size], queries, args.latency_queries)
        path = store_result("index_bench", result, path=args.out)
    if "build" not in skip:
        result["build_memory"] = build_memory_stage(texts, [10_000, args.build_lines])
    path = store_result("index_bench", result, path=args.out)
    log(f"wrote {path}")


if __name__ == "__main__":
    main()
