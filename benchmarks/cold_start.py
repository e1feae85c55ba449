"""Cold start of the CLI: ``stmt predict "one text"`` against ``stmt similarity`` of two one-line
files, each in a fresh process, in the same run (issue 29's target: predict <= 1.2x similarity),
with what each process imported and whether it hashed a graph.

    python -m benchmarks.cold_start [--runs 5] [--baseline-tree DIR]

``--baseline-tree`` times the same two commands, in the same run, with another checkout's package
first on ``PYTHONPATH`` (a git worktree of an earlier commit, with ``st_multitask/cli`` linked to
its ``cli/``), so a change's effect is measured on one machine at one time.

Both commands run on the default engine (auto: ONNX Runtime on a CPU) with a warm graph cache (a
first, unmeasured call of each exports whatever is missing). The runs alternate, and the median of
each is compared; every run records the other processes' CPU share (and the run /proc/loadavg), and ``python -X importtime``
of one extra run of each gives the heaviest imports.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._common import OtherLoad, store_result

ROOT = Path(__file__).resolve().parent.parent


def _imports(command: list[str], env: dict[str, str]) -> dict[str, object]:
    """The heavy modules a command imports, and its slowest top-level imports (ms, cumulative)."""
    done = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-c",
            "import sys; from st_multitask.cli import main; main()",
            *command,
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    top: list[tuple[int, str]] = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.split(":", 1)[1].split("|")
        if name.startswith(" ") and not name.startswith("  ") and cumulative.strip().isdigit():  # top level
            top.append((int(cumulative), name.strip()))
    names = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    heavy = [m for m in ("torch", "transformers", "sentence_transformers", "sklearn") if m in names]
    return {
        "heavy_modules": heavy,
        "slowest_imports_ms": {name: round(us / 1000, 1) for us, name in sorted(top, reverse=True)[:6]},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--baseline-tree", type=Path, help="another checkout to time beside this one")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp())
    a, b = folder / "a.txt", folder / "b.txt"
    a.write_text("The dog ran across the grass.\n", encoding="utf-8")
    b.write_text("A pet runs in a field.\n", encoding="utf-8")
    commands = {
        "predict": ["predict", "Apple is buying a U.K. startup for $1 billion"],
        "similarity": ["similarity", str(a), str(b)],
    }
    stmt = str(Path(sys.executable).with_name("stmt"))
    env = {**os.environ, "STMT_BACKEND": "auto"}
    trees = {"this": env}
    if args.baseline_tree is not None:
        trees["baseline"] = {**env, "PYTHONPATH": str(args.baseline_tree.resolve())}
    runs = {
        f"{tree} {name}": (command, tree_env)
        for tree, tree_env in trees.items()
        for name, command in commands.items()
    }
    for command, tree_env in runs.values():  # warm: the graph cache and the file hashes
        subprocess.run([stmt, *command], check=True, capture_output=True, env=tree_env)
    loadavg = {"before": Path("/proc/loadavg").read_text().split()[:3]}
    times: dict[str, list[float]] = {name: [] for name in runs}
    loads: dict[str, list[float | None]] = {name: [] for name in runs}
    hashed: dict[str, bool] = {}
    for _ in range(args.runs):
        for name, (command, tree_env) in runs.items():
            with OtherLoad() as load:
                start = time.perf_counter()
                done = subprocess.run(
                    [stmt, *command], check=True, capture_output=True, text=True, env=tree_env
                )
                times[name].append(time.perf_counter() - start)
            loads[name].append(load.fraction)
            hashed[name] = hashed.get(name, False) or "exporting" in done.stderr
    loadavg["after"] = Path("/proc/loadavg").read_text().split()[:3]
    all_medians = {name: statistics.median(v) for name, v in times.items()}
    medians = {name: all_medians[f"this {name}"] for name in commands}
    result = {
        "runs": args.runs,
        "commands": {name: "stmt " + " ".join(command) for name, command in commands.items()},
        "seconds": {name: [round(t, 3) for t in v] for name, v in times.items()},
        "median_s": {name: round(m, 3) for name, m in all_medians.items()},
        "other_cpu_load": loads,
        "loadavg": loadavg,  # /proc/loadavg (1, 5, 15 min) around the timed runs: other engineers' work
        "ratio_predict_vs_similarity": round(medians["predict"] / medians["similarity"], 2),
        "baseline": None
        if args.baseline_tree is None
        else {
            "tree_commit": subprocess.run(
                ["git", "-C", str(args.baseline_tree), "rev-parse", "--short", "HEAD"],
                capture_output=True,
                text=True,
            ).stdout.strip(),
            "ratio_predict_vs_similarity": round(
                all_medians["baseline predict"] / all_medians["baseline similarity"], 2
            ),
            "predict_speedup": round(all_medians["baseline predict"] / medians["predict"], 2),
        },
        "target": 1.2,
        "exported_during_timed_runs": hashed,
        "imports": {name: _imports(command, env) for name, command in commands.items()},
    }
    path = store_result("cold_start", result)
    print(
        f"cold stmt predict {medians['predict']:.2f}s, stmt similarity {medians['similarity']:.2f}s: "
        f"{result['ratio_predict_vs_similarity']:.2f}x (target <= 1.2x)"
    )
    if result["baseline"] is not None:
        print(f"baseline {result['baseline']}: medians {result['median_s']}")
    for name, info in result["imports"].items():
        print(
            f"{name}: heavy modules {info['heavy_modules'] or 'none'}; slowest {info['slowest_imports_ms']}"
        )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
