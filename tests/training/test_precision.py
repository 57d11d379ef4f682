"""The fast-step choices (train.precision, train.channels_last): resolution, where autocast applies, and what stays full precision."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from qml_imaging.config import ConfigError, TrainSettings, load_config
from qml_imaging.models.diffusion_unet import DiffusionUNet, QuantumBottleneck
from qml_imaging.models.unet import DenoisingUNet
from qml_imaging.quantum.circuits import bottleneck_ansatz
from qml_imaging.quantum.layer import QuantumLayer
from qml_imaging.runs import RunDir
from qml_imaging import environment
from qml_imaging.training import Trainer
from qml_imaging.training.precision import StepPrecision, autocast_dtype, autocast_regions, uses_channels_last

CPU = torch.device("cpu")


def test_precision_resolves_from_the_cpu_capabilities(monkeypatch: pytest.MonkeyPatch) -> None:
    assert autocast_dtype("fp32", CPU) is None
    assert autocast_dtype("bf16", CPU) == torch.bfloat16
    monkeypatch.setattr(environment, "cpu_bf16_support", lambda: {"amx_bf16": False, "avx512_bf16": False})
    assert autocast_dtype("auto", CPU) is None
    monkeypatch.setattr(environment, "cpu_bf16_support", lambda: {"amx_bf16": True, "avx512_bf16": False})
    assert autocast_dtype("auto", CPU) == torch.bfloat16
    with pytest.raises(ValueError, match="fp16 runs on CUDA only"):
        autocast_dtype("fp16", CPU)
    with pytest.raises(ValueError, match="train.precision: expected one of"):
        autocast_dtype("half", CPU)


def test_fp16_on_a_cpu_is_refused_when_the_trainer_is_built() -> None:
    settings = TrainSettings(device="cpu", precision="fp16", progress=False)
    with pytest.raises(ValueError, match="fp16 runs on CUDA only"):
        Trainer(nn.Linear(2, 1), settings, objective=lambda model, batch: model(batch).sum())


def test_channels_last_auto_means_the_models_measured_to_gain() -> None:
    assert uses_channels_last("auto", nn.Sequential(DenoisingUNet(1, 1, depth=2, base_channels=4, max_channels=8)))
    assert not uses_channels_last("auto", DiffusionUNet(1, (8, 16)))
    assert not uses_channels_last("auto", nn.Sequential(nn.Linear(2, 4), nn.Tanh()))
    assert uses_channels_last(True, nn.Linear(2, 1)) and not uses_channels_last(False, nn.Conv2d(1, 1, 3))
    with pytest.raises(ValueError, match="train.channels_last"):
        uses_channels_last("yes", nn.Linear(2, 1))


def test_the_retired_amp_key_names_its_replacement(tmp_path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("experiment: qcrb_parametric\nname: x\ntrain: {amp: false}\n")
    with pytest.raises(ConfigError, match="train.precision"):
        load_config(path)


def test_autocast_covers_only_the_marked_regions_and_hands_back_float32() -> None:
    unet = DenoisingUNet(1, 1, depth=2, base_channels=4, max_channels=8)
    wrapper = nn.Sequential(nn.Identity(), unet)
    assert autocast_regions(wrapper) == [unet]
    fast = StepPrecision(wrapper, CPU, torch.bfloat16, channels_last=True)
    inputs = torch.rand(2, 1, 8, 8)
    with fast.fit_layout():
        assert unet.stem[0].weight.is_contiguous(memory_format=torch.channels_last)
        with fast.autocast():
            inside: list[torch.dtype] = []
            handle = unet.stem.register_forward_hook(lambda module, args, output: inside.append(output.dtype))
            output = wrapper(inputs)
            handle.remove()
        assert inside == [torch.bfloat16] and output.dtype == torch.float32
        assert "forward" not in vars(unet)
    assert unet.stem[0].weight.is_contiguous()
    assert fast.describe() == {"autocast": "bfloat16", "autocast_modules": ["DenoisingUNet"], "channels_last": True,
                               "compile": False}
    assert StepPrecision(nn.Linear(2, 1), CPU, torch.bfloat16, channels_last=False).describe()["autocast"] == "none"


def test_a_quantum_layer_keeps_its_dtype_and_values_under_autocast() -> None:
    torch.manual_seed(0)
    layer = QuantumLayer(bottleneck_ansatz(3, layers=1))
    angles = torch.rand(4, 3)
    plain = layer(angles)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        autocast = layer(angles)
    assert autocast.dtype == torch.float32
    assert torch.equal(autocast, plain)


def test_the_quantum_bottleneck_runs_in_float32_inside_an_autocast_unet() -> None:
    torch.manual_seed(0)
    model = DiffusionUNet(1, (8, 16), bottleneck="quantum", n_qubits=2, quantum_layers=1)
    assert isinstance(model.bottleneck, QuantumBottleneck)
    seen: list[torch.dtype] = []
    model.bottleneck.core.register_forward_hook(lambda module, args, output: seen.append(args[0].dtype))
    fast = StepPrecision(model, CPU, torch.bfloat16, channels_last=False)
    with fast.autocast():
        output = model(torch.rand(2, 1, 8, 8), torch.tensor([1, 5]))
    assert seen == [torch.float32] and output.dtype == torch.float32


def test_report_records_the_precision_choices(tmp_path) -> None:
    config = load_config("qcrb_smoke")
    run = RunDir.create(config, out=tmp_path / "run")
    report = json.loads(run.write_report({}).read_text())
    block = report["training_precision"]
    assert block["precision"] == "auto" and block["device"] == "cpu" and block["compile"] is False
    assert block["channels_last"] == "models whose class sets channels_last_pays"
    assert set(block["cpu_bf16"]) == {"amx_bf16", "avx512_bf16"}
    assert block["autocast"] == ("bfloat16" if any(block["cpu_bf16"].values()) else "none")
