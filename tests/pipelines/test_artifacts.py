"""Trained models as artifacts: load_model (EMA weights), render on any grid, errors; the files are written here."""

import json

import numpy as np
import pytest
import torch
import yaml

from qml_imaging import load_model
from qml_imaging.cli import main
from qml_imaging.training.metrics import mse
from tests.data.test_files import write_cello_like_wav, write_rgb_png, write_tiff16

MODELS = {"qiren": {"kind": "qiren", "lr": 0.03, "n_qubits": 4, "hidden_layers": 2, "reuploads": 1, "sublayers": 2},
          "tanh": {"kind": "tanh", "lr": 0.01, "hidden_layers": 2}}
TRAIN = {"epochs": 3, "eval_every": 3, "checkpoint_every": 3, "progress": False}


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    """An inr_image run on an RGB PNG and a 16-bit TIFF, trained with EMA (3 epochs at 16x16)."""
    folder = tmp_path_factory.mktemp("own_images")
    write_rgb_png(folder / "colour.png")
    write_tiff16(folder / "micro.tif")
    config = {"experiment": "inr_image", "name": "own", "images": [str(folder / "colour.png"), str(folder / "micro.tif")],
              "size": 16, "channels": "auto", "parameter_budget": 150, "reference_model": "tanh", "models": MODELS,
              "train": {**TRAIN, "ema_decay": 0.9}}
    (folder / "own.yaml").write_text(yaml.safe_dump(config))
    assert main(["run", str(folder / "own.yaml"), "--out", str(folder / "run")]) == 0
    return folder / "run"


def test_load_model_returns_ema_weights_that_reproduce_the_reported_metric(image_run):
    report = json.loads((image_run / "report.json").read_text())
    for fit in report["details"]["fits"]:
        name = f"{fit['image']}/{fit['model']}/seed{fit['seed']}"
        trained = load_model(image_run, name)
        assert trained.ema, "the run trained with ema_decay, so the EMA weights must be loaded"
        prediction = torch.from_numpy(trained.render(16)).reshape(-1, trained.targets.shape[1])
        assert mse(prediction, trained.targets) == pytest.approx(fit["mse"], rel=1e-5)
    colour = load_model(image_run, "colour/qiren/seed0")
    assert colour.targets.shape == (256, 3) and colour.model.output.out_features == 3
    assert colour.preprocessing["intensity"] == "uint8 / 255 -> [0, 1]"
    assert "[0, 1] -> [-1, 1]" in report["details"]["images"]["micro"]["preprocessing"]
    micro = report["details"]["images"]["micro"]  # a 16-bit TIFF: scaled by its own range, recorded
    assert micro["intensity_rule"] == "auto" and micro["intensity_scale"] == micro["value_range"] == [10008.0, 49991.0]
    raw = torch.load(image_run / "checkpoints" / "micro" / "tanh" / "seed0" / "last.pt", weights_only=True)
    plain = load_model(image_run, "micro/tanh/seed0").model.state_dict()
    differs = [k for k, v in raw["model"].items() if v.is_floating_point() and not torch.allclose(v, plain[k])]
    assert differs, "EMA weights must differ from the last optimiser step's"


def test_render_writes_4x_grids_and_the_training_grid_equals_the_models_evaluation(image_run, tmp_path):
    for fit, channels in (("colour/qiren/seed0", 3), ("micro/qiren/seed0", 1)):
        assert main(["render", str(image_run), "--fit", fit, "--size", "64", "--out", str(tmp_path)]) == 0
        stem = fit.replace("/", "_")
        fine = np.load(tmp_path / f"{stem}_64x64.npy")
        assert fine.shape == (64, 64, channels) and fine.dtype == np.float32
        assert (tmp_path / f"{stem}_64x64.png").is_file()
        assert main(["render", str(image_run), "--fit", fit, "--size", "16", "--out", str(tmp_path)]) == 0
        trained = load_model(image_run, fit)
        with torch.no_grad():
            own = trained.model(trained.inputs).reshape(16, 16, channels).numpy()
        assert np.allclose(np.load(tmp_path / f"{stem}_16x16.npy"), own, atol=1e-6)
    assert main(["render", str(image_run), "--size", "64", "--backend", "default_qubit", "--out", str(tmp_path / "dq")]) == 0
    assert np.allclose(np.load(tmp_path / "dq" / "colour_qiren_seed0_64x64.npy"),
                       np.load(tmp_path / "colour_qiren_seed0_64x64.npy"), atol=1e-5)


def test_a_signal_fit_renders_at_another_sample_count_as_wav(tmp_path, capsys):
    soundfile = pytest.importorskip("soundfile", reason="audio files need the [audio] extra")
    write_cello_like_wav(tmp_path / "cello.wav")
    config = {"experiment": "inr_signal", "name": "cello", "reference_model": "tanh", "parameter_budget": 100,
              "signal": {"path": str(tmp_path / "cello.wav"), "offset": 20000, "stride": 5, "n_samples": 200},
              "models": {"tanh": MODELS["tanh"]}, "train": TRAIN}
    (tmp_path / "cello.yaml").write_text(yaml.safe_dump(config))
    assert main(["run", str(tmp_path / "cello.yaml"), "--out", str(tmp_path / "run")]) == 0
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["details"]["signal"]["preprocessing"].startswith("samples[20000:20996:5]")
    assert main(["render", str(tmp_path / "run"), "--size", "800", "--out", str(tmp_path / "r")]) == 0
    samples, rate = soundfile.read(tmp_path / "r" / "tanh_seed0_800.wav")
    assert samples.shape == (800,) and rate == round(44100 / 5 * 799 / 199)
    trained = load_model(tmp_path / "run")
    assert mse(torch.from_numpy(trained.render(200)).unsqueeze(1), trained.targets) == pytest.approx(
        report["summary"]["mse"]["tanh"]["mean"], rel=1e-5)
    (tmp_path / "cello.wav").rename(tmp_path / "moved.wav")  # the model still loads, renders and keeps its rate
    moved = load_model(tmp_path / "run")
    assert moved.targets is None and np.allclose(moved.render(200), trained.render(200))
    assert main(["render", str(tmp_path / "run"), "--size", "800", "--out", str(tmp_path / "r2")]) == 0
    assert soundfile.read(tmp_path / "r2" / "tanh_seed0_800.wav")[1] == rate
    capsys.readouterr()
    assert main(["run", "--resume", str(tmp_path / "run")]) == 2  # training again does need the file
    err = capsys.readouterr().err.strip()
    assert "cello.wav' does not exist (if it moved, put it back" in err and "Value error" not in err
    assert "got {" not in err and len(err.splitlines()) == 1
    with pytest.raises(FileNotFoundError, match="is a file; give the run folder"):
        load_model(tmp_path / "run" / "config.yaml")


def test_a_model_loads_after_its_training_image_moved(image_run, tmp_path):
    """A run folder shared without its data: the grid comes from report.json, the targets are None."""
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(image_run, copy)
    config = yaml.safe_load((copy / "config.yaml").read_text())
    config["images"] = [str(tmp_path / "gone" / path.rsplit("/", 1)[1]) for path in config["images"]]
    (copy / "config.yaml").write_text(yaml.safe_dump(config))
    for fit in ("colour/qiren/seed0", "micro/tanh/seed0"):
        moved, original = load_model(copy, fit), load_model(image_run, fit)
        assert moved.targets is None and moved.preprocessing["grid"] == [16, 16]
        assert np.array_equal(moved.render(24), original.render(24))
    assert main(["render", str(copy), "--size", "32", "--out", str(tmp_path / "r")]) == 0
    (copy / "report.json").unlink()
    with pytest.raises(FileNotFoundError, match="colour.png', the data of .* no longer exists and the run's report.json"):
        load_model(copy)


def test_load_model_errors_name_the_fit_and_the_fix(image_run, tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match="is not a run folder"):
        load_model(tmp_path)
    with pytest.raises(ValueError, match="its images: \\['colour', 'micro'\\]"):
        load_model(image_run, "camera/qiren/seed0")
    with pytest.raises(ValueError, match="not of the form IMAGE/MODEL/seedN"):
        load_model(image_run, "colour/qiren")
    assert main(["render", str(image_run), "--size", "0"]) == 2
    assert "--size must be a positive integer or HxW" in capsys.readouterr().err
    for rate in ("0", "-5", "nan"):
        assert main(["render", str(image_run), "--size", "8", "--rate", rate]) == 2
        assert (f"--rate must be a finite number of at least 1 and at most 2,147,483,647 (a WAV sample rate in Hz), "
                f"got {float(rate)}") in capsys.readouterr().err
    assert main(["render", str(image_run), "--size", "100000"]) == 2
    assert "render size 100000x100000 is 10,000,000,000 points; at most 16,777,216" in capsys.readouterr().err


def test_each_fit_stores_the_arguments_that_built_it_and_an_older_run_folder_is_one_clear_line(image_run, tmp_path,
                                                                                                capsys):
    import shutil

    from qml_imaging.runs import RunFolderError

    stored = json.loads((image_run / "checkpoints" / "colour" / "tanh" / "seed0" / "model.json").read_text())
    assert stored["format"] == 1 and stored["arguments"]["in_features"] == 2
    assert stored["arguments"]["out_features"] == 3 and stored["arguments"]["width"] >= 1
    trained = load_model(image_run, "colour/tanh/seed0")
    assert trained.model.net[0].out_features == stored["arguments"]["width"]
    copy = tmp_path / "old"
    shutil.copytree(image_run, copy)
    for written in copy.glob("checkpoints/**/model.json"):
        written.unlink()
    with pytest.raises(RunFolderError, match="was written before models stored them; run its config.yaml again"):
        load_model(copy, "colour/tanh/seed0")
    assert main(["render", str(copy), "--size", "8"]) == 2
    err = capsys.readouterr().err.strip()
    assert "has no model.json" in err and len(err.splitlines()) == 1


def test_every_registered_loader_resolves_and_the_loading_floor_imports_no_pipeline():
    import subprocess
    import sys

    from qml_imaging.registry import PIPELINES, resolve
    from qml_imaging.training.artifacts import loadable_kinds

    assert set(loadable_kinds()) == {"inr_image", "inr_signal", "diffusion_fewshot", "qiren_generation",
                                     "g2_regression", "g2_measured"}
    assert all(callable(resolve(PIPELINES[kind].load)) for kind in loadable_kinds())
    code = ("import sys, qml_imaging.training.artifacts; "
            "print(sorted(m for m in sys.modules if m.startswith('qml_imaging.pipelines')))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"
