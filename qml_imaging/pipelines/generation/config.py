"""Config schema of the ``qiren_generation`` pipeline (torch-free)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from qml_imaging.config import GridExperiment, Section, TrainSettings, follow_train_device
from qml_imaging.models.specs import EMBEDDINGS, Embedding, InrGeneratorSpec
from qml_imaging.quantum.backends import TrainingBackendName


class GenerationData(Section):
    """The images the GANs learn: MNIST (the offline bundle's 10,000 test images), a MedMNIST 2D set
    (train, val and test together) or CelebA (torchvision download, ``split: all``, centre-cropped to a
    square and resized to ``size``)."""

    source: Literal["mnist", "medmnist", "celeba"] = "mnist"
    flag: str = Field("pneumoniamnist", description="MedMNIST 2D flag (source: medmnist)")
    size: int = Field(28, ge=8, le=128, description="image side: mnist 28; medmnist 28, 64 or 128; celeba any "
                                                     "(divisible by 4)")
    classes: list[int] | None = Field(None, description="labels kept (mnist, medmnist); null = all")

    @model_validator(mode="after")
    def _sizes(self) -> GenerationData:
        if self.source == "mnist" and self.size != 28:
            raise ValueError(f"MNIST images are 28x28; size {self.size} is not available (use 28)")
        if self.source == "medmnist" and self.size not in (28, 64, 128):
            raise ValueError(f"MedMNIST 2D sets come at sizes 28, 64 and 128, not {self.size}")
        if self.size % 4:
            raise ValueError(f"the discriminator needs an image side divisible by 4, got {self.size}")
        if self.source == "celeba" and self.classes is not None:
            raise ValueError("celeba has no classes; leave classes unset")
        return self


class GenerationSplit(Section):
    """After a seeded shuffle: ``reference`` held-out images (what FID/KID compare with) | ``control``
    held-out images (the real-vs-real floor) | ``training`` images the GANs learn | the rest (its first
    ``classifier`` images, when set) trains the feature classifier (``features: lenet``)."""

    reference: int = Field(1000, ge=10)
    control: int = Field(1000, ge=10)
    training: int = Field(5000, ge=10)
    classifier: int | None = Field(None, ge=100, description="images (of the rest) that train the feature "
                                                             "classifier; null = all of the rest")
    seed: int = Field(2026, ge=0, description="seed of the shuffle (the same for every training seed)")


class GanSettings(Section):
    """The adversarial objective (:class:`qml_imaging.training.gan.GanObjective`) and its two Adam optimisers."""

    r1_gamma: float = Field(1.0, ge=0, description="weight of the R1 penalty on real images")
    beta1: float = Field(0.0, ge=0, lt=1, description="Adam beta1 of both players (StyleGAN2: 0)")
    beta2: float = Field(0.99, ge=0, lt=1, description="Adam beta2 of both players (StyleGAN2: 0.99)")
    discriminator_lr: float | None = Field(None, gt=0, description="null = train.lr")
    generator_lr: float | None = Field(None, gt=0, description="null = train.lr")


class GenerationSampling(Section):
    """How many images each generator draws for FID/KID, and in batches of what size."""
    samples: int = Field(1000, ge=10, description="generated images per model for FID/KID")
    batch_size: int = Field(250, ge=1)


class GenerationEvaluation(Section):
    """Feature space of FID/KID: ``lenet`` (a classifier trained on held-out images of the data set,
    :mod:`qml_imaging.diffusion.evaluation`) or ``inception`` (torchmetrics' Inception features; needs
    the torch-fidelity package and its downloaded weights)."""

    features: Literal["lenet", "inception"] = "lenet"
    classifier: TrainSettings = Field(default_factory=lambda: TrainSettings(
        epochs=4, batch_size=128, lr=1e-3, eval_every=100, checkpoint_every=100))
    kid_subset_size: int = Field(100, ge=2)
    kid_subsets: int = Field(50, ge=1)
    grid_images: int = Field(10, ge=1, le=64, description="samples per embedding in the sample-grid figure")


class QirenGenerationConfig(GridExperiment):
    """INR GANs, one per coordinate embedding x seed, at equal generator parameters, scored by FID and KID."""

    experiment: Literal["qiren_generation"]
    data: GenerationData = Field(default_factory=GenerationData)
    split: GenerationSplit = Field(default_factory=GenerationSplit)
    embeddings: list[Embedding] = Field(default_factory=lambda: list(EMBEDDINGS), min_length=1)
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1)
    generator: InrGeneratorSpec = Field(default_factory=InrGeneratorSpec)
    backend: TrainingBackendName = Field("fast", description="backend spec that runs the qiren embedding's circuits")
    gan: GanSettings = Field(default_factory=GanSettings)
    batches_per_epoch: int = Field(50, ge=1, description="training steps (of each player) per epoch")
    train: TrainSettings = Field(default_factory=lambda: TrainSettings(
        epochs=8, batch_size=32, lr=2e-3, ema_decay=0.99, eval_every=1000, checkpoint_every=1))
    sampling: GenerationSampling = Field(default_factory=GenerationSampling)
    evaluation: GenerationEvaluation = Field(default_factory=GenerationEvaluation)

    @model_validator(mode="after")
    def _consistent(self) -> QirenGenerationConfig:
        if self.train.batch_size is None:
            raise ValueError("train.batch_size must be set (batches are drawn with replacement)")
        if len(set(self.embeddings)) != len(self.embeddings) or len(set(self.seeds)) != len(self.seeds):
            raise ValueError("embeddings and seeds must not repeat")
        if self.data.source == "celeba" and self.evaluation.features != "inception":
            raise ValueError("celeba has no labels to train a LeNet feature classifier: set evaluation.features: "
                             "inception")
        if "rff" in self.embeddings and self.generator.features % 2:
            raise ValueError(f"rff features come in sine/cosine pairs: generator.features must be even, got "
                             f"{self.generator.features}")
        return self

    @model_validator(mode="after")
    def _classifier_follows_train_device(self) -> QirenGenerationConfig:
        follow_train_device(self.train, self.evaluation.classifier)
        return self
