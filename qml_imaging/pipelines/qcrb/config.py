"""Config schemas of the ``qcrb_parametric`` and ``qcrb_natural`` pipelines (torch-free)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PositiveFloat, model_validator

from qml_imaging.config import GridExperiment, Section, TrainSettings, UserPath, check_folder_path
from qml_imaging.data.catalog import SKIMAGE_IMAGES
from qml_imaging.models.specs import UNetSpec
from qml_imaging.physics.family_parameters import FAMILY_PARAMETERS, check_theta
from qml_imaging.physics.settings import MleSettings

SSIM_WINDOW = 11
"""Torch-free copy of :data:`qml_imaging.training.losses.SSIM_WINDOW` (a test checks they agree)."""


class DenoiserLoss(Section):
    """Training loss ``mse * MSE + ssim * (1 - SSIM) + gdl * GDL`` on images scaled to mean 1."""

    mse: float = Field(1.0, ge=0)
    ssim: float = Field(1.0, ge=0)
    gdl: float = Field(1.0, ge=0)
    mse_weighting: Literal["uniform", "nbar"] = Field(
        "nbar", description="nbar: each image's squared error is weighted by nbar / batch mean of nbar, so every "
                            "photon level counts relative to its own shot noise; uniform: plain MSE")

    @model_validator(mode="after")
    def _some_term(self) -> DenoiserLoss:
        if self.mse == self.ssim == self.gdl == 0:
            raise ValueError("at least one of mse, ssim, gdl must be > 0")
        return self


class PhotonRange(Section):
    """Training data: fresh images every step, nbar log-uniform in [nbar_min, nbar_max]."""

    nbar_min: float = Field(40.96, gt=0)
    nbar_max: float = Field(4096.0, gt=0)
    batches_per_epoch: int = Field(50, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> PhotonRange:
        if self.nbar_min > self.nbar_max:
            raise ValueError(f"nbar_min ({self.nbar_min}) must be <= nbar_max ({self.nbar_max})")
        return self


class Evaluation(Section):
    """Where the estimators are evaluated: an nbar grid, ``realisations`` noisy images at each."""

    nbars: list[PositiveFloat] = Field(default_factory=lambda: [100.0, 1000.0, 4000.0], min_length=1)
    realisations: int = Field(1000, ge=2, le=100_000)


class MleSpec(MleSettings):
    """Multi-start Poisson maximum-likelihood estimator (see :mod:`qml_imaging.physics.mle`), or none."""

    enabled: bool = True


class DenoiserExperiment(GridExperiment):
    """Keys shared by both pipelines: image size, U-Net, losses to train, training photon range."""

    image_size: int = Field(32, ge=4, le=512, description="side of the square images in pixels")
    unet: UNetSpec = Field(default_factory=UNetSpec)
    denoisers: dict[str, DenoiserLoss] = Field(default_factory=lambda: {"unet": DenoiserLoss()}, min_length=1,
                                               description="one U-Net is trained per entry, with that loss")
    training: PhotonRange = Field(default_factory=PhotonRange)
    train: TrainSettings = Field(default_factory=lambda: TrainSettings(epochs=100, batch_size=64, lr=5e-4,
                                                                       weight_decay=1e-6, eval_every=10))
    evaluation: Evaluation = Field(default_factory=Evaluation)

    @model_validator(mode="after")
    def _size_fits_depth(self) -> DenoiserExperiment:
        factor = 2 ** (self.unet.depth - 1)
        if self.image_size % factor:
            raise ValueError(f"image_size {self.image_size} must be divisible by 2**(unet.depth - 1) = {factor}")
        if self.unet.skip_from_level > self.unet.depth - 1:
            raise ValueError(f"unet.skip_from_level {self.unet.skip_from_level} must be <= unet.depth - 1 = "
                             f"{self.unet.depth - 1}")
        with_ssim = [name for name, loss in self.denoisers.items() if loss.ssim > 0]
        if with_ssim and self.image_size < SSIM_WINDOW:
            raise ValueError(f"image_size {self.image_size} is smaller than the {SSIM_WINDOW}-pixel SSIM window used by "
                             f"denoisers {with_ssim}; use image_size >= {SSIM_WINDOW} or set their ssim weight to 0")
        return self


class QcrbParametricConfig(DenoiserExperiment):
    """U-Nets and the MLE on one image family at one ``theta``, against the QCRB."""

    experiment: Literal["qcrb_parametric"]
    family: str = Field("sinusoid", description=f"image family, one of {sorted(FAMILY_PARAMETERS)}")
    theta: list[float] = Field(description="parameters of the evaluated image, in the family's order")
    mle: MleSpec = Field(default_factory=MleSpec)

    @model_validator(mode="after")
    def _mle_fits_the_image(self) -> QcrbParametricConfig:
        check_theta(self.family, self.theta)
        if self.mle.enabled and self.image_size**2 < len(self.theta):
            raise ValueError(f"image_size {self.image_size} gives {self.image_size**2} pixels, fewer than the "
                             f"{len(self.theta)} parameters of theta the MLE fits")
        return self


class ImageSource(Section):
    """Natural images of one kind, split into training and held-out images (intensities in [0, 1])."""

    kind: Literal["skimage", "mnist", "medmnist", "folder"]
    flag: str = Field("pneumoniamnist", description="MedMNIST flag (kind: medmnist)")
    path: UserPath | None = Field(None, description="folder of image files (kind: folder): PNG, JPEG, TIFF of any size, "
                                               "converted to grey and resized to image_size; the last test_images "
                                               "(by file name) are held out")
    names: list[str] = Field(default_factory=lambda: [n for n in SKIMAGE_IMAGES if n not in ("camera", "coins")],
                             description="scikit-image images whose random crops train (kind: skimage)")
    held_out: list[str] = Field(default_factory=lambda: ["camera", "coins"],
                                description="scikit-image images whose crops are evaluated (kind: skimage)")
    source_size: int = Field(128, ge=4, description="side the scikit-image images are resized to before cropping")
    train_images: int = Field(2000, ge=1, description="training images (mnist: from the test set's first part)")
    test_images: int = Field(8, ge=1, description="held-out images (or crops) evaluated")
    floor: float = Field(0.05, ge=0, lt=1, description="added to the [0, 1] intensity before normalising, "
                                                        "so dark pixels still transmit a little")

    @model_validator(mode="after")
    def _known_names(self) -> ImageSource:
        unknown = [n for n in self.names + self.held_out if n not in SKIMAGE_IMAGES]
        if unknown:
            raise ValueError(f"unknown scikit-image image(s) {unknown}; expected names from {list(SKIMAGE_IMAGES)}")
        overlap = sorted(set(self.names) & set(self.held_out))
        if self.kind == "skimage" and overlap:
            raise ValueError(f"images {overlap} are both in names (training) and held_out")
        check_folder_path("kind", self.kind, self.path)
        return self


class QcrbNaturalConfig(DenoiserExperiment):
    """U-Nets on natural images, against the SQL and the Heisenberg limit."""

    experiment: Literal["qcrb_natural"]
    datasets: dict[str, ImageSource] = Field(min_length=1)
