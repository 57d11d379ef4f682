"""End-to-end smoke trainings through sampled backends (issue 32): a QIREN (2 qubits, 25 parameters, 6x6
camera image) and a few-shot diffusion U-Net with a 2-qubit quantum bottleneck (MNIST 0/1, k = 4), every
gradient by parameter shift, on each backend given; exits 1 when a training loss does not fall.

    python benchmarks/sampled_training.py [--backends aer_shots aer_noisy_manila] [--data ../shared/data]

``--data`` holds ``mnist/`` (set as ``QML_IMAGING_DATA``; no download). Prints, per backend and model, the
first and last epoch's training loss.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

QIREN = ["inr_smoke", "size=6", "superres_size=null", "reference_model=qiren", "parameter_budget=25", "train.epochs=8"]
QIREN_MODEL = "models={{qiren: {{kind: qiren, lr: 0.05, n_qubits: 2, hidden_layers: 1, reuploads: 1, sublayers: 1, " \
              "backend: {backend}}}}}"
DIFFUSION = {
    "experiment": "diffusion_fewshot", "name": "sampled_smoke",
    "datasets": {"mnist": {"source": "mnist", "classes": [0, 1]}}, "shots": [4], "seeds": [0],
    "variants": {"quantum": {"bottleneck": "quantum"}},
    "split": {"reference": 100, "control": 100, "fewshot_pool": 40},
    "unet": {"channels": [8, 8, 16], "n_qubits": 2, "quantum_layers": 1},
    "diffusion": {"timesteps": 50}, "batches_per_epoch": 2,
    "train": {"epochs": 6, "batch_size": 4, "checkpoint_every": 3, "progress": False, "lr": 0.003},
    "sampling": {"samples": 20, "ddim_steps": 3, "batch_size": 20},
    "evaluation": {"classifier": {"epochs": 1, "batch_size": 256, "progress": False},
                   "kid_subset_size": 10, "kid_subsets": 2, "grid_images": 4},
}


def train(arguments: list[str], out: Path, environment: dict[str, str]) -> list[float]:
    """Run ``qml-imaging run ARGUMENTS --out OUT``; the training losses of its one fit, by epoch."""
    done = subprocess.run([sys.executable, "-m", "qml_imaging.cli", "run", *arguments, "--out", str(out)],
                          capture_output=True, text=True, env=environment)
    if done.returncode != 0:
        raise SystemExit(f"qml-imaging run {' '.join(arguments)} failed: {done.stderr.strip()[-400:]}")
    (metrics,) = [path for path in out.rglob("metrics.jsonl") if path.parent != out]
    records = [json.loads(line) for line in metrics.read_text().splitlines()]
    return [record["train_loss"] for record in records if "train_loss" in record]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["aer_shots", "aer_noisy_manila"])
    parser.add_argument("--data", default="../shared/data")
    options = parser.parse_args()
    environment = {**os.environ, "QML_IMAGING_DATA": str(Path(options.data).resolve()), "OMP_NUM_THREADS": "1"}
    falling = True
    with tempfile.TemporaryDirectory() as work:
        for backend in options.backends:
            config = Path(work) / f"diffusion_{backend}.yaml"
            config.write_text(json.dumps({**DIFFUSION, "unet": {**DIFFUSION["unet"], "backend": backend}}))
            runs = {"qiren": [*QIREN, QIREN_MODEL.format(backend=backend)], "diffusion": [str(config)]}
            for model, arguments in runs.items():
                losses = train(arguments, Path(work) / f"{model}_{backend}", environment)
                falling &= losses[-1] < losses[0]
                print(f"{backend:>18} {model:>9}: train loss {losses[0]:.4f} -> {losses[-1]:.4f} over {len(losses)} epochs")
    return 0 if falling else 1


if __name__ == "__main__":
    raise SystemExit(main())
