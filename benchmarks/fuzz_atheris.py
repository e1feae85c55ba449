"""Coverage-guided fuzzing (atheris, libFuzzer) of the text and manifest readers, for a time budget.

Each input's first byte picks a reader, the rest is the file: plain text, CSV, TSV and JSONL texts;
CSV and JSONL labelled sentences; CoNLL and JSONL tagged sentences; a YAML or JSON recipe (read
and type-checked, no model built); a model manifest; an index manifest. The readers run
instrumented, so libFuzzer keeps the inputs that reach new code. A reader may return or raise the
library's own error (``st_multitask.errors``); anything else is a crash: libFuzzer stops, the
input is written under ``benchmarks/out/fuzz/`` and the run reports it.

    python -m benchmarks.fuzz_atheris [--seconds 300] [--out FILE]

Not part of the test suite (``pip install atheris``; a binary wheel exists for CPython 3.11 on
x86-64 Linux). The result (inputs run, coverage, crashes with the exception and the input) is
stored with the machine, command and commit in ``benchmarks/results/<machine>/fuzz_atheris.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]  # where ``python -m benchmarks.fuzz_atheris`` runs
OUT_DIR = ROOT / "benchmarks" / "out" / "fuzz"
READERS = (
    "lines",
    "csv",
    "tsv",
    "jsonl",
    "sentences.csv",
    "sentences.jsonl",
    "tokens.conll",
    "tokens.jsonl",
    "recipe.yaml",
    "recipe.json",
    "model_manifest",
    "index_manifest",
)


def _child() -> None:
    """Run inside libFuzzer: the harness itself (never returns)."""
    import atheris

    with atheris.instrument_imports(include=["st_multitask"]):
        from st_multitask import recipe
        from st_multitask.data import iter_texts, read_sentence_examples, read_token_examples
        from st_multitask.errors import StMultitaskError
        from st_multitask.index.manifest import read_index_manifest
        from st_multitask.manifest import read_manifest

    work = Path(
        tempfile.mkdtemp(prefix="stmt-atheris-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None)
    )
    model_dir, index_dir = work / "model", work / "index"
    model_dir.mkdir()
    index_dir.mkdir()

    def read(kind: str, data: bytes) -> Any:
        if kind == "model_manifest":
            (model_dir / "st_multitask.json").write_bytes(data)
            return read_manifest(model_dir)
        if kind == "index_manifest":
            (index_dir / "manifest.json").write_bytes(data)
            return read_index_manifest(index_dir)
        name = kind if "." in kind else f"input.{'txt' if kind == 'lines' else kind}"
        path = work / name
        path.write_bytes(data)
        if kind.startswith("recipe"):
            values = recipe._read_recipe_file(path)
            training = values.get("training")
            return recipe._training_config(training if isinstance(training, dict) else {}, str(path))
        if kind.startswith("sentences"):
            return read_sentence_examples(path)
        if kind.startswith("tokens"):
            return read_token_examples(path)
        return list(iter_texts(path, errors="replace" if data[:1] == b"r" else "strict"))

    def test_one_input(data: bytes) -> None:
        if not data:
            return
        with contextlib.suppress(StMultitaskError):  # the library's own error: a clear message
            read(READERS[data[0] % len(READERS)], data[1:])

    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


def run(seconds: int) -> dict[str, Any]:
    """Fuzz in a child process for ``seconds`` and read libFuzzer's report."""
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    corpus = Path(tempfile.mkdtemp(prefix="stmt-atheris-corpus-"))
    for i, kind in enumerate(READERS):  # one small valid seed for each reader
        seed = {
            "csv": b"text,label\ngood,pos\n",
            "sentences.csv": b"text,label\ngood,pos\n",
            "tsv": b"text\tlabel\ngood\tpos\n",
            "jsonl": b'{"text": "good", "label": "pos"}\n',
            "sentences.jsonl": b'{"text": "good", "label": "pos"}\n',
            "tokens.jsonl": b'{"tokens": ["EU"], "tags": ["B-ORG"]}\n',
            "tokens.conll": b"EU B-ORG\nrejects O\n",
            "recipe.yaml": b"tasks:\n  s: {train: t.csv}\ntraining: {epochs: 1}\n",
            "recipe.json": b'{"tasks": {"s": {"train": "t.csv"}}, "training": {"epochs": 1}}',
            "model_manifest": b'{"format_version": 1, "backbone": {"type": "packaged"}, "heads": {}}',
            "index_manifest": b'{"format": "st_multitask-index", "format_version": 1, "files": {}, '
            b'"model": {"name": "m", "dim": 4}, "index": {"kind": "flat", "storage": "fp32"}, '
            b'"roles": {}, "count": 0, "generation": 1}',
        }.get(kind, b"first text\nsecond text\n")
        (corpus / f"seed-{i}").write_bytes(bytes([i]) + seed)
    command = [
        sys.executable,
        "-m",
        "benchmarks.fuzz_atheris",
        "--child",
        f"-max_total_time={seconds}",
        f"-artifact_prefix={OUT_DIR}/",
        "-max_len=4096",
        "-print_final_stats=1",
        str(corpus),
    ]
    done = subprocess.run(command, capture_output=True, text=True, errors="replace", cwd=ROOT)
    log = done.stderr
    (OUT_DIR / "last_run.log").write_text(log, encoding="utf-8")
    stats = dict(re.findall(r"^stat::(\w+):\s+(\d+)", log, flags=re.M))
    crashes = sorted(str(p) for p in OUT_DIR.glob("crash-*"))
    exceptions = re.findall(r"=== Uncaught Python exception: ===\n(.+)", log)
    edges = re.findall(r"\bcov: (\d+)", log)  # libFuzzer's coverage counters (edges) reached
    return {
        "seconds": seconds,
        "readers": list(READERS),
        "runs": int(stats.get("number_of_executed_units", 0)),
        "coverage_edges": int(edges[-1]) if edges else None,
        "corpus_inputs": len(list(corpus.iterdir())),  # the seeds and every input that reached new code
        "exit_code": done.returncode,
        "uncaught": exceptions,
        "crash_files": crashes,
    }


def main() -> None:
    if "--child" in sys.argv:
        sys.argv.remove("--child")
        _child()
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=300, help="Time budget of the fuzzing run.")
    parser.add_argument("--out", help="Also write the result JSON here.")
    args = parser.parse_args()
    from benchmarks._common import store_result

    result = run(args.seconds)
    path = store_result("fuzz_atheris", result)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    print(f"stored in {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
