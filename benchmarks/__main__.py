"""One entry point for the benchmark suite.

    python -m benchmarks list
    python -m benchmarks run NAME [NAME ...] [--quick] [--dry-run]
    python -m benchmarks run all [--quick]

Each benchmark is a module of this package, run with this interpreter in a fresh process from the
repository root as ``python -m benchmarks.NAME`` (its own options follow ``--``). ``--quick`` runs
it at a smoke-test size, seconds to a few minutes on two cores, and sets ``STMT_BENCH_QUICK=1`` so
that nothing is stored under ``benchmarks/results/`` (``_common.store_result`` writes to
``benchmarks/out/quick/`` instead): a quick run checks that a benchmark works, its figures are not
results. ``all`` is every benchmark that runs on a CPU without other inputs; ``gpu_speed`` (a CUDA
machine), ``quality`` (trained models) and the training studies (``select_default``,
``head_sweep``, ``finetune``) are run by name or by their ``make`` targets.

    >>> sorted(BENCHMARKS)[:3]
    ['backend_quality', 'backend_speed', 'calibration']
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# name -> (in "all", the options of a quick run)
BENCHMARKS: dict[str, tuple[bool, list[str]]] = {
    "backend_quality": (True, ["--engines", "onnx:fp32", "--limit", "200"]),
    "backend_speed": (True, ["--rounds", "1", "--predict-texts", "64", "--cold-runs", "1"]),
    "branch_speed": (True, ["--n", "64", "--rounds", "1", "--train-n", "64"]),
    "calibration": (True, []),
    "cold_start": (True, ["--runs", "1"]),
    "considerations": (False, ["--quick"]),
    "embed_rss": (True, ["--sizes", "200,2000"]),
    "embed_speed": (True, ["--n", "256", "--rounds", "1", "--warmup", "16"]),
    "finetune": (False, ["--limit", "64", "--epochs", "1"]),
    "few_shot": (
        False,
        ["--datasets", "vader", "--sizes", "0,2", "--seeds", "0", "--limit", "20"]
        + ["--max-steps", "3", "--split", "dev", "--systems", "ours,frozen_lr"],
    ),
    "few_shot_ner": (False, ["--sizes", "10", "--seeds", "0", "--limit", "20", "--steps", "3"]),
    "fuzz_atheris": (True, ["--seconds", "10"]),
    "gpu_speed": (False, ["--n", "256", "--cpu-n", "64", "--repeats", "1", "--batch-sizes", "32"]),
    "head_sweep": (False, []),
    "index_bench": (
        True,
        ["--size", "5000", "--queries", "50", "--latency-queries", "20", "--compare-size", "2000"]
        + ["--build-lines", "2000"],
    ),
    "install_size": (True, []),
    "int8_layers": (True, ["--rounds", "1"]),
    "predict_speed": (True, ["--n", "256", "--rounds", "1"]),
    "quality": (False, []),
    "scale_bench": (True, ["--n", "200", "--rounds", "1"]),
    "select_default": (False, []),
    "serve_bench": (True, ["--texts", "64", "--phase-s", "2"]),
    "sts_eval": (True, []),
    "train_speed": (True, ["--n", "256", "--epochs", "2", "--finetune-n", "64"]),
    "zero_shot": (True, ["--limit", "40"]),
}


def _summary(name: str) -> str:
    """The first line of a script's docstring."""
    import ast

    doc = ast.get_docstring(ast.parse((HERE / f"{name}.py").read_text(encoding="utf-8"))) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def _commands(names: list[str], quick: bool, extra: list[str]) -> list[tuple[str, list[str]]]:
    chosen = [n for n, (in_all, _) in BENCHMARKS.items() if in_all] if names == ["all"] else names
    unknown = [n for n in chosen if n not in BENCHMARKS]
    if unknown:
        raise SystemExit(f"Unknown benchmark {unknown[0]!r}. Valid: all, {', '.join(sorted(BENCHMARKS))}.")
    return [
        (n, [sys.executable, "-m", f"benchmarks.{n}", *(BENCHMARKS[n][1] if quick else []), *extra])
        for n in chosen
    ]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="every benchmark, with what it measures")
    run = sub.add_parser("run", help="run benchmarks by name, or all")
    run.add_argument("names", nargs="+")
    run.add_argument("--quick", action="store_true", help="a smoke-test size; stores no result")
    run.add_argument("--dry-run", action="store_true", help="print the commands only")
    args = parser.parse_args(argv)
    if args.command == "list":
        for name, (in_all, _) in sorted(BENCHMARKS.items()):
            print(f"{name:16} {'' if in_all else '(by name) '}{_summary(name)}")
        return 0
    commands = _commands(args.names, args.quick, extra)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **({"STMT_BENCH_QUICK": "1"} if args.quick else {})}
    failed = []
    for name, command in commands:
        print("$ " + shlex.join(["python", *command[1:]]), flush=True)
        if args.dry_run:
            continue
        start = time.perf_counter()
        code = subprocess.run(command, env=env, cwd=HERE.parent).returncode
        print(f"{name}: exit {code} after {time.perf_counter() - start:.0f} s", flush=True)
        if code:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
