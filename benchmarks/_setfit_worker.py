"""SetFit's side of ``benchmarks/few_shot.py``, run by SetFit's own Python (its own virtual
environment: SetFit 1.2.0 pinned, see that script). Not part of the toolkit: it imports SetFit,
never st_multitask.

    python benchmarks/_setfit_worker.py JOB.json RESULTS.jsonl

``JOB.json`` holds the backbone's folder, the test texts and gold labels, and the runs (each a
seed, its drawn training texts and labels, and its steps: one epoch of pairs, or the cap where
that is fewer). Each run trains SetFit with its defaults (contrastive pairs by oversampling, one
epoch, batches of 16, then logistic regression), with ``max_steps`` where the cap cut it, predicts the test texts and appends one JSON line to
``RESULTS.jsonl``: run id, accuracy, training seconds.
"""

from __future__ import annotations

import json
import os
import sys
import time


def main(job_path: str, out_path: str) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("WANDB_DISABLED", "true")
    import numpy as np
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments

    with open(job_path, encoding="utf-8") as f:
        job = json.load(f)
    test_texts, test_labels = job["test"]["texts"], job["test"]["labels"]
    for run in job["runs"]:
        model = SetFitModel.from_pretrained(job["model_path"], local_files_only=True)
        args = TrainingArguments(
            seed=run["seed"],
            max_steps=run["max_steps"] if run["max_steps"] else -1,  # HF runs exactly this many
            report_to="none",
            save_strategy="no",
            show_progress_bar=False,
            output_dir=job["output_dir"],
        )
        data = Dataset.from_dict({"text": run["texts"], "label": run["labels"]})
        trainer = Trainer(model=model, args=args, train_dataset=data)
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
        predicted = model.predict(test_texts, batch_size=64, as_numpy=True)
        accuracy = float(np.mean([str(p) == g for p, g in zip(predicted, test_labels)]))
        row = {"id": run["id"], "accuracy": accuracy, "train_seconds": round(seconds, 2)}
        with open(out_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
