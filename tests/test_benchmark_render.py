"""benchmarks/render.py: the README's results table and docs/results.md come from the stored results."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def render():
    spec = importlib.util.spec_from_file_location("benchmarks_render", ROOT / "benchmarks" / "render.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _store(folder: Path, machine: str, name: str, **figures) -> None:
    payload = {
        "benchmark": name,
        "command": f"python -m benchmarks.{name}",
        "commit": "abc1234",
        "machine": {
            "cpu": "Test CPU",
            "cores": 2,
            "ram_gib": 8.0,
            "cpu_flags": ["avx2"],
            "date_utc": "2026-12-01",
        },
        **figures,
    }
    (folder / machine).mkdir(parents=True, exist_ok=True)
    (folder / machine / f"{name}.json").write_text(json.dumps(payload), encoding="utf-8")


def test_readme_table_is_rendered_from_the_stored_results(render):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = render.render_table(render.load_results())
    assert render.with_table(readme, table) == readme, "run: python -m benchmarks.render"


def test_nothing_stored_is_not_measured_yet(render, tmp_path):
    table = render.render_table(render.load_results(tmp_path))
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert rows and all(render.NOT_MEASURED in row for row in rows)
    assert not any(char.isdigit() for row in rows for char in row.split("|")[2])


def test_a_stored_figure_is_shown_with_its_machine(render, tmp_path):
    _store(
        tmp_path,
        "2c-avx2",
        "quality",
        **{
            "sts_b_test_spearman (first model)": 82.03,
            "default model": {"sentiment: three-class test": {"macro_f1": {"mean": 0.7012, "std": 0.0031}}},
            "ner (shipped head)": {"f1": 0.8854},
        },
    )
    table = render.render_table(render.load_results(tmp_path))
    assert "| similarity: STS-B test Spearman × 100 | 82.03 | `2c-avx2` |" in table
    assert "70.12 ± 0.31" in table and "88.54" in table
    assert (
        "| topic: BBC test articles, accuracy × 100 of those that kept a topic | not measured yet | |"
        in table
    )
    assert "`2c-avx2`: Test CPU, 2 cores, 8.0 GiB; CPU flags: avx2." in table
    page = render.render_page(render.load_results(tmp_path))
    assert (
        "- command: `python -m benchmarks.quality`" in page and "| `ner (shipped head).f1` | 0.8854 |" in page
    )


def test_the_newest_result_of_several_machines_wins(render, tmp_path):
    _store(tmp_path, "a", "quality", **{"sts_b_test_spearman (first model)": 1.5})
    _store(tmp_path, "b", "quality", **{"sts_b_test_spearman (first model)": 2.5})
    (tmp_path / "b" / "quality.json").write_text(
        (tmp_path / "b" / "quality.json").read_text().replace("2026-12-01", "2026-12-02"), encoding="utf-8"
    )
    assert "| 2.50 | `b` |" in render.render_table(render.load_results(tmp_path))


def test_check_reports_a_stale_readme(render, tmp_path, monkeypatch, capsys):
    readme = tmp_path / "README.md"
    readme.write_text(f"x\n{render.START}\nold\n{render.END}\n", encoding="utf-8")
    monkeypatch.setattr(render, "README", readme)
    assert render.main(["--check", "--results", str(tmp_path / "none")]) == 1
    assert "README.md's results table is out of date" in capsys.readouterr().err
    page = tmp_path / "page.md"
    assert render.main(["--results", str(tmp_path / "none"), "--page", str(page)]) == 0
    assert render.main(["--check", "--results", str(tmp_path / "none")]) == 0
    assert render.NOT_MEASURED in readme.read_text(encoding="utf-8")
    assert "No result is stored yet." in page.read_text(encoding="utf-8")
