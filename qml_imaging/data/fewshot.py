"""Few-shot training sets: seeded draws of k images, and the small pack bundled with the package.

The bundled pack (``bundled/fewshot_pack.npz``, made by :func:`build_fewshot_pack`) holds
100 MNIST test digits (10 per class) and 100 PneumoniaMNIST training images (50 per class),
with their indices in the source splits, so the main job needs no data directory.
See ``bundled/README.md`` for licences.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import torch

from qml_imaging.data.datasets import load_medmnist, load_mnist

PACK_DATASETS = ("mnist", "pneumoniamnist")
PACK_PER_CLASS = {"mnist": 10, "pneumoniamnist": 50}


def few_shot_indices(labels: np.ndarray | torch.Tensor, k: int, *, classes: list[int] | None = None, seed: int = 0) -> np.ndarray:
    """Indices of ``k`` samples drawn without replacement, balanced over ``classes`` (all classes if None).

    Each class gets ``k // n_classes`` samples; the remainder goes to classes chosen at random.
    Deterministic for a given seed. Raises ValueError when a class has too few samples.
    """
    labels = np.asarray(labels).reshape(-1)
    present = sorted(int(c) for c in np.unique(labels))
    chosen = present if classes is None else [int(c) for c in classes]
    unknown = sorted(set(chosen) - set(present))
    if unknown:
        raise ValueError(f"classes {unknown} do not occur in the labels; present: {present}")
    if k < 1:
        raise ValueError(f"k must be a positive number of images, got {k}")
    rng = np.random.default_rng(seed)
    counts = np.full(len(chosen), k // len(chosen))
    counts[rng.choice(len(chosen), size=k % len(chosen), replace=False)] += 1
    picked = []
    for label, count in zip(chosen, counts, strict=True):
        pool = np.flatnonzero(labels == label)
        if count > len(pool):
            raise ValueError(f"class {label} has {len(pool)} samples, fewer than the {count} requested")
        picked.append(rng.choice(pool, size=count, replace=False))
    return np.sort(np.concatenate(picked))


def load_fewshot_pack(dataset: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The bundled pack's ``(images uint8 (N, 28, 28), labels (N,), source indices (N,))`` for ``dataset``."""
    if dataset not in PACK_DATASETS:
        raise ValueError(f"the bundled pack holds {list(PACK_DATASETS)}, not {dataset!r}")
    with resources.as_file(resources.files("qml_imaging.data") / "bundled" / "fewshot_pack.npz") as path:
        with np.load(path) as pack:
            return pack[f"{dataset}_images"], pack[f"{dataset}_labels"], pack[f"{dataset}_indices"]


def build_fewshot_pack(data_dir: str | Path, out: str | Path, seed: int = 2026) -> Path:
    """Make the bundled pack from the full offline data sets under ``data_dir``."""
    mnist_images, mnist_labels = load_mnist(train=False, data_dir=data_dir, download=False)
    pneumonia_images, pneumonia_labels = load_medmnist("pneumoniamnist", split="train", data_dir=data_dir, download=False)
    arrays = {}
    for name, images, labels in (
        ("mnist", np.asarray(mnist_images), np.asarray(mnist_labels)),
        ("pneumoniamnist", pneumonia_images, pneumonia_labels),
    ):
        n_classes = len(np.unique(labels))
        indices = few_shot_indices(labels, PACK_PER_CLASS[name] * n_classes, seed=seed)
        arrays[f"{name}_images"] = images[indices].astype(np.uint8)
        arrays[f"{name}_labels"] = labels[indices].astype(np.int64)
        arrays[f"{name}_indices"] = indices.astype(np.int64)
    np.savez_compressed(out, **arrays)
    return Path(out)

