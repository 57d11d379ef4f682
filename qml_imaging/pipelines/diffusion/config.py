"""Config schema of the ``diffusion_fewshot`` pipeline (torch-free)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from qml_imaging.config import GridExperiment, Section, TrainSettings, UserPath, check_folder_path, follow_train_device
from qml_imaging.data.catalog import ChannelMode
from qml_imaging.models.specs import Bottleneck, DiffusionUNetSpec
from qml_imaging.precedence import own_or_shared
from qml_imaging.quantum.backends import MAX_SIMULATED_QUBITS, NoiseBackendName


BaseSchedule = Literal["linear", "cosine"]
"""Variance schedules of :data:`qml_imaging.diffusion.schedules.SCHEDULES`."""
Schedule = Literal[BaseSchedule, "tailored"]
"""A base schedule, or ``tailored`` (a base schedule with importance-sampled timesteps)."""


class DatasetSpec(Section):
    """Where a data set's images come from, at which resolution, and which classes are used."""

    source: Literal["mnist", "medmnist", "folder"]
    flag: str = Field("pneumoniamnist", description="MedMNIST 2D flag (source: medmnist), e.g. pneumoniamnist, "
                                                    "pathmnist, chestmnist (multi-label)")
    path: UserPath | None = Field(None, description="folder of image files (source: folder): PNG, JPEG, TIFF, any size, "
                                               "resized to size x size; one class")
    size: int = Field(28, ge=8, le=256, description="image side: mnist 28; medmnist 28, 64 or 128; folder any "
                                                     "(divisible by 2**(levels - 1) of unet.channels)")
    channels: ChannelMode = Field("auto", description="folder: grey, rgb, or auto (rgb when any "
                                                                         "file is RGB)")
    classes: list[int] | None = Field(None, description="labels kept (few-shot sets balanced over them); null = all. "
                                                        "Multi-label sets: j means 'has label j'")

    @model_validator(mode="after")
    def _source_options(self) -> DatasetSpec:
        check_folder_path("source", self.source, self.path)
        if self.source == "folder" and self.classes is not None:
            raise ValueError("a folder data set has one class; leave classes unset")
        if self.source == "mnist" and self.size != 28:
            raise ValueError(f"MNIST images are 28x28; size {self.size} is not available (use 28)")
        if self.source == "medmnist" and self.size not in (28, 64, 128):
            raise ValueError(f"MedMNIST 2D sets come at sizes 28, 64 and 128, not {self.size}")
        return self


class Split(Section):
    """How each data set's images are divided (after a seeded shuffle of all its images).

    ``reference`` real images are what FID/KID compare against; ``control`` more real images give the
    real-vs-real floor and the feature classifier's held-out accuracy; few-shot sets are drawn from
    the next ``fewshot_pool`` images; the remainder trains the feature classifier.
    """

    reference: int = Field(1000, ge=10)
    control: int = Field(1000, ge=10)
    fewshot_pool: int = Field(1000, ge=10)
    seed: int = Field(2026, ge=0, description="seed of the shuffle (the same for every training seed)")


class Variant(Section):
    """One model variant: bottleneck block, noise source and schedule; optionally only some data sets / k."""

    bottleneck: Bottleneck = "none"
    noise: Literal["pseudo", "quantum_sampler", "quantum"] = Field(
        "pseudo", description="quantum: every Gaussian draw of training and sampling comes from the noise bank; "
                              "quantum_sampler: only the sampler's (training noise is pseudo-random)")
    schedule: Schedule | None = Field(None, description="null = diffusion.schedule")
    datasets: list[str] | None = Field(None, description="data sets this variant runs on; null = all")
    shots: list[int] | None = Field(None, description="values of k this variant runs at; null = all")


class DiffusionSettings(Section):
    """The forward process: number of timesteps T and the noise schedule."""
    timesteps: int = Field(1000, ge=10, le=10000, description="T of the forward process")
    schedule: Schedule = "cosine"


class TailoredSettings(Section):
    """The ``tailored`` schedule (see :mod:`qml_imaging.diffusion.tailored`)."""

    base: BaseSchedule = "cosine"
    pilot_fraction: float = Field(0.2, gt=0, lt=1, description="share of the epochs trained with uniform t")
    bins: int = Field(20, ge=1, le=1000, description="timestep bins of the loss profile")
    repeats: int = Field(4, ge=1, le=100, description="noise draws per training image and bin")
    uniform_share: float = Field(0.25, gt=0, le=1, description="u: mixture weight of uniform t")


class NoiseSettings(Section):
    """The quantum noise bank used by ``noise: quantum`` variants."""

    bank: str | None = Field(None, description="a saved NoiseBank .npz (e.g. from hardware); null = generate one")
    backend: NoiseBackendName = Field("fast", description="backend spec whose executor measures the qubits: a kind "
                                                     "(fast), a hardware_configs name (aer_shots, ibm_fake_brisbane), "
                                                     "an IBM or Fake* device name, or a YAML path")
    n_qubits: int = Field(16, ge=1, le=MAX_SIMULATED_QUBITS)


class SamplingSettings(Section):
    """DDIM sampling: images per model, steps, eta and batch size."""
    samples: int = Field(1000, ge=10, description="generated images per model (FID/KID need >= 1000 for the table)")
    ddim_steps: int = Field(20, ge=1)
    eta: float = Field(0.0, ge=0, le=1)
    batch_size: int = Field(250, ge=1)


class EvaluationSettings(Section):
    """Feature classifier (FID/KID feature space) and KID subsets."""

    classifier: TrainSettings = Field(default_factory=lambda: TrainSettings(
        epochs=4, batch_size=128, lr=1e-3, eval_every=100, checkpoint_every=100))
    kid_subset_size: int = Field(100, ge=2)
    kid_subsets: int = Field(50, ge=1)
    grid_images: int = Field(10, ge=1, le=64, description="samples per variant in the sample-grid figures")
    scores: bool = Field(True, description="FID/KID against held-out images (needs reference + control + "
                                           "fewshot_pool + 100 images); false: every image is in the few-shot "
                                           "pool, models are trained and sampled, not scored (small folders)")


class DiffusionFewShotConfig(GridExperiment):
    """Few-shot DDPMs: every data set x k x variant x seed, scored by FID and KID."""

    experiment: Literal["diffusion_fewshot"]
    datasets: dict[str, DatasetSpec] = Field(default_factory=lambda: {
        "mnist": DatasetSpec(source="mnist"), "pneumoniamnist": DatasetSpec(source="medmnist")}, min_length=1)
    shots: list[int] = Field(default_factory=lambda: [100, 10], min_length=1, description="values of k")
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1, description="training seeds")
    variants: dict[str, Variant] = Field(default_factory=lambda: {
        "none": Variant(bottleneck="none"), "classical": Variant(bottleneck="classical"),
        "quantum": Variant(bottleneck="quantum")}, min_length=1)
    split: Split = Field(default_factory=Split)
    unet: DiffusionUNetSpec = Field(default_factory=DiffusionUNetSpec)
    diffusion: DiffusionSettings = Field(default_factory=DiffusionSettings)
    tailored: TailoredSettings = Field(default_factory=TailoredSettings)
    noise: NoiseSettings = Field(default_factory=NoiseSettings)
    batches_per_epoch: int = Field(25, ge=1, description="training batches per epoch, drawn with replacement from the k images")
    train: TrainSettings = Field(default_factory=lambda: TrainSettings(
        epochs=12, batch_size=32, lr=2e-3, ema_decay=0.99, grad_clip=1.0, eval_every=1000, checkpoint_every=2))
    sampling: SamplingSettings = Field(default_factory=SamplingSettings)
    evaluation: EvaluationSettings = Field(default_factory=EvaluationSettings)

    @model_validator(mode="after")
    def _consistent(self) -> DiffusionFewShotConfig:
        if self.train.batch_size is None:
            raise ValueError("train.batch_size must be set (batches are drawn with replacement from the k images)")
        if self.sampling.ddim_steps > self.diffusion.timesteps:
            raise ValueError(f"sampling.ddim_steps ({self.sampling.ddim_steps}) must be <= diffusion.timesteps "
                             f"({self.diffusion.timesteps})")
        divisor = 2 ** (len(self.unet.channels) - 1)
        for name, dataset in self.datasets.items():
            if dataset.size % divisor:
                raise ValueError(f"datasets.{name}.size {dataset.size} is not divisible by {divisor}, which the "
                                 f"{len(self.unet.channels)} levels of unet.channels need; change one of them")
        pool = self.split.fewshot_pool if self.evaluation.scores else 10**9
        too_large = [k for k in self.shots if k < 1 or k > pool]
        if too_large:
            raise ValueError(f"shots {too_large} must be in 1..split.fewshot_pool ({self.split.fewshot_pool})")
        for name, variant in self.variants.items():
            if own_or_shared(variant.schedule, self.diffusion.schedule) == "tailored" and self.train.epochs < 2:
                raise ValueError(f"variants.{name} uses the tailored schedule, which needs train.epochs >= 2 "
                                 f"(a pilot epoch, then importance-sampled ones); got {self.train.epochs}")
            unknown = sorted(set(variant.datasets or []) - set(self.datasets))
            if unknown:
                raise ValueError(f"variants.{name}.datasets: {unknown} are not in datasets {sorted(self.datasets)}")
            missing = sorted(set(variant.shots or []) - set(self.shots))
            if missing:
                raise ValueError(f"variants.{name}.shots: {missing} are not in shots {self.shots}")
        return self

    @model_validator(mode="after")
    def _classifier_follows_train_device(self) -> DiffusionFewShotConfig:
        follow_train_device(self.train, self.evaluation.classifier)
        return self
