"""Sample-quality metrics in the feature space of a classifier trained by the project.

Inception features mean little on 28x28 digits and X-rays, so FID and KID are computed (through
torchmetrics' ``FrechetInceptionDistance`` and ``KernelInceptionDistance`` with a custom feature
extractor) on the 128-dimensional penultimate layer of :class:`LeNetClassifier`, trained on held-out
real images of the same data set (images in [-1, 1], ``(B, C, 28, 28)``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from qml_imaging.config import TrainSettings
from qml_imaging.training import Trainer, seed_everything, supervised

FEATURES = 128


class LeNetClassifier(nn.Module):
    """conv5(32) -> pool -> conv5(64) -> pool -> Linear(1600, 128) -> ReLU -> Linear(128, classes)."""

    def __init__(self, in_channels: int = 1, classes: int = 10):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(64 * 5 * 5, FEATURES), nn.ReLU(),
        )
        self.head = nn.Linear(FEATURES, classes)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, C, 28, 28)`` -> ``(B, 128)``."""
        return self.body(images)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Class logits ``(B, classes)`` of images ``(B, C, H, W)``."""
        return self.head(self.features(images))


class FeatureExtractor(nn.Module):
    """A frozen classifier's penultimate features times ``scale``, in the form torchmetrics expects.

    ReLU features have no natural unit; :func:`feature_scale` of a reference set makes their RMS 1,
    so FID and KID (whose polynomial kernel is not scale-free) read alike across data sets.
    """

    num_features = FEATURES

    def __init__(self, classifier: LeNetClassifier, scale: float = 1.0):
        super().__init__()
        self.classifier = classifier.eval().requires_grad_(False)
        self.scale = scale

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Scaled classifier features ``(B, F)`` of images ``(B, C, H, W)`` (for FID/KID)."""
        return self.scale * self.classifier.features(images.float())


@torch.no_grad()
def feature_scale(classifier: LeNetClassifier, images: torch.Tensor) -> float:
    """``1 / RMS`` of the classifier's features over ``images`` ``(N, C, H, W)``."""
    features = classifier.eval().features(images.float())
    return float(features.pow(2).mean().rsqrt())


def train_classifier(images: torch.Tensor, labels: torch.Tensor, classes: int, settings: TrainSettings,
                     seed: int = 0, checkpoint_dir=None) -> LeNetClassifier:
    """Fit a :class:`LeNetClassifier` with cross-entropy through the project's training loop."""
    seed_everything(seed)
    model = LeNetClassifier(images.shape[1], classes)
    trainer = Trainer(model, settings, objective=supervised(F.cross_entropy), checkpoint_dir=checkpoint_dir,
                      seed=seed, fit_name="feature_classifier")
    trainer.fit(TensorDataset(images.float(), labels.long()))
    return trainer.eval_model.cpu().eval()


@torch.no_grad()
def accuracy(classifier: LeNetClassifier, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of ``images`` classified as ``labels``."""
    return float((classifier.eval()(images.float()).argmax(1) == labels).float().mean())


KID_SEED = 7_000_003
"""Seed of KID's subsets (the generation pipeline's since it scored first)."""


@torch.no_grad()
def fid_kid(real: torch.Tensor, generated: torch.Tensor, extractor: FeatureExtractor,
            kid_subset_size: int = 100, kid_subsets: int = 50, seed: int = KID_SEED) -> dict[str, float]:
    """FID and KID (mean, std over subsets) between two image sets ``(N, C, 28, 28)`` in [-1, 1].

    KID's random subsets (torchmetrics draws them from torch's global generator) are drawn with that
    generator seeded by ``seed`` and then put back as it was, so a score depends on its images alone, not on
    what ran before it (a resumed run skips finished models, and must score the same).
    """
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

    for name, images in (("real", real), ("generated", generated)):
        if images.ndim != 4 or not torch.isfinite(images).all():
            raise ValueError(f"{name} images must be finite (N, C, H, W), got shape {tuple(images.shape)}")
    subset = min(kid_subset_size, len(real), len(generated))
    fid = FrechetInceptionDistance(feature=extractor)
    kid = KernelInceptionDistance(feature=extractor, subset_size=subset, subsets=kid_subsets)
    for metric in (fid, kid):
        metric.update(real, real=True)
        metric.update(generated, real=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        kid_mean, kid_std = kid.compute()
    return {"fid": float(fid.compute()), "kid": float(kid_mean), "kid_std": float(kid_std)}
