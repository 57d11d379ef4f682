"""The feature classifier and FID/KID in its feature space, on real MNIST digits (offline bundle)."""

import pytest
import torch

from qml_imaging.config import TrainSettings
from qml_imaging.data.datasets import load_mnist
from qml_imaging.diffusion.evaluation import (
    FeatureExtractor,
    LeNetClassifier,
    accuracy,
    fid_kid,
    train_classifier,
)


def test_feature_classifier_learns_digits_and_fid_kid_separate_real_from_corrupted(shared_data):
    images, labels = load_mnist(train=False, data_dir=shared_data, download=False)
    images = images[:, None].float() / 127.5 - 1
    settings = TrainSettings(epochs=2, batch_size=128, lr=2e-3, progress=False, device="cpu")
    classifier = train_classifier(images[:4000], labels[:4000], 10, settings)
    assert accuracy(classifier, images[4000:6000], labels[4000:6000]) > 0.9
    extractor = FeatureExtractor(classifier)
    real, other_real = images[6000:7000], images[7000:8000]
    corrupted = (other_real + 0.8 * torch.randn_like(other_real)).clamp(-1, 1)
    same = fid_kid(real, other_real, extractor)
    different = fid_kid(real, corrupted, extractor)
    assert different["fid"] > 5 * same["fid"]
    assert different["kid"] > 5 * abs(same["kid"]) and different["kid"] > 3 * different["kid_std"]
    with pytest.raises(ValueError, match="generated images must be finite"):
        fid_kid(real, torch.full_like(real, float("nan")), extractor)


def test_kid_depends_on_the_images_alone_not_on_the_global_generator():
    """A resumed run scores models and references after other work than an uninterrupted one did."""
    torch.manual_seed(0)
    extractor = FeatureExtractor(LeNetClassifier(1, 10))
    real, generated = torch.rand(30, 1, 28, 28) * 2 - 1, torch.rand(30, 1, 28, 28) * 2 - 1
    first = fid_kid(real, generated, extractor, kid_subset_size=10, kid_subsets=4)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    assert fid_kid(real, generated, extractor, kid_subset_size=10, kid_subsets=4) == first
    assert torch.equal(torch.get_rng_state(), state), "the global generator is left as it was"
