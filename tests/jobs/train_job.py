"""A small, deterministic training job run as a separate process by the training tests
(kill-and-resume, accelerate launch). Usage: train_job.py MODEL_DIR OUT_DIR [--resume] [--examples N]"""

from __future__ import annotations

import argparse
import json
import os
import random

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

from st_multitask import MultiTaskModel, TaskData, Trainer, TrainingConfig
from st_multitask.data import SentenceExamples, TokenExamples
from st_multitask.heads import MLPHead, TokenHead


def toy_tasks(n: int, seed: int = 0) -> list[TaskData]:
    rng = random.Random(seed)
    good, bad = (
        ["good great film", "lovely happy day", "nice fun show"],
        ["bad awful film", "sad boring day", "poor dull show"],
    )
    texts, labels = [], []
    for _ in range(n):
        if rng.random() < 0.5:
            texts.append(rng.choice(good) + f" {rng.randint(0, 99)}")
            labels.append("pos")
        else:
            texts.append(rng.choice(bad) + f" {rng.randint(0, 99)}")
            labels.append("neg")
    people, places = ["Alice", "Bob", "Carol"], ["Paris", "Rome", "Oslo"]
    words, tags = [], []
    for _ in range(n):
        name = rng.choice(people + places)
        words.append(["we", "saw", name, "again"])
        tags.append(["O", "O", "B-PER" if name in people else "B-LOC", "O"])
    sentiment = SentenceExamples(texts, labels, "toy-sentiment")
    ner = TokenExamples(words, tags, "toy-ner")
    return [TaskData("sentiment", sentiment, dev=sentiment), TaskData("ner", ner, dev=ner)]


def build_model(model_dir: str) -> MultiTaskModel:
    torch.manual_seed(0)
    model = MultiTaskModel(model_dir, device="cpu")
    model.add_head("sentiment", MLPHead(model.dim, ["neg", "pos"], hidden=[16]))
    model.add_head("ner", TokenHead(model.dim, ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"], hidden=[16]))
    return model


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model_dir")
    parser.add_argument("out_dir")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--examples", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--result", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = build_model(args.model_dir)
    config = TrainingConfig(
        epochs=args.epochs,
        batch_size=4,
        learning_rate=2e-3,
        head_learning_rate=1e-2,
        checkpoint_every=1,
        keep_checkpoints=2,
        seed=7,
    )
    trainer = Trainer(
        model, config, output_dir=args.out_dir, overwrite=not args.resume, resume=args.resume, progress=False
    )
    result = trainer.fit(toy_tasks(args.examples))
    if trainer.rank == 0 and args.result:
        weights = {k: v.float().sum().item() for k, v in model.state_dict().items() if v.is_floating_point()}
        with open(args.result, "w") as f:
            json.dump(
                {
                    "metrics": result.metrics,
                    "history": result.history,
                    "weights": weights,
                    "world": trainer.world,
                    "steps": result.steps,
                },
                f,
            )


if __name__ == "__main__":
    main()
