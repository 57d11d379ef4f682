"""Names of the data a config may ask for; torch-free so configs validate fast."""

from typing import Literal, get_args

IntensityRule = Literal["auto", "minmax", "type_max"]
"""How stored pixel values become intensities (:func:`qml_imaging.data.images.read_image`): ``auto`` 8-bit
integers / 255, wider integers and floats by the image's own range; ``minmax`` every image by its own range;
``type_max`` integers / their type's maximum (a dim 16-bit image stays dim), floats by their own range."""
INTENSITY_RULES: tuple[str, ...] = get_args(IntensityRule)
Fit = Literal["resize_crop", "crop", "stretch"]
"""How an image is brought to a square size (:func:`qml_imaging.data.images.preprocess`)."""
FITS: tuple[str, ...] = get_args(Fit)
ChannelMode = Literal["grey", "rgb", "auto"]
"""Which colour channels are kept (auto: RGB when any image has colour)."""
CHANNEL_MODES: tuple[str, ...] = get_args(ChannelMode)
Convention = Literal["all-pairs", "start-stop"]
"""How time tags are correlated (:mod:`qml_imaging.data.correlator`): every stop in the window of a start, or the
first stop after it."""
CONVENTIONS: tuple[str, ...] = get_args(Convention)
DELAY_UNITS = ("ps", "ns", "us", "s")
"""Delay units a user may name (``qml-imaging g2 fit --delay-unit``); files may also write ``µs``."""

SKIMAGE_IMAGES = ("astronaut", "camera", "coffee", "cat", "coins", "moon", "horse", "text", "grass", "brick")

DATA_ENV = "QML_IMAGING_DATA"
"""Environment variable naming the data directory (the CLI's --data-dir sets it)."""

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
"""Suffixes of the image files a config may name (read by :mod:`qml_imaging.data.images`)."""

SIGNAL_SUFFIXES = (".wav", ".flac", ".ogg", ".aiff", ".aif", ".csv", ".txt", ".npy")
"""Suffixes of the signal files a config may name (read by :mod:`qml_imaging.data.signals`)."""


def image_key(entry: str) -> str:
    """The name an image is known by in fit names and reports: a scikit-image name, or a file's stem."""
    if entry in SKIMAGE_IMAGES:
        return entry
    from pathlib import PurePath

    return PurePath(entry).stem


def crop_too_small(name: str, height: int, width: int, size: int) -> str | None:
    """Why a ``size x size`` centre crop (``resize: crop``) cannot be cut from a ``height x width`` image
    ``name``; None when it can. Shared by ``validate`` (file headers) and the preprocessing itself."""
    if min(height, width) >= size:
        return None
    return f"{name} is {height}x{width} pixels, smaller than the {size}x{size} crop; lower size or use resize: resize_crop"
