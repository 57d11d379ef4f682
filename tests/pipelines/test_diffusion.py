import json
from types import SimpleNamespace

import pytest
import torch
from matplotlib.container import BarContainer

from qml_imaging.config import ConfigError, config_from_dict, load_config
from qml_imaging.extras import missing
from qml_imaging.pipelines.diffusion import figures
from qml_imaging.pipelines.diffusion.config import DatasetSpec, Split
from qml_imaging.pipelines.diffusion.data import load_split
from qml_imaging.pipelines.diffusion.model_task import (
    IMAGE_SIDE,
    batch_source,
    noise_needed,
)
from qml_imaging.pipelines.diffusion.pipeline import plan_tasks, run
from qml_imaging.pipelines.diffusion.table import summarise, write_table
from qml_imaging.quantum.noise import NoiseBank
from qml_imaging.runs import MetricsLog, RunDir
from tests.conftest import EXPERIMENTS

SMOKE = {
    "experiment": "diffusion_fewshot", "name": "smoke",
    "datasets": {"mnist": {"source": "mnist", "classes": [0, 1]}},
    "shots": [4], "seeds": [0, 1],
    "variants": {"classical": {"bottleneck": "classical"},
                 "quantum": {"bottleneck": "quantum", "noise": "quantum"},
                 "tailored": {"bottleneck": "none", "schedule": "tailored"}},
    "split": {"reference": 100, "control": 100, "fewshot_pool": 40},
    "unet": {"channels": [8, 8, 16], "n_qubits": 4, "quantum_layers": 2},
    "diffusion": {"timesteps": 50}, "tailored": {"bins": 5, "repeats": 1},
    "batches_per_epoch": 2, "train": {"epochs": 3, "batch_size": 8, "checkpoint_every": 1, "progress": False},
    "sampling": {"samples": 100, "ddim_steps": 5, "batch_size": 50},
    "evaluation": {"classifier": {"epochs": 1, "batch_size": 256, "progress": False},
                   "kid_subset_size": 50, "kid_subsets": 5, "grid_images": 4},
}


@pytest.mark.skipif(bool(missing("medmnist")), reason="the [medmnist] extra")
def test_shipped_config_plans_the_table_and_its_ablations(shared_data, monkeypatch):
    monkeypatch.setenv("QML_IMAGING_DATA", str(shared_data))
    config = load_config(EXPERIMENTS / "diffusion_fewshot.yaml")
    assert config.sampling.samples >= 1000 and config.split.reference >= 1000 and len(config.seeds) >= 3
    tasks = plan_tasks(config)
    cells = {(t.dataset, t.k, t.variant) for t in tasks}
    for dataset in ("mnist", "pneumoniamnist"):
        for k in (100, 10):
            assert {(dataset, k, v) for v in ("none", "classical", "quantum")} <= cells
    assert len(tasks) == (2 * 2 * 3 + 3) * 3
    offsets = [t.noise_offset for t in tasks if t.noise_offset is not None]
    assert offsets == [i * noise_needed(config, 1, "quantum") for i in range(3)]


def test_split_parts_are_disjoint_fixed_and_few_shot_sets_balanced(shared_data, monkeypatch):
    monkeypatch.setenv("QML_IMAGING_DATA", str(shared_data))
    split = load_split(DatasetSpec(source="mnist"), Split(reference=1000, control=1000, fewshot_pool=1000))
    assert split.reference.shape == (1000, 1, 28, 28) and len(split.classifier) == 7000 and split.classes == 10
    assert split.reference.min() >= -1 and split.reference.max() <= 1
    parts = [split.reference, split.control, split.pool, split.classifier]
    flat = torch.cat([p.flatten(1) for p in parts])
    assert len(torch.unique(flat, dim=0)) >= 0.99 * len(flat), "the parts must not share images"
    chosen = split.fewshot(100, seed=1)
    assert chosen.shape == (100, 1, 28, 28) and torch.equal(chosen, split.fewshot(100, seed=1))
    assert not torch.equal(chosen, split.fewshot(100, seed=2))
    binary = load_split(DatasetSpec(source="mnist", classes=[3, 8]), Split(reference=200, control=200, fewshot_pool=100))
    assert binary.classes == 2 and set(binary.pool_labels.tolist()) == {0, 1}
    with pytest.raises(ValueError, match="too few for reference \\+ control \\+ fewshot_pool"):
        load_split(DatasetSpec(source="mnist", classes=[3]), Split(reference=1000, control=1000, fewshot_pool=1000))


def test_quantum_noise_models_read_disjoint_bank_regions_fixed_by_epoch_and_batch():
    config = config_from_dict({**SMOKE, "datasets": {"mnist": {"source": "mnist"}}})
    pixels = IMAGE_SIDE * IMAGE_SIDE
    assert noise_needed(config, 1, "quantum") == 3 * 2 * 8 * pixels + 100 * pixels
    assert noise_needed(config, 1, "quantum_sampler") == 100 * pixels and noise_needed(config, 1, "pseudo") == 0
    bank = NoiseBank(torch.arange(noise_needed(config, 1, "quantum") * 2, dtype=torch.float32), {"source": "test"})
    images = torch.zeros(4, 1, 28, 28)
    second_model = noise_needed(config, 1, "quantum")
    source = batch_source(config, images, bank, offset=second_model)
    epoch_one = [batch["eps"] for batch in source(1, torch.Generator().manual_seed(0))]
    again = [batch["eps"] for batch in source(1, torch.Generator().manual_seed(5))]
    assert all(torch.equal(a, b) for a, b in zip(epoch_one, again, strict=True)), "noise must not depend on the RNG"
    assert epoch_one[0].flatten()[0].item() == second_model + 2 * 8 * pixels
    last_training = [batch["eps"] for batch in source(2, torch.Generator())][-1].flatten()[-1].item()
    assert last_training == second_model + 3 * 2 * 8 * pixels - 1


def test_bad_configs_are_clear_errors():
    with pytest.raises(ConfigError, match="variants.quantum.datasets: \\['cifar'\\] are not in datasets"):
        config_from_dict({**SMOKE, "variants": {"quantum": {"bottleneck": "quantum", "datasets": ["cifar"]}}})
    with pytest.raises(ConfigError, match="shots \\[50\\] must be in 1..split.fewshot_pool \\(40\\)"):
        config_from_dict({**SMOKE, "shots": [50]})
    with pytest.raises(ConfigError, match="ddim_steps \\(80\\) must be <= diffusion.timesteps \\(50\\)"):
        config_from_dict({**SMOKE, "sampling": {"ddim_steps": 80}})
    with pytest.raises(ConfigError, match="channels must be positive multiples of 8"):
        config_from_dict({**SMOKE, "unet": {"channels": [8, 12, 16]}})
    with pytest.raises(ConfigError, match="variants.tailored uses the tailored schedule, which needs train.epochs >= 2"):
        config_from_dict({**SMOKE, "train": {"epochs": 1, "batch_size": 8}})
    with pytest.raises(ConfigError, match="variants.quantum.bottlenck"):
        config_from_dict({**SMOKE, "variants": {"quantum": {"bottlenck": "quantum"}}})


def test_unmatchable_bottleneck_fails_before_any_training(tmp_path):
    config = config_from_dict({**SMOKE, "unet": {"channels": [8, 8, 16], "n_qubits": 4, "quantum_layers": 1}})
    with pytest.raises(ValueError, match="variants.classical: no classical bottleneck width matches"):
        run(config, RunDir.create(config, tmp_path / "run"))
    assert not (tmp_path / "run" / "models").exists()


def test_smoke_run_reports_the_table_and_resumes_without_retraining(tmp_path, shared_data, monkeypatch):
    monkeypatch.setenv("QML_IMAGING_DATA", str(shared_data))
    config = config_from_dict(SMOKE)
    run_dir = RunDir.create(config, tmp_path / "run")
    summary = run(config, run_dir)
    for key in ("fid", "kid"):
        cell = summary[key]["mnist"]["4"]
        assert set(cell) == {"classical", "quantum", "tailored"}
        assert all(set(stat) == {"mean", "std", "n"} and stat["n"] == 2 for stat in cell.values())
        assert all(stat["mean"] > 0 and stat["std"] >= 0 for stat in cell.values()) if key == "fid" else True
    assert set(summary["quantum_minus_classical_fid"]["mnist"]) == {"4"}
    assert "quantum lower FID than the parameter-matched classical block" in summary["verdict"]
    references = summary["references"]["mnist"]
    assert references["real_control"]["fid"] < references["training_copies"]["4"]["fid"]["mean"] < summary["fid"]["mnist"]["4"]["classical"]["mean"]
    assert summary["parameters"]["quantum"] == pytest.approx(summary["parameters"]["classical"], rel=0.05)
    assert summary["noise_bank"]["ks_pvalue"] > 1e-3
    report = json.loads((run_dir.path / "report.json").read_text())
    tailored = [m for m in report["details"]["models"] if m["variant"] == "tailored"]
    assert all(len(m["timestep_profile"]) == 5 for m in tailored)
    assert {"samples_mnist_k4.png", "fid.png"} <= set(report["figures"])
    logged = {record["fit"].split("/")[2] for record in MetricsLog(run_dir.path / "metrics.jsonl").records()
              if "train_loss" in record}
    assert logged == {"classical", "quantum", "tailored"}  # every model's training in the run's one log
    assert (run_dir.path / "feature_nets" / "mnist.pt").is_file() and (run_dir.path / "table.md").is_file()
    stored = torch.load(run_dir.path / "feature_nets" / "mnist.pt", weights_only=True)
    assert "prepare_feature_network" in stored["made_by"] and stored["control_accuracy"] > 0.9

    result_file = run_dir.path / "tasks" / "mnist" / "k4" / "quantum" / "seed1" / "result.pt"
    first = torch.load(result_file, weights_only=True)
    result_file.unlink()
    again = run(config, RunDir.open(run_dir.path))
    assert torch.load(result_file, weights_only=True)["fid"] == pytest.approx(first["fid"], rel=1e-6), \
        "a model rebuilt from its checkpoints must give the same samples"
    assert again["fid"] == summary["fid"]


def _rows(dataset, quantum, classical):
    return [{"dataset": dataset, "k": 4, "variant": v, "seed": seed, "fid": fid, "kid": 0.0,
             "nearest_training_distance": 0.5, "parameters": 1, "bottleneck_parameters": 1,
             "training_seconds": 1.0, "sampling_seconds": 1.0}
            for v, values in (("quantum", quantum), ("classical", classical)) for seed, fid in enumerate(values)]


def test_verdict_needs_a_significant_paired_difference():
    config = config_from_dict({**SMOKE, "seeds": [0, 1, 2]})
    rows = _rows

    consistent = rows("a", [10.0, 12.1, 13.9], [13.0, 15.0, 17.0])
    noisy = rows("b", [10.8, 13.5, 13.1], [17.9, 13.9, 16.1])
    summary = summarise(config, consistent + noisy, {}, {})
    assert summary["quantum_minus_classical_fid"]["a"]["4"]["p_value"] < 0.01
    assert summary["quantum_minus_classical_fid"]["b"]["4"]["p_value"] > 0.05
    assert "(paired t-test, p < 0.05): ['a k=4']; higher: none; no significant difference: ['b k=4']" in summary["verdict"]


def test_a_noise_bank_too_small_for_the_quantum_noise_models_is_a_clear_error(tmp_path, shared_data, monkeypatch):
    monkeypatch.setenv("QML_IMAGING_DATA", str(shared_data))
    NoiseBank.generate(500, seed=0).save(tmp_path / "small.npz")
    config = config_from_dict({**SMOKE, "variants": {"quantum": {"bottleneck": "quantum", "noise": "quantum_sampler"}},
                               "noise": {"bank": str(tmp_path / "small.npz")}})
    needed = 2 * noise_needed(config, 1, "quantum_sampler")
    with pytest.raises(ValueError, match=f"holds 500 normals; the 2 quantum-noise models need {needed}: make one with"):
        run(config, RunDir.create(config, tmp_path / "run"))
    assert not (tmp_path / "run" / "noise_bank.npz").exists()


def test_one_seed_gives_labelled_stats_without_a_spread_and_no_verdict(tmp_path):
    config = config_from_dict({**SMOKE, "seeds": [0]})
    copies = {"4": {"fid": {"mean": 9.0, "std": None, "n": 1}, "kid": {"mean": 0.01, "std": None, "n": 1}}}
    references = {"a": {"real_control": {"fid": 1.0, "kid": 0.001}, "training_copies": copies}}
    summary = summarise(config, _rows("a", [10.0], [13.0]), references, {})
    assert summary["fid"]["a"]["4"]["quantum"] == {"mean": 10.0, "std": None, "n": 1}
    assert summary["training_seconds"]["classical"] == {"mean": 1.0, "std": None, "n": 1}
    test = summary["quantum_minus_classical_fid"]["a"]["4"]
    assert test["std"] is None and test["p_value"] is None and test["differences"] == [-3.0]
    assert "no significant difference: none; untested (one seed, no spread): ['a k=4']" in summary["verdict"]
    write_table(tmp_path / "table.md", config, summary)
    table = (tmp_path / "table.md").read_text()
    assert "± 0" not in table and "| 10.000 |" in table and "a k=4: -3.000 (one seed: not tested)" in table


def test_fid_bars_draw_error_bars_only_over_several_seeds(monkeypatch, tmp_path):
    drawn = []
    monkeypatch.setattr(figures, "save_figure", lambda figure, path: drawn.append(figure))
    run_dir = SimpleNamespace(figure_path=lambda name: tmp_path / f"{name}.png")
    for std in (None, 0.5):
        stat = {"mean": 10.0, "std": std, "n": 1 if std is None else 2}
        figures._fid_bars(run_dir, {"a": {"4": {"quantum": stat, "classical": stat}}}, [("a", 4)])
        bars = [c for c in drawn[-1].axes[0].containers if isinstance(c, BarContainer)]
        assert len(bars) == 2 and all((c.errorbar is None) == (std is None) for c in bars)
