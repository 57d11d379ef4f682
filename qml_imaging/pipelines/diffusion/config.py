"""Config schema of the ``diffusion_fewshot`` pipeline (torch-free)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from qml_imaging.config import ExperimentConfig, Section, TrainSettings
from qml_imaging.models.specs import DiffusionUNetSpec
from qml_imaging.quantum.backends import BackendName



class DatasetSpec(Section):
    """Where a data set's images come from, and which classes are used."""

    source: Literal["mnist", "medmnist"]
    flag: str = Field("pneumoniamnist", description="MedMNIST flag (source: medmnist), e.g. pneumoniamnist, pathmnist")
    classes: list[int] | None = Field(None, description="labels kept (few-shot sets balanced over them); null = all")


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

    bottleneck: Literal["none", "quantum", "classical"] = "none"
    noise: Literal["pseudo", "quantum_sampler", "quantum"] = Field(
        "pseudo", description="quantum: every Gaussian draw of training and sampling comes from the noise bank; "
                              "quantum_sampler: only the sampler's (training noise is pseudo-random)")
    schedule: Literal["linear", "cosine", "tailored"] | None = Field(None, description="null = diffusion.schedule")
    datasets: list[str] | None = Field(None, description="data sets this variant runs on; null = all")
    shots: list[int] | None = Field(None, description="values of k this variant runs at; null = all")


class DiffusionSettings(Section):
    timesteps: int = Field(1000, ge=10, le=10000, description="T of the forward process")
    schedule: Literal["linear", "cosine", "tailored"] = "cosine"


class TailoredSettings(Section):
    """The ``tailored`` schedule (see :mod:`qml_imaging.diffusion.tailored`)."""

    base: Literal["linear", "cosine"] = "cosine"
    pilot_fraction: float = Field(0.2, gt=0, lt=1, description="share of the epochs trained with uniform t")
    bins: int = Field(20, ge=1, le=1000, description="timestep bins of the loss profile")
    repeats: int = Field(4, ge=1, le=100, description="noise draws per training image and bin")
    uniform_share: float = Field(0.25, gt=0, le=1, description="u: mixture weight of uniform t")


class NoiseSettings(Section):
    """The quantum noise bank used by ``noise: quantum`` variants."""

    bank: str | None = Field(None, description="a saved NoiseBank .npz (e.g. from hardware); null = generate one")
    backend: BackendName = Field("fast", description="backend spec whose executor measures the qubits: a kind "
                                                     "(fast), a hardware_configs name (aer_shots, ibm_fake_brisbane), "
                                                     "an IBM or Fake* device name, or a YAML path")
    n_qubits: int = Field(16, ge=1, le=20)


class SamplingSettings(Section):
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


class DiffusionFewShotConfig(ExperimentConfig):
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
    workers: int = Field(1, ge=1, le=64, description="models trained at once, each in its own process")
    threads_per_worker: int | None = Field(None, ge=1, description="torch threads per worker; null = cores / workers")

    @model_validator(mode="after")
    def _consistent(self) -> DiffusionFewShotConfig:
        if self.train.batch_size is None:
            raise ValueError("train.batch_size must be set (batches are drawn with replacement from the k images)")
        if self.sampling.ddim_steps > self.diffusion.timesteps:
            raise ValueError(f"sampling.ddim_steps ({self.sampling.ddim_steps}) must be <= diffusion.timesteps "
                             f"({self.diffusion.timesteps})")
        too_large = [k for k in self.shots if k < 1 or k > self.split.fewshot_pool]
        if too_large:
            raise ValueError(f"shots {too_large} must be in 1..split.fewshot_pool ({self.split.fewshot_pool})")
        for name, variant in self.variants.items():
            if (variant.schedule or self.diffusion.schedule) == "tailored" and self.train.epochs < 2:
                raise ValueError(f"variants.{name} uses the tailored schedule, which needs train.epochs >= 2 "
                                 f"(a pilot epoch, then importance-sampled ones); got {self.train.epochs}")
            unknown = sorted(set(variant.datasets or []) - set(self.datasets))
            if unknown:
                raise ValueError(f"variants.{name}.datasets: {unknown} are not in datasets {sorted(self.datasets)}")
            missing = sorted(set(variant.shots or []) - set(self.shots))
            if missing:
                raise ValueError(f"variants.{name}.shots: {missing} are not in shots {self.shots}")
        return self
