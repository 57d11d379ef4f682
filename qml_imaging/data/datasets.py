"""Data sets: MNIST (torchvision), MedMNIST 2D (medmnist), scikit-image test images, INR coordinate grids.

Where data lives: the ``data_dir`` argument (the CLI's ``--data-dir``), else the
``QML_IMAGING_DATA`` environment variable, else ``~/.cache/qml_imaging/data``. Two layouts are read:

* the libraries' own: ``ROOT/MNIST/raw/`` (torchvision) and ``ROOT/<flag>.npz`` (medmnist);
* the offline bundle's: ``ROOT/mnist/*-ubyte.gz`` and ``ROOT/medmnist/<flag>.npz``.

When neither holds the data and ``download`` is true, the libraries' download path runs; when
that fails (no internet), :class:`DatasetUnavailable` says what is missing and how to get it.
"""

from __future__ import annotations

import gzip
import os
import shutil
import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch

from qml_imaging.data.catalog import DATA_ENV, SKIMAGE_IMAGES
from qml_imaging.extras import require
from qml_imaging.runs import atomic_replace

MNIST_FILES = {
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


class DatasetUnavailable(FileNotFoundError):
    """A data set is neither on disk nor downloadable; the message says how to get it."""


def data_root(data_dir: str | Path | None = None) -> Path:
    """The data directory: ``data_dir``, else ``$QML_IMAGING_DATA``, else ``~/.cache/qml_imaging/data``."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV]).expanduser()
    return Path.home() / ".cache" / "qml_imaging" / "data"


def load_mnist(*, train: bool, data_dir: str | Path | None = None, download: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST digits as ``(N, 28, 28)`` uint8 images and ``(N,)`` int64 labels.

    ``train=False`` is the 10,000-image test set (in the offline bundle);
    ``train=True`` the 60,000-image training set (download only).
    """
    from torchvision.datasets.mnist import MNIST

    root = data_root(data_dir)
    split = "train" if train else "test"
    raw = _mnist_raw_folder(root, train)
    if raw is None and download:
        try:
            MNIST(str(root), train=train, download=True)
        except Exception as error:  # torchvision raises RuntimeError/URLError/OSError depending on the failure
            raise DatasetUnavailable(_mnist_missing_message(root, split, _first_line(error))) from error
        raw = root / "MNIST" / "raw"
    elif raw is None:
        raise DatasetUnavailable(_mnist_missing_message(root, split, "download=False"))
    image_file, label_file = MNIST_FILES[train]
    images, labels = read_idx(raw / image_file, 3), read_idx(raw / label_file, 1).long()
    if len(images) != len(labels):
        raise ValueError(f"{raw}: {image_file} holds {len(images)} images but {label_file} {len(labels)} labels; "
                         "the two files come from different downloads: delete both and download again")
    return images, labels


def read_idx(path: Path, dims: int) -> torch.Tensor:
    """An unsigned-byte IDX file (MNIST's format, LeCun et al.) of ``dims`` dimensions as a uint8 tensor.

    The header (magic ``0x0000 08 dims``, then ``dims`` big-endian sizes) is checked against the file's
    length before the data is read, so a truncated download or a file still gzip-compressed is one
    ValueError naming the file and the fix, not torchvision's "shape is invalid".
    """
    data = path.read_bytes()
    fix = f"delete {path} and download it again (or put the original .gz under DATA_DIR/mnist/)"
    if data[:2] == b"\x1f\x8b":
        raise ValueError(f"{path}: still gzip-compressed (it starts with the gzip signature); unpack it "
                         f"(`gunzip -c {path.name} > ...`) or put it, named *.gz, under DATA_DIR/mnist/")
    header = 4 + 4 * dims
    if len(data) < header or data[:3] != b"\x00\x00\x08" or data[3] != dims:
        raise ValueError(f"{path}: not an MNIST IDX file of {dims} dimension(s) (it starts with {data[:4].hex()}, "
                         f"not 000008{dims:02x}); {fix}")
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims))
    expected = header + int(np.prod(shape, dtype=np.float64))
    if len(data) != expected:
        raise ValueError(f"{path}: {'truncated' if len(data) < expected else 'longer than its header says'}: "
                         f"{len(data):,} bytes where its header ({' x '.join(map(str, shape))}) needs {expected:,}; "
                         f"{fix}")
    return torch.from_numpy(np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape).copy())


def _mnist_raw_folder(root: Path, train: bool) -> Path | None:
    """The folder holding the split's uncompressed idx files, unpacking the bundle's .gz files if needed."""
    names = MNIST_FILES[train]
    torchvision_raw = root / "MNIST" / "raw"
    if all((torchvision_raw / name).is_file() for name in names):
        return torchvision_raw
    bundle = root / "mnist"
    if not all((bundle / f"{name}.gz").is_file() for name in names):
        return None
    raw = (root if os.access(root, os.W_OK) else data_root(None).parent / "unpacked") / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name in names:
        if not (raw / name).is_file():
            try:
                with atomic_replace(raw / name) as temporary, gzip.open(bundle / f"{name}.gz", "rb") as source, \
                        open(temporary, "wb") as target:
                    shutil.copyfileobj(source, target)
            except (EOFError, gzip.BadGzipFile, zlib.error) as error:
                raise ValueError(f"{bundle / f'{name}.gz'}: not a whole gzip file ({error}); "
                                 "copy it again from the data bundle or download MNIST again") from None
    return raw


def _first_line(error: Exception) -> str:
    """A download failure in one line: its type and the first line of its message (torchvision's
    lists every mirror it tried, one per line)."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0].strip()}" if lines else type(error).__name__


def _mnist_missing_message(root: Path, split: str, reason: object) -> str:
    return (
        f"MNIST {split} set not found under {root} (looked for MNIST/raw/ and mnist/*-ubyte.gz) "
        f"and not downloaded ({reason}). On a machine with internet run "
        f"`python -c \"import torchvision; torchvision.datasets.MNIST('DIR', train={split == 'train'}, download=True)\"`, "
        f"then pass --data-dir DIR or set {DATA_ENV}=DIR."
    )


def medmnist_2d_flags() -> list[str]:
    """Names of the MedMNIST 2D data sets (``pneumoniamnist``, ``pathmnist``, ...)."""
    INFO = require("medmnist", "the MedMNIST data sets").INFO
    return sorted(flag for flag in INFO if not flag.endswith("3d"))


def load_medmnist(
    flag: str, *, split: str, data_dir: str | Path | None = None, download: bool = True, size: int = 28
) -> tuple[np.ndarray, np.ndarray]:
    """A MedMNIST 2D split as uint8 images ``(N, size, size)`` (grey) or ``(N, size, size, 3)`` and int64 labels:
    ``(N,)`` classes, or ``(N, L)`` 0/1 rows for the multi-label sets (ChestMNIST: 14 findings).
    ``size``: 28, 64, 128 or 224 (MedMNIST+ files ``<flag>_<size>.npz``)."""
    medmnist = require("medmnist", "the MedMNIST data sets")
    flags = medmnist_2d_flags()
    if flag not in flags:
        raise ValueError(f"unknown MedMNIST 2D data set {flag!r}; expected one of {flags}")
    if split not in ("train", "val", "test"):
        raise ValueError(f"unknown split {split!r}; expected 'train', 'val' or 'test'")
    dataset_class = getattr(medmnist, medmnist.INFO[flag]["python_class"])
    root = data_root(data_dir)
    filename = f"{flag}{'' if size == 28 else f'_{size}'}.npz"
    found = next((d for d in (root, root / "medmnist") if (d / filename).is_file()), None)
    if found is None and download:
        target = root / "medmnist"
        target.mkdir(parents=True, exist_ok=True)
        try:
            dataset = dataset_class(split=split, root=str(target), download=True, size=size)
        except Exception as error:  # medmnist raises RuntimeError/URLError/OSError depending on the failure
            raise DatasetUnavailable(_medmnist_missing_message(flag, root, filename, _first_line(error))) from error
    elif found is None:
        raise DatasetUnavailable(_medmnist_missing_message(flag, root, filename, "download=False"))
    else:
        try:
            dataset = dataset_class(split=split, root=str(found), download=False, size=size)
        except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as error:
            raise ValueError(f"{found / filename}: a damaged MedMNIST archive ({type(error).__name__}: "
                             f"{_first_line(error).partition(': ')[2] or error}); delete it and download it again "
                             f"(or copy it again from the data bundle)") from None
    labels = dataset.labels.astype(np.int64)
    if labels.ndim == 2 and labels.shape[1] > 1 and "multi-label" in medmnist.INFO[flag]["task"]:
        return dataset.imgs, labels
    return dataset.imgs, labels.reshape(-1)


def _medmnist_missing_message(flag: str, root: Path, filename: str, reason: object) -> str:
    return (
        f"MedMNIST {flag!r} not found under {root} (looked for {filename} and medmnist/{filename}) "
        f"and not downloaded ({reason}). On a machine with internet run "
        f"`python -c \"import medmnist; medmnist.INFO; getattr(medmnist, medmnist.INFO['{flag}']['python_class'])"
        f"(split='test', root='DIR', download=True)\"`, then pass --data-dir DIR or set {DATA_ENV}=DIR."
    )


def load_skimage_image(name: str, size: int, *, grey: bool = True, value_range: tuple[float, float] = (-1.0, 1.0)) -> torch.Tensor:
    """A scikit-image test image as a float32 ``(C, size, size)`` tensor with values in ``value_range``.

    Preprocessing (the QIREN authors'): grey if asked, resize the short side to ``size``
    (antialiased bilinear), centre-crop ``size x size``, map [0, 1] linearly onto ``value_range``.
    """
    import skimage.data

    if name not in SKIMAGE_IMAGES:
        raise ValueError(f"unknown image {name!r}; expected one of {list(SKIMAGE_IMAGES)}")
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"image size must be a positive integer, got {size!r}")
    from qml_imaging.data.images import preprocess

    pixels = torch.from_numpy(np.ascontiguousarray(getattr(skimage.data, name)()))
    image = pixels.unsqueeze(0) if pixels.ndim == 2 else pixels.permute(2, 0, 1)[:3]
    image = image.float() / 255.0 if pixels.dtype == torch.uint8 else image.float()
    return preprocess(image, size, channels="grey" if grey else "rgb", value_range=value_range, name=name)


def coordinate_grid(height: int, width: int, *, low: float = -1.0, high: float = 1.0) -> torch.Tensor:
    """Pixel-centre coordinates of an ``height x width`` image as ``(height * width, 2)`` (row, column), row-major.

    Each axis spans ``linspace(low, high)``, the convention of SIREN and QIREN.
    """
    rows = torch.linspace(low, high, height)
    cols = torch.linspace(low, high, width)
    return torch.stack(torch.meshgrid(rows, cols, indexing="ij"), dim=-1).reshape(-1, 2)
