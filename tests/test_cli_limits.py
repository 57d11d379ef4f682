"""Every size a user gives is bounded before work; outputs are atomic; a foreign checkpoint is one clear line."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from qml_imaging import limits
from qml_imaging.cli import main
from qml_imaging.config import load_config
from qml_imaging.training.artifacts import load_model, save_model_arguments
from qml_imaging.runs import RunDir
from qml_imaging.training.checkpoints import CheckpointError, save_checkpoint
from tests.conftest import EXPERIMENTS, REPO_ROOT


def one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


@pytest.fixture
def histogram_csv(tmp_path):
    path = tmp_path / "h.csv"
    path.write_text("delay_ns,counts\n" + "".join(f"{d},{100 + d * d}\n" for d in range(-20, 21)))
    return path


BOUNDS = [  # (arguments, what the one line must name)
    (["sample", "RUN", "--n", "1e8", "--out", "OUT"], "--n must be an integer from 1 to 10,000"),
    (["sample", "RUN", "--n", "0", "--out", "OUT"], "--n must be an integer from 1 to 10,000"),
    (["sample", "RUN", "--eta", "nan", "--out", "OUT"], "--eta must be a finite number of at least 0 and at most 1"),
    (["hardware", "noise-bank", "--backend", "fast", "--size", "1e12", "--out", "OUT/b.npz"],
     "--size must be an integer from 100 to 268,435,456"),
    (["hardware", "noise-bank", "--backend", "fast", "--size", "1000", "--qubits", "0", "--out", "OUT/b.npz"],
     "--qubits must be an integer from 1 to"),
    (["hardware", "plan", "RUN", "--backend", "fast", "--n-coordinates", "-4"],
     "--n-coordinates must be an integer from 1 to"),
    (["render", "RUN", "--size", "100000x100000"], "asks for 10,000,000,000 grid points; at most 16,777,216"),
    (["render", "RUN", "--size", "10", "--rate", "1e300"], "--rate must be a finite number of at least 1 and at most"),
    (["render", "RUN", "--size", "10", "--rate=-inf"], "--rate must be a finite number"),
    (["g2", "fit", "CSV", "--axis", "1e8,500"], "--axis BINS must be an integer from 3 to 262,144"),
    (["g2", "fit", "CSV", "--axis", "100,nan"], "--axis must be BINS,SPAN_NS[,FIRST_NS]"),
    (["g2", "fit", "CSV", "--rho", "nan"], "--rho is the signal share"),
    (["g2", "scan", "OUT", "--background-rate", "nan"], "--background-rate must be a finite number of at least 0"),
    (["g2", "scan", "OUT", "--background-rate=-5"], "--background-rate must be a finite number of at least 0"),
    (["g2", "scan", "OUT", "--tasks-at-once", "0"], "--tasks-at-once must be an integer from 1"),
]


@pytest.mark.parametrize(("arguments", "expected"), BOUNDS, ids=[" ".join(a[:2] + a[-2:]) for a, _ in BOUNDS])
def test_each_size_is_refused_in_one_line_naming_option_and_limit_before_any_work(
        arguments, expected, tmp_path, histogram_csv, capsys, monkeypatch):
    def no_work(*args, **kwargs):
        raise AssertionError("work started before the option was checked")

    import qml_imaging.training.artifacts as artifacts
    import qml_imaging.quantum.noise as noise

    monkeypatch.setattr(artifacts, "load_model", no_work)
    monkeypatch.setattr(noise.NoiseBank, "generate", no_work)
    names = {"RUN": str(tmp_path), "OUT": str(tmp_path), "OUT/b.npz": str(tmp_path / "b.npz"),
             "CSV": str(histogram_csv)}
    assert main([names.get(item, item) for item in arguments]) == 2
    assert expected in one_line(capsys)
    assert not (tmp_path / "b.npz").exists()


def test_an_integer_option_takes_1e3_and_refuses_a_fraction_in_one_line(capsys):
    assert limits.integer("1e3") == 1000 and limits.integer("64") == 64
    with pytest.raises(SystemExit) as stopped:
        main(["sample", "RUN", "--n", "1.5", "--out", "OUT"])
    assert stopped.value.code == 2
    assert "argument --n: expected an integer, got '1.5' (see `qml-imaging sample --help`)" in one_line(capsys)


def test_available_memory_reads_the_address_space_limit():
    script = ("import resource, sys\nfrom qml_imaging import limits\n"
              "before = limits.available_memory()\n"
              "resource.setrlimit(resource.RLIMIT_AS, (limits._read_number(__import__('pathlib').Path("
              "'/proc/self/status'), 'VmSize') + 300 * 2**20, resource.RLIM_INFINITY))\n"
              "print(before, limits.available_memory())\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    before, after = (int(value) for value in done.stdout.split())
    assert after <= 300 * 2**20 < before
    assert after > 250 * 2**20


def test_the_simulator_memory_check_uses_the_process_limits(monkeypatch):
    from qml_imaging.quantum.fast import memory

    monkeypatch.setattr(limits, "available_memory", lambda: 2**20)
    with pytest.raises(MemoryError, match=r"cpu has 0.0 GiB free \(memory, ulimit -v and container limits\)"):
        memory.check_memory(1024, 12, torch.complex64, torch.device("cpu"), 4)


def test_a_foreign_checkpoint_is_one_clear_error_on_sample(tmp_path, capsys):
    """An INR fit's checkpoint copied into a generation run ended in KeyError 'generator.layers.0.weight'."""
    run = RunDir.create(load_config(EXPERIMENTS / "qiren_generation_smoke.yaml"), tmp_path / "run")
    save_model_arguments(run.checkpoint_dir("qiren/seed0"), {"width": 4, "channels": 1, "side": 28})
    save_checkpoint(run.checkpoint_dir("qiren/seed0"), {"epoch": 3, "model": {"layers.0.weight": torch.zeros(4, 2)}})
    assert main(["sample", str(run.path), "--n", "4", "--out", str(tmp_path / "samples")]) == 2
    err = one_line(capsys)
    assert "checkpoint of fit 'qiren/seed0'" in err and "holds the weights of another network" in err
    assert "unexpected ['layers.0.weight']" in err and not (tmp_path / "samples").exists()


def test_weights_of_another_network_are_named_not_loaded(tmp_path):
    run = RunDir.create(load_config(EXPERIMENTS / "g2_smoke.yaml"), tmp_path / "run")
    save_model_arguments(run.checkpoint_dir("cnn"), {"bins": 215})
    save_checkpoint(run.checkpoint_dir("cnn"), {"epoch": 2, "model": {"w": torch.zeros(3)}})
    with pytest.raises(CheckpointError, match=r"holds the weights of another network \(missing \[.*unexpected \['w'\]"):
        load_model(run.path)
    save_checkpoint(run.checkpoint_dir("cnn"), {"epoch": 2, "model": [1, 2]})
    with pytest.raises(CheckpointError, match="a list where a mapping of tensors belongs"):
        load_model(run.path)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="RLIMIT_FSIZE is POSIX")
def test_render_on_a_full_disk_leaves_no_partial_file(tmp_path):
    """``render`` writes through a temporary file: RLIMIT_FSIZE (a full disk) cuts it, and nothing is left."""
    config = EXPERIMENTS / "inr_smoke.yaml"
    assert main(["run", str(config), "train.epochs=1", "--out", str(tmp_path / "run")]) == 0
    out = tmp_path / "renders"
    script = ("import resource, sys\nfrom qml_imaging.cli import main\n"
              "resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))\n"
              "sys.exit(main(sys.argv[1:]))\n")
    done = subprocess.run([sys.executable, "-c", script, "render", str(tmp_path / "run"), "--size", "256",
                           "--out", str(out)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert "failed (is the disk full?); it was left as it was" in done.stderr
    assert list(out.iterdir()) == []
    assert main(["render", str(tmp_path / "run"), "--size", "256", "--out", str(out)]) == 0
    assert sorted(path.suffix for path in out.iterdir()) == [".json", ".npy", ".png"]
    assert np.load(next(out.glob("*.npy"))).shape[:2] == (256, 256)
