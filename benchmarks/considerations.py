"""Training considerations, measured: writes docs/training-considerations.md from real runs.

Every run starts from the packaged all-MiniLM-L6-v2 and trains the default model's three heads
(topic: BBC, sentiment: Rotten Tomatoes, ner: CoNLL-2003) on fixed seeded subsets small enough
for 2 CPU cores, then scores each on the full test splits and measures STS-B drift:

- freezing: everything (nothing trains), the backbone only, one head only, nothing;
- transfer: full fine-tuning vs gradual unfreezing vs layer-wise learning-rate decay vs frozen;
- joint vs sequential (topic -> sentiment -> ner) with the forgetting table; the NER subset is 5%
  of CoNLL-2003, so NER is also the low-data task, trained jointly, after the others, or alone;
- one multi-task model vs three single-task models: accuracy, prediction time, memory, disk.

    python -m benchmarks.considerations [--epochs 2] [--quick]

``--quick`` uses tiny subsets (a smoke run; its numbers mean nothing). Results also go to
``benchmarks/out/considerations.json``; the curves to ``docs/img/considerations-curves.png``.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from benchmarks._common import (
    RESULTS_DIR,
    machine_info,
    machine_tag,
    run_command,
    store_result,
    sts_test_spearman,
)
from st_multitask import MultiTaskModel, TaskData, Trainer, TrainingConfig
from st_multitask.corpora import load_bbc, load_conll2003, load_rotten_tomatoes, load_sts_b
from st_multitask.data import SentenceExamples, TokenExamples
from st_multitask.errors import StMultitaskError
from st_multitask.evaluation import evaluate_task
from st_multitask.heads import ContextTokenHead, MLPHead

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "out"
DOC = ROOT / "docs" / "training-considerations.md"
IMG = ROOT / "docs" / "img" / "considerations-curves.png"
MAX_SEQ_LENGTH = 128
TASKS = ("topic", "sentiment", "ner")
MAIN_METRIC = {"topic": "accuracy", "sentiment": "accuracy", "ner": "f1"}


def sample(data, n: int, seed: int = 0):
    """A seeded random subset of n examples (all of them if n >= len)."""
    indices = sorted(random.Random(seed).sample(range(len(data)), min(n, len(data))))
    if isinstance(data, SentenceExamples):
        return SentenceExamples(
            [data.texts[i] for i in indices], [data.labels[i] for i in indices], data.source
        )
    return TokenExamples([data.words[i] for i in indices], [data.tags[i] for i in indices], data.source)


def load_data(quick: bool) -> dict[str, dict]:
    conll_train = load_conll2003("train")
    sizes = {"topic": 200, "sentiment": 1000, "ner": round(0.05 * len(conll_train))}
    dev_n = 300
    if quick:
        sizes, dev_n = {"topic": 16, "sentiment": 32, "ner": 32}, 32
    data = {}
    for task, loader in (("topic", load_bbc), ("sentiment", load_rotten_tomatoes), ("ner", load_conll2003)):
        train = conll_train if task == "ner" else loader("train")
        test = loader("test")
        data[task] = {
            "train": sample(train, sizes[task]),
            "dev": sample(loader("dev"), dev_n),
            "test": sample(test, dev_n) if quick else test,
            "train_total": len(train),
        }
    return data


def new_model(tasks=TASKS, branch: tuple[str, int] | None = None) -> MultiTaskModel:
    """The three heads on the packaged backbone; ``branch`` = (``"shared"`` or ``"task"``, K) puts
    them on one task branch of the top K layers, or on one each."""
    torch.manual_seed(0)
    model = MultiTaskModel(device="cpu")
    model.backbone.max_seq_length = MAX_SEQ_LENGTH
    if branch is not None:
        for name in ["shared"] if branch[0] == "shared" else tasks:
            model.add_branch(name, branch[1])
    mix = [1, 2, 3, 4, 5, 6]
    heads = {
        "topic": lambda: MLPHead(
            model.dim,
            ["business", "entertainment", "politics", "sport", "tech"],
            [256],
            dropout=0.2,
            layers=mix,
        ),
        "sentiment": lambda: MLPHead(model.dim, ["negative", "positive"], [256], dropout=0.2, layers=mix),
        "ner": lambda: ContextTokenHead(
            model.dim,
            ["O", *[f"{p}-{t}" for t in ("LOC", "MISC", "ORG", "PER") for p in "BI"]],
            layers=mix,
            lstm_hidden=128,
            dropout=0.2,
        ),
    }
    for task in tasks:
        on = None if branch is None else ("shared" if branch[0] == "shared" else task)
        model.add_head(task, heads[task](), branch=on)
    return model


def params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def trainable_params(model: MultiTaskModel, freeze: list[str]) -> int:
    if "all" in freeze:
        return 0
    total = 0 if "backbone" in freeze else params(model.backbone)
    total += sum(params(b) for b in model.branches.values())
    return total + sum(params(h) for name, h in model.heads.items() if name not in freeze)


def run(
    name: str,
    config: TrainingConfig,
    data: dict,
    sts,
    tasks=TASKS,
    what: str = "",
    branch: tuple[str, int] | None = None,
) -> dict:
    """Train one configuration (or evaluate untrained heads when everything is frozen)."""
    model = new_model(tasks, branch)
    task_data = [TaskData(t, data[t]["train"], dev=data[t]["dev"]) for t in tasks]
    start = time.perf_counter()
    history: list[dict] = []
    forgetting = None
    try:
        result = Trainer(model, config, progress=False).fit(task_data)
        history, forgetting = result.history, result.forgetting
        refused = None
    except StMultitaskError as error:  # freezing everything: nothing to train
        refused = str(error)
        for head in model.heads.values():
            head.mark_trained()  # evaluate the untrained heads as they are
    seconds = time.perf_counter() - start
    test = {}
    for t in tasks:
        metrics = evaluate_task(model, t, data[t]["test"])
        test[t] = round(100 * metrics[MAIN_METRIC[t]], 2)
    record = {
        "name": name,
        "what": what,
        "config": {
            k: v for k, v in config.__dict__.items() if v != getattr(TrainingConfig(), k) or k == "epochs"
        },
        "trainable_params": trainable_params(model, config.freeze),
        "train_seconds": round(seconds, 1),
        "examples_per_epoch": sum(len(data[t]["train"]) for t in tasks),
        "test": test,
        "sts_b": sts_test_spearman(model.backbone, sts),
        "history": history,
        "forgetting": forgetting,
        "refused": refused,
    }
    print(name, test, "sts", record["sts_b"], f"{seconds:.0f} s", flush=True)
    return record, model


def predict_cost(models: list[MultiTaskModel], texts: list[str]) -> dict:
    start = time.perf_counter()
    for model in models:
        model.predict(texts)
    seconds = time.perf_counter() - start
    disk = 0
    for model in models:
        with tempfile.TemporaryDirectory() as tmp:
            model.save(Path(tmp) / "m")
            disk += sum(f.stat().st_size for f in (Path(tmp) / "m").rglob("*") if f.is_file())
    weights = sum(4 * params(m.backbone) + sum(4 * params(h) for h in m.heads.values()) for m in models)
    return {
        "predict_seconds": round(seconds, 2),
        "weights_mib": round(weights / 2**20, 1),
        "disk_mib": round(disk / 2**20, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--rerun",
        metavar="TEXT",
        help="rerun only the runs whose name contains TEXT (e.g. sequential), keep the others from "
        "benchmarks/out/considerations.json, and rewrite the document",
    )
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="rewrite the document from benchmarks/out/considerations.json",
    )
    args = parser.parse_args()
    if args.render_only:
        result = json.loads((OUT / "considerations.json").read_text())
        plot(result["runs"])
        DOC.write_text(render(result))
        print(f"wrote {DOC}")
        return
    began = time.perf_counter()
    data = load_data(args.quick)
    sts = load_sts_b("test")
    if args.quick:
        sts = sts.iloc[:64]
    base = TrainingConfig(
        epochs=args.epochs,
        batch_size=32,
        learning_rate=5e-5,
        head_learning_rate=1e-3,
        warmup_ratio=0.1,
        cache_embeddings="off",
        seed=0,
    )
    steps = sum(-(-len(data[t]["train"]) // base.batch_size) for t in TASKS) * args.epochs
    runs: dict[str, dict] = {}
    models: dict[str, MultiTaskModel] = {}

    previous = None
    if args.rerun:  # this machine's last run: benchmarks/out, else the stored result
        stored = OUT / "considerations.json"
        stored = stored if stored.is_file() else RESULTS_DIR / machine_tag() / "considerations.json"
        previous = json.loads(stored.read_text())

    def add(name, config, what, tasks=TASKS, keep=False, branch=None):
        if previous is not None and args.rerun not in name:
            runs[name] = previous["runs"][name]
            return
        runs[name], model = run(name, config, data, sts, tasks, what, branch)
        if keep:
            models[name] = model

    add("everything frozen", replace(base, freeze=["all"]), "nothing (refused: evaluated untrained)")
    add("backbone frozen", replace(base, freeze=["backbone"], cache_embeddings="memory"), "the three heads")
    add(
        "backbone frozen, 4x epochs",
        replace(base, freeze=["backbone"], cache_embeddings="memory", epochs=4 * args.epochs),
        "the three heads",
    )
    add("full fine-tuning (joint)", base, "backbone + three heads", keep=True)
    add("sentiment head frozen", replace(base, freeze=["sentiment"]), "backbone + topic, ner heads")
    add(
        "gradual unfreezing",
        replace(base, unfreeze_every=max(1, steps // 12), unfreeze_unit="step", unfreeze_layers=1),
        f"heads, then one more encoder layer every {max(1, steps // 12)} steps, top first",
    )
    add(
        "layer-wise lr decay 0.8",
        replace(base, learning_rate=1e-4, lr_decay=0.8),
        "backbone + heads; top layer 1e-4, each lower layer x0.8",
    )
    add(
        "sequential topic -> sentiment -> ner",
        replace(base, strategy="sequential", task_order=list(TASKS)),
        "one task per stage; finished heads frozen",
    )
    for task in TASKS:
        add(f"single task: {task}", base, f"backbone + {task} head", tasks=(task,), keep=True)
    frozen_trunk = replace(base, freeze=["backbone"], cache_embeddings="memory")
    add(
        "branch K=2, shared (joint)",
        frozen_trunk,
        "one copy of the top 2 layers for the three heads; the backbone frozen",
        branch=("shared", 2),
    )
    add(
        "branches K=2, per task (sequential topic -> sentiment -> ner)",
        replace(frozen_trunk, strategy="sequential", task_order=list(TASKS)),
        "a copy of the top 2 layers per task, frozen with its head when its stage ends",
        branch=("task", 2),
    )

    texts = data["sentiment"]["test"].texts[:1000]
    if previous is not None and not {
        "full fine-tuning (joint)",
        *(f"single task: {t}" for t in TASKS),
    } <= set(models):
        efficiency = previous["efficiency"]
    else:
        efficiency = {
            "one multi-task model": predict_cost([models["full fine-tuning (joint)"]], texts),
            "three single-task models": predict_cost([models[f"single task: {t}"] for t in TASKS], texts),
            "texts": len(texts),
        }
    print("efficiency", efficiency, flush=True)
    result = {
        "machine": machine_info(),
        "command": run_command(
            (["--quick"] if args.quick else []) + (["--epochs", str(args.epochs)] if args.epochs != 2 else [])
        )
        if previous is None
        else previous["command"],
        "seconds": round(time.perf_counter() - began) + (previous["seconds"] if previous is not None else 0),
        "reruns": [*(previous.get("reruns", []) if previous else []), *([args.rerun] if args.rerun else [])],
        "epochs": args.epochs,
        "max_seq_length": MAX_SEQ_LENGTH,
        "sizes": {t: {k: len(v) for k, v in d.items() if k != "train_total"} for t, d in data.items()},
        "train_totals": {t: d["train_total"] for t, d in data.items()},
        "runs": runs,
        "efficiency": efficiency,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "considerations.json").write_text(json.dumps(result, indent=2) + "\n")
    if args.quick:
        print("quick run: docs not written")
        return
    print(store_result("considerations", result))
    plot(runs)
    tmp = DOC.with_suffix(".tmp")
    tmp.write_text(render(result))
    tmp.replace(DOC)
    print(f"wrote {DOC}")


def plot(runs: dict[str, dict]) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - the plot extra is optional
        return
    IMG.parent.mkdir(parents=True, exist_ok=True)
    names = [
        "backbone frozen, 4x epochs",
        "full fine-tuning (joint)",
        "gradual unfreezing",
        "layer-wise lr decay 0.8",
    ]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, task in zip(axes, TASKS):
        for name in names:
            history = runs[name]["history"]
            xs = [h["epoch"] for h in history if task in h["metrics"]]
            ys = [100 * h["metrics"][task][MAIN_METRIC[task]] for h in history if task in h["metrics"]]
            ax.plot(xs, ys, marker="o", label=name)
        ax.set_title(f"{task}: dev {MAIN_METRIC[task]}")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(IMG, dpi=110)
    plt.close(fig)


def _row(cells: list) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _delta(a: float, b: float) -> str:
    return f"{a - b:+.2f}"


SHARED_BRANCH = "branch K=2, shared (joint)"
TASK_BRANCHES = "branches K=2, per task (sequential topic -> sentiment -> ner)"


def _branch_section(runs: dict, full: dict, frozen: dict, seq: dict, base_sts: float) -> list[str]:
    """Task branches beside freezing and full fine-tuning, with the forgetting of each sequential run."""
    if SHARED_BRANCH not in runs or TASK_BRANCHES not in runs:
        return []
    shared, per_task = runs[SHARED_BRANCH], runs[TASK_BRANCHES]
    header = ["run", *TASKS, "STS-B", "train s"]
    rows = [_row(header), _row(["---"] * len(header))]
    for name in ("backbone frozen", SHARED_BRANCH, "full fine-tuning (joint)", TASK_BRANCHES, seq["name"]):
        r = runs[name]
        rows.append(
            _row(
                [
                    name,
                    *[f"{r['test'][t]:.2f}" for t in TASKS],
                    f"{r['sts_b']:.2f}",
                    f"{r['train_seconds']:.0f}",
                ]
            )
        )

    def forgetting(run: dict) -> str:
        table = run["forgetting"] or {}
        stages = list(table)
        return "; ".join(
            f"{t} {100 * table[t][t]:.2f} -> {100 * table[stages[-1]][t]:.2f} ({100 * (table[stages[-1]][t] - table[t][t]):+.2f})"
            for t in stages[:-1]
        )

    return [
        "## Task branches: fine-tuning that leaves the embeddings alone",
        "",
        "A task branch is a trainable copy of the backbone's top K layers that the heads read; the"
        " sentence embedding still goes through the original layers, so it cannot move"
        " (`MultiTaskModel.add_branch`, or `model: {branch: {layers: 2, share: all | task}}` in a recipe).",
        "",
        *rows,
        "",
        "- Shared branch vs frozen backbone (same epochs): "
        + ", ".join(f"{t} {_delta(shared['test'][t], frozen['test'][t])}" for t in TASKS)
        + "; vs full fine-tuning: "
        + ", ".join(f"{t} {_delta(shared['test'][t], full['test'][t])}" for t in TASKS)
        + f". STS-B: {shared['sts_b']:.2f} with branches (the backbone's {base_sts:.2f}), "
        f"{full['sts_b']:.2f} after full fine-tuning.",
        f"- Forgetting, from the end of each task's stage to the end of training: per-task branches "
        f"{forgetting(per_task)}; one backbone trained in sequence {forgetting(seq)}.",
        "",
    ]


def render(result: dict) -> str:
    """The markdown document: tables from this run plus comparisons computed from them."""
    runs, m, eff = result["runs"], result["machine"], result["efficiency"]
    sizes = result["sizes"]
    full = runs["full fine-tuning (joint)"]
    frozen = runs["backbone frozen"]
    base_sts = frozen["sts_b"]
    frozen_long = runs["backbone frozen, 4x epochs"]
    seq = runs["sequential topic -> sentiment -> ner"]
    single = {t: runs[f"single task: {t}"] for t in TASKS}
    metric = ", ".join(f"{t} {'accuracy' if MAIN_METRIC[t] == 'accuracy' else 'entity F1'}" for t in TASKS)
    header = ["run", "what trains", "trainable params", "train s", *TASKS, "STS-B"]

    def table(names: list[str]) -> list[str]:
        lines = [_row(header), _row(["---"] * len(header))]
        for name in names:
            r = runs[name]
            lines.append(
                _row(
                    [
                        name,
                        r["what"],
                        f"{r['trainable_params'] / 1e6:.2f} M",
                        f"{r['train_seconds']:.0f}",
                        *[f"{r['test'][t]:.2f}" if t in r["test"] else "" for t in TASKS],
                        f"{r['sts_b']:.2f}",
                    ]
                )
            )
        return lines

    def forgetting_table() -> list[str]:
        table = seq["forgetting"] or {}
        lines = [_row(["after stage", *TASKS]), _row(["---"] * (len(TASKS) + 1))]
        for stage, values in table.items():
            lines.append(_row([stage, *[f"{100 * values[t]:.2f}" if t in values else "" for t in TASKS]]))
        return lines

    def drops() -> str:
        table = seq["forgetting"] or {}
        stages = list(table)
        parts = []
        for task in stages[:-1]:
            after_own, at_end = table[task][task], table[stages[-1]].get(task)
            if at_end is not None:
                parts.append(
                    f"{task} {100 * after_own:.2f} -> {100 * at_end:.2f} ({100 * (at_end - after_own):+.2f})"
                )
        return "; ".join(parts)

    ner_joint, ner_seq, ner_alone = full["test"]["ner"], seq["test"]["ner"], single["ner"]["test"]["ner"]
    single_seconds = sum(r["train_seconds"] for r in single.values())
    tuned = ("full fine-tuning (joint)", "gradual unfreezing", "layer-wise lr decay 0.8")
    least_drift = max(tuned, key=lambda n: runs[n]["sts_b"])
    joint_wins = [t for t in TASKS if full["test"][t] > seq["test"][t]]
    best_sentiment = max(tuned, key=lambda n: runs[n]["test"]["sentiment"])
    lines = [
        "# Training considerations, measured",
        "",
        "Generated by `benchmarks/considerations.py`; do not edit by hand. Rerun it to refresh every",
        "number and the figure.",
        "",
        f"- command: `{result['command']}`; date {m.get('date_utc')}; run time {result['seconds']} s",
        f"- machine: {m.get('cpu')}, {m.get('cores')} cores, {m.get('ram_gib')} GiB, no GPU; torch "
        f"{m.get('torch')}, sentence-transformers {m.get('sentence_transformers')}",
        "- model: the packaged all-MiniLM-L6-v2 with the default model's three heads (topic and sentiment:",
        "  MLP [256] over a mix of hidden layers 1-6; ner: `token_context`), max sequence length "
        f"{result['max_seq_length']}.",
        "- data (seeded subsets so that every run fits 2 CPU cores): "
        + "; ".join(
            f"{t}: {s['train']} train of {result['train_totals'][t]}, {s['dev']} dev, {s['test']} test (full test split)"
            for t, s in sizes.items()
        )
        + ". The NER subset is 5% of CoNLL-2003 train, which makes it the low-data task.",
        f"- training: {result['epochs']} epochs (per stage when sequential), batch 32, AdamW, backbone lr 5e-5,"
        " head lr 1e-3, 10% warmup then linear decay (sequential: each stage its own), clipping 1.0,"
        " seed 0; joint runs sample tasks in proportion to their size.",
        *(
            [
                f"- rerun later with the then-current code: runs matching {', '.join(map(repr, result['reruns']))}."
            ]
            if result.get("reruns")
            else []
        ),
        f"- scores on the test splits: {metric} (x 100); STS-B: test Spearman x 100 of the model's",
        "  embeddings (82.03 for the untouched backbone). Train seconds include the per-epoch dev evaluation.",
        "",
        "Absolute scores are low next to the full-data default model (`benchmarks/RESULTS.md`): these",
        "runs see a few percent of the data for a few epochs. Read the differences between rows.",
        "",
        "## Freezing: the whole network, the backbone, one head",
        "",
        *table(
            [
                "everything frozen",
                "backbone frozen",
                "backbone frozen, 4x epochs",
                "sentiment head frozen",
                "full fine-tuning (joint)",
            ]
        ),
        "",
        f'- Everything frozen: nothing trains. `Trainer` refuses the configuration ("{runs["everything frozen"]["refused"]}"),'
        " so the row scores the untrained heads: chance level, and the embeddings are untouched.",
        f"- Backbone frozen: only the heads train ({frozen['trainable_params'] / 1e6:.2f} M parameters), from"
        " cached embeddings: one backbone pass over the data, then each epoch costs almost nothing"
        f" ({frozen['train_seconds']:.0f} s for {result['epochs']} epochs, {frozen_long['train_seconds']:.0f} s for"
        f" {4 * result['epochs']}, against {full['train_seconds']:.0f} s for full fine-tuning). STS-B stays exactly"
        f" {frozen['sts_b']:.2f}: the embeddings are the backbone's.",
        "- Full fine-tuning vs frozen backbone (same epochs): "
        + ", ".join(f"{t} {_delta(full['test'][t], frozen['test'][t])}" for t in TASKS)
        + "; vs the frozen backbone given 4x the epochs: "
        + ", ".join(f"{t} {_delta(full['test'][t], frozen_long['test'][t])}" for t in TASKS)
        + f". It moves the embeddings: STS-B {_delta(full['sts_b'], base_sts)}.",
        "- One head frozen (sentiment): its randomly initialised head stays fixed while its loss still"
        " flows into the backbone, so the backbone is bent to fit a fixed random projection: sentiment "
        f"{runs['sentiment head frozen']['test']['sentiment']:.2f} vs {full['test']['sentiment']:.2f} when its head"
        " trains, and the other tasks "
        + ", ".join(
            f"{t} {_delta(runs['sentiment head frozen']['test'][t], full['test'][t])}"
            for t in ("topic", "ner")
        )
        + ". Freeze a head once it is trained (sequential training does this for finished stages), not"
        " before.",
        "",
        "## Transfer: full fine-tuning, gradual unfreezing, layer-wise decay, frozen",
        "",
        *table(
            [
                "backbone frozen, 4x epochs",
                "full fine-tuning (joint)",
                "gradual unfreezing",
                "layer-wise lr decay 0.8",
            ]
        ),
        "",
        "Dev curves of these runs (one point an epoch):",
        "",
        "![dev curves](img/considerations-curves.png)",
        "",
        "- Best on each task: "
        + ", ".join(
            f"{t}: {max(('backbone frozen, 4x epochs', 'full fine-tuning (joint)', 'gradual unfreezing', 'layer-wise lr decay 0.8'), key=lambda n: runs[n]['test'][t])}"
            for t in TASKS
        )
        + ".",
        "- STS-B drift: "
        + ", ".join(
            f"{n} {_delta(runs[n]['sts_b'], base_sts)}"
            for n in ("full fine-tuning (joint)", "gradual unfreezing", "layer-wise lr decay 0.8")
        )
        + f" (from {base_sts:.2f}). The least drift among the fine-tuning runs: {least_drift}; the frozen"
        " backbone keeps the embeddings exactly.",
        "",
        "## Joint vs sequential training, and forgetting",
        "",
        *table(["full fine-tuning (joint)", "sequential topic -> sentiment -> ner"]),
        "",
        "Forgetting: dev score of each task after each stage of the sequential run (macro-F1 for topic and"
        " sentiment, entity F1 for ner; a task appears once its stage has started; finished heads are"
        " frozen, the backbone keeps training):",
        "",
        *forgetting_table(),
        "",
        f"- From the end of its own stage to the end of training: {drops()}.",
        "- Joint vs sequential on the test splits: "
        + ", ".join(f"{t} {_delta(full['test'][t], seq['test'][t])}" for t in TASKS)
        + " (joint minus sequential).",
        "",
        *_branch_section(runs, full, frozen, seq, base_sts),
        "## A task with little data (NER on 5% of CoNLL-2003)",
        "",
        _row(["NER trained", "entity F1", "STS-B"]),
        _row(["---"] * 3),
        _row(["jointly with topic and sentiment", f"{ner_joint:.2f}", f"{full['sts_b']:.2f}"]),
        _row(["after the others (last sequential stage)", f"{ner_seq:.2f}", f"{seq['sts_b']:.2f}"]),
        _row(["alone (single-task model)", f"{ner_alone:.2f}", f"{single['ner']['sts_b']:.2f}"]),
        _row(
            [
                "frozen backbone, heads only (4x epochs)",
                f"{frozen_long['test']['ner']:.2f}",
                f"{frozen_long['sts_b']:.2f}",
            ]
        ),
        "",
        "## One multi-task model or separate models",
        "",
        *table(["full fine-tuning (joint)", *[f"single task: {t}" for t in TASKS]]),
        "",
        _row(["", "one multi-task model", "three single-task models"]),
        _row(["---"] * 3),
        _row(
            [
                "training seconds",
                f"{full['train_seconds']:.0f}",
                f"{single_seconds:.0f}",
            ]
        ),
        _row(
            [
                f"predict all three tasks, {eff['texts']} texts (s)",
                eff["one multi-task model"]["predict_seconds"],
                eff["three single-task models"]["predict_seconds"],
            ]
        ),
        _row(
            [
                "weights in memory (MiB, float32)",
                eff["one multi-task model"]["weights_mib"],
                eff["three single-task models"]["weights_mib"],
            ]
        ),
        _row(
            [
                "saved size on disk (MiB)",
                eff["one multi-task model"]["disk_mib"],
                eff["three single-task models"]["disk_mib"],
            ]
        ),
        "",
        "- Accuracy, multi-task minus single-task: "
        + ", ".join(f"{t} {_delta(full['test'][t], single[t]['test'][t])}" for t in TASKS)
        + ".",
        f"- Serving: one model answers all three tasks from one backbone pass "
        f"({eff['three single-task models']['predict_seconds'] / eff['one multi-task model']['predict_seconds']:.2f}x"
        f" faster than three models here) and holds one backbone in memory instead of three"
        f" ({eff['one multi-task model']['weights_mib']} vs {eff['three single-task models']['weights_mib']} MiB of"
        " weights). With a frozen backbone (the bundled default model) the heads are all that is task-specific:"
        " a few MB each, and the embeddings stay the original ones.",
        "",
        "## How to choose",
        "",
        "- Want the embeddings unchanged (search, similarity) and several cheap classifiers: freeze the"
        " backbone, cache the embeddings, train heads for many epochs. It costs seconds per epoch.",
        "- Want the best score on a task the frozen embeddings do not capture well (sentiment here:"
        f" {runs[best_sentiment]['test']['sentiment']:.2f} with {best_sentiment} vs"
        f" {frozen_long['test']['sentiment']:.2f} frozen): fine-tune, and check the STS-B drift if the same"
        f" model also serves similarity; {least_drift} moved the embeddings least"
        f" ({_delta(runs[least_drift]['sts_b'], base_sts)}).",
        (
            "- Little data, and a head that must learn a lot from few examples (NER here): a frozen backbone"
            " with many cheap epochs beat fine-tuning"
            if frozen_long["test"]["ner"] > full["test"]["ner"]
            else "- Little data (NER here): fine-tuning beat the frozen backbone given many cheap epochs"
        )
        + f" (NER {frozen_long['test']['ner']:.2f} frozen in {frozen_long['train_seconds']:.0f} s vs"
        f" {full['test']['ner']:.2f} fine-tuned in {full['train_seconds']:.0f} s).",
        "- Several tasks that must all be served by one model: "
        + (
            "train them jointly: joint training beat sequential training on every task here, and the"
            " forgetting table shows what later stages did to earlier ones."
            if len(joint_wins) == len(TASKS)
            else f"joint training beat sequential on {', '.join(joint_wins) or 'no task'} here; see the"
            " forgetting table for what later stages did to earlier ones."
        ),
        "",
        "Full per-epoch histories: `benchmarks/out/considerations.json` after a run.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
