"""Each data set's images divided into reference, control, few-shot pool and classifier-training parts.

All images of a data set (MNIST: the 10,000-image test set of the offline bundle; MedMNIST: train,
val and test splits together) are shuffled with ``split.seed`` and cut in this order:
``reference`` | ``control`` | ``fewshot_pool`` | the rest (feature classifier). The cut is the same
for every training seed, so the held-out images never depend on which model is scored.
Images are float ``(N, C, 28, 28)`` in [-1, 1]; labels are remapped to ``0 .. classes - 1``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from qml_imaging.data.datasets import load_medmnist, load_mnist
from qml_imaging.data.fewshot import few_shot_indices
from qml_imaging.pipelines.diffusion.config import DatasetSpec, Split


@dataclass(frozen=True)
class DatasetSplit:
    reference: torch.Tensor
    control: torch.Tensor
    control_labels: torch.Tensor
    pool: torch.Tensor
    pool_labels: torch.Tensor
    classifier: torch.Tensor
    classifier_labels: torch.Tensor
    classes: int

    @property
    def channels(self) -> int:
        return self.reference.shape[1]

    def fewshot(self, k: int, seed: int) -> torch.Tensor:
        """``k`` pool images ``(k, C, 28, 28)``, balanced over classes, drawn with ``seed``."""
        return self.pool[torch.from_numpy(few_shot_indices(self.pool_labels.numpy(), k, seed=seed))]


def load_split(spec: DatasetSpec, split: Split) -> DatasetSplit:
    """The split of the data set described by ``spec`` (see the module docstring)."""
    return _cached_split(spec.model_dump_json(), split.model_dump_json())


@lru_cache(maxsize=8)
def _cached_split(spec_json: str, split_json: str) -> DatasetSplit:
    spec, split = DatasetSpec.model_validate_json(spec_json), Split.model_validate_json(split_json)
    images, labels = _all_images(spec)
    if spec.classes is not None:
        unknown = sorted(set(spec.classes) - set(np.unique(labels).tolist()))
        if unknown:
            raise ValueError(f"classes {unknown} do not occur in {spec.source} {spec.flag if spec.source == 'medmnist' else ''}")
        keep = np.isin(labels, spec.classes)
        images, labels = images[keep], labels[keep]
    _, labels = np.unique(labels, return_inverse=True)
    needed = split.reference + split.control + split.fewshot_pool
    if len(images) < needed + 100:
        raise ValueError(f"{len(images)} images are too few for reference + control + fewshot_pool ({needed}) "
                         f"plus at least 100 to train the feature classifier")
    order = np.random.default_rng(split.seed).permutation(len(images))
    tensor = torch.from_numpy(images[order]).float().div(127.5).sub(1.0)
    if tensor.ndim == 3:
        tensor = tensor.unsqueeze(1)
    else:
        tensor = tensor.permute(0, 3, 1, 2).contiguous()
    labels = torch.from_numpy(labels[order].astype(np.int64))
    cuts = np.cumsum([split.reference, split.control, split.fewshot_pool])
    return DatasetSplit(
        reference=tensor[: cuts[0]], control=tensor[cuts[0]: cuts[1]], control_labels=labels[cuts[0]: cuts[1]],
        pool=tensor[cuts[1]: cuts[2]], pool_labels=labels[cuts[1]: cuts[2]],
        classifier=tensor[cuts[2]:], classifier_labels=labels[cuts[2]:], classes=int(labels.max()) + 1,
    )


def _all_images(spec: DatasetSpec) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images ``(N, 28, 28)`` or ``(N, 28, 28, 3)`` and int labels ``(N,)``."""
    if spec.source == "mnist":
        images, labels = load_mnist(train=False)
        return images.numpy(), labels.numpy()
    parts = [load_medmnist(spec.flag, split=name) for name in ("train", "val", "test")]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
