"""Diffusion on a folder of your own images, and `qml-imaging sample` on any backend (files written here)."""

import json

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from qml_imaging import load_model
from qml_imaging.cli import main
from qml_imaging.config import ConfigError, config_from_dict
from qml_imaging.pipelines.diffusion.data import class_labels
from qml_imaging.quantum.backends import backend_spec
from qml_imaging.quantum.layer import QuantumLayer

CONFIG = {
    "experiment": "diffusion_fewshot", "name": "own_folder", "shots": [12], "seeds": [0],
    "variants": {"quantum": {"bottleneck": "quantum"}},
    "unet": {"channels": [8, 8, 16], "n_qubits": 4, "quantum_layers": 2}, "diffusion": {"timesteps": 50},
    "batches_per_epoch": 2, "train": {"epochs": 2, "batch_size": 8, "checkpoint_every": 1, "ema_decay": 0.99, "progress": False},
    "sampling": {"samples": 10, "ddim_steps": 5, "batch_size": 10}, "evaluation": {"scores": False, "grid_images": 4},
}


def write_png_folder(folder, count=12):
    folder.mkdir(parents=True, exist_ok=True)
    y, x = np.mgrid[0:40, 0:36]
    for index in range(count):
        pixels = (127 + 120 * np.sin((x + 3 * index) / 5) * np.cos(y / 6)).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"img{index:02d}.png")
    return folder


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("own_diffusion")
    config = {**CONFIG, "datasets": {"mine": {"source": "folder", "path": str(write_png_folder(root / "pngs")),
                                              "size": 32}}}
    (root / "own.yaml").write_text(yaml.safe_dump(config))
    assert main(["run", str(root / "own.yaml"), "--out", str(root / "run")]) == 0
    return root / "run"


def test_a_folder_of_12_pngs_trains_at_its_own_resolution(folder_run):
    report = json.loads((folder_run / "report.json").read_text())
    model = report["summary"]["models"]["mine/k12/quantum/seed0"]
    assert model["image_side"] == 32 and model["channels"] == 1 and report["summary"]["scored"] is False
    folder = report["details"]["datasets"]["mine"]
    assert folder["files"] == 12 and folder["stored_sizes"] == ["40x36"] and folder["enlarged"] == 0
    assert folder["resize"].startswith("stretched to 32x32") and folder["channels"].startswith("grey")
    trained = load_model(folder_run)
    assert trained.preprocessing["image_side"] == 32 and trained.ema, "the default diffusion training keeps an EMA"


def test_sample_refuses_step_counts_outside_the_schedule(folder_run, tmp_path, capsys):
    for steps in ("0", "51"):
        assert main(["sample", str(folder_run), "--n", "2", "--steps", steps, "--out", str(tmp_path / steps)]) == 2
        assert f"--steps must be in 1..50 (the run's diffusion.timesteps), got {steps}" in capsys.readouterr().err


@pytest.mark.qiskit
def test_sample_on_fast_and_aer_shots_agree_within_shot_noise_on_the_same_bottleneck_inputs(folder_run, tmp_path):
    for backend in ("fast",):  # the README test samples with --backend aer_shots through the same command
        out = tmp_path / backend
        assert main(["sample", str(folder_run), "--n", "6", "--steps", "3", "--backend", backend, "--out", str(out)]) == 0
        images = np.load(out / "samples.npy")
        assert images.shape == (6, 1, 32, 32) and images.dtype == np.float32
        assert images.min() >= -1 and images.max() <= 1 and (out / "samples.png").is_file()
        assert json.loads((out / "sample_info.json").read_text())["backend"] == backend

    trained = load_model(folder_run)
    layer = next(m for m in trained.model.modules() if isinstance(m, QuantumLayer))
    seen = []
    handle = layer.register_forward_hook(lambda module, inputs, output: seen.append((inputs[0].detach(), output)))
    trained.sample(6, steps=3)
    handle.remove()
    assert len(seen) == 3 and all(len(inputs) == 6 for inputs, _ in seen), "one batched circuit call per DDIM step"
    inputs = torch.cat([i for i, _ in seen])
    exact = torch.cat([o for _, o in seen]).double()
    layer.use_executor(backend_spec("aer_shots"))
    with torch.no_grad():
        sampled = layer(inputs).double()
    standard_error = ((1 - exact**2).clamp_min(1e-12) / 4096).sqrt()
    assert ((sampled - exact).abs() <= 5 * standard_error + 1e-9).all()
    assert not torch.equal(sampled, exact), "aer_shots must sample, not reproduce the exact values"


def test_folder_and_multilabel_errors_are_clear(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no images")
    config = {**CONFIG, "datasets": {"mine": {"source": "folder", "path": str(tmp_path / "empty"), "size": 32}}}
    (tmp_path / "empty.yaml").write_text(yaml.safe_dump(config))
    assert main(["run", str(tmp_path / "empty.yaml"), "--out", str(tmp_path / "run")]) == 2
    assert "holds no image files" in capsys.readouterr().err and not (tmp_path / "run").exists()
    with pytest.raises(ConfigError, match="image folder .*absent' does not exist"):
        config_from_dict({**CONFIG, "datasets": {"x": {"source": "folder", "path": str(tmp_path / "absent")}}})
    with pytest.raises(ConfigError, match="size 30 is not divisible by 4"):
        config_from_dict({**CONFIG, "datasets": {"x": {"source": "folder", "path": str(tmp_path), "size": 30}}})
    with pytest.raises(ConfigError, match="MedMNIST 2D sets come at sizes 28, 64 and 128"):
        config_from_dict({**CONFIG, "datasets": {"x": {"source": "medmnist", "flag": "chestmnist", "size": 32}}})
    labels = np.array([[0, 1, 0], [1, 0, 1], [0, 0, 0], [0, 0, 1]])
    keep, index = class_labels(labels, [2, 1], "chestmnist")
    assert keep.tolist() == [True, True, False, True] and index.tolist() == [1, 0, 0]
    keep, index = class_labels(labels, None, "chestmnist")
    assert keep.all() and index.tolist() == [1, 0, 3, 2]
    with pytest.raises(ValueError, match="classes \\[14\\] are out of range for chestmnist's 3 labels"):
        class_labels(labels, [14], "chestmnist")


def test_more_shots_than_images_names_shots_and_the_pool_size(tmp_path):
    from qml_imaging.pipelines.diffusion.data import load_split

    config = config_from_dict({**CONFIG, "datasets": {"mine": {"source": "folder", "size": 32,
                                                               "path": str(write_png_folder(tmp_path / "two", 2))}}})
    split = load_split(config.datasets["mine"], config.split, scores=False)
    with pytest.raises(ValueError, match="shots 12: the few-shot pool holds 2 images; lower shots"):
        split.fewshot(12, seed=0)
