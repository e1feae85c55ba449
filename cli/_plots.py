"""Training curves and confusion matrices as PNG files (matplotlib, an optional extra)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._common import UserError

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def plot_training(out: Path, history: list[dict[str, Any]], metrics: dict[str, dict[str, Any]]) -> list[Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UserError("--plot needs matplotlib: pip install 'st-multitask[plot]'.") from None
    folder = out / "plots"
    folder.mkdir(exist_ok=True)
    written = []
    if history:
        fig, (loss_ax, metric_ax) = plt.subplots(1, 2, figsize=(10, 4))
        x = list(range(1, len(history) + 1))
        loss_ax.plot(x, [h["train_loss"] for h in history], marker="o")
        loss_ax.set(title="Training loss", xlabel="epoch (across stages)", ylabel="loss")
        tasks = sorted({t for h in history for t in h["metrics"]})
        for task in tasks:
            key = (
                "f1"
                if any(
                    "f1" in h["metrics"].get(task, {}) and "macro_f1" not in h["metrics"].get(task, {})
                    for h in history
                )
                else "macro_f1"
            )
            points = [(i, h["metrics"][task][key]) for i, h in zip(x, history) if task in h["metrics"]]
            metric_ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=f"{task} {key}")
        metric_ax.set(title="Dev metrics", xlabel="epoch (across stages)", ylim=(0, 1.02))
        metric_ax.legend()
        fig.tight_layout()
        written.append(_save(fig, folder / "training_curves.png"))
        plt.close(fig)
    for task, m in metrics.items():
        if "confusion_matrix" not in m:
            continue
        labels, matrix = m["labels"], m["confusion_matrix"]
        fig, ax = plt.subplots(figsize=(2 + 0.7 * len(labels), 1.5 + 0.6 * len(labels)))
        ax.imshow(matrix, cmap="Blues")
        ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
        ax.set_yticks(range(len(labels)), labels)
        for i, row in enumerate(matrix):
            for j, value in enumerate(row):
                ax.text(j, i, str(value), ha="center", va="center")
        ax.set(title=f"{task}: confusion matrix", xlabel="predicted", ylabel="gold")
        fig.tight_layout()
        written.append(_save(fig, folder / f"confusion_{task}.png"))
        plt.close(fig)
    return written


def _save(fig: Figure, path: Path) -> Path:
    from st_multitask.atomic import atomic_file

    with atomic_file(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    return path
