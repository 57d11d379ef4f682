"""Each data set's images divided into reference, control, few-shot pool and classifier-training parts.

All images of a data set (MNIST: the 10,000-image test set of the offline bundle; MedMNIST: train,
val and test splits together) are shuffled with ``split.seed`` and cut in this order:
``reference`` | ``control`` | ``fewshot_pool`` | the rest (feature classifier). The cut is the same
for every training seed, so the held-out images never depend on which model is scored.
A folder of image files is read by :func:`~qml_imaging.data.images.load_image_folder` (each file resized to
``size x size``, intensity by the ``auto`` rule: 8-bit / 255, wider integers and floats min-max). Images are float
``(N, C, S, S)`` in [-1, 1]; labels are remapped to ``0 .. classes - 1`` (multi-label sets: see
:func:`class_labels`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from qml_imaging.data.datasets import load_medmnist, load_mnist
from qml_imaging.data.fewshot import few_shot_indices
from qml_imaging.data.images import load_image_folder
from qml_imaging.pipelines.diffusion.config import DatasetSpec, Split


@dataclass(frozen=True)
class DatasetSplit:
    """One data set split into held-out reference, control, the few-shot pool and the classifier's images ``(N, C, S, S)`` with labels."""
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
        return self.pool.shape[1]

    @property
    def side(self) -> int:
        return self.pool.shape[-1]

    def fewshot(self, k: int, seed: int) -> torch.Tensor:
        """``k`` pool images ``(k, C, S, S)``, balanced over classes, drawn with ``seed``. ValueError when the
        pool (or one of its classes) holds fewer images than asked for."""
        if k > len(self.pool):
            raise ValueError(f"shots {k}: the few-shot pool holds {len(self.pool)} images; lower shots, or give the "
                             "data set more images (split.fewshot_pool where FID/KID are scored)")
        return self.pool[torch.from_numpy(few_shot_indices(self.pool_labels.numpy(), k, seed=seed))]


def load_split(spec: DatasetSpec, split: Split, scores: bool = True) -> DatasetSplit:
    """The split of the data set described by ``spec`` (see the module docstring). With ``scores`` False
    (``evaluation.scores: false``) every image is in the few-shot pool and the other parts are empty."""
    return _cached_split(spec.model_dump_json(), split.model_dump_json(), scores)


def class_labels(labels: np.ndarray, classes: list[int] | None, name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(keep, labels)``: which images a data set keeps and their class index ``0 .. len(classes) - 1``.

    Single-label sets: ``labels`` ``(N,)``; images whose label is in ``classes`` (all if None), classes
    in sorted order. Multi-label sets (``labels`` ``(N, L)`` of 0/1, e.g. ChestMNIST): class ``j`` means
    "has label j"; an image counts for the first of ``classes`` it has (images with none are dropped;
    with ``classes`` None every label ``0 .. L-1`` is a class and images with no label form class ``L``).
    Raises ValueError for classes that do not occur or are out of range for the ``L`` labels.
    """
    labels = np.asarray(labels)
    if labels.ndim == 2:
        n_labels = labels.shape[1]
        chosen = list(range(n_labels)) if classes is None else list(classes)
        outside = [c for c in chosen if not 0 <= c < n_labels]
        if outside:
            raise ValueError(f"classes {outside} are out of range for {name}'s {n_labels} labels (0..{n_labels - 1}; "
                             "in a multi-label set class j means 'has label j')")
        has = labels[:, chosen].astype(bool)
        first = np.where(has.any(axis=1), has.argmax(axis=1), len(chosen))
        keep = first < len(chosen) if classes is not None else np.ones(len(labels), dtype=bool)
        _, index = np.unique(first[keep], return_inverse=True)
        return keep, index.astype(np.int64)
    keep = np.ones(len(labels), dtype=bool)
    if classes is not None:
        unknown = sorted(set(classes) - set(np.unique(labels).tolist()))
        if unknown:
            raise ValueError(f"classes {unknown} do not occur in {name}")
        keep = np.isin(labels, classes)
    _, index = np.unique(labels[keep], return_inverse=True)
    return keep, index.astype(np.int64)


@lru_cache(maxsize=8)
def _cached_split(spec_json: str, split_json: str, scores: bool = True) -> DatasetSplit:
    spec, split = DatasetSpec.model_validate_json(spec_json), Split.model_validate_json(split_json)
    images, labels = _all_images(spec)
    name = spec.flag if spec.source == "medmnist" else spec.source
    keep, labels = class_labels(labels, spec.classes, name)
    images = images[keep]
    if not scores:
        order = np.random.default_rng(split.seed).permutation(len(images))
        tensor = _to_tensor(images[order])
        empty = tensor[:0]
        return DatasetSplit(reference=empty, control=empty, control_labels=torch.zeros(0, dtype=torch.int64),
                            pool=tensor, pool_labels=torch.from_numpy(labels[order]), classifier=empty,
                            classifier_labels=torch.zeros(0, dtype=torch.int64), classes=int(labels.max()) + 1)
    needed = split.reference + split.control + split.fewshot_pool
    if len(images) < needed + 100:
        raise ValueError(f"{len(images)} images are too few for reference + control + fewshot_pool ({needed}) "
                         f"plus at least 100 to train the feature classifier")
    order = np.random.default_rng(split.seed).permutation(len(images))
    tensor = _to_tensor(images[order])
    labels = torch.from_numpy(labels[order].astype(np.int64))
    cuts = np.cumsum([split.reference, split.control, split.fewshot_pool])
    return DatasetSplit(
        reference=tensor[: cuts[0]], control=tensor[cuts[0]: cuts[1]], control_labels=labels[cuts[0]: cuts[1]],
        pool=tensor[cuts[1]: cuts[2]], pool_labels=labels[cuts[1]: cuts[2]],
        classifier=tensor[cuts[2]:], classifier_labels=labels[cuts[2]:], classes=int(labels.max()) + 1,
    )


def _to_tensor(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 ``(N, S, S)`` / ``(N, S, S, 3)`` -> float ``(N, C, S, S)`` in [-1, 1]; float tensors
    ``(N, C, S, S)`` (already in [-1, 1], from a folder) pass through."""
    if isinstance(images, torch.Tensor):
        return images
    tensor = torch.from_numpy(images).float().div(127.5).sub(1.0)
    return tensor.unsqueeze(1) if tensor.ndim == 3 else tensor.permute(0, 3, 1, 2).contiguous()


def _all_images(spec: DatasetSpec) -> tuple[np.ndarray | torch.Tensor, np.ndarray]:
    """uint8 images ``(N, S, S)`` or ``(N, S, S, 3)`` (MNIST, MedMNIST) or float ``(N, C, S, S)`` in [-1, 1]
    (a folder, :func:`~qml_imaging.data.images.load_image_folder`, resized to ``spec.size``), and labels
    ``(N,)`` (``(N, L)`` for multi-label sets; a folder is one class)."""
    if spec.source == "folder":
        images = load_image_folder(spec.path, spec.size, fit="stretch", channels=spec.channels)
        return images, np.zeros(len(images), dtype=np.int64)
    if spec.source == "mnist":
        images, labels = load_mnist(train=False)
        return images.numpy(), labels.numpy()
    parts = [load_medmnist(spec.flag, split=name, size=spec.size) for name in ("train", "val", "test")]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
