"""Render stored benchmark results into the README's small table and the docs' results page.

Reads every ``benchmarks/results/<machine>/<name>.json`` (written by ``_common.store_result``: the
benchmark, its command, commit, date, machine with CPU flags, and every figure) and writes:

- the README's headline table, between ``<!-- results:start -->`` and ``<!-- results:end -->``;
- the docs site's results page (every stored result, its provenance and all of its figures),
  which ``docs/hooks/results_page.py`` renders at every ``make docs``; ``--page FILE`` writes it here.

No figure is typed by hand: a headline whose result is not stored says "not measured yet".

    python -m benchmarks.render            # rewrite the README's table
    python -m benchmarks.render --check    # exit 1 if it is out of date
    python -m benchmarks.render --page results.md   # also write the results page to a file
    python -m benchmarks.render --results DIR   # from another copy of the results (e.g. only committed ones)
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "benchmarks" / "results"
README = ROOT / "README.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"
NOT_MEASURED = "not measured yet"

Results = dict[str, dict[str, dict[str, Any]]]  # machine -> benchmark -> stored payload


def load_results(results_dir: Path = RESULTS_DIR) -> Results:
    """Every stored result, by machine folder and benchmark name (a broken file is an error)."""
    results: Results = {}
    for path in sorted(results_dir.glob("*/*.json")):
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise SystemExit(f"{path}: not a readable result ({exc})") from None
        results.setdefault(path.parent.name, {})[path.stem] = payload
    return results


def _get(payload: dict[str, Any], *keys: str) -> Any:
    value: Any = payload
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def _x100(value: Any) -> str | None:
    """A 0-1 figure, or a ``{"mean", "std"}`` over seeds, as a percentage with 2 decimals."""
    if isinstance(value, dict) and isinstance(value.get("mean"), (int, float)):
        return f"{100 * value['mean']:.2f} ± {100 * value.get('std', 0.0):.2f}"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{100 * value:.2f}"
    return None


def _plain(value: Any, digits: int = 1) -> str | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:,.{digits}f}" if isinstance(value, float) else f"{value:,}"
    return None


@dataclass(frozen=True)
class Headline:
    """One row of the README's table: what it measures, the benchmark it comes from, and how to
    read the figure from that benchmark's stored payload (``None`` when the payload lacks it)."""

    what: str
    benchmark: str
    figure: Callable[[dict[str, Any]], str | None] | None = None  # None: no headline figure chosen yet


def _sentiment(p: dict[str, Any]) -> str | None:
    return _x100(_get(p, "default model", "sentiment: three-class test", "macro_f1"))


def _topic(p: dict[str, Any]) -> str | None:
    row = _get(p, "default model", "topic: BBC test articles") or {}
    accuracy, coverage = _x100(row.get("covered_accuracy")), _x100(row.get("coverage"))
    return None if accuracy is None else f"{accuracy} (kept a topic: {coverage})"


def _serve(p: dict[str, Any]) -> str | None:
    row = _get(p, "rows", "c64")
    if row is None:  # results stored before the rows: the /embed phase
        served = _plain(_get(p, "embed_float_c64", "texts_per_s"))
        local = _get(p, "embed_float_c64", "in_process_embed_texts_per_s")  # measured right before it
        local = _plain(local if local is not None else _get(p, "in_process", "embed_batch64_texts_per_s"))
        if served is None:
            return None
        return f"{served} texts/s ({_get(p, 'engine')}; in-process `embed`: {local} texts/s)"
    served, local = _plain(row.get("texts_per_s")), _plain(_get(row, "in_process", "embed_texts_per_s"))
    return (
        f"{served} texts/s = {row.get('vs_in_process')}x in-process `embed` ({local} texts/s, same cores; "
        f"{_get(p, 'engine')}), {row.get('texts_per_model_call')} texts per model call"
    )


def _scale(p: dict[str, Any]) -> str | None:
    figures = p.get("figures") or {}
    local, ray, spark = (_plain(figures.get(f"{e}_texts_per_s")) for e in ("local", "ray", "spark"))
    if local is None:
        return None
    return f"local {local}, Ray Data {ray}, Spark {spark} texts/s ({figures.get('texts')} texts, whole jobs)"


def _fast(p: dict[str, Any]) -> str | None:
    embeds = {row.get("engine"): row for row in p.get("embed") or []}
    if "onnx fp32" not in embeds:
        return None
    text = f"{embeds['onnx fp32'].get('ratio_vs_encode')}x"
    if "onnx int8" in embeds:
        text += f" (int8: {embeds['onnx int8'].get('ratio_vs_encode')}x)"
    predicts = {row.get("engine"): row for row in (p.get("predict") or {}).get("rows") or []}
    own = (predicts.get("onnx fp32") or {}).get("speed_vs_own_embed")
    if own is not None:
        text += f"; `predict` with the three heads at {own}x the speed of `embed`"
    return text


def _index(p: dict[str, Any]) -> str | None:
    """The default HNSW configuration's chosen breadth (the smallest efSearch with recall@10 >= 0.95
    on the selection half of the queries), against the faster of exact FAISS's latencies."""
    configs = p.get("configs") or {}
    config = configs.get("hnsw-int8-M32-efC200")
    if not config or "exact_now" not in config:
        return None
    exact = config["exact_now"]
    best = min(exact["faiss_flat_ip_ms_per_query"], exact["faiss_flat_ip_ms_per_query_1_thread"])
    for row in config["breadths"]:
        if row.get("recall_at_10_selection_half", 0) >= 0.95:
            return (
                f"{best / row['ms_per_query']:.0f}x faster than exact FAISS at recall@10 "
                f"{row['recall_at_10_held_out_half']} (held-out queries; HNSW M 32, efSearch "
                f"{row['ef_search']}, {p.get('size'):,} vectors)"
            )
    return None


HEADLINES = (
    Headline(
        "similarity: STS-B test Spearman × 100",
        "quality",
        lambda p: _plain(_get(p, "sts_b_test_spearman (first model)"), digits=2),
    ),
    Headline("sentiment (negative, neutral, positive): macro-F1 × 100, test", "quality", _sentiment),
    Headline("topic: BBC test articles, accuracy × 100 of those that kept a topic", "quality", _topic),
    Headline(
        "NER: CoNLL-2003 test, entity F1 × 100",
        "quality",
        lambda p: _x100(_get(p, "ner (shipped head)", "f1")),
    ),
    Headline("`stmt serve` /v1/embeddings, 1-text requests, 64 concurrent clients", "serve_bench", _serve),
    Headline(
        "fast inference: `embed` on ONNX Runtime fp32 against `SentenceTransformer.encode`",
        "backend_speed",
        _fast,
    ),
    Headline("scaling out: `embed_dataset` on the local engine, Ray Data and Spark", "scale_bench", _scale),
    Headline(
        "vector index: the default HNSW int8 against exact FAISS, one query at a time", "index_bench", _index
    ),
)


def _date(payload: dict[str, Any]) -> str:
    return str(_get(payload, "machine", "date_utc") or "")


def latest(results: Results, benchmark: str) -> tuple[str, dict[str, Any]] | None:
    """The newest stored result of ``benchmark`` over every machine, with its machine folder."""
    found = [(machine, runs[benchmark]) for machine, runs in results.items() if benchmark in runs]
    return max(found, key=lambda item: _date(item[1])) if found else None


def describe_machine(payload: dict[str, Any]) -> str:
    """``Intel Xeon, 2 cores, 23.5 GiB; flags avx2 ...`` from a stored payload's machine record."""
    m = payload.get("machine") or {}
    flags = " ".join(m.get("cpu_flags") or []) or "none of the tracked ones"
    return f"{m.get('cpu', 'unknown CPU')}, {m.get('cores', '?')} cores, {m.get('ram_gib', '?')} GiB; CPU flags: {flags}"


def render_table(results: Results, details: str = "benchmarks/results/") -> str:
    """The README's headline table, each figure with the machine folder it was measured on."""
    lines = ["| what | result | machine |", "|---|---|---|"]
    machines: dict[str, dict[str, Any]] = {}
    for row in HEADLINES:
        found = latest(results, row.benchmark)
        figure = row.figure(found[1]) if found and row.figure else None
        if found is None or (figure is None and row.figure is not None):
            lines.append(f"| {row.what} | {NOT_MEASURED} | |")
            continue
        machine, payload = found
        machines.setdefault(machine, payload)
        if figure is None:  # stored, but no headline figure is read from it yet
            figure = f"`{row.benchmark}` is stored: see [its figures]({details})"
        lines.append(f"| {row.what} | {figure} | `{machine}` |")
    lines.append("")
    for machine, payload in sorted(machines.items()):
        lines.append(f"- `{machine}`: {describe_machine(payload)}.")
    lines.append("")
    lines.append(
        "Rendered by `benchmarks/render.py` from the stored results; their commands, commits, dates "
        f"and every figure: [{details.rstrip('/')}]({details})."
    )
    return "\n".join(lines)


def _flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _flatten(inner, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        for i, inner in enumerate(value):
            yield from _flatten(inner, f"{prefix}[{i}]")
    elif isinstance(value, list):
        yield prefix, ", ".join(map(str, value))
    else:
        yield prefix, str(value)


PROVENANCE = ("benchmark", "command", "commit", "machine")


def render_page(results: Results) -> str:
    """The docs' results page: the headline table, then every stored result with all of its figures."""
    lines = [
        "# Results",
        "",
        "Rendered by `benchmarks/render.py` from the stored results in `benchmarks/results/<machine>/`",
        "at every build of this site. Each result names the command that produced it, the commit, the",
        "date and the machine with its CPU flags; rerun the command to check a figure.",
        "",
        "## Headline figures",
        "",
        render_table(results, details="#stored-results"),
        "",
    ]
    lines += ["## Stored results", ""]
    if not results:
        lines += ["No result is stored yet.", ""]
    for machine, runs in sorted(results.items()):
        lines += [f"### Machine `{machine}`", ""]
        for name, payload in sorted(runs.items()):
            m = payload.get("machine") or {}
            software = ", ".join(
                f"{key.replace('_', '-')} {m[key]}"
                for key in ("python", "torch", "sentence_transformers", "st_multitask")
                if m.get(key)
            )
            lines += [
                f"#### {name}",
                "",
                f"- command: `{payload.get('command', '?')}`",
                f"- commit: `{payload.get('commit', '?')}`, date: {m.get('date_utc', '?')}",
                f"- machine: {describe_machine(payload)}; {software}",
                "",
                "| figure | value |",
                "|---|---|",
            ]
            for key, value in payload.items():
                if key in PROVENANCE:
                    continue
                for path, text in _flatten(value, key):
                    lines.append(f"| `{path}` | {text.replace('|', '/').replace(chr(10), ' ')} |")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def with_table(readme: str, table: str) -> str:
    """``readme`` with the text between the markers replaced by ``table``."""
    start, end = readme.find(START), readme.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"README.md has no {START} ... {END} block")
    return readme[: start + len(START)] + "\n" + table + "\n" + readme[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="exit 1 if README.md's table is stale")
    parser.add_argument(
        "--results", type=Path, default=RESULTS_DIR, help="the stored results [benchmarks/results]"
    )
    parser.add_argument("--page", type=Path, help="also write the results page (markdown) to this file")
    args = parser.parse_args(argv)
    results = load_results(args.results)
    readme = README.read_text(encoding="utf-8")
    wanted = with_table(readme, render_table(results))
    if args.check:
        if wanted != readme:
            print(
                "README.md's results table is out of date: run python -m benchmarks.render", file=sys.stderr
            )
            return 1
        return 0
    if wanted != readme:
        tmp = README.with_suffix(".md.tmp")
        tmp.write_text(wanted, encoding="utf-8")
        tmp.replace(README)
        print("wrote README.md")
    if args.page:
        args.page.write_text(render_page(results), encoding="utf-8")
        print(f"wrote {args.page}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
