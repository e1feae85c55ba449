"""Peak memory (RSS) of ``stmt embed`` as the input grows: it streams, so RSS should stay nearly flat.

Builds text files of N lines (default 2,000 and 200,000) by cycling the unique STS-B train sentences
(shuffled once with a fixed seed, so every size sees the same mix of lengths) in a temporary folder,
then runs ``stmt embed INPUT -o OUT.npy`` for each size as a child process. A tiny Python launcher
runs the command and reports ``getrusage(RUSAGE_CHILDREN).ru_maxrss`` (the peak RSS of the stmt
process) and its wall time. Each .npy is checked with ``np.load(mmap_mode="r")``: shape (N, 384),
float32, unit rows, repeated sentences give the same vectors, and its first rows match
``st_multitask.embed`` in this process. Reports RSS in MiB, wall time, lines/s and the ratio
RSS(largest)/RSS(smallest) (target <= 1.3). Each run also records the share of CPU other processes
used meanwhile ("other_cpu_load"); wall times are only clean where it is about 0.

    HF_HUB_OFFLINE=1 python -m benchmarks.embed_rss [--sizes 2000,200000] [--batch-size 64]
        [--backend torch|onnx|openvino|auto] [--precision fp32|int8] [--out FILE]

The first rows are always compared with the torch path's vectors (sentence-transformers').

The 200,000-line run takes a while on a small CPU machine (about 15-25 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np

from benchmarks._common import OtherLoad, load_sts_b, store_result

TARGET_RATIO = 1.3
MARKER = "EMBED_RSS_RESULT "
# Runs argv[1:], then prints the peak RSS (KiB on Linux) of its children and the wall time.
LAUNCHER = (
    "import json, resource, subprocess, sys, time\n"
    "start = time.perf_counter()\n"
    "subprocess.run(sys.argv[1:], check=True)\n"
    "wall = time.perf_counter() - start\n"
    "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
    f"print({MARKER!r} + json.dumps({{'maxrss_kib': rss, 'wall_s': wall}}), flush=True)\n"
)


def parse_sizes(text: str) -> list[int]:
    try:
        sizes = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--sizes must be comma-separated integers, got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("--sizes needs at least one positive integer")
    return sizes


def pool_of_sentences(seed: int | None) -> list[str]:
    """Unique STS-B train sentences, whitespace collapsed (one text a line, no blanks)."""
    frame = load_sts_b("train")
    texts = list(dict.fromkeys(" ".join(t.split()) for t in [*frame["sentence1"], *frame["sentence2"]]))
    texts = [t for t in texts if t]
    if seed is not None:
        random.Random(seed).shuffle(texts)
    return texts


def write_input(path: Path, pool: list[str], n: int) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for i in range(n):
            f.write(pool[i % len(pool)] + "\n")


def stmt_path() -> str:
    candidate = Path(sys.executable).parent / "stmt"
    if not candidate.is_file():
        raise SystemExit(
            f"{candidate} not found: install the package into this environment (pip install -e .)"
        )
    return str(candidate)


def run_one(stmt: str, input_path: Path, output_path: Path, extra: list[str]) -> dict[str, Any]:
    cmd = [sys.executable, "-c", LAUNCHER, stmt, "embed", str(input_path), "-o", str(output_path), *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"stmt embed failed with exit code {proc.returncode}: {' '.join(cmd[3:])}")
    lines = [line for line in proc.stdout.splitlines() if line.startswith(MARKER)]
    if not lines:
        raise SystemExit(f"the launcher printed no result; stdout was:\n{proc.stdout[-2000:]}")
    measured = json.loads(lines[-1][len(MARKER) :])
    measured["stderr_tail"] = proc.stderr.strip().splitlines()[-3:]
    return measured


def check_output(path: Path, n: int, dim: int, period: int) -> dict[str, Any]:
    """Shape, dtype, unit norms, and equality of rows that hold the same sentence."""
    array = np.load(path, mmap_mode="r")
    ok_shape = tuple(array.shape) == (n, dim)
    sample = np.asarray(array[np.linspace(0, n - 1, num=min(n, 2000), dtype=np.int64)], dtype=np.float64)
    norms = np.linalg.norm(sample, axis=1)
    repeat_diff = None
    if n > period:
        k = min(period, n - period, 500)
        repeat_diff = float(np.max(np.abs(np.asarray(array[:k], np.float64) - array[period : period + k])))
    return {
        "shape": list(array.shape),
        "dtype": str(array.dtype),
        "shape_ok": ok_shape and array.dtype == np.float32,
        "finite": bool(np.isfinite(sample).all()),
        "max_norm_error": float(np.max(np.abs(norms - 1.0))),
        "repeated_rows_max_abs_diff": repeat_diff,
        "npy_bytes": path.stat().st_size,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=parse_sizes, default=[2000, 200_000], help="Lines per input file.")
    parser.add_argument("--batch-size", type=int, default=64, help="Passed to stmt embed --batch-size.")
    parser.add_argument(
        "--chunk-size", type=int, default=None, help="Passed to stmt embed (its default if unset)."
    )
    parser.add_argument("--seed", type=int, default=0, help="Shuffle seed for the sentence pool.")
    parser.add_argument("--no-shuffle", action="store_true", help="Cycle the sentences in file order.")
    parser.add_argument("--keep", type=Path, default=None, help="Write inputs/outputs here and keep them.")
    parser.add_argument("--dim", type=int, default=384, help="Expected embedding width.")
    parser.add_argument(
        "--out", type=Path, default=None, help="JSON path [default: results/<machine>/embed_rss.json]."
    )
    parser.add_argument(
        "--backend", default="torch", help="Passed to stmt embed --backend (torch, onnx, ...)."
    )
    parser.add_argument("--precision", default="fp32", help="Passed to stmt embed --precision.")
    args = parser.parse_args()

    stmt = stmt_path()
    pool = pool_of_sentences(None if args.no_shuffle else args.seed)
    extra = ["--batch-size", str(args.batch_size), "--device", "cpu"]
    extra += ["--backend", args.backend, "--precision", args.precision]
    if args.chunk_size is not None:
        extra += ["--chunk-size", str(args.chunk_size)]

    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="embed_rss_") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for n in args.sizes:
            input_path, output_path = folder / f"lines_{n}.txt", folder / f"vectors_{n}.npy"
            write_input(input_path, pool, n)
            print(f"stmt embed {n:,} lines ...", flush=True)
            start = time.perf_counter()
            with OtherLoad() as load:
                measured = run_one(stmt, input_path, output_path, extra)
            outer = time.perf_counter() - start
            check = check_output(output_path, n, args.dim, len(pool))
            run = {
                "lines": n,
                "input_bytes": input_path.stat().st_size,
                "peak_rss_kib": measured["maxrss_kib"],
                "peak_rss_mib": round(measured["maxrss_kib"] / 1024, 1),
                "wall_s": round(measured["wall_s"], 2),
                "wall_with_launcher_s": round(outer, 2),
                "lines_per_s": round(n / measured["wall_s"], 1),
                "other_cpu_load": load.fraction,
                "stmt_stderr": measured["stderr_tail"],
                **check,
            }
            runs.append(run)
            print(
                f"  peak RSS {run['peak_rss_mib']:.1f} MiB, {run['wall_s']:.1f} s, {run['lines_per_s']:.1f} lines/s, "
                f"shape {tuple(check['shape'])} {check['dtype']} ({'ok' if check['shape_ok'] else 'WRONG'})",
                flush=True,
            )
        # content check: the first rows of the smallest file against the library, in this process
        import st_multitask

        first = min(args.sizes)
        k = min(first, 64)
        with open(folder / f"lines_{first}.txt", encoding="utf-8") as f:
            head = [next(f).rstrip("\n") for _ in range(k)]
        reference = st_multitask.embed(head, batch_size=args.batch_size, backend="torch")
        stored = np.load(folder / f"vectors_{first}.npy", mmap_mode="r")[:k]
        content_diff = float(np.max(np.abs(reference.astype(np.float64) - stored)))

    small, large = runs[0], runs[-1]
    ratio = large["peak_rss_kib"] / small["peak_rss_kib"]
    result = {
        "measured_command": f"stmt embed INPUT -o OUT.npy {' '.join(extra)}",
        "sizes": args.sizes,
        "shuffled_seed": None if args.no_shuffle else args.seed,
        "sentence_pool": len(pool),
        "runs": runs,
        "rss_ratio_largest_over_smallest": round(ratio, 4),
        "rss_ratio_sizes": [small["lines"], large["lines"]],
        "target_ratio": TARGET_RATIO,
        "within_target": ratio <= TARGET_RATIO,
        "first_rows_vs_st_multitask_embed_max_abs_diff": content_diff,
        "all_shapes_ok": all(r["shape_ok"] for r in runs),
    }
    path = store_result("embed_rss", result, path=args.out)
    print("    lines  peak RSS MiB   wall s   lines/s  other CPU load")
    for r in runs:
        load = r["other_cpu_load"]
        print(
            f"{r['lines']:>9,}  {r['peak_rss_mib']:>12.1f}  {r['wall_s']:>7.1f}  {r['lines_per_s']:>8.1f}  "
            f"{load if load is not None else float('nan'):>14.2f}"
        )
    verdict = "within" if result["within_target"] else "ABOVE"
    print(f"RSS({large['lines']:,})/RSS({small['lines']:,}) = {ratio:.3f} ({verdict} target {TARGET_RATIO})")
    print(f"first {k} rows vs st_multitask.embed: max abs diff {content_diff:.3g}")
    print(f"wrote {path}")
    if not result["all_shapes_ok"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
