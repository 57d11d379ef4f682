"""Every reader turns a damaged file into one line naming the file, what is wrong with it and the fix."""

import gzip

import numpy as np
import pytest
import torch

from qml_imaging.cli import main
from qml_imaging.config import ConfigError, load_config
from qml_imaging.data.arrays import read_npz
from qml_imaging.data.datasets import load_mnist, read_idx
from qml_imaging.quantum.backends import backend_spec
from qml_imaging.quantum.noise import NoiseBank
from qml_imaging.runs import RunDir
from tests.conftest import EXPERIMENTS


def one_line(text: str) -> str:
    assert "\n" not in text.strip() and "Traceback" not in text, text
    return text


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(side).to_bytes(4, "big") for side in array.shape)
    return header + array.astype(np.uint8).tobytes()


def test_a_binary_config_yaml_is_named_on_validate_and_on_resume(tmp_path, capsys):
    (tmp_path / "config.yaml").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00" + bytes(range(256)))
    assert main(["validate", str(tmp_path / "config.yaml")]) == 2
    assert "config.yaml: not a text file (byte 0 is not UTF-8" in one_line(capsys.readouterr().err)
    assert main(["run", "--resume", str(tmp_path)]) == 2
    err = one_line(capsys.readouterr().err)
    assert f"{tmp_path / 'config.yaml'}: not a text file" in err and "check that the right file was given" in err


def test_yaml_syntax_errors_are_one_line_with_line_and_column(tmp_path, capsys):
    (tmp_path / "bad.yaml").write_text("experiment: inr_image\nname: [unclosed\ntrain: {epochs: 2}\n")
    assert main(["validate", str(tmp_path / "bad.yaml")]) == 2
    err = one_line(capsys.readouterr().err)
    assert "bad.yaml: not valid YAML at line 3, column 6" in err and "expected ',' or ']'" in err
    (tmp_path / "backend.yaml").write_text("backend: [fast\nshots: 3\n")
    with pytest.raises(ConfigError, match=r"backend.yaml: not valid YAML at line 2, column 6") as raised:
        backend_spec(tmp_path / "backend.yaml")
    one_line(str(raised.value))
    with pytest.raises(ConfigError, match=r"override 'train.lr=\[1': the value: not valid YAML .* quote the value"):
        load_config(EXPERIMENTS / "inr_smoke.yaml", ["train.lr=[1"])
    (tmp_path / "tabs.yaml").write_text("experiment: inr_image\ntrain:\n\tepochs: 2\n")
    with pytest.raises(ConfigError, match="tabs.yaml: not valid YAML at line 3") as raised:
        load_config(tmp_path / "tabs.yaml")
    one_line(str(raised.value))


@pytest.fixture
def mnist_root(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    images = np.arange(5 * 28 * 28).reshape(5, 28, 28) % 256
    (raw / "t10k-images-idx3-ubyte").write_bytes(idx_bytes(images))
    (raw / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.arange(5)))
    return tmp_path


def test_mnist_idx_files_are_read_and_checked(mnist_root):
    images, labels = load_mnist(train=False, data_dir=mnist_root, download=False)
    assert images.shape == (5, 28, 28) and images.dtype == torch.uint8 and labels.tolist() == [0, 1, 2, 3, 4]
    assert labels.dtype == torch.int64


def test_a_truncated_or_still_gzipped_mnist_file_is_named_with_the_fix(mnist_root):
    path = mnist_root / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    whole = path.read_bytes()
    path.write_bytes(whole[:1000])
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte: truncated: 1,000 bytes where its header "
                                         r"\(5 x 28 x 28\) needs 3,936; delete .* download it again") as raised:
        load_mnist(train=False, data_dir=mnist_root, download=False)
    one_line(str(raised.value))
    path.write_bytes(gzip.compress(whole))
    with pytest.raises(ValueError, match="still gzip-compressed"):
        load_mnist(train=False, data_dir=mnist_root, download=False)
    path.write_bytes(b"hello world, not an idx file")
    with pytest.raises(ValueError, match="not an MNIST IDX file of 3 dimension"):
        read_idx(path, 3)


def test_a_truncated_gzip_in_the_bundle_is_named(tmp_path):
    bundle = tmp_path / "mnist"
    bundle.mkdir()
    images = idx_bytes(np.random.default_rng(0).integers(0, 255, (5, 28, 28)))
    (bundle / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(images)[:200])
    (bundle / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.arange(5))))
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte.gz: not a whole gzip file .* copy it again"):
        load_mnist(train=False, data_dir=tmp_path, download=False)
    assert not list((tmp_path / "MNIST" / "raw").glob(".*.tmp"))


def test_a_truncated_npz_is_named_with_the_fix(tmp_path):
    bank = NoiseBank(torch.randn(1000), {"backend": "fast"})
    bank.save(tmp_path / "bank.npz")
    assert NoiseBank.load(tmp_path / "bank.npz").samples.shape == (1000,)
    data = (tmp_path / "bank.npz").read_bytes()
    (tmp_path / "bank.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"bank.npz \(a noise bank\) is damaged: not a whole NPZ archive .* "
                                         r"make it again with `qml-imaging hardware noise-bank`") as raised:
        NoiseBank.load(tmp_path / "bank.npz")
    one_line(str(raised.value))
    np.savez(tmp_path / "other.npz", values=np.ones(3))
    with pytest.raises(ValueError, match=r"other.npz \(a noise bank\) is damaged: it has no array 'samples'"):
        NoiseBank.load(tmp_path / "other.npz")
    with pytest.raises(ValueError, match="holds no pickles"):
        np.savez(tmp_path / "pickled.npz", samples=np.array([object()], dtype=object))
        read_npz(tmp_path / "pickled.npz", what="holds no pickles")


def test_a_damaged_medmnist_archive_is_named(tmp_path):
    pytest.importorskip("medmnist")
    from qml_imaging.data.datasets import load_medmnist

    (tmp_path / "pneumoniamnist.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ValueError, match=r"pneumoniamnist.npz: a damaged MedMNIST archive .* download it again"):
        load_medmnist("pneumoniamnist", split="test", data_dir=tmp_path, download=False)


def test_a_binary_run_config_is_named_by_run_dir_open(tmp_path):
    run = RunDir.create(load_config(EXPERIMENTS / "inr_smoke.yaml"), tmp_path / "run")
    (run.path / "config.yaml").write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(ConfigError, match=r"run/config.yaml: not a text file"):
        RunDir.open(run.path)
