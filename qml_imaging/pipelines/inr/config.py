"""Config schemas of the implicit-neural-representation pipelines (torch-free): ``inr_image``,
``inr_signal``, ``inr_hardware`` and ``inr_runtime``."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from qml_imaging.config import (ExperimentConfig, GridExperiment, Section, TrainSettings, UserPath, absolute_path,
                                files_checked)
from qml_imaging.data.catalog import (IMAGE_SUFFIXES, SIGNAL_SUFFIXES, SKIMAGE_IMAGES, ChannelMode, Fit, IntensityRule,
                                      crop_too_small, image_key)
from qml_imaging.models.specs import InrModelSpec
from qml_imaging.quantum.backends import BackendName, IbmBackendName


class InrComparison(GridExperiment):
    """Keys shared by the INR comparisons: models at one parameter budget, seeds, the reference model."""

    parameter_budget: int = Field(657, ge=16, description="trainable parameters of every model (within 10 %)")
    seeds: int = Field(1, ge=1, le=20, description="independent fits per model")
    reference_model: str = Field("tanh", description="model the others' MSE is divided by in the summary")
    models: dict[str, InrModelSpec] = Field(min_length=1)
    train: TrainSettings = Field(default_factory=lambda: TrainSettings(epochs=301, eval_every=50))

    @model_validator(mode="after")
    def _reference_is_a_model(self) -> InrComparison:
        if self.reference_model not in self.models:
            raise ValueError(f"reference_model {self.reference_model!r} is not one of the models {list(self.models)}")
        return self


def stored_image_size(path: str) -> tuple[int, int] | None:
    """``(height, width)`` of an image file from its header (Pillow, lazily: no pixels read, no torch);
    None when Pillow cannot tell (the run's reader then decides)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.height, image.width
    except (OSError, ValueError):
        return None


def check_image_entries(images: list[str], check_files: bool = True) -> list[str]:
    """Each entry is a scikit-image name or an existing image file (made absolute; its existence is not
    checked with ``check_files=False``); keys (names, file stems) are unique."""
    folders = [entry for entry in images if entry not in SKIMAGE_IMAGES and Path(entry).expanduser().is_dir()]
    if folders:
        raise ValueError(f"{folders[0]!r} is a folder; images lists image files (one fit each), e.g. "
                         f"'images=[{folders[0]}/a.png, {folders[0]}/b.png]'")
    unknown = [entry for entry in images
               if entry not in SKIMAGE_IMAGES and Path(entry).suffix.lower() not in IMAGE_SUFFIXES]
    if unknown:
        raise ValueError(f"unknown image(s) {unknown}; expected names from {list(SKIMAGE_IMAGES)} or image files "
                         f"({', '.join(IMAGE_SUFFIXES)})")
    for entry in images:
        if check_files and entry not in SKIMAGE_IMAGES and not Path(entry).expanduser().is_file():
            raise ValueError(f"image file {entry!r} does not exist (if it moved, put it back at that path or name "
                             f"its new place)")
    keys = [image_key(entry) for entry in images]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise ValueError(f"images {repeated} appear twice (files are known by their name without suffix); "
                         "rename one of the files")
    return [entry if entry in SKIMAGE_IMAGES else absolute_path(entry) for entry in images]


class InrImageConfig(InrComparison):
    """Fit every model in ``models`` to every image in ``images``, ``seeds`` times each."""

    experiment: Literal["inr_image"]
    images: list[str] = Field(default_factory=lambda: ["camera"], min_length=1,
                              description="scikit-image names or image files (PNG, JPEG, TIFF incl. 16-bit and float)")
    size: int | Literal["native"] = Field(32, description="side of the square image in pixels (4..512), or "
                                                          "'native': the file's own height x width")
    resize: Fit = Field(
        "resize_crop", description="resize_crop: short side resized to size, centre crop (QIREN); crop: centre "
                                   "crop without resampling (image must be >= size); stretch: resize to size x size")
    channels: ChannelMode = Field(
        "grey", description="grey: RGB converted to grey; rgb: one model output per colour; auto: as stored")
    intensity: IntensityRule = Field(
        "auto", description="auto: 8-bit / 255, wider integers (16-bit) and floats by the image's own range "
                            "(min-max); minmax: every image min-max; type_max: integers / type maximum (uint16 / "
                            "65535), floats min-max; then [0, 1] -> [-1, 1]")
    superres_size: int | None = Field(None, ge=4, le=1024, description="also evaluate on this finer grid; null = off")

    @field_validator("images")
    @classmethod
    def _known_images(cls, images: list[str], info: ValidationInfo) -> list[str]:
        return check_image_entries(images, files_checked(info))

    @field_validator("size")
    @classmethod
    def _size_range(cls, size: int | str) -> int | str:
        if size != "native" and size < 4:
            raise PydanticCustomError("greater_than_equal", "Input should be greater than or equal to 4")
        if size != "native" and size > 512:
            raise PydanticCustomError("less_than_equal", "Input should be less than or equal to 512")
        return size

    @model_validator(mode="after")
    def _crops_fit_inside_the_images(self) -> InrImageConfig:
        if self.resize != "crop" or self.size == "native":
            return self
        for entry in self.images:
            shape = stored_image_size(entry) if entry not in SKIMAGE_IMAGES else None
            problem = crop_too_small(entry, *shape, self.size) if shape is not None else None
            if problem is not None:
                raise ValueError(problem)
        return self

    @model_validator(mode="after")
    def _superres_needs_a_size(self) -> InrImageConfig:
        if self.size == "native" and self.superres_size is not None:
            raise ValueError("superres_size needs a numeric size (native images need not be square); "
                             "use `qml-imaging render` to evaluate a native-size fit on a finer grid")
        return self


class SignalSource(Section):
    """Where the signal comes from: a file (audio, CSV, NPY), or the generated default (no file)."""

    path: UserPath | None = Field(None, description="audio file soundfile reads (WAV PCM or float, FLAC, OGG, AIFF), "
                                               ".csv/.txt or .npy 1-D array; null = the generated default signal")
    wav: UserPath | None = Field(None, description="older name of path (a WAV file)")
    n_samples: int = Field(1000, ge=8, le=1_000_000)
    offset: int | Literal["auto"] = Field(0, description="first sample taken; auto = the first sample louder than "
                                                         "1e-3 of the file's peak (skips leading silence)")
    stride: int = Field(1, ge=1, le=100_000, description="take every stride-th sample (decimation)")
    channel: int | None = Field(None, ge=0, description="channel to take (0-based); null = mean of mono/stereo")

    @field_validator("offset")
    @classmethod
    def _offset_not_negative(cls, offset: int | str) -> int | str:
        if offset != "auto" and offset < 0:
            raise ValueError(f"offset must be >= 0 or 'auto', got {offset}")
        return offset

    @model_validator(mode="after")
    def _one_existing_file(self, info: ValidationInfo) -> SignalSource:
        if self.path is not None and self.wav is not None:
            raise ValueError("give the signal file as path or wav, not both")
        file = self.file
        if file is not None:
            if Path(file).suffix.lower() not in SIGNAL_SUFFIXES:
                raise ValueError(f"signal file {file!r}: unknown type; expected one of {list(SIGNAL_SUFFIXES)}")
            if files_checked(info) and not Path(file).expanduser().is_file():
                raise ValueError(f"signal file {file!r} does not exist (if it moved, put it back at that path or "
                                 f"name its new place)")
        elif self.offset != 0 or self.stride != 1 or self.channel is not None:
            raise ValueError("offset, stride and channel apply to a signal file; set signal.path")
        return self

    @property
    def file(self) -> str | None:
        return self.path if self.path is not None else self.wav


class InrSignalConfig(InrComparison):
    """Fit every model in ``models`` to one signal, ``seeds`` times each."""

    experiment: Literal["inr_signal"]
    signal: SignalSource = Field(default_factory=SignalSource)
    cutoff_fraction: float = Field(0.1, gt=0, lt=1, description="low/high band split, as a fraction of Nyquist")


class InrHardwareConfig(ExperimentConfig):
    """Which fitted QIREN to re-evaluate, on which backends, at how many pixels."""

    experiment: Literal["inr_hardware"]
    source_run: UserPath = Field(description="run folder of a finished inr_image run")
    fit: str = Field("camera/qiren/seed0", description="IMAGE/MODEL/seedN of a QIREN fit in that run")
    backends: list[BackendName] = Field(min_length=1, description="backend specs: hardware_configs names or YAML paths")
    n_coordinates: int | None = Field(
        64, ge=1, description="random pixels evaluated (circuit-per-sample backends are slow); null = all"
    )


class InrRuntimeConfig(ExperimentConfig):
    """Which fitted QIREN to evaluate on which IBM Runtime backend, at how many pixels."""

    experiment: Literal["inr_runtime"]
    source_run: UserPath = Field(description="run folder of a finished inr_image run")
    fit: str = Field("camera/qiren/seed0", description="IMAGE/MODEL/seedN of a QIREN fit in that run")
    backend: IbmBackendName = Field(description="backend spec of kind 'ibm': a hardware_configs name or YAML path "
                                                "(e.g. ibm_fake_brisbane), or an IBM / fake device name "
                                                "(ibm_brisbane, FakeBrisbane)")
    n_coordinates: int | None = Field(None, ge=1, description="random pixels evaluated; null = the whole image")
