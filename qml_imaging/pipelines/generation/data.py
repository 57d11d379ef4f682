"""The images of a ``qiren_generation`` run, split once into reference | control | training | classifier parts.

MNIST and MedMNIST come through the diffusion pipeline's split (:func:`qml_imaging.pipelines.diffusion.data.load_split`,
the same seeded shuffle; its few-shot pool is the GANs' training set). CelebA comes from torchvision
(downloaded into the data root on first use): every image of ``split="all"``, centre-cropped to 178x178
and resized to ``size`` (bilinear, antialiased), in the same order of cuts; it has no classifier part.
Images are float ``(N, C, S, S)`` in [-1, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from qml_imaging.data.datasets import data_root
from qml_imaging.pipelines.diffusion.config import DatasetSpec, Split
from qml_imaging.pipelines.diffusion.data import load_split
from qml_imaging.pipelines.generation.config import GenerationData, GenerationSplit


@dataclass(frozen=True)
class GenerationImages:
    """The image sets of a generation run ``(N, C, S, S)`` in [-1, 1]: reference, control, training and classifier images with labels."""
    reference: torch.Tensor
    control: torch.Tensor
    control_labels: torch.Tensor | None
    training: torch.Tensor
    classifier: torch.Tensor | None
    classifier_labels: torch.Tensor | None
    classes: int

    @property
    def channels(self) -> int:
        return self.training.shape[1]

    @property
    def side(self) -> int:
        return self.training.shape[-1]


def load_images(data: GenerationData, split: GenerationSplit, labels: bool = True) -> GenerationImages:
    """The split images of ``data``; ``labels`` False skips the classifier part (Inception features).

    Raises ValueError when the data set has too few images for the split.
    """
    if data.source == "celeba":
        return _celeba(data, split)
    spec = DatasetSpec(source=data.source, flag=data.flag, size=data.size, classes=data.classes)
    parts = load_split(spec, Split(reference=split.reference, control=split.control, fewshot_pool=split.training,
                                   seed=split.seed))
    keep = slice(0, split.classifier)
    return GenerationImages(parts.reference, parts.control, parts.control_labels, parts.pool,
                            parts.classifier[keep] if labels else None,
                            parts.classifier_labels[keep] if labels else None, parts.classes)


def _celeba(data: GenerationData, split: GenerationSplit) -> GenerationImages:
    from torchvision import transforms
    from torchvision.datasets import CelebA

    root = data_root()
    try:
        dataset = CelebA(str(root), split="all", download=True, transform=transforms.Compose([
            transforms.CenterCrop(178), transforms.Resize(data.size, antialias=True), transforms.ToTensor()]))
    except (RuntimeError, OSError) as error:
        raise RuntimeError(f"CelebA could not be loaded into {root / 'celeba'} (torchvision downloads it from Google "
                           f"Drive and needs the gdown package): {error}") from error
    needed = split.reference + split.control + split.training
    if len(dataset) < needed:
        raise ValueError(f"CelebA holds {len(dataset)} images, fewer than reference + control + training ({needed})")
    order = np.random.default_rng(split.seed).permutation(len(dataset))[:needed]
    images = torch.stack([dataset[int(i)][0] for i in order]).mul(2).sub(1)
    cuts = np.cumsum([split.reference, split.control])
    return GenerationImages(images[: cuts[0]], images[cuts[0]: cuts[1]], None, images[cuts[1]:], None, None, 0)
