"""What each backend adds to the install: the installed size of the distributions an extra pulls in
beyond the base install (its dependency closure less the base closure), from the files that
``importlib.metadata`` lists for each distribution in this environment.

    .venv/bin/python -m benchmarks.install_size
"""

from __future__ import annotations

import importlib.metadata as md
from pathlib import Path

from packaging.requirements import Requirement

from benchmarks._common import store_result


def _name(text: str) -> str:
    return text.lower().replace("_", "-")


def closure(requirements: list[str], extras: tuple[str, ...] = ()) -> set[str]:
    """Installed distributions reachable from ``requirements`` (markers evaluated here)."""
    seen: set[str] = set()
    todo = list(requirements)
    while todo:
        req = Requirement(todo.pop())
        if req.marker and not any(req.marker.evaluate({"extra": e}) for e in ("", *extras)):
            continue
        name = _name(req.name)
        if name in seen:
            continue
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            continue
        seen.add(name)
        todo.extend(r for r in dist.requires or [] if "extra ==" not in r)
    return seen


def size_mib(names: set[str]) -> float:
    total = 0
    for name in names:
        for file in md.distribution(name).files or []:
            path = Path(file.locate())
            if path.is_file():
                total += path.stat().st_size
    return round(total / 2**20, 1)


def main() -> None:
    ours = md.distribution("st-multitask")
    requires = ours.requires or []
    base = [r for r in requires if "extra ==" not in r]
    base_set = closure(base)
    rows = {
        "base (torch, sentence-transformers, ...)": {"mib": size_mib(base_set), "packages": len(base_set)}
    }
    torch_only = closure(["torch"])
    rows["of which torch"] = {"mib": size_mib(torch_only), "packages": len(torch_only)}
    for extra in ("onnx", "openvino", "fast"):
        wanted = [r.split(";")[0] for r in requires if f'extra == "{extra}"' in r]
        added = closure(wanted) - base_set
        rows[f"[{extra}] adds"] = {"mib": size_mib(added), "packages": sorted(added)}
    result = {"sizes": rows}
    path = store_result("install_size", result)
    for key, value in rows.items():
        packages = value["packages"]
        shown = packages if isinstance(packages, int) else ", ".join(packages)
        print(f"{key}: {value['mib']} MiB ({shown})")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
