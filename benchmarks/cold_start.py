"""Cold start of the CLI: ``stmt predict "one text"`` against ``stmt similarity`` of two one-line
files, each in a fresh process, in the same run (issue 29's target: predict <= 1.2x similarity),
with what each process imported and whether it hashed a graph.

    python -m benchmarks.cold_start [--runs 5]

Both commands run on the default engine (auto: ONNX Runtime on a CPU) with a warm graph cache (a
first, unmeasured call of each exports whatever is missing). The runs alternate, and the median of
each is compared; every run records the other processes' CPU share, and ``python -X importtime``
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
    for command in commands.values():  # warm: the graph cache and the file hashes
        subprocess.run([stmt, *command], check=True, capture_output=True, env=env)
    times: dict[str, list[float]] = {name: [] for name in commands}
    loads: dict[str, list[float | None]] = {name: [] for name in commands}
    hashed: dict[str, bool] = {}
    for _ in range(args.runs):
        for name, command in commands.items():
            with OtherLoad() as load:
                start = time.perf_counter()
                done = subprocess.run([stmt, *command], check=True, capture_output=True, text=True, env=env)
                times[name].append(time.perf_counter() - start)
            loads[name].append(load.fraction)
            hashed[name] = hashed.get(name, False) or "exporting" in done.stderr
    medians = {name: statistics.median(v) for name, v in times.items()}
    result = {
        "runs": args.runs,
        "commands": {name: "stmt " + " ".join(command) for name, command in commands.items()},
        "seconds": {name: [round(t, 3) for t in v] for name, v in times.items()},
        "median_s": {name: round(m, 3) for name, m in medians.items()},
        "other_cpu_load": loads,
        "ratio_predict_vs_similarity": round(medians["predict"] / medians["similarity"], 2),
        "target": 1.2,
        "exported_during_timed_runs": hashed,
        "imports": {name: _imports(command, env) for name, command in commands.items()},
    }
    path = store_result("cold_start", result)
    print(
        f"cold stmt predict {medians['predict']:.2f}s, stmt similarity {medians['similarity']:.2f}s: "
        f"{result['ratio_predict_vs_similarity']:.2f}x (target <= 1.2x)"
    )
    for name, info in result["imports"].items():
        print(
            f"{name}: heavy modules {info['heavy_modules'] or 'none'}; slowest {info['slowest_imports_ms']}"
        )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
