"""Few-shot training sets: seeded, class-balanced draws of k images."""

from __future__ import annotations

import numpy as np
import torch

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
