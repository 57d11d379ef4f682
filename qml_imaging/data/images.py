"""Image files and folders of image files, and the one preprocessing every pipeline applies to them.

Readers (:mod:`qml_imaging.data.image_decoding`): ``tifffile`` for ``.tif`` / ``.tiff`` (8-, 16-, 32-bit
integer and float microscopy TIFFs), Pillow for PNG, JPEG and BMP, each read by the colour model, layout
and orientation the file declares (CMYK converted to RGB, alpha dropped, planar RGB TIFFs, EXIF
orientation applied; the steps are recorded as ``colour`` in the info). An image is read as float32
``(C, H, W)`` with ``C`` = 1 (grey) or 3 (RGB).

Intensity (:data:`INTENSITY_RULES`), applied per image before anything else:

* ``auto`` (default): 8-bit images (photographs, scikit-image's test images) are divided by 255; integer
  images wider than 8 bits and float images are scaled by their own range, min-max to [0, 1]. A scientific
  camera fills a few thousand of a 16-bit type's 65535 levels (12-bit sensors, dim samples), so dividing by
  65535 would make a near-black target; float data have no fixed full scale at all.
* ``minmax``: every image is scaled min-max to [0, 1], 8-bit ones too.
* ``type_max``: integer images are divided by their type's maximum (uint16 / 65535), so a dim image stays
  dim; float images are scaled min-max.

The info of each image records the rule (``intensity_rule``), what it did in words (``intensity``), the
stored values mapped to 0 and 1 (``intensity_scale``: ``[low, high]``) and the stored value range
(``value_range``); a run's
``report.json`` keeps them under ``images``. :func:`check_contrast` refuses a constant or nearly constant
image as a fitting target.

Size (:func:`preprocess`): ``resize_crop`` (the QIREN authors' preprocessing: resize the short side
to ``size`` with antialiased bilinear interpolation, centre-crop ``size x size``), ``crop``
(centre-crop ``size x size`` without resampling; the image must be at least that large), ``stretch``
(resize both sides to ``size``), or ``size = "native"`` (the file's own size). Then [0, 1] is mapped
linearly onto the caller's value range, usually [-1, 1].

Errors are one line naming the file: :class:`FileNotFoundError` for a missing file or a folder with
no image files, :class:`ValueError` for an unreadable file, a stack of images, or an image smaller
than ``size`` when cropping.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torchvision.transforms.v2 import functional as TF

from qml_imaging.data.catalog import (CHANNEL_MODES, FITS, IMAGE_SUFFIXES, INTENSITY_RULES, SKIMAGE_IMAGES,
                                      crop_too_small)
from qml_imaging.data.image_decoding import decode_image


def read_image(path: str | Path, intensity: str = "auto") -> tuple[torch.Tensor, dict]:
    """The image file ``path`` as float32 ``(C, H, W)`` in [0, 1] (``C`` 1 or 3) and what was done to it.

    The returned dict holds ``source`` (the path), ``dtype`` and ``shape`` of the decoded array,
    ``colour`` (conversions by the file's declared colour model and orientation, in words, when any)
    and ``intensity`` (the rule applied, in words). Raises FileNotFoundError (missing file) and
    ValueError (unreadable file, unknown suffix, stacks of more than one image, unknown rule).
    """
    path = Path(path)
    if intensity not in INTENSITY_RULES:
        raise ValueError(f"unknown intensity rule {intensity!r}; expected one of {list(INTENSITY_RULES)}")
    if not path.is_file():
        raise FileNotFoundError(f"image file {str(path)!r} does not exist")
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise ValueError(f"{path}: unknown image type {path.suffix!r}; expected one of {list(IMAGE_SUFFIXES)}")
    array, steps = _read_array(path)
    info = {"source": str(path), "dtype": str(array.dtype), "shape": list(array.shape)}
    if steps:
        info["colour"] = "; ".join(steps)
    array = _one_plane(path, array)
    values = array.astype(np.float64)
    if not np.isfinite(values).all():
        raise ValueError(f"{path}: holds NaN or infinite pixels")
    info["value_range"] = [float(values.min()), float(values.max())]
    values = _scaled(values, array.dtype, intensity, info)
    image = torch.from_numpy(values.astype(np.float32))
    image = image.unsqueeze(0) if image.ndim == 2 else image.permute(2, 0, 1)
    return image.contiguous(), info


def _scaled(values: np.ndarray, dtype: np.dtype, intensity: str, info: dict) -> np.ndarray:
    """``values`` (float64, stored type ``dtype``) mapped to [0, 1] by the rule ``intensity`` (see the module
    docstring); ``info`` gains ``intensity`` (what was done, in words), ``intensity_rule`` (the rule's name) and
    ``intensity_scale`` ([stored value mapped to 0, to 1])."""
    by_type = dtype.kind in "ui" and (intensity == "type_max" or (intensity == "auto" and dtype.itemsize == 1))
    if by_type:
        full = float(np.iinfo(dtype).max)
        info["intensity"] = f"{dtype} / {full:g} -> [0, 1]"
        info["intensity_rule"], info["intensity_scale"] = intensity, [0.0, full]
        return np.clip(values, 0.0, None) / full
    low, high = float(values.min()), float(values.max())
    info["intensity"] = f"min-max ({low:g} .. {high:g}) -> [0, 1]"
    info["intensity_rule"], info["intensity_scale"] = intensity, [low, high]
    return (values - low) / (high - low) if high > low else np.zeros_like(values)


NEARLY_CONSTANT = 1e-3
"""A target whose stored values span at most this share of their largest magnitude is refused
(:func:`check_contrast`)."""


def check_contrast(info: dict) -> None:
    """``ValueError`` (one line naming the image and its value range) when the image of ``info`` (from
    :func:`read_image` or :func:`load_image`) is constant or nearly constant: its stored values span at most
    :data:`NEARLY_CONSTANT` of their largest magnitude, or it fills at most that share of [0, 1] after the
    intensity rule. Errors relative to such a target (MSE ratios between models) measure nothing."""
    low, high = info["value_range"]
    scale_low, scale_high = info["intensity_scale"]
    spread = (high - low) / (scale_high - scale_low) if scale_high > scale_low else 0.0
    if high - low > NEARLY_CONSTANT * max(abs(low), abs(high)) and spread > NEARLY_CONSTANT:
        return
    raise ValueError(f"{info['source']}: a {'constant' if high == low else 'nearly constant'} image (values "
                     f"{low:g} .. {high:g}{'' if spread > NEARLY_CONSTANT else f', {100 * spread:.2g} % of the scale'}"
                     f"): errors relative to it mean nothing; fit an image with contrast")


def _read_array(path: Path) -> tuple[np.ndarray, list[str]]:
    """The pixels of ``path`` by what the file declares and the steps taken (:func:`decode_image`); a file the
    readers cannot decode is one ValueError naming it and the fix."""
    try:
        return decode_image(path)
    except ValueError as error:
        raise ValueError(str(error) if str(path) in str(error) else f"{path}: {error}") from None
    except Exception as error:  # the readers raise many types (OSError, TiffFileError, ...)
        raise ValueError(f"{path}: not a readable image file ({type(error).__name__}: {error}); "
                         "check that it is complete (re-copy or re-export it)") from None


def _one_plane(path: Path, array: np.ndarray) -> np.ndarray:
    """``(H, W)`` grey or ``(H, W, 3)`` RGB (alpha dropped, booleans as uint8) of numbers; ValueError otherwise."""
    shape = tuple(array.shape)
    if array.ndim == 3 and array.shape[-1] in (3, 4):
        array = array[..., :3]
    elif array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 2 and not (array.ndim == 3 and array.shape[-1] == 3):
        raise ValueError(f"{path}: array of shape {shape} is not one grey or RGB image "
                         "(a stack or a multi-channel image); save one plane per file")
    if array.dtype.kind == "b":
        array = array.astype(np.uint8)
    if array.dtype.kind not in "uif":
        raise ValueError(f"{path}: pixel type {array.dtype} is not an integer or float type")
    return array


def preprocess(image: torch.Tensor, size: int | str, *, fit: str = "resize_crop", channels: str = "grey",
               value_range: tuple[float, float] = (-1.0, 1.0), name: str = "image") -> torch.Tensor:
    """``image`` ``(C, H, W)`` in [0, 1] -> float32 ``(C', S, S)`` (or native ``H x W``) in ``value_range``.

    ``channels``: ``grey`` (RGB converted with ITU-R 601 luma weights, torchvision's
    ``rgb_to_grayscale``), ``rgb`` (grey images repeated to 3 channels) or ``auto`` (as stored).
    ``fit`` and ``size``: see the module docstring. ``name`` goes into the error messages. Raises
    ValueError for an unknown option or an image smaller than ``size`` with ``fit="crop"``.
    """
    if channels not in CHANNEL_MODES:
        raise ValueError(f"unknown channels option {channels!r}; expected one of {list(CHANNEL_MODES)}")
    if fit not in FITS:
        raise ValueError(f"unknown fit {fit!r}; expected one of {list(FITS)}")
    if channels == "grey" and image.shape[0] == 3:
        image = TF.rgb_to_grayscale(image)
    elif channels == "rgb" and image.shape[0] == 1:
        image = image.expand(3, -1, -1)
    if size != "native":
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"image size must be a positive integer or 'native', got {size!r}")
        height, width = image.shape[-2:]
        if fit == "crop":
            problem = crop_too_small(name, height, width, size)
            if problem is not None:
                raise ValueError(problem)
            image = TF.center_crop(image, [size, size])
        elif fit == "stretch":
            image = TF.resize(image, [size, size], antialias=True)
        else:
            image = TF.center_crop(TF.resize(image, [size], antialias=True), [size, size])
    low, high = value_range
    return (low + (high - low) * image.clamp(0.0, 1.0)).to(torch.float32).contiguous()


def load_image(source: str | Path, size: int | str, *, fit: str = "resize_crop", channels: str = "grey",
               intensity: str = "auto", value_range: tuple[float, float] = (-1.0, 1.0)) -> tuple[torch.Tensor, dict]:
    """A scikit-image test image (by name) or an image file (by path), preprocessed: ``(C, S, S)`` and its info.

    Names in :data:`~qml_imaging.data.catalog.SKIMAGE_IMAGES` are scikit-image's test images
    (uint8, so ``intensity="auto"`` gives /255); anything else is a path read by :func:`read_image`.
    The info dict (``source``, ``dtype``, ``shape``, ``intensity``) gains ``preprocessing`` in words.
    """
    if isinstance(source, str) and source in SKIMAGE_IMAGES:
        import skimage.data

        pixels = np.ascontiguousarray(getattr(skimage.data, source)())
        info = {"source": f"skimage.data.{source}", "dtype": str(pixels.dtype), "shape": list(pixels.shape),
                "value_range": [float(pixels.min()), float(pixels.max())]}
        tensor = torch.from_numpy(_scaled(pixels.astype(np.float64), pixels.dtype, intensity, info).astype(np.float32))
        image = tensor.unsqueeze(0) if tensor.ndim == 2 else tensor.permute(2, 0, 1)[:3]
    else:
        image, info = read_image(source, intensity)
    out = preprocess(image, size, fit=fit, channels=channels, value_range=value_range, name=str(source))
    low, high = value_range
    sizing = "native size" if size == "native" else {"resize_crop": f"short side resized to {size} (antialiased "
                                                                   f"bilinear), centre crop {size}x{size}",
                                                     "crop": f"centre crop {size}x{size}",
                                                     "stretch": f"resized to {size}x{size}"}[fit]
    colour = f"{info['colour']}; " if "colour" in info else ""
    info["preprocessing"] = (f"{colour}{info['intensity']}; {channels} ({out.shape[0]} channel(s)); {sizing}; "
                             f"[0, 1] -> [{low:g}, {high:g}]")
    info["channels"] = out.shape[0]
    return out, info


def image_files(folder: str | Path) -> list[Path]:
    """The image files directly in ``folder`` (suffixes :data:`IMAGE_SUFFIXES`), sorted by name.

    Raises FileNotFoundError for a missing folder and for a folder holding no image files.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder {str(folder)!r} does not exist")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"image folder {str(folder)!r} holds no image files "
                                f"({', '.join(IMAGE_SUFFIXES)})")
    return files


def folder_preprocessing(folder: str | Path, size: int, *, channels: str = "grey",
                         value_range: tuple[float, float] = (-1.0, 1.0)) -> dict:
    """What :func:`load_image_folder` (``fit="stretch"``, ``intensity="auto"``) does to ``folder``, for a run's
    report: the number of files, their stored sizes, the colour and intensity rules, the resize, and how many
    files were enlarged (a short side below ``size``: their detail is interpolated, not measured)."""
    files = image_files(folder)
    stored = [read_image(path)[0] for path in files]
    sides = sorted({f"{image.shape[1]}x{image.shape[2]}" for image in stored})
    colour = channels if channels != "auto" else ("rgb" if any(image.shape[0] == 3 for image in stored) else "grey")
    return {"folder": str(folder), "files": len(files), "stored_sizes": sides if len(sides) <= 10 else sides[:10] + ["..."],
            "channels": f"{colour} ({'RGB kept' if colour == 'rgb' else 'RGB to grey, ITU-R 601 luma'})",
            "intensity": f"auto: 8-bit / 255, wider integers and floats min-max; [0, 1] -> {list(value_range)}",
            "resize": f"stretched to {size}x{size} (antialiased bilinear)",
            "enlarged": sum(min(image.shape[1:]) < size for image in stored)}


def load_image_folder(folder: str | Path, size: int, *, fit: str = "stretch", channels: str = "grey",
                      intensity: str = "auto", value_range: tuple[float, float] = (-1.0, 1.0)) -> torch.Tensor:
    """Every image of ``folder`` (:func:`image_files`) preprocessed to float32 ``(N, C, size, size)``.

    Files of any size and colour; ``channels="auto"`` is RGB when any file is RGB, else grey.
    """
    files = image_files(folder)
    raw = [read_image(path, intensity) for path in files]
    if channels == "auto":
        channels = "rgb" if any(image.shape[0] == 3 for image, _ in raw) else "grey"
    return torch.stack([preprocess(image, size, fit=fit, channels=channels, value_range=value_range,
                                   name=str(path)) for (image, _), path in zip(raw, files, strict=True)])
