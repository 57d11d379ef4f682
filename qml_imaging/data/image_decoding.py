"""Decode an image file by what it declares: its colour model, layout and orientation.

:func:`decode_image` returns the stored pixels as a NumPy array ``(H, W)`` (grey) or ``(H, W, 3)``
(RGB), in the file's own dtype, and the steps taken to get there, in words, for the preprocessing
record. The size in the header is checked against :data:`~qml_imaging.limits.MAX_IMAGE_PIXELS`
before any pixel is decoded (a sparse 100000 x 100000 TIFF is a few kB on disk and 9.3 GiB decoded).

PNG, JPEG, BMP (Pillow): the mode decides. ``L``, ``I;16``, ``I``, ``F``, ``1`` are grey; ``RGB`` is
RGB; ``LA``, ``RGBA``, ``PA`` lose their alpha (recorded); ``P`` (palette) is expanded to RGB;
``CMYK`` (JPEGs from print workflows, often Adobe-inverted) and ``YCbCr``, ``LAB``, ``HSV`` are
converted to RGB by Pillow's ``Image.convert("RGB")``, the reference conversion. The EXIF orientation
is applied first (Pillow's ``ImageOps.exif_transpose``), so a phone photograph stands as it was taken.

TIFF (tifffile): ``PhotometricInterpretation`` and ``PlanarConfiguration`` decide. Grey
(``MINISBLACK``), ``MINISWHITE`` (inverted to black-is-zero), ``RGB`` interleaved or planar
(``(3, H, W)`` moved to ``(H, W, 3)``), ``PALETTE`` (expanded through the colour map) and extra
samples (alpha, dropped) are read; other models (CMYK ``SEPARATED``, ``YCbCr``, ``CIELAB``) are
refused by name. The TIFF ``Orientation`` tag is applied as EXIF's is.

Errors: ValueError with one line naming the file, what is wrong and the fix.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from qml_imaging.limits import MAX_IMAGE_PIXELS

_GREY_MODES = ("1", "L", "I", "I;16", "I;16B", "I;16L", "F")
_ALPHA_MODES = {"LA": "L", "La": "L", "RGBA": "RGB", "RGBa": "RGB", "PA": "RGB"}
_CONVERTED_MODES = ("CMYK", "YCbCr", "LAB", "HSV", "P", "RGBX")
_ORIENTATIONS = {2: "mirrored left-right", 3: "rotated 180 degrees", 4: "mirrored top-bottom",
                 5: "transposed", 6: "rotated 90 degrees clockwise", 7: "transversed",
                 8: "rotated 90 degrees counter-clockwise"}


def decode_image(path: Path) -> tuple[np.ndarray, list[str]]:
    """The pixels of the image file ``path`` as ``(H, W)`` or ``(H, W, 3)`` and the steps taken (see the module)."""
    if path.suffix.lower() in (".tif", ".tiff"):
        return _decode_tiff(path)
    return _decode_pillow(path)


def _check_pixels(path: Path, shape: tuple[int, ...]) -> None:
    """Refuse a file whose header declares more than :data:`MAX_IMAGE_PIXELS` values, before decoding it."""
    if int(np.prod(shape, dtype=np.float64)) > MAX_IMAGE_PIXELS:
        raise ValueError(f"{path}: its header declares {' x '.join(str(side) for side in shape)} pixels, more than "
                         f"the {MAX_IMAGE_PIXELS:,} an image may have here; crop or downsample it first")


def _decode_pillow(path: Path) -> tuple[np.ndarray, list[str]]:
    from PIL import Image, ImageOps

    with Image.open(path) as opened:
        _check_pixels(path, (getattr(opened, "n_frames", 1), opened.height, opened.width))
        if getattr(opened, "n_frames", 1) > 1:
            raise ValueError(f"{path}: holds {opened.n_frames} frames, not one image; save one frame per file")
        steps = []
        orientation = opened.getexif().get(0x0112, 1)
        image = ImageOps.exif_transpose(opened)
        if orientation in _ORIENTATIONS:
            steps.append(f"EXIF orientation {orientation} applied ({_ORIENTATIONS[orientation]})")
        image, step = _to_grey_or_rgb(image)
        return np.asarray(image), [*steps, *([step] if step else [])]


def _to_grey_or_rgb(image):
    """A Pillow image in a grey or RGB mode, converted explicitly where its mode is another colour model."""
    mode = image.mode
    if mode in _GREY_MODES or mode == "RGB":
        return (image.convert("L") if mode == "1" else image), None
    if mode in _ALPHA_MODES:
        target = _ALPHA_MODES[mode]
        return image.convert(target), f"{mode}: alpha dropped ({'grey' if target == 'L' else 'RGB'} kept)"
    if mode in _CONVERTED_MODES:
        return image.convert("RGB"), f"{mode} converted to RGB (Pillow Image.convert)"
    raise ValueError(f"Pillow mode {mode!r} is not a grey or RGB colour model this reader converts; "
                     "save the image as grey or RGB")


def _decode_tiff(path: Path) -> tuple[np.ndarray, list[str]]:
    import tifffile

    with tifffile.TiffFile(path) as tiff:
        if not tiff.series or not tiff.pages:
            raise ValueError(f"{path}: a TIFF file without an image")
        series, page = tiff.series[0], tiff.pages.first
        if len(tiff.series) > 1 or len(series.shape) > 3:
            raise ValueError(f"{path}: a TIFF of {len(tiff.series)} series of shape {tuple(series.shape)}, not one "
                             "grey or RGB image (a stack); save one plane per file")
        _check_pixels(path, tuple(series.shape))
        photometric = tifffile.PHOTOMETRIC(page.photometric).name if page.photometric is not None else "MINISBLACK"
        array, steps = _tiff_colour(path, series.asarray(), page, photometric)
        orientation = int(page.tags["Orientation"].value) if "Orientation" in page.tags else 1
    if orientation in _ORIENTATIONS:
        array = _orient(array, orientation)
        steps.append(f"TIFF orientation {orientation} applied ({_ORIENTATIONS[orientation]})")
    return array, steps


def _tiff_colour(path: Path, array: np.ndarray, page, photometric: str) -> tuple[np.ndarray, list[str]]:
    """``array`` as stored -> ``(H, W)`` or ``(H, W, C)``, by the page's photometric model and planar layout."""
    steps = []
    if page.planarconfig == 2 and array.ndim == 3:  # SEPARATE: one plane per sample
        array = np.moveaxis(array, 0, -1)
        steps.append("planar samples moved to the last axis")
    if photometric == "PALETTE":
        colours = np.asarray(page.colormap)
        return np.moveaxis(colours[:, array], 0, -1), [*steps, "palette expanded to RGB (16-bit colour map)"]
    if photometric not in ("MINISBLACK", "MINISWHITE", "RGB"):
        raise ValueError(f"{path}: a TIFF in the {photometric} colour model; save it as grey or RGB "
                         "(e.g. Pillow: Image.open(path).convert('RGB').save(...))")
    extra = array.ndim == 3 and array.shape[-1] > (3 if photometric == "RGB" else 1)
    if extra and page.extrasamples:
        keep = 3 if photometric == "RGB" else 1
        array = array[..., :keep] if keep == 3 else array[..., 0]
        steps.append(f"{len(page.extrasamples)} extra sample(s) (alpha) dropped")
    if photometric == "MINISWHITE":
        array = (np.iinfo(array.dtype).max - array) if array.dtype.kind in "ui" else (array.max() - array)
        steps.append("MINISWHITE inverted (0 is black)")
    return array, steps


def _orient(array: np.ndarray, orientation: int) -> np.ndarray:
    """The TIFF/EXIF orientation ``orientation`` (2-8) applied to an ``(H, W, ...)`` array, as Pillow's
    ``ImageOps.exif_transpose`` applies it to an image."""
    moves = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
             5: lambda a: a.swapaxes(0, 1), 6: lambda a: np.rot90(a, -1), 7: lambda a: a.swapaxes(0, 1)[::-1, ::-1],
             8: lambda a: np.rot90(a, 1)}
    return np.ascontiguousarray(moves[orientation](array))
