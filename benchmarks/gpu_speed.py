"""GPU speed: ``st_multitask.embed`` and ``predict`` on a CUDA GPU against the same machine's CPU.

Run on a machine with a CUDA GPU (its correctness side, device selection, cuda-vs-cpu agreement
and training on cuda, is ``pytest -m gpu``, tests/gpu/)::

    python -m benchmarks run gpu_speed [-- --n 10000 --cpu-n 2000 --batch-sizes 32,128,512]

``embed`` of ``--n`` generated sentences at each batch size on cuda, fp32 and under
``torch.autocast`` fp16 / bf16 (the library's torch backend is fp32 only, so autocast is applied
around it here), and on the CPU (the first ``--cpu-n`` sentences); median of ``--repeats`` after a
warm-up. Then where the GPU's time goes (length pass, tokenizer, ``encode``, forward pass alone),
and ``predict`` of the default model, cuda against cpu. The result is stored under
``benchmarks/results/<machine>/gpu_speed.json``. The texts come from a seeded generator: no data
package is needed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch

from benchmarks._common import store_result

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


@contextlib.contextmanager
def guarded(section: dict[str, Any], what: str):
    """Record a failed step in ``section`` and go on with the others."""
    try:
        yield
    except Exception as exc:
        section.setdefault("errors", []).append({"step": what, "error": f"{type(exc).__name__}: {exc}"})
        print(f"!! {what}: {type(exc).__name__}: {exc}", flush=True)


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
                    return torch.autocast(device.type, dtype=dtype)

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
        if torch.cuda.is_available():
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
    from st_multitask.embedding import count_over_window

    n = len(texts)
    out: dict[str, Any] = {}
    t = timed(lambda: count_over_window(texts, backbone), repeats)
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

            def forward(dtype=dtype, features=features, device=device) -> None:
                context = (
                    torch.autocast(device.type, dtype=dtype)
                    if dtype is not None
                    else contextlib.nullcontext()
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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=10000, help="sentences for the GPU throughput")
    parser.add_argument(
        "--cpu-n", type=int, default=2000, help="sentences for the CPU throughput (0: GPU only)"
    )
    parser.add_argument("--batch-sizes", default="32,128,512")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--modes", default="fp32,bf16_autocast,fp16_autocast", help="GPU embed precisions")
    parser.add_argument("--gpu-device", default="cuda", help="the device measured (cpu: a smoke test)")
    args = parser.parse_args()
    if args.gpu_device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("No CUDA device here: this benchmark needs a GPU (or --gpu-device cpu for a smoke test).")
    result: dict[str, Any] = {}
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        result["gpu"] = {
            "name": props.name,
            "memory_gib": round(props.total_memory / 2**30, 1),
            "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(),
        }
    modes = args.modes.split(",") if args.gpu_device.startswith("cuda") else ["fp32"]
    result["figures"] = check_throughput(
        args.n,
        args.cpu_n,
        [int(b) for b in args.batch_sizes.split(",")],
        args.gpu_device,
        args.repeats,
        modes,
    )
    print(store_result("gpu_speed", result))


if __name__ == "__main__":
    main()
