import importlib.util
import json
import shutil

import pytest
import torch
import yaml

from qml_imaging.cli import main
from qml_imaging.config import ConfigError, config_from_dict
from qml_imaging.pipelines.generation import pipeline
from qml_imaging.pipelines.generation.inception import inception_fid_kid
from qml_imaging.pipelines.generation.pipeline import paired_difference, run, verdict
from qml_imaging.runs import RunDir
from tests.conftest import EXPERIMENTS

SMOKE = yaml.safe_load((EXPERIMENTS / "qiren_generation_smoke.yaml").read_text())


class Killed(BaseException):
    """An interruption (as KeyboardInterrupt or a kill): not a task error the grid would retry."""


def results(run_path):
    return {p.parent.relative_to(run_path / "models").as_posix(): json.loads(p.read_text())
            for p in sorted((run_path / "models").rglob("result.json"))}


def test_smoke_run_reports_the_table_and_a_killed_run_resumes_to_the_same_numbers(tmp_path, shared_data, monkeypatch,
                                                                                  capsys):
    monkeypatch.setenv("QML_IMAGING_DATA", str(shared_data))
    config = config_from_dict(SMOKE)
    summary = run(config, RunDir.create(config, tmp_path / "full"))
    assert set(summary["fid"]) == {"qiren", "rff", "siren"}
    assert set(summary["comparisons"]) == {"qiren_minus_rff", "qiren_minus_siren"}
    budget = config.generator.parameter_budget
    assert all(abs(p - budget) <= 0.05 * budget for p in summary["parameters"].values())
    references = summary["references"]
    assert references["real_control"]["fid"] < min(fid["mean"] for fid in summary["fid"].values())
    assert "paper's ranking" in summary["verdict"] and summary["paper_ranking"] == ["qiren", "rff", "siren"]
    table = (tmp_path / "full" / "table.md").read_text()
    assert "11.53 / 11.78" in table and "held-out real images" in table and "qiren_minus_siren" in table
    assert summary["fid"]["qiren"]["std"] is None and summary["comparisons"]["qiren_minus_rff"]["p_value"] is None
    assert not [line for line in table.splitlines() if line.startswith(("| qiren", "- qiren")) and "±" in line]
    assert (tmp_path / "full" / "samples.png").is_file()

    original = pipeline.gan_batches
    calls = []

    def killed_in_epoch_2(*args):
        source = original(*args)

        def batches(epoch, generator):
            calls.append(epoch)
            if len(calls) == 2:
                raise Killed
            return source(epoch, generator)

        return batches

    monkeypatch.setattr(pipeline, "gan_batches", killed_in_epoch_2)
    one = config_from_dict({**SMOKE, "embeddings": ["qiren"], "seeds": [0]})
    resumed_dir = RunDir.create(one, tmp_path / "resumed")
    (resumed_dir.path / "feature_nets").mkdir()
    shutil.copy(tmp_path / "full" / "feature_nets" / "classifier.pt", resumed_dir.path / "feature_nets")
    with pytest.raises(Killed):
        run(one, resumed_dir)
    assert not (tmp_path / "resumed" / "models" / "qiren" / "seed0" / "result.json").exists()
    monkeypatch.setattr(pipeline, "gan_batches", original)
    run(one, RunDir.open(tmp_path / "resumed"))
    full, resumed = results(tmp_path / "full"), results(tmp_path / "resumed")
    assert list(resumed) == ["qiren/seed0"]
    for name in resumed:
        for key in ("fid", "kid", "final_losses", "parameters"):
            assert resumed[name][key] == pytest.approx(full[name][key], rel=1e-6), (name, key)

    assert main(["sample", str(tmp_path / "full"), "--fit", "rff/seed0", "--n", "6", "--out",
                 str(tmp_path / "s")]) == 0
    images = __import__("numpy").load(tmp_path / "s" / "samples.npy")
    assert images.shape == (6, 1, 28, 28) and images.min() >= -1 and images.max() <= 1
    assert json.loads((tmp_path / "s" / "sample_info.json").read_text())["value_range"] == [-1.0, 1.0]
    assert main(["sample", str(tmp_path / "full"), "--fit", "relu/seed0", "--out", str(tmp_path / "s")]) == 2
    assert "its models: ['qiren/seed0'" in capsys.readouterr().err


def test_bad_configs_are_clear_errors():
    with pytest.raises(ConfigError, match="set evaluation.features: inception"):
        config_from_dict({**SMOKE, "data": {"source": "celeba", "size": 32}})
    with pytest.raises(ConfigError, match="generator.features must be even"):
        config_from_dict({**SMOKE, "generator": {**SMOKE["generator"], "features": 5}})
    with pytest.raises(ConfigError, match="embeddings"):
        config_from_dict({**SMOKE, "embeddings": ["qiren", "gauss"]})
    with pytest.raises(ConfigError, match="MNIST images are 28x28"):
        config_from_dict({**SMOKE, "data": {"source": "mnist", "size": 32}})


def test_paired_difference_and_verdict_say_which_way_it_went():
    rows = [{"embedding": e, "seed": s, "fid": f} for e, s, f in
            [("qiren", 0, 10.0), ("qiren", 1, 11.0), ("qiren", 2, 12.5),
             ("rff", 0, 20.0), ("rff", 1, 21.5), ("rff", 2, 22.0)]]
    test = paired_difference(rows, "qiren", "rff")
    assert test["differences"] == [-10.0, -10.5, -9.5] and test["p_value"] < 0.05
    text = verdict({"qiren_minus_rff": test}, ["qiren", "rff"], ["qiren", "rff"])
    assert "the paper's ranking holds" in text and "QIREN significantly better" in text
    assert "does not hold" in verdict({}, ["rff", "qiren"], ["qiren", "rff"])
    one = paired_difference(rows[:1] + rows[3:4], "qiren", "rff")
    assert one["std"] is None and one["p_value"] is None
    text = verdict({"qiren_minus_rff": one}, ["qiren", "rff"], ["qiren", "rff"])
    assert "FID difference -10.00 (one seed: not tested), paired by seed: untested (one seed, no spread)" in text


@pytest.mark.skipif(importlib.util.find_spec("torch_fidelity") is not None, reason="torch-fidelity is installed")
def test_inception_fid_without_torch_fidelity_names_what_is_missing():
    with pytest.raises(RuntimeError, match="needs the torch-fidelity package .*pip install torch-fidelity"):
        inception_fid_kid(torch.zeros(10, 1, 32, 32), torch.zeros(10, 1, 32, 32))
