import json
import re

import pytest
import torch

from qml_imaging.config import ConfigError, config_from_dict, load_config
from qml_imaging.extras import missing
from qml_imaging.models.specs import UNetSpec
from qml_imaging.pipelines.qcrb.config import DenoiserLoss
from qml_imaging.pipelines.qcrb.denoising import DenoiserObjective, network_inputs
from qml_imaging.runs import RunDir
from tests.conftest import EXPERIMENTS


def test_network_input_is_the_unbiased_shot_noise_estimate_times_pixels():
    counts = torch.tensor([[[2.0, 0.0], [1.0, 1.0]]])
    inputs = network_inputs(counts, torch.tensor([4.0]), UNetSpec(coordinates=True))
    assert inputs.shape == (1, 4, 2, 2)
    assert torch.allclose(inputs[0, 0], counts[0] * 4 / 4)
    assert torch.allclose(inputs[0, 1], torch.full((2, 2), torch.log10(torch.tensor(4.0)).item() - 2.5))
    assert torch.equal(inputs[0, 2], torch.tensor([[-0.5, 0.5], [-0.5, 0.5]]))
    assert torch.equal(inputs[0, 3], torch.tensor([[-0.5, -0.5], [0.5, 0.5]]))
    assert network_inputs(counts, torch.tensor([4.0]), UNetSpec(condition_on_nbar=False)).shape == (1, 1, 2, 2)


def test_nbar_weighting_weighs_each_image_by_its_photon_number():
    model = torch.nn.Identity()
    targets = torch.zeros(2, 1, 2, 2)
    inputs = torch.ones(2, 1, 2, 2)
    nbar = torch.tensor([1.0, 3.0])
    uniform = DenoiserObjective(DenoiserLoss(ssim=0, gdl=0, mse_weighting="uniform"), 1.0)
    weighted = DenoiserObjective(DenoiserLoss(ssim=0, gdl=0, mse_weighting="nbar"), 1.0)
    inputs[1] *= 2
    assert uniform(model, (inputs, targets, nbar)).item() == pytest.approx((1 + 4) / 2)
    assert weighted(model, (inputs, targets, nbar)).item() == pytest.approx((0.5 * 1 + 1.5 * 4) / 2)


def test_smoke_run_reports_ratios_to_the_qcrb(tmp_path):
    config = load_config(EXPERIMENTS / "qcrb_smoke.yaml")
    from qml_imaging.pipelines.qcrb.parametric import run

    summary = run(config, RunDir.create(config, tmp_path / "run"))
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["summary"]["mse_over_qcrb"].keys() == {"unet", "mle"}
    assert set(summary["mse_over_qcrb"]["mle"]) == {"100", "10000"}
    assert summary["out_of_training_range"] == [10000.0]
    for estimator in ("unet", "mle"):
        for nbar in ("100", "10000"):
            mse = summary["mse_over_qcrb"][estimator][nbar]
            assert summary["bias2_over_qcrb"][estimator][nbar] + summary["variance_over_qcrb"][estimator][nbar] == pytest.approx(mse)
            assert summary["tangent_over_qcrb"][estimator][nbar] + summary["orthogonal_over_qcrb"][estimator][nbar] == pytest.approx(mse)
    assert summary["qcrb_total"]["100"] == pytest.approx(100 * summary["qcrb_total"]["10000"])
    assert {"mse_vs_nbar.png", "reconstructions.png", "bias_variance_maps.png"} <= set(report["figures"])


def test_natural_smoke_run_on_offline_data(tmp_path, shared_data, monkeypatch):
    monkeypatch.setenv("QML_IMAGING_DATA", str(shared_data))
    config = config_from_dict({
        "experiment": "qcrb_natural", "name": "natural_smoke", "image_size": 16,
        "datasets": {"mnist": {"kind": "mnist", "train_images": 40, "test_images": 2},
                     "skimage": {"kind": "skimage", "source_size": 32, "test_images": 2}},
        "unet": {"depth": 2, "base_channels": 4, "max_channels": 8}, "training": {"batches_per_epoch": 2},
        "train": {"epochs": 1, "batch_size": 8, "progress": False}, "evaluation": {"nbars": [100], "realisations": 10},
    })
    from qml_imaging.pipelines.qcrb.natural import run

    summary = run(config, RunDir.create(config, tmp_path / "run"))
    assert set(summary["mse_over_sql"]) == {"mnist/unet", "skimage/unet"}
    ratio = summary["mse_over_sql"]["mnist/unet"]["100"]
    assert summary["mse_over_heisenberg"]["mnist/unet"]["100"] == pytest.approx(100 * ratio)
    assert 0.0 <= summary["pixels_below_sql"]["skimage/unet"]["100"] <= 1.0


@pytest.mark.skipif(bool(missing("medmnist")), reason="the [medmnist] extra")
def test_the_shipped_natural_config_fits_the_offline_data(shared_data, monkeypatch):
    monkeypatch.setenv("QML_IMAGING_DATA", str(shared_data))
    config = load_config(EXPERIMENTS / "qcrb_natural.yaml")
    from qml_imaging.pipelines.qcrb.natural import image_sampler

    for source in config.datasets.values():
        sampler, held_out = image_sampler(source, config.image_size, config.seed)
        assert held_out.shape == (source.test_images, config.image_size, config.image_size)
        assert sampler(3, torch.Generator().manual_seed(0)).sum(dim=(1, 2)) == pytest.approx(torch.ones(3))


@pytest.mark.skipif(bool(missing("medmnist")), reason="the [medmnist] extra")
def test_too_few_dataset_images_is_a_clear_error(shared_data, monkeypatch):
    monkeypatch.setenv("QML_IMAGING_DATA", str(shared_data))
    config = load_config(EXPERIMENTS / "qcrb_natural.yaml", ["datasets.pneumoniamnist.train_images=4000"])
    from qml_imaging.pipelines.qcrb.natural import image_sampler

    with pytest.raises(ValueError, match=r"medmnist has 3882 images, fewer than train_images \+ test_images \(4000 \+ 8\)"):
        image_sampler(config.datasets["pneumoniamnist"], config.image_size, config.seed)


@pytest.mark.parametrize(("override", "message"), [
    ("evaluation.nbars=[0, 100]", "evaluation.nbars.0: Input should be greater than 0"),
    ("training.nbar_min=5000", "nbar_min .* must be <= nbar_max"),
    ("image_size=30", "image_size 30 must be divisible by 2\\*\\*\\(unet.depth - 1\\) = 16"),
    ("denoisers.unet.ssim_weight=1", "ssim_weight"),
    ("unet.skip_from_level=5", "unet.skip_from_level 5 must be <= unet.depth - 1 = 4"),
])
def test_bad_config_values_are_clear_errors(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(EXPERIMENTS / "qcrb_sinusoid.yaml", [override])


@pytest.mark.parametrize(("override", "message"), [
    ("mle.starts=20", r"mle.starts \(20\) must be <= mle.candidates \(16\)"),
    ("evaluation.nbars=[.nan]", "evaluation.nbars.0: Input should be a finite number"),
    ("evaluation.nbars=[.inf]", "evaluation.nbars.0: Input should be a finite number"),
    ("training.nbar_max=.inf", "nbar_max"),
])
def test_values_that_would_fail_at_run_time_fail_validation(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(EXPERIMENTS / "qcrb_smoke.yaml", ["mle.candidates=16", override])


def test_f09_image_smaller_than_the_ssim_window_fails_validation():
    from qml_imaging.training.losses import SSIM_WINDOW
    from qml_imaging.pipelines.qcrb.config import SSIM_WINDOW as CONFIG_SSIM_WINDOW

    assert CONFIG_SSIM_WINDOW == SSIM_WINDOW
    with pytest.raises(ConfigError, match="image_size 4 is smaller than the 11-pixel SSIM window"):
        load_config(EXPERIMENTS / "qcrb_smoke.yaml", ["image_size=4", "unet.depth=1"])
    load_config(EXPERIMENTS / "qcrb_smoke.yaml", ["image_size=4", "unet.depth=1", "denoisers.unet.ssim=0"])


def test_the_denoiser_objective_is_the_library_composite_loss():
    from qml_imaging.training.losses import CompositeImageLoss

    objective = DenoiserObjective(DenoiserLoss(mse=1.0, ssim=0.5, gdl=2.0, mse_weighting="uniform"), 1.0)
    inputs, targets = torch.rand(2, 1, 16, 16), torch.rand(2, 1, 16, 16)
    expected = CompositeImageLoss(mse_weight=1.0, ssim_weight=0.5, gdl_weight=2.0)(inputs, targets)
    assert objective(torch.nn.Identity(), (inputs, targets, torch.ones(2))).item() == pytest.approx(expected.item())


@pytest.mark.parametrize("override, fragment", [
    ("family=sinusiod", "unknown image family 'sinusiod'; known families"),
    ("theta=[10, 1, 1]", "kx1=10.0 (range [0.5, 4])"),
    ("theta=[1, 1]", "family 'sinusoid' has 3 parameters"),
])
def test_family_and_theta_are_checked_when_the_config_is_validated(override, fragment):
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        load_config(EXPERIMENTS / "qcrb_smoke.yaml", [override])


def test_every_shipped_family_has_its_parameters_declared_torch_free():
    from qml_imaging.physics.family_parameters import FAMILY_PARAMETERS
    from qml_imaging.physics.parametric import FAMILIES

    assert {name: FAMILIES[name].parameters for name in FAMILY_PARAMETERS} == FAMILY_PARAMETERS
