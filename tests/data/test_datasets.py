import numpy as np
import pytest
import torch

from qml_imaging.data.datasets import (
    DatasetUnavailable,
    coordinate_grid,
    load_medmnist,
    load_mnist,
    load_skimage_image,
    medmnist_2d_flags,
)
from qml_imaging.data.fewshot import few_shot_indices
from qml_imaging.extras import missing

needs_medmnist = pytest.mark.skipif(bool(missing("medmnist")), reason="the [medmnist] extra")


def test_mnist_test_set_loads_from_the_offline_bundle(shared_data):
    images, labels = load_mnist(train=False, data_dir=shared_data, download=False)
    assert images.shape == (10000, 28, 28) and images.dtype == torch.uint8
    assert labels.shape == (10000,) and set(labels.tolist()) == set(range(10))


def test_mnist_also_reads_the_torchvision_layout(shared_data, tmp_path):
    import gzip
    import shutil

    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        with gzip.open(shared_data / "mnist" / f"{name}.gz") as source, open(raw / name, "wb") as target:
            shutil.copyfileobj(source, target)
    images, labels = load_mnist(train=False, data_dir=tmp_path, download=False)
    assert images.shape == (10000, 28, 28)


def test_missing_mnist_says_how_to_get_it(tmp_path):
    with pytest.raises(DatasetUnavailable) as error:
        load_mnist(train=True, data_dir=tmp_path, download=False)
    message = str(error.value)
    assert "MNIST train set not found" in message and "--data-dir" in message and "QML_IMAGING_DATA" in message


@needs_medmnist
def test_pneumoniamnist_loads_from_the_offline_bundle(shared_data):
    images, labels = load_medmnist("pneumoniamnist", split="test", data_dir=shared_data, download=False)
    assert images.shape == (624, 28, 28) and images.dtype == np.uint8
    assert set(np.unique(labels)) == {0, 1}


@needs_medmnist
def test_medmnist_errors(tmp_path):
    assert "pathmnist" in medmnist_2d_flags() and "organmnist3d" not in medmnist_2d_flags()
    with pytest.raises(ValueError, match="unknown MedMNIST 2D data set 'pnuemoniamnist'"):
        load_medmnist("pnuemoniamnist", split="test", data_dir=tmp_path)
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        load_medmnist("pathmnist", split="dev", data_dir=tmp_path)
    with pytest.raises(DatasetUnavailable, match=r"'pathmnist' not found.*pathmnist.npz.*--data-dir"):
        load_medmnist("pathmnist", split="test", data_dir=tmp_path, download=False)


@needs_medmnist
def test_data_dir_comes_from_the_environment(shared_data, monkeypatch):
    monkeypatch.setenv("QML_IMAGING_DATA", str(shared_data))
    images, _ = load_medmnist("pneumoniamnist", split="val", download=False)
    assert images.shape == (524, 28, 28)


def test_skimage_images_follow_the_qiren_preprocessing():
    image = load_skimage_image("astronaut", 32)
    assert image.shape == (1, 32, 32) and image.dtype == torch.float32
    assert -1.0 <= image.min().item() < -0.5 and 0.5 < image.max().item() <= 1.0
    colour = load_skimage_image("coffee", 20, grey=False, value_range=(0.0, 1.0))
    assert colour.shape == (3, 20, 20) and 0.0 <= colour.min().item() and colour.max().item() <= 1.0


@pytest.mark.parametrize("size", [0, -3, 2.5, True])
def test_skimage_size_must_be_a_positive_integer(size):
    with pytest.raises(ValueError, match="positive integer"):
        load_skimage_image("camera", size)


def test_unknown_skimage_image_lists_the_choices():
    with pytest.raises(ValueError, match=r"unknown image 'lena'.*'camera'"):
        load_skimage_image("lena", 32)


def test_coordinate_grid_is_row_major_on_minus_one_to_one():
    grid = coordinate_grid(3, 4)
    assert grid.shape == (12, 2)
    assert grid[0].tolist() == [-1.0, -1.0] and grid[-1].tolist() == [1.0, 1.0]
    assert grid[1].tolist() == pytest.approx([-1.0, -1.0 / 3.0])  # second pixel: same row, next column


def test_few_shot_indices_are_balanced_seeded_and_checked():
    labels = np.repeat(np.arange(10), 20)
    picked = few_shot_indices(labels, 25, seed=1)
    counts = np.bincount(labels[picked], minlength=10)
    assert len(set(picked.tolist())) == 25 and counts.min() == 2 and counts.max() == 3
    assert np.array_equal(picked, few_shot_indices(labels, 25, seed=1))
    assert not np.array_equal(picked, few_shot_indices(labels, 25, seed=2))
    one_class = few_shot_indices(labels, 10, classes=[7], seed=0)
    assert set(labels[one_class]) == {7}
    with pytest.raises(ValueError, match="class 7 has 20 samples, fewer than the 21"):
        few_shot_indices(labels, 21, classes=[7])
    with pytest.raises(ValueError, match=r"classes \[11\] do not occur"):
        few_shot_indices(labels, 5, classes=[11])


def test_failed_download_becomes_a_clear_error(tmp_path, monkeypatch):
    """Offline machines: the library's download raises, the loader explains what to do in one line."""
    import torchvision.datasets.mnist as tv_mnist

    def offline(*args, **kwargs):  # torchvision's own failure lists every mirror, one per line
        raise RuntimeError("Error downloading t10k-images-idx3-ubyte.gz:\nTried https://a, got:\n<urlopen error "
                           "no network>\nTried https://b, got:\n<urlopen error no network>\n")

    monkeypatch.setattr(tv_mnist.MNIST, "download", offline)
    with pytest.raises(DatasetUnavailable) as error:
        load_mnist(train=False, data_dir=tmp_path, download=True)
    message = str(error.value)
    assert "\n" not in message
    assert "MNIST test set not found" in message and "(RuntimeError: Error downloading t10k-images-idx3-ubyte.gz:)" in message
    assert "--data-dir" in message
