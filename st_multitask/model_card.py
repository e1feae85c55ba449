"""The model card: ``README.md`` in every saved model directory, as sentence-transformers and SetFit
write one. It is rendered from the manifest (backbone, heads and labels, training data and recipe
settings, metrics) on every save, so it never goes stale.

>>> card = render_model_card({"dimension": 384, "backbone": {"type": "packaged", "name": "all-MiniLM-L6-v2"},
...     "heads": {"mood": {"kind": "mlp", "level": "sentence", "labels": ["happy", "sad"]}}}, "my-model")
>>> card.splitlines()[0]
'# my-model'
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["CARD_NAME", "render_model_card"]

CARD_NAME = "README.md"
_SKIP = {"per_class", "confusion_matrix", "labels", "report"}


def _metric_table(metrics: dict[str, dict[str, Any]]) -> list[str]:
    names = sorted({k for m in metrics.values() for k, v in m.items() if isinstance(v, (int, float))} - _SKIP)
    lines = ["| task | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for task, values in metrics.items():
        cells = [f"{values[n]:.4g}" if isinstance(values.get(n), (int, float)) else "" for n in names]
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    return lines


def render_model_card(manifest: dict[str, Any], name: str) -> str:
    """The card's Markdown for a model directory called ``name`` with this manifest."""
    backbone = manifest.get("backbone", {})
    source = (
        f"the packaged `{backbone.get('name')}` (referenced, not copied)"
        if backbone.get("type") == "packaged"
        else "the sentence-transformers model stored in this directory"
    )
    heads = manifest.get("heads", {})
    lines = [
        f"# {name}",
        "",
        "A multi-task model of [st_multitask](https://pypi.org/project/st-multitask/): one "
        f"sentence-transformers backbone ({manifest.get('dimension')}-d embeddings) and {len(heads)} "
        "head(s) that share its forward pass.",
        "",
        f"- Backbone: {source}.",
        *[
            f"- Task branch `{branch}`: a fine-tuned copy of the backbone's top {info.get('layers')} layers, "
            f"read by {', '.join(f'`{h}`' for h in info.get('heads', [])) or 'no head'}; the sentence "
            "embeddings go through the original layers and are the backbone's own."
            for branch, info in manifest.get("branches", {}).items()
        ],
        "",
        "## Heads",
        "",
        "| head | kind | level | labels |",
        "|---|---|---|---|",
    ]
    for head, info in heads.items():
        labels = ", ".join(info.get("labels", []))
        lines.append(f"| {head} | `{info.get('kind')}` | {info.get('level')} | {labels} |")
    training = manifest.get("training")
    if training:
        config = training.get("config", {})
        lines += [
            "",
            "## Training",
            "",
            f"- {training.get('steps')} optimizer steps in {training.get('seconds')} s.",
        ]
        data = training.get("data")
        if data:
            lines += [
                f"- `{task}`: " + ", ".join(f"{split} {src}" for split, src in d.items())
                for task, d in data.items()
            ]
        lines += ["", "Settings (`TrainingConfig`):", "", "```json", json.dumps(config, indent=1), "```"]
    metrics = manifest.get("metrics")
    if metrics:
        lines += [
            "",
            "## Metrics",
            "",
            "On each task's dev split (or train, without one), after training:",
            "",
        ]
        lines += _metric_table(metrics)
    test = manifest.get("test_metrics")
    if test:
        lines += ["", "On the test splits:", ""] + _metric_table(test)
    example = "Angela Merkel met Tim Cook in Berlin."
    lines += [
        "",
        "## Use",
        "",
        "```python",
        "from st_multitask import load",
        "",
        f'model = load("{name}")  # on a CPU it runs without torch (ONNX Runtime or OpenVINO)',
        f'print(model.predict(["{example}"]))',
        "```",
        "",
        "```text",
        f'stmt predict --model {name} "{example}"',
        f"stmt info --model {name}",
        "```",
        "",
        "Loading checks the sha256 of every head file listed in `st_multitask.json` and never unpickles.",
    ]
    return "\n".join(lines) + "\n"
