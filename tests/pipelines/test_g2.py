import json

import pytest

from qml_imaging.config import ConfigError, load_config
from qml_imaging.pipelines.g2.regression import speedup_factor
from qml_imaging.runs import RunDir
from tests.conftest import EXPERIMENTS


def test_speedup_interpolates_log_log_between_lm_times():
    speedup, lower_bound = speedup_factor(10.0, 5, {5: 40.0, 20: 20.0, 80: 5.0})
    assert not lower_bound and speedup == pytest.approx(40 / 5)
    assert speedup_factor(1.0, 5, {5: 40.0, 80: 5.0}) == (16.0, True)


def test_smoke_run_writes_the_mape_table(tmp_path):
    config = load_config(EXPERIMENTS / "g2_smoke.yaml")
    from qml_imaging.pipelines.g2.regression import run

    summary = run(config, RunDir.create(config, tmp_path / "run"))
    assert set(summary["mape"]) == {"cnn", "lm"} and set(summary["mape"]["cnn"]) == {"5", "6"}
    assert summary["cnn_seconds_per_1024"] > 0 and summary["speedup"] > 0
    assert set(summary["crb_mape"]) == {"5", "6"} and all(v > 0 for v in summary["crb_mape"].values())
    assert all(v > 0 for v in summary["constant_mape"].values())
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert "g2_predictions.png" in report["figures"]


def test_scan_smoke_run_gives_g2_maps_g2_images_and_the_fwhm_ratio(tmp_path):
    from qml_imaging.config import config_from_dict
    from qml_imaging.pipelines.g2.regression import run as regression
    from qml_imaging.pipelines.g2.scan import run as scan

    source_config = load_config(EXPERIMENTS / "g2_smoke.yaml")
    source = RunDir.create(source_config, tmp_path / "cnn")
    regression(source_config, source)
    raw = load_config(EXPERIMENTS / "srm_scan.yaml").model_dump()
    raw.update(source_run=str(source.path),
               scan={**raw["scan"], "pixels": 13, "field_nm": 13 * 60.0, "seconds": 20})
    config = config_from_dict(raw)
    summary = scan(config, RunDir.create(config, tmp_path / "scan"))
    assert summary["fwhm_nm"]["one"]["pl"] == pytest.approx(300, rel=0.05)
    assert summary["fwhm_ratio_true"] == pytest.approx(2**0.5, rel=0.05)  # exact g2 maps: the squared PSF
    assert summary["dip"]["two"]["G2_true"] > summary["dip"]["two"]["pl"] > 0
    assert 0 < summary["g2_map_mape"]["one"]["lm"] and summary["cnn_seconds_per_1024"] > 0
    report = json.loads((tmp_path / "scan" / "report.json").read_text())
    assert {"scan_one.png", "cross_section_two.png"} <= set(report["figures"])


def test_f13_mape_training_targets_must_stay_above_the_floor():
    from qml_imaging.config import ConfigError

    with pytest.raises(ConfigError, match=r"simulation.g2_zero.low is 0.0, below 0.05"):
        load_config(EXPERIMENTS / "g2_smoke.yaml", ["simulation.g2_zero={low: 0.0, high: 0.5}"])
    with pytest.raises(ConfigError, match="simulation.rate.low"):
        load_config(EXPERIMENTS / "g2_smoke.yaml", ["simulation.rate={low: 0, high: 10}"])
    with pytest.raises(ConfigError, match="Input should be a finite number"):
        load_config(EXPERIMENTS / "g2_smoke.yaml", ["simulation.lifetime_ns={low: 10, high: .nan}"])


def test_f13_g2_map_errors_at_zero_truth_are_absolute_with_mape_undefined():
    import torch

    from qml_imaging.pipelines.g2.scan import map_errors

    truth = torch.zeros(4, dtype=torch.float64)
    errors = map_errors(torch.tensor([0.1, -0.1, 0.2, 0.0], dtype=torch.float64), truth)
    assert errors["mape"] is None
    assert errors["mae"] == pytest.approx(0.1) and errors["rmse"] == pytest.approx((0.06 / 4) ** 0.5)
    mixed = map_errors(torch.tensor([0.1, 0.55], dtype=torch.float64), torch.tensor([0.0, 0.5], dtype=torch.float64))
    assert mixed["mape"] == pytest.approx(10.0)


def test_scan_configs_refuse_empty_or_non_finite_scenes():
    from qml_imaging.config import ConfigError, config_from_dict

    raw = load_config(EXPERIMENTS / "srm_scan.yaml").model_dump()
    for scenes, message in (({"one": []}, "scenes.one holds no emitter"),
                            ({"one": [(float("nan"), 0.0)]}, "scenes.one.0.0: Input should be a finite number")):
        with pytest.raises((ConfigError, ValueError), match=message):
            config_from_dict({**raw, "scenes": scenes})


def test_non_positive_acquisition_times_are_refused_when_the_config_is_validated():
    with pytest.raises(ConfigError, match="evaluation.seconds.0: Input should be greater than 0"):
        load_config(EXPERIMENTS / "g2_smoke.yaml", ["evaluation.seconds=[-1]"])


def test_measured_protocol_smoke_run_scores_both_splits_without_leaking_by_emitter(tmp_path):
    import torch

    from qml_imaging.training.artifacts import load_model
    from qml_imaging.pipelines.g2.measured import run

    config = load_config(EXPERIMENTS / "g2_measured_smoke.yaml")
    summary = run(config, RunDir.create(config, tmp_path / "run"))
    assert set(summary["scores"]) == {"by_emitter", "leaky"}
    for split in summary["scores"].values():
        for values in split.values():
            assert values["mae"] >= 0 and values["rmse"] >= values["mae"]
    assert summary["emitters"]["by_emitter"]["overlap"] == 0 and summary["shared_short_histograms"]["by_emitter"] == 0
    assert summary["shared_short_histograms"]["leaky"] > 0.5
    assert "| by_emitter | cnn |" in (tmp_path / "run" / "table.md").read_text()
    by_emitter, leaky = (load_model(tmp_path / "run", fit) for fit in (None, "cnn_leaky"))
    assert by_emitter.fit == "cnn_by_emitter" and not by_emitter.model.training
    histograms = torch.rand(3, by_emitter.model.bins) * 50  # the input length implied by the checkpoint
    with torch.no_grad():
        assert not torch.equal(by_emitter.model(histograms), leaky.model(histograms))
    with pytest.raises(ConfigError, match="use loss=floored_mape or loss=mae"):
        load_config(EXPERIMENTS / "g2_measured_smoke.yaml", ["loss=mape"])


def test_g2_losses_are_finite_at_a_perfect_emitter():
    import torch

    from qml_imaging.pipelines.g2.regression import g2_loss

    prediction, target = torch.tensor([0.1, 0.6]), torch.tensor([0.0, 0.5])
    assert g2_loss("floored_mape", 0.05)(prediction, target).item() == pytest.approx((0.1 / 0.05 + 0.1 / 0.5) / 2)
    assert g2_loss("mae")(prediction, target).item() == pytest.approx(0.1)


def test_a_scan_with_dark_pixels_gives_finite_maps_and_the_g2_cli_writes_them(tmp_path, capsys):
    import numpy as np
    import torch

    from qml_imaging.cli import main
    from qml_imaging.physics.hbt import DelayAxis, EmitterParameters, expected_histogram

    # 8x8 pixels, 12 without any light (zero singles, empty histograms), the rest one emitter with g2(0) = 0
    rates = torch.full((64,), 1e5, dtype=torch.float64)
    rates[torch.randperm(64, generator=torch.Generator().manual_seed(0))[:12]] = 0.0
    ones = torch.ones(64, dtype=torch.float64)
    perfect = EmitterParameters(ones, 20 * ones, 0 * ones, 300 * ones, rates)
    counts = torch.poisson(expected_histogram(perfect, 60.0), generator=torch.Generator().manual_seed(1))
    singles = (rates * 60.0 * 0.0122**0.5)[:, None].repeat(1, 2)
    np.savez(tmp_path / "scan.npz", counts=counts.reshape(8, 8, -1).numpy(), delay_ns=DelayAxis().centres().numpy(),
             singles=singles.reshape(8, 8, 2).numpy(), seconds=60.0, zero_delay_ns=0.0)
    assert main(["g2", "scan", str(tmp_path), "--out", str(tmp_path / "maps")]) == 0
    maps = np.load(tmp_path / "maps" / "maps.npz")
    dark = maps["dark"]
    assert dark.sum() == 12 and (maps["g2_lm"][dark] == 1).all()
    for name in ("g2_lm", "sigma_lm", "counts", "G2_lm"):
        assert np.isfinite(maps[name]).all(), name
    lit = ~dark
    assert abs(np.median(maps["g2_lm"][lit])) < 0.1  # a perfect single-photon emitter: g2(0) near 0
    assert "12 dark" in capsys.readouterr().out
    np.savetxt(tmp_path / "one.csv", np.column_stack([DelayAxis().centres().numpy(), counts[~(rates == 0)][0].numpy()]),
               delimiter=",", header="delay_ns,counts", comments="")
    assert main(["g2", "fit", str(tmp_path / "one.csv"), "--zero", "0", "--out", str(tmp_path / "fits.csv")]) == 0
    assert "g2(0) = " in capsys.readouterr().out and (tmp_path / "fits.csv").read_text().startswith("source,row,g2")
    assert main(["g2", "fit", str(tmp_path / "one.csv"), "--zero", "soon"]) == 2
    assert "--zero must be 'fit' or a finite number of ns, got 'soon'" in capsys.readouterr().err
    bad_options = {("--zero", "1000"): "zero_delay_ns 1000 ns is outside the delay axis (-248.837 .. 248.837 ns)",
                   ("--delay-unit", "ps"): "the file states delays in ns, but delay_unit ps was given",
                   ("--axis", "0,500"): "--axis BINS must be an integer from 3 to 262,144",
                   ("--rho", "0"): "--rho is the signal share S / (S + B), in (0, 1]; got 0.0",
                   ("--axis", "215,500"): "a delay axis (--axis) is for bare NPY counts and PTU time tags",
                   ("--channels", "1,2"): "channels and convention (--channels, --convention) choose how PTU"}
    assert main(["g2", "fit", str(tmp_path / "one.csv"), str(tmp_path / "absent.csv"), "--out", str(tmp_path / "x.csv")]) == 2
    assert "no histogram file" in capsys.readouterr().err and not (tmp_path / "x.csv").exists()
    assert main(["g2", "fit", str(tmp_path / "one.csv"), "--out", str(tmp_path / "absent" / "x.csv")]) == 2
    assert "--out " in capsys.readouterr().err
    assert main(["g2", "fit", str(tmp_path)]) == 2
    assert "a folder: give its files, or use `qml-imaging g2 scan`" in capsys.readouterr().err
    for option, message in bad_options.items():
        assert main(["g2", "fit", str(tmp_path / "one.csv"), *option]) == 2
        assert message in capsys.readouterr().err, option


def test_a_scan_whose_singles_contradict_its_histograms_draws_no_g2_and_says_why(tmp_path, capsys):
    """A new user's scan file with singles 20x too high: every pixel once came out at the fit's bound (g2 = 21),
    silently. Now each such pixel is refused with the CSV fit's reason, drawn at g2 = 1, and one line says so."""
    import numpy as np
    import torch

    from qml_imaging.cli import main
    from qml_imaging.physics.hbt import DelayAxis, EmitterParameters, expected_histogram

    rates = torch.full((16,), 1e5, dtype=torch.float64)
    ones = torch.ones(16, dtype=torch.float64)
    emitter = EmitterParameters(ones, 20 * ones, 0.2 * ones, 300 * ones, rates)
    counts = torch.poisson(expected_histogram(emitter, 60.0), generator=torch.Generator().manual_seed(2))
    singles = 20 * (rates * 60.0 * 0.0122**0.5)[:, None].repeat(1, 2)
    np.savez(tmp_path / "scan.npz", counts=counts.reshape(4, 4, -1).numpy(), delay_ns=DelayAxis().centres().numpy(),
             singles=singles.reshape(4, 4, 2).numpy(), seconds=60.0, zero_delay_ns=0.0)
    assert main(["g2", "scan", str(tmp_path), "--out", str(tmp_path / "maps")]) == 0
    maps = np.load(tmp_path / "maps" / "maps.npz")
    assert maps["refused"].all() and not maps["dark"].any()
    assert (maps["g2_lm"] == 1).all() and np.isfinite(maps["sigma_lm"]).all()
    assert all("inconsistent file" in reason for reason in maps["status"].ravel())
    err = capsys.readouterr().err
    assert "warning: 16 lit pixels have no g2(0)" in err and "inconsistent file" in err and len(err.splitlines()) == 1
    assert main(["g2", "scan", str(tmp_path), "--out", str(tmp_path / "corrected"), "--background-rate", "100"]) == 0
    assert (np.load(tmp_path / "corrected" / "maps.npz")["g2_lm"] == 1).all()


def test_g2_fit_prints_a_delay_offset_warning_as_one_line(tmp_path, capsys):
    import numpy as np
    import torch

    from qml_imaging.cli import main
    from qml_imaging.physics.hbt import DelayAxis, three_level_g2

    axis = DelayAxis()
    curve = three_level_g2(axis.centres() - 12.0, *(torch.tensor([v], dtype=torch.float64) for v in (0.9, 20.0, 0.1, 300.0)))
    counts = torch.poisson(2000.0 * curve, generator=torch.Generator().manual_seed(0))[0]
    np.savetxt(tmp_path / "shifted.csv", np.column_stack([axis.centres().numpy(), counts.numpy()]), delimiter=",",
               header="delay_ns,counts", comments="")
    assert main(["g2", "fit", str(tmp_path / "shifted.csv"), "--out", str(tmp_path / "fits.csv")]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("qml-imaging: warning: the fitted dip of 1 of 1 histograms is off"), err


def test_g2_fit_refuses_in_one_line_a_tails_baseline_when_bunching_reaches_the_tails(tmp_path, capsys):
    import numpy as np
    import torch

    from qml_imaging.cli import main
    from qml_imaging.physics.g2_model import binned_curve
    from qml_imaging.physics.hbt import DelayAxis

    for name, axis, refused in (("narrow", DelayAxis(), True), ("wide", DelayAxis(bins=215, span_ns=5000.0), False)):
        curve = binned_curve(axis.centres().numpy(), axis.width_ns, 15, 0.0, 0.9, 20.0, 0.1, 300.0, 0.0)  # bins integrate
        counts = torch.poisson(torch.from_numpy(40000.0 * curve), generator=torch.Generator().manual_seed(1))
        np.savetxt(tmp_path / f"{name}.csv", np.column_stack([axis.centres().numpy(), counts.numpy()]), delimiter=",",
                   header="delay_ns,counts", comments="", fmt="%.10g")
        assert main(["g2", "fit", str(tmp_path / f"{name}.csv"), "--zero", "0", "--baseline", "tails",
                     "--out", str(tmp_path / f"{name}_fits.csv")]) == 0
        captured = capsys.readouterr()
        line = captured.out.strip().splitlines()[0]
        assert captured.err == ""
        if refused:
            assert line.endswith("record a wider delay window") and ": refused: baseline not identifiable" in line, line
            assert "g2(0) would come out low" in line and "--baseline singles" in line and "g2(0) =" not in line
        else:
            assert "g2(0) = " in line and "(assumes bunching decays inside the window)" in line, line
