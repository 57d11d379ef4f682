"""Export round trips: a QIREN fit, a diffusion model and a g2 CNN, exported and loaded, give bit-identical
outputs to the run folder's model, and loading an export unpickles nothing."""

import json

import numpy as np
import pytest
import torch
import yaml

from qml_imaging import load_model
from qml_imaging.cli import main
from qml_imaging.physics.hbt import DelayAxis, EmitterParameters, simulate_histograms
from qml_imaging.runs import RunFolderError
from qml_imaging.training.export import export_model
from tests.conftest import EXPERIMENTS
from tests.pipelines.test_own_diffusion import CONFIG as DIFFUSION, write_png_folder


def export(run, out, fit=None):
    assert main(["export", str(run), *(["--fit", fit] if fit else []), "--out", str(out)]) == 0
    assert not list(out.rglob("*.pt")) and not list(out.rglob("*.pkl"))
    return out


def no_unpickling(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("torch.load called while loading an export")

    monkeypatch.setattr(torch, "load", refuse)


def assert_same_weights(first, second):
    one, two = first.model.state_dict(), second.model.state_dict()
    assert list(one) == list(two)
    for name in one:
        assert torch.equal(one[name], two[name]), name


def test_a_qiren_fit_exported_renders_bit_identically(tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    assert main(["run", str(EXPERIMENTS / "inr_smoke.yaml"), "--out", str(run), "train.epochs=3"]) == 0
    out = export(run, tmp_path / "export", "camera/qiren/seed0")
    assert "exported `camera/qiren/seed0` (inr_image)" in capsys.readouterr().out
    original = load_model(run, "camera/qiren/seed0")
    card = (out / "README.md").read_text()
    assert "## Data" in card and "camera" in card and "3 epochs" in card and "mse_ratio_vs_tanh" in card
    assert 'qml_imaging.load_model("THIS_FOLDER")' in card
    with monkeypatch.context() as patched:
        no_unpickling(patched)
        exported = load_model(out)
    assert exported.fit == "camera/qiren/seed0" and exported.ema == original.ema
    assert_same_weights(original, exported)
    assert np.array_equal(original.render(64), exported.render(64))
    with torch.no_grad():
        assert torch.equal(original.model(original.inputs), exported.model(exported.inputs))
    with pytest.raises(ValueError, match="is an export of the fit 'camera/qiren/seed0', not 'camera/tanh/seed0'"):
        load_model(out, "camera/tanh/seed0")
    assert main(["export", str(run), "--fit", "camera/tanh/seed0", "--out", str(out)]) == 2
    assert "already exists and is not an empty folder" in capsys.readouterr().err


def test_a_tailored_diffusion_model_exported_samples_bit_identically(tmp_path, monkeypatch):
    variants = {"quantum": {"bottleneck": "quantum", "schedule": "tailored"}}
    config = {**DIFFUSION, "variants": variants,
              "datasets": {"mine": {"source": "folder", "path": str(write_png_folder(tmp_path / "pngs")), "size": 32}}}
    (tmp_path / "own.yaml").write_text(yaml.safe_dump(config))
    assert main(["run", str(tmp_path / "own.yaml"), "--out", str(tmp_path / "run")]) == 0
    out = export(tmp_path / "run", tmp_path / "export")
    fit = json.loads((out / "export.json").read_text())["fit"]
    assert {p.parent.relative_to(out / "checkpoints").as_posix() for p in out.rglob("weights.safetensors")} == {
        f"{fit}/pilot", f"{fit}/main"}
    original = load_model(tmp_path / "run")
    with monkeypatch.context() as patched:
        no_unpickling(patched)
        exported = load_model(out)
    assert_same_weights(original, exported)
    assert np.array_equal(original.sample(4, steps=3, seed=5), exported.sample(4, steps=3, seed=5))


def test_a_g2_cnn_exported_predicts_bit_identically(tmp_path, monkeypatch):
    assert main(["run", str(EXPERIMENTS / "g2_smoke.yaml"), "--out", str(tmp_path / "run")]) == 0
    out = export(tmp_path / "run", tmp_path / "export", "cnn")
    original = load_model(tmp_path / "run", "cnn")
    with monkeypatch.context() as patched:
        no_unpickling(patched)
        exported = load_model(out)
    ones = torch.ones(16, dtype=torch.float64)
    emitters = EmitterParameters(ones, 20 * ones, 0.2 * ones, 300 * ones, 1e5 * ones)
    histograms = simulate_histograms(emitters, 5.0, DelayAxis(), generator=torch.Generator().manual_seed(0))
    assert_same_weights(original, exported)
    assert torch.equal(original.model.predict(histograms), exported.model.predict(histograms))


def test_a_damaged_export_is_named_in_one_line(tmp_path):
    run = tmp_path / "run"
    assert main(["run", str(EXPERIMENTS / "g2_smoke.yaml"), "--out", str(run), "train.epochs=1"]) == 0
    out = export(run, tmp_path / "export")
    with pytest.raises(RunFolderError, match="is already an export"):
        export_model(out, tmp_path / "again")
    (out / "checkpoints" / "cnn" / "weights.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(RunFolderError, match="exported weights in .* are damaged"):
        load_model(out)
    assert not (tmp_path / "again").exists()
