"""GPU check: the toolkit's CUDA code paths, exercised end to end, with measured figures.

Run on a machine with a CUDA GPU (every comparison is made on that machine: cuda vs its own CPU,
same weights, same run):

    python benchmarks/gpu_check.py [--out benchmarks/out/gpu_check.json]

1. Device selection: what ``resolve_device``, ``resolve_backend("auto")``, ``embed``,
   ``MultiTaskModel.default()`` / ``load(backend="auto")``, the CLI loaders and the Trainer pick
   when no device is named.
2. Agreement: the bundled default model (topic, sentiment, NER) on ~200 varied texts on cuda vs on
   cpu: labels (agreement %), max abs difference of the probabilities, min cosine of the
   embeddings (target >= 0.9999), identical NER spans.
3. Embedding throughput: ``st_multitask.embed`` of 10,000 generated sentences at batch sizes
   32 / 128 / 512 on cuda, fp32 and under ``torch.autocast`` fp16 / bf16 (the library's torch
   backend is fp32 only, so autocast is applied around it here), and on the CPU (``--cpu-n``
   sentences, the same list's head); median of 3 repeats after a warm-up. Also ``predict`` of the
   default model, cuda vs cpu.
4. Training on cuda through the real Trainer: backbone trainable, 2 epochs, 64 sentiment texts and
   32 NER sentences (``examples/data``), for MLP + token heads (mixed_precision no / bf16 / fp16)
   and for the default model's head kinds (hybrid + context token head with char CNN); loss per
   epoch, the saved model reloaded and run on CPU; two fp32 runs with the same seed compared
   weight by weight, and again in a child process with deterministic algorithms on.

Every check runs in its own try block: a crash is recorded with its traceback and the rest go on.
The data packages are not needed: texts come from ``examples/`` and a seeded generator.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"

# -- texts --------------------------------------------------------------------------------------
_SUBJECTS = [
    "The European Central Bank",
    "Maria Lopez",
    "A small startup in Berlin",
    "The committee",
    "Our neighbours",
    "Apple",
    "The new coach of Manchester United",
    "Scientists at MIT",
    "The mayor of Chicago",
    "Toyota",
    "A spokesman for the United Nations",
    "Angela Merkel",
    "The local bakery",
    "Researchers in Tokyo",
    "The band",
    "Microsoft",
    "Roger Federer",
    "The hospital staff",
    "Amazon",
    "The film's director",
    "Two students from Oxford",
    "The government of Brazil",
    "Netflix",
    "The central committee in Beijing",
    "My sister",
]
_VERBS = [
    "announced",
    "criticised",
    "rejected",
    "celebrated",
    "is considering",
    "postponed",
    "warned about",
    "praised",
    "will present",
    "quietly dropped",
    "signed",
    "defended",
    "questioned",
    "launched",
    "cancelled",
    "welcomed",
]
_OBJECTS = [
    "a new plan to cut emissions",
    "the merger with its largest rival",
    "the quarterly results",
    "a record-breaking transfer",
    "an updated smartphone",
    "the peace talks in Geneva",
    "the budget for next year",
    "a documentary about climate change",
    "the final of the Open",
    "a vaccine trial",
    "tax cuts for small firms",
    "the sequel to last summer's hit",
    "a strike by railway workers",
    "the price of electricity",
    "a new album",
    "interest rate increases",
    "the election results",
    "its artificial intelligence chip",
]
_TAILS = [
    "on Monday.",
    "after a long debate.",
    "despite protests in Paris.",
    "in a statement.",
    "to the surprise of analysts.",
    "during a press conference in London.",
    "last week.",
    "before the summer break.",
    "while shares fell 3 per cent.",
    "according to Reuters.",
    "at the festival in Cannes.",
    "for the third time this year.",
]
_REVIEWS = [
    "The plot is {a} and the acting is {b}.",
    "What a {a} film; the soundtrack is {b}.",
    "I found the ending {a}, though the cast was {b}.",
    "Honestly {a}. The dialogue felt {b}.",
    "A {a} story told with {b} care.",
]
_ADJ = [
    "wonderful",
    "painfully boring",
    "brilliant",
    "clumsy",
    "moving",
    "dull",
    "hilarious",
    "forgettable",
    "gripping",
    "messy",
    "charming",
    "awful",
    "superb",
    "lifeless",
]


def generated_sentences(n: int, seed: int = 0) -> list[str]:
    """``n`` varied English sentences (news-like with entities, reviews, questions, long ones)."""
    rng = np.random.default_rng(seed)
    pick = lambda seq: seq[int(rng.integers(len(seq)))]  # noqa: E731
    out = []
    for _ in range(n):
        kind = rng.random()
        if kind < 0.55:
            clauses = [
                f"{pick(_SUBJECTS)} {pick(_VERBS)} {pick(_OBJECTS)} {pick(_TAILS)}"
                for _ in range(int(rng.choice([1, 1, 1, 2, 2, 3, 5])))
            ]
            text = " ".join(clauses)
        elif kind < 0.85:
            text = pick(_REVIEWS).format(a=pick(_ADJ), b=pick(_ADJ))
        else:
            text = f"Why did {pick(_SUBJECTS).lower()} {pick(_VERBS).split()[-1]} {pick(_OBJECTS)}?"
        out.append(text)
    return out


def _conll_sentences(path: Path) -> list[list[str]]:
    from st_multitask.data import read_token_examples

    return read_token_examples(path).words


def agreement_texts(n: int = 200) -> list[Any]:
    """~n items: examples/ texts, CoNLL sentences (raw and pre-split), generated and 5 long texts
    (over the 256-piece window: the topic head's chunked path)."""
    import pandas as pd

    items: list[Any] = []
    for name in ("a.txt", "b.txt"):
        items += [line for line in (EXAMPLES / name).read_text().splitlines() if line.strip()]
    for name in ("sentiment-train.csv", "sentiment-dev.csv"):
        items += pd.read_csv(EXAMPLES / "data" / name)["text"].tolist()[:40]
    conll = _conll_sentences(EXAMPLES / "data" / "ner-dev.conll")
    items += [" ".join(words) for words in conll[:30]]
    items += [words for words in conll[30:40]]  # pre-split word lists
    long_texts = [" ".join(generated_sentences(30, seed=100 + i)) for i in range(5)]
    items += long_texts
    items += generated_sentences(max(0, n - len(items)), seed=7)
    return items[:n]


# -- helpers ------------------------------------------------------------------------------------
def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(fn, repeats: int = 3) -> dict[str, Any]:
    """A warm-up, then ``repeats`` timed runs: the median and all runs, in seconds."""
    fn()
    sync()
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        runs.append(time.perf_counter() - start)
    return {"median_s": round(statistics.median(runs), 4), "runs_s": [round(r, 4) for r in runs]}


def record_error(section: dict[str, Any], exc: BaseException) -> None:
    section.setdefault("errors", []).append(
        {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
    )
    print(traceback.format_exc(), flush=True)


@contextlib.contextmanager
def guarded(section: dict[str, Any], what: str):
    try:
        yield
    except Exception as exc:
        section.setdefault("errors", []).append(
            {"step": what, "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
        )
        print(f"!! {what}: {type(exc).__name__}: {exc}\n{traceback.format_exc()}", flush=True)


def _outcome(fn) -> str:
    try:
        return repr(fn())
    except Exception as exc:
        return f"raises {type(exc).__name__}: {exc}"


# -- 1. device selection ------------------------------------------------------------------------
def check_devices() -> dict[str, Any]:
    from st_multitask import MultiTaskModel, embed
    from st_multitask.backbone import bundled_model_dir, cached_backbone, resolve_device
    from st_multitask.embedding import resolve_model
    from st_multitask.runtime import _gpu_requested, resolve_backend

    r: dict[str, Any] = {
        "cuda_available": torch.cuda.is_available(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "dev_nvidia0_exists": Path("/dev/nvidia0").exists(),
        "proc_driver_nvidia_gpus": Path("/proc/driver/nvidia/gpus").is_dir(),
    }
    r["resolve_device(None)"] = _outcome(lambda: resolve_device(None))
    r["_gpu_requested(None)"] = _outcome(lambda: _gpu_requested(None))
    for backend, precision, device in [
        ("auto", "fp32", None),
        ("auto", "fp32", "cuda"),
        ("auto", "fp32", "cpu"),
        ("auto", "bf16", None),
        ("auto", "int8", None),
        ("auto", "int8", "cpu"),
        ("onnx", "fp32", "cuda"),
        ("torch", "fp32", None),
    ]:
        r[f"resolve_backend({backend}, {precision}, {device})"] = _outcome(
            lambda b=backend, p=precision, d=device: (lambda c: (c.backend, c.precision))(
                resolve_backend(b, p, d)
            )
        )
    with guarded(r, "resolve_model(None, auto)"):
        model = resolve_model(None, "auto")
        r["resolve_model(None, auto)"] = f"{type(model).__name__} on {getattr(model, 'device', 'cpu')}"
    with guarded(r, "embed default"):
        embed(["The dog ran across the grass."])
        r["embed() default backbone device"] = str(cached_backbone(None, None).device)
    with guarded(r, "MultiTaskModel.default()"):
        model = MultiTaskModel.default()
        r["MultiTaskModel.default()"] = {
            "type": type(model).__name__,
            "backbone": str(model.device),
            "heads": {n: str(next(h.parameters()).device) for n, h in model.heads.items()},
        }
    with guarded(r, "MultiTaskModel.load(auto)"):
        model = MultiTaskModel.load(bundled_model_dir(), backend="auto")
        r["MultiTaskModel.load(bundled, backend=auto)"] = (
            f"{type(model).__name__} on {getattr(model, 'device', 'cpu')}"
        )
    r["MultiTaskModel.load(bundled, backend=onnx, device=cuda)"] = _outcome(
        lambda: type(MultiTaskModel.load(bundled_model_dir(), device="cuda", backend="onnx")).__name__
    )
    with guarded(r, "cli loaders"):
        try:
            from st_multitask.cli._common import load_model, load_multitask
        except ImportError:  # not installed: the cli/ folder of the checkout
            sys.path.insert(0, str(REPO))
            from cli._common import load_model, load_multitask
        enc = load_model(None, None)
        r["cli load_model(None, None) [stmt embed]"] = (
            f"{type(enc).__name__} on {getattr(enc, 'device', 'cpu')}"
        )
        mt = load_multitask(None, None)
        r["cli load_multitask(None, None) [stmt predict]"] = (
            f"{type(mt).__name__} on {getattr(mt, 'device', 'cpu')}"
        )
    with guarded(r, "Trainer device"):
        from st_multitask import Trainer

        trainer = Trainer(MultiTaskModel.default(), progress=False)
        r["Trainer: model device / accelerate state"] = f"{trainer.model.device} / {trainer.state.device}"
    return r


# -- 2. agreement -------------------------------------------------------------------------------
def _spans(entities: list[dict]) -> list[tuple]:
    return [(e["start"], e["end"], e["label"]) for e in entities]


def check_agreement(n: int, gpu: str) -> dict[str, Any]:
    from st_multitask import MultiTaskModel

    r: dict[str, Any] = {"texts": n}
    items = agreement_texts(n)
    r["texts"] = len(items)
    r["long_texts_over_window"] = None
    cpu_model = MultiTaskModel.default(device="cpu")
    gpu_model = MultiTaskModel.default(device=gpu)
    r["devices"] = [str(cpu_model.device), str(gpu_model.device)]
    with guarded(r, "count_over_window"):
        from st_multitask.embedding import count_over_window

        r["long_texts_over_window"] = count_over_window(
            [x for x in items if isinstance(x, str)], cpu_model.backbone
        )
    with guarded(r, "predict"):
        pc = cpu_model.predict(items, batch_size=32)
        pg = gpu_model.predict(items, batch_size=32)
        for task, head in cpu_model.heads.items():
            if head.level == "sentence":
                same = sum(a[task]["label"] == b[task]["label"] for a, b in zip(pc, pg))
                diff = max(abs(a[task]["score"] - b[task]["score"]) for a, b in zip(pc, pg))
                r[task] = {
                    "label_agreement_pct": round(100 * same / len(items), 2),
                    "max_abs_score_diff": diff,
                }
            else:
                same = sum(_spans(a[task]) == _spans(b[task]) for a, b in zip(pc, pg))
                entities = sum(len(a[task]) for a in pc)
                diff = max(
                    (abs(x["score"] - y["score"]) for a, b in zip(pc, pg) for x, y in zip(a[task], b[task])),
                    default=0.0,
                )
                r[task] = {
                    "texts_with_identical_spans_pct": round(100 * same / len(items), 2),
                    "entities_cpu": entities,
                    "max_abs_entity_score_diff": diff,
                }
    with guarded(r, "predict_proba"):
        qc = cpu_model.predict_proba(items, batch_size=32)
        qg = gpu_model.predict_proba(items, batch_size=32)
        r["max_abs_probability_diff"] = {
            task: float(max(np.abs(a[task] - b[task]).max() for a, b in zip(qc, qg)))
            for task in cpu_model.heads
        }
    with guarded(r, "embeddings"):
        texts = [x if isinstance(x, str) else " ".join(x) for x in items]
        ec = cpu_model.encode(texts, batch_size=32)
        eg = gpu_model.encode(texts, batch_size=32)
        cos = np.sum(ec * eg, axis=1) / (np.linalg.norm(ec, axis=1) * np.linalg.norm(eg, axis=1))
        r["embeddings"] = {
            "min_cosine": float(cos.min()),
            "max_abs_diff": float(np.abs(ec - eg).max()),
            "all_cosine_ge_0.9999": bool(cos.min() >= 0.9999),
        }
    with guarded(r, "embed_tokens"):
        from st_multitask import embed_tokens

        tc = embed_tokens(texts[:32], model=cpu_model.backbone)
        tg = embed_tokens(texts[:32], model=gpu_model.backbone)
        r["embed_tokens"] = {
            "same_tokens_and_offsets": all(
                a.tokens == b.tokens and a.offsets == b.offsets for a, b in zip(tc, tg)
            ),
            "max_abs_diff": float(max(np.abs(a.embeddings - b.embeddings).max() for a, b in zip(tc, tg))),
        }
    return r


# -- 3. throughput ------------------------------------------------------------------------------
def check_throughput(
    n: int, cpu_n: int, batch_sizes: list[int], gpu: str, repeats: int, modes: list[str]
) -> dict[str, Any]:
    from st_multitask import MultiTaskModel, embed
    from st_multitask.backbone import load_backbone

    r: dict[str, Any] = {"sentences": n, "cpu_sentences": cpu_n, "repeats": repeats, "gpu": {}, "cpu": {}}
    texts = generated_sentences(n, seed=1)
    gpu_backbone = load_backbone(None, gpu)
    cpu_backbone = load_backbone(None, "cpu")
    lengths = [len(ids) for ids in gpu_backbone.tokenizer(texts)["input_ids"]]
    r["word_pieces_mean_max"] = [round(float(np.mean(lengths)), 1), int(max(lengths))]
    reference = embed(texts, model=gpu_backbone, batch_size=128)
    dtypes = {"fp32": None, "bf16_autocast": torch.bfloat16, "fp16_autocast": torch.float16}
    for mode, dtype in ((m, dtypes[m]) for m in modes):
        for bs in batch_sizes:
            key = f"{mode}_bs{bs}"
            with guarded(r["gpu"], key):

                def context(dtype=dtype):
                    if dtype is None:
                        return contextlib.nullcontext()
                    return torch.autocast("cuda", dtype=dtype)

                holder: dict[str, np.ndarray] = {}

                def run(bs=bs, context=context, holder=holder) -> None:
                    with context():
                        holder["v"] = embed(texts, model=gpu_backbone, batch_size=bs)

                t = timed(run, repeats)
                t["sentences_per_s"] = round(n / t["median_s"], 1)
                v = holder["v"]
                cos = np.sum(v * reference, axis=1) / (
                    np.linalg.norm(v, axis=1) * np.linalg.norm(reference, axis=1)
                )
                t["dtype_out"] = str(v.dtype)
                t["min_cosine_vs_fp32"] = float(cos.min())
                r["gpu"][key] = t
                print(f"gpu {key}: {t['sentences_per_s']} sentences/s", flush=True)
    with guarded(r["gpu"], "peak_memory"):
        r["gpu"]["peak_memory_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    with guarded(r, "gpu_breakdown"):
        r["gpu_breakdown"] = gpu_breakdown(gpu_backbone, texts, batch_sizes, repeats)
    if cpu_n <= 0:
        return r
    cpu_texts = texts[:cpu_n]
    for bs in batch_sizes:
        key = f"fp32_bs{bs}"
        with guarded(r["cpu"], key):
            t = timed(lambda bs=bs: embed(cpu_texts, model=cpu_backbone, batch_size=bs), repeats)
            t["sentences_per_s"] = round(cpu_n / t["median_s"], 1)
            r["cpu"][key] = t
            print(f"cpu {key}: {t['sentences_per_s']} sentences/s", flush=True)
    r["cpu"]["torch_threads"] = torch.get_num_threads()
    with guarded(r, "speedup"):
        r["gpu_fp32_over_cpu_fp32"] = {
            f"bs{bs}": round(
                r["gpu"][f"fp32_bs{bs}"]["sentences_per_s"] / r["cpu"][f"fp32_bs{bs}"]["sentences_per_s"], 1
            )
            for bs in batch_sizes
        }
    # predict of the default model (3 heads, one backbone pass a batch)
    predict_n = min(cpu_n, 1000)
    items = texts[:predict_n]
    r["predict"] = {"texts": predict_n, "batch_size": 32}
    for device in (gpu, "cpu"):
        with guarded(r["predict"], f"predict {device}"):
            model = MultiTaskModel.default(device=device)
            t = timed(lambda model=model: model.predict(items, batch_size=32), repeats)
            t["texts_per_s"] = round(predict_n / t["median_s"], 1)
            r["predict"][device] = t
            print(f"predict {device}: {t['texts_per_s']} texts/s", flush=True)
    return r


def gpu_breakdown(backbone, texts: list[str], batch_sizes: list[int], repeats: int) -> dict[str, Any]:
    """Where embed's time goes on the GPU: the length pass over every text (embed checks the
    window), the tokenizer, plain ``SentenceTransformer.encode``, and the backbone's forward pass
    alone on batches tokenized beforehand (sorted by length, as encode sorts them), fp32 and bf16."""
    from st_multitask.embedding import _token_lengths

    n = len(texts)
    out: dict[str, Any] = {}
    t = timed(lambda: _token_lengths(backbone, texts), repeats)
    out["embed_length_pass_s"] = t["median_s"]
    order = sorted(range(n), key=lambda i: -len(texts[i]))
    ordered = [texts[i] for i in order]
    for bs in batch_sizes:
        row: dict[str, Any] = {}
        batches = [ordered[i : i + bs] for i in range(0, n, bs)]
        row["tokenize_s"] = timed(lambda batches=batches: [backbone.tokenize(b) for b in batches], repeats)[
            "median_s"
        ]
        row["st_encode_s"] = timed(
            lambda bs=bs: backbone.encode(
                texts, batch_size=bs, normalize_embeddings=True, convert_to_numpy=True
            ),
            repeats,
        )["median_s"]
        device = backbone.device
        features = [
            {k: v.to(device) for k, v in backbone.tokenize(b).items() if isinstance(v, torch.Tensor)}
            for b in batches
        ]
        for mode, dtype in (("fp32", None), ("bf16", torch.bfloat16)):

            def forward(dtype=dtype, features=features) -> None:
                context = (
                    torch.autocast("cuda", dtype=dtype) if dtype is not None else contextlib.nullcontext()
                )
                with torch.inference_mode(), context:
                    for f in features:
                        backbone(dict(f))

            s = timed(forward, repeats)["median_s"]
            row[f"forward_only_{mode}_s"] = s
            row[f"forward_only_{mode}_sentences_per_s"] = round(n / s, 1)
        out[f"bs{bs}"] = row
        print(f"breakdown bs{bs}: {row}", flush=True)
    return out


# -- 4. training --------------------------------------------------------------------------------
def _train_data():
    from st_multitask.data import SentenceExamples, TokenExamples, read_sentence_examples, read_token_examples

    s_train = read_sentence_examples(EXAMPLES / "data" / "sentiment-train.csv")
    s_dev = read_sentence_examples(EXAMPLES / "data" / "sentiment-dev.csv")
    n_train = read_token_examples(EXAMPLES / "data" / "ner-train.conll")
    n_dev = read_token_examples(EXAMPLES / "data" / "ner-dev.conll")
    s_train = SentenceExamples(s_train.texts[:64], s_train.labels[:64], "sentiment-train[:64]")
    n_train = TokenExamples(n_train.words[:32], n_train.tags[:32], "ner-train[:32]")
    labels = sorted(set(n_train.label_set()) | set(n_dev.label_set()), key=lambda t: (t != "O", t[2:], t))
    return s_train, s_dev, n_train, n_dev, labels


def train_once(device: str, heads: str, mixed_precision: str, seed: int, output_dir: str | None) -> tuple:
    from st_multitask import MultiTaskModel, TaskData, Trainer, TrainingConfig
    from st_multitask.heads import ContextTokenHead, HybridHead, MLPHead, TokenHead

    s_train, s_dev, n_train, n_dev, ner_labels = _train_data()
    torch.manual_seed(seed)
    model = MultiTaskModel(device=device)
    if heads == "mlp+token":
        model.add_head("sentiment", MLPHead(model.dim, ["negative", "positive"], hidden=[128], dropout=0.1))
        model.add_head("ner", TokenHead(model.dim, ner_labels, hidden=[], alignment="first"))
    else:  # the bundled default model's kinds
        model.add_head(
            "sentiment",
            HybridHead(
                model.dim,
                ["negative", "positive"],
                hidden=[256],
                layers=[1, 2, 3, 4, 5, 6],
                features={"ngram_range": [1, 2], "min_df": 1},
            ),
        )
        model.add_head(
            "ner",
            ContextTokenHead(model.dim, ner_labels, layers=[1, 2, 3, 4, 5, 6], lstm_hidden=128, char_dim=30),
        )
    config = TrainingConfig(
        epochs=2,
        batch_size=16,
        learning_rate=5e-5,
        head_learning_rate=3e-3,
        warmup_ratio=0.1,
        seed=seed,
        mixed_precision=mixed_precision,
        checkpoint_every=4,
    )
    trainer = Trainer(model, config, output_dir=output_dir, overwrite=True, progress=False)
    start = time.perf_counter()
    result = trainer.fit([TaskData("sentiment", s_train, s_dev), TaskData("ner", n_train, n_dev)])
    seconds = time.perf_counter() - start
    return model, result, seconds, (s_dev, n_dev)


def _state(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().float().cpu() for k, v in model.state_dict().items() if v.is_floating_point()}


def _weight_diff(a: dict, b: dict) -> dict[str, Any]:
    diffs = {k: float((a[k] - b[k]).abs().max()) for k in a}
    differing = [k for k, d in diffs.items() if d > 0]
    return {
        "identical": not differing,
        "tensors_differing": len(differing),
        "tensors": len(diffs),
        "max_abs_diff": max(diffs.values()) if diffs else 0.0,
    }


def check_training(gpu: str, workdir: Path, quick: bool) -> dict[str, Any]:
    from st_multitask import MultiTaskModel

    r: dict[str, Any] = {"runs": {}}
    runs = (
        [("mlp+token", "no")]
        if quick
        else [
            ("mlp+token", "no"),
            ("mlp+token", "bf16"),
            ("mlp+token", "fp16"),
            ("bundled-kinds", "no"),
            ("bundled-kinds", "bf16"),
        ]
    )
    if gpu == "cpu":
        runs = [run for run in runs if run[1] == "no"]
    first_state = None
    for heads, precision in runs:
        key = f"{heads}/{precision}"
        section: dict[str, Any] = {}
        r["runs"][key] = section
        with guarded(section, "train"):
            out = workdir / f"train-{heads.replace('+', '_')}-{precision}"
            model, result, seconds, (s_dev, n_dev) = train_once(gpu, heads, precision, 0, str(out))
            losses = [h["train_loss"] for h in result.history]
            section.update(
                {
                    "train_loss_per_epoch": losses,
                    "loss_decreased": len(losses) > 1 and losses[-1] < losses[0],
                    "seconds": round(seconds, 2),
                    "steps": result.steps,
                    "dev_metrics": {
                        t: {k: v for k, v in m.items() if k in ("accuracy", "macro_f1", "f1")}
                        for t, m in result.metrics.items()
                    },
                    "model_device": str(model.device),
                }
            )
            if key == "mlp+token/no":
                first_state = _state(model)
            dev_items = s_dev.texts + n_dev.words[:40]
            on_gpu = model.predict(dev_items)
            loaded = MultiTaskModel.load(out, device="cpu")
            section["reloaded_device"] = str(loaded.device)
            section["reloaded_weights_vs_trained"] = _weight_diff(_state(model), _state(loaded))
            on_cpu = loaded.predict(dev_items)
            section["reloaded_cpu_predict_agreement_pct"] = {
                "sentiment": round(
                    100
                    * sum(a["sentiment"]["label"] == b["sentiment"]["label"] for a, b in zip(on_gpu, on_cpu))
                    / len(dev_items),
                    2,
                ),
                "ner_identical_spans": round(
                    100
                    * sum(_spans(a["ner"]) == _spans(b["ner"]) for a, b in zip(on_gpu, on_cpu))
                    / len(dev_items),
                    2,
                ),
            }
            section["checkpoints"] = (
                sorted(p.name for p in (out / "checkpoints").iterdir())
                if (out / "checkpoints").is_dir()
                else []
            )
            print(f"train {key}: losses {losses}, {seconds:.1f} s", flush=True)
            del model, loaded
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
    # same seed twice (fp32, mlp+token): identical weights?
    with guarded(r, "same seed"):
        if first_state is None:
            raise RuntimeError("the first run failed")
        model, result, _, _ = train_once(gpu, "mlp+token", "no", 0, None)
        r["same_seed_rerun"] = _weight_diff(first_state, _state(model))
        r["same_seed_rerun"]["train_losses"] = [
            r["runs"]["mlp+token/no"]["train_loss_per_epoch"],
            [h["train_loss"] for h in result.history],
        ]
        del model
    if not quick and gpu != "cpu":
        with guarded(r, "deterministic child"):
            env = {**os.environ, "CUBLAS_WORKSPACE_CONFIG": ":4096:8"}
            child = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--_deterministic-pair",
                    "--gpu-device",
                    gpu,
                    "--workdir",
                    str(workdir),
                ],
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
            )
            lines = [line for line in child.stdout.splitlines() if line.startswith("DETERMINISTIC ")]
            r["deterministic_algorithms_rerun"] = (
                json.loads(lines[-1][len("DETERMINISTIC ") :])
                if lines
                else {"returncode": child.returncode, "stderr_tail": child.stderr[-3000:]}
            )
    return r


def deterministic_pair(gpu: str) -> None:
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False
    out: dict[str, Any] = {}
    try:
        a, ra, _, _ = train_once(gpu, "mlp+token", "no", 0, None)
        sa = _state(a)
        del a
        b, rb, _, _ = train_once(gpu, "mlp+token", "no", 0, None)
        out = _weight_diff(sa, _state(b))
        out["train_losses"] = [[h["train_loss"] for h in ra.history], [h["train_loss"] for h in rb.history]]
    except Exception as exc:
        out = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
    print("DETERMINISTIC " + json.dumps(out), flush=True)


# -- main ---------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=None, help="JSON file [benchmarks/out/gpu_check.json]")
    parser.add_argument("--n", type=int, default=10000, help="sentences for the GPU throughput")
    parser.add_argument(
        "--cpu-n", type=int, default=2000, help="sentences for the CPU throughput (0: GPU only)"
    )
    parser.add_argument("--batch-sizes", default="32,128,512")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--modes", default="fp32,bf16_autocast,fp16_autocast", help="GPU embed precisions")
    parser.add_argument("--agreement-n", type=int, default=200)
    parser.add_argument("--checks", default="devices,agreement,throughput,training")
    parser.add_argument(
        "--gpu-device", default="cuda", help="the device under test (cpu: a smoke test of this script)"
    )
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/gpu_check"))
    parser.add_argument("--quick", action="store_true", help="one training run (smoke test)")
    parser.add_argument(
        "--_deterministic-pair", dest="deterministic_pair", action="store_true", help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.deterministic_pair:
        deterministic_pair(args.gpu_device)
        return
    if args.gpu_device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("No CUDA device here: this check needs a GPU (or --gpu-device cpu for a smoke test).")
    args.workdir.mkdir(parents=True, exist_ok=True)
    import transformers

    transformers.logging.disable_progress_bar()
    checks = [c for c in args.checks.split(",") if c]
    result: dict[str, Any] = {"command": "python benchmarks/gpu_check.py " + " ".join(sys.argv[1:])}
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        result["gpu"] = {
            "name": props.name,
            "memory_gib": round(props.total_memory / 2**30, 1),
            "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(),
        }
    started = time.perf_counter()
    steps = {
        "devices": lambda: check_devices(),
        "agreement": lambda: check_agreement(args.agreement_n, args.gpu_device),
        "throughput": lambda: check_throughput(
            args.n,
            args.cpu_n,
            [int(b) for b in args.batch_sizes.split(",")],
            args.gpu_device,
            args.repeats,
            args.modes.split(","),
        ),
        "training": lambda: check_training(args.gpu_device, args.workdir, args.quick),
    }
    for name in checks:
        t0 = time.perf_counter()
        print(f"== {name}", flush=True)
        try:
            result[name] = steps[name]()
        except Exception as exc:
            result[name] = {}
            record_error(result[name], exc)
        result[name]["check_seconds"] = round(time.perf_counter() - t0, 1)
        print(json.dumps(result[name], indent=1, default=str)[:6000], flush=True)
        write_result("gpu_check", result, args.out)  # what is done so far, should a later check hang
    result["seconds"] = round(time.perf_counter() - started, 1)
    result["errors"] = {
        name: [e["error"] for e in result[name].get("errors", [])]
        + [
            e["error"]
            for sub in result[name].values()
            if isinstance(sub, dict)
            for e in sub.get("errors", [])
        ]
        for name in checks
    }
    path = write_result("gpu_check", result, args.out)
    print(f"\nwritten: {path}")
    summary(result)


def summary(result: dict[str, Any]) -> None:
    d, a, t, tr = (result.get(k, {}) for k in ("devices", "agreement", "throughput", "training"))
    print("\n== summary")
    if d:
        print(
            f"default device: {d.get('resolve_device(None)')}; auto backend: "
            f"{d.get('resolve_backend(auto, fp32, None)')}; MultiTaskModel.default(): {d.get('MultiTaskModel.default()')}"
        )
    if a:
        print(
            f"agreement: topic {a.get('topic')}, sentiment {a.get('sentiment')}, ner {a.get('ner')}, "
            f"embeddings {a.get('embeddings')}"
        )
    if t:
        for side in ("gpu", "cpu"):
            print(
                side,
                {
                    k: v.get("sentences_per_s")
                    for k, v in t.get(side, {}).items()
                    if isinstance(v, dict) and "sentences_per_s" in v
                },
            )
    if tr:
        for key, run in tr.get("runs", {}).items():
            print(
                f"train {key}: losses {run.get('train_loss_per_epoch')}, reload on cpu {run.get('reloaded_cpu_predict_agreement_pct')}, errors {[e['error'] for e in run.get('errors', [])]}"
            )
        print("same seed rerun:", tr.get("same_seed_rerun"))
        print(
            "deterministic rerun:",
            {k: v for k, v in tr.get("deterministic_algorithms_rerun", {}).items() if k != "traceback"},
        )
    print("errors:", result.get("errors"))


if __name__ == "__main__":
    main()
