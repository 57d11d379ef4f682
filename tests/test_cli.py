"""End-to-end tests of the ``qml-imaging`` command: runs, resume after a hard kill, torchrun."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from qml_imaging.cli import main
from qml_imaging.extras import missing
from tests.conftest import EXPERIMENTS, REPO_ROOT
from tests.resume_harness import reported_numbers, run_to_end, write_config
from tests.test_exact_resume import diffusion

SMOKE = str(EXPERIMENTS / "inr_smoke.yaml")


def cli(*arguments, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "qml_imaging.cli", *arguments],
        capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT,
    )


def test_smoke_run_writes_a_self_describing_folder(tmp_path):
    out = tmp_path / "run"
    assert main(["run", SMOKE, "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert set(report["summary"]) >= {"mse", "psnr", "mse_ratio_vs_tanh", "parameters", "seconds_per_fit", "superres_mse"}
    assert set(report["summary"]["superres_mse"]["camera"]) == {"qiren", "tanh", "siren", "bilinear", "nearest"}
    assert "| camera | qiren |" in (out / "table.md").read_text()
    assert (out / "mse_relative_to_tanh.png").is_file()
    assert report["summary"]["mse_ratio_vs_tanh"]["camera"]["tanh"] == 1.0
    assert (out / "reconstructions.png").stat().st_size > 1000
    assert (out / "config.yaml").read_text().count("grad_clip") == 1  # resolved: defaults written out
    fits = {json.loads(line)["fit"] for line in (out / "metrics.jsonl").read_text().splitlines()}
    assert fits == {"camera/qiren/seed0", "camera/tanh/seed0", "camera/siren/seed0"}
    assert (out / "checkpoints" / "camera" / "tanh" / "seed0" / "last.pt").is_file()


def test_run_into_an_existing_run_folder_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", SMOKE, "--out", str(out), "train.epochs=2"]) == 0
    assert main(["run", SMOKE, "--out", str(out)]) == 2
    assert "--resume" in capsys.readouterr().err


def test_run_needs_a_config_or_resume(capsys):
    assert main(["run"]) == 2
    assert "either CONFIG" in capsys.readouterr().err


def test_a_quantum_diffusion_run_killed_with_sigkill_resumes_to_the_same_numbers(tmp_path):
    """SIGKILL between two checkpoints, then `run --resume` in a new process: every number the run reports equals
    an uninterrupted run's, bitwise (a quantum bottleneck and quantum noise: the run that once diverged)."""
    config = diffusion(tmp_path / "images", ("quantum_noise",))
    config["train"].update(epochs=30, checkpoint_every=10)
    path = write_config(tmp_path / "quantum.yaml", config)
    run_to_end(path, tmp_path / "reference")

    killed_dir = tmp_path / "killed"
    process = subprocess.Popen(
        [sys.executable, "-m", "qml_imaging.cli", "run", str(path), "--out", str(killed_dir)],
        cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    metrics = killed_dir / "models" / "mine" / "k4" / "quantum_noise" / "seed0" / "metrics.jsonl"
    deadline = time.monotonic() + 900  # generous: a loaded CI machine must not turn into a kill before epoch 12
    while time.monotonic() < deadline and process.poll() is None:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 12:
            break
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert metrics.exists() and len(metrics.read_text().splitlines()) >= 12, "the run ended or was killed before epoch 12 (its first checkpoint is at 10)"
    assert not (killed_dir / "report.json").exists(), "the run finished before it could be killed"

    resumed = cli("run", "--resume", str(killed_dir))
    assert resumed.returncode == 0, resumed.stderr
    assert reported_numbers(killed_dir) == reported_numbers(tmp_path / "reference")


def test_resume_rejects_overrides(tmp_path, capsys):
    assert main(["run", "--resume", str(tmp_path), "train.lr=1"]) == 2
    assert "overrides are not allowed" in capsys.readouterr().err


def test_list_shows_one_line_per_shipped_experiment():
    result = cli("list")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == len(list(EXPERIMENTS.glob("*.yaml")))
    assert any("inr_smoke.yaml" in line and "[inr_image]" in line for line in lines)


def test_validate_prints_the_resolved_config():
    result = cli("validate", SMOKE, "models.tanh.lr=0.5")
    assert result.returncode == 0, result.stderr
    assert "lr: 0.5" in result.stdout and "ema_decay: null" in result.stdout


def test_torchrun_with_two_processes_writes_one_run_folder(tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "qml_imaging.cli", "run", SMOKE, "--out", str(out)],
        capture_output=True, text=True, timeout=300, cwd=REPO_ROOT, env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("run folder:") == 1
    report = json.loads((out / "report.json").read_text())
    records = [json.loads(row) for row in (out / "metrics.jsonl").read_text().splitlines()]
    tanh_losses = [r["train_loss"] for r in records if r["fit"] == "camera/tanh/seed0" and "train_loss" in r]
    assert len(tanh_losses) == 20, "only rank 0 logs"
    assert tanh_losses[-1] < tanh_losses[0]
    assert report["summary"]["parameters"]["tanh"] > 0


def test_signal_smoke_run_reports_band_errors(tmp_path):
    out = tmp_path / "signal"
    assert main(["run", str(EXPERIMENTS / "signal_smoke.yaml"), "--out", str(out)]) == 0
    summary = json.loads((out / "report.json").read_text())["summary"]
    for model in ("qiren", "tanh"):
        total = summary["mse"][model]["mean"]
        assert summary["mse_low_band"][model]["mean"] + summary["mse_high_band"][model]["mean"] == pytest.approx(total, rel=1e-4)
    assert summary["parameters"]["qiren"] == 106


@pytest.mark.qiskit
def test_fitted_qiren_is_re_evaluated_on_a_shot_based_backend(tmp_path, capsys):
    source = tmp_path / "source"
    assert main(["run", SMOKE, "--out", str(source), "train.epochs=3"]) == 0
    hardware = str(EXPERIMENTS / "qiren_hardware.yaml")
    out = tmp_path / "hardware"
    assert main(["run", hardware, f"source_run={source}", "backends=[aer_shots]", "n_coordinates=4",
                 "--out", str(out)]) == 0
    summary = json.loads((out / "report.json").read_text())["summary"]
    assert summary["n_coordinates"] == 4
    assert 0 < summary["mse_vs_exact"]["aer_shots"] < 0.01  # 4096 shots: shot noise only
    capsys.readouterr()
    assert main(["run", hardware, f"source_run={source}", "fit=camera/tanh/seed0", "backends=[aer_shots]",
                 "--out", str(tmp_path / "wrong")]) == 2
    assert "'camera/tanh/seed0' is not a QIREN fit" in capsys.readouterr().err
    assert not (tmp_path / "wrong").exists(), "a run that failed before any work leaves no folder"


@pytest.mark.qiskit
def test_hardware_submission_killed_mid_run_is_completed_by_fetch_exactly_once(tmp_path, capsys):
    source = tmp_path / "source"
    assert main(["run", SMOKE, "--out", str(source), "train.epochs=3"]) == 0
    capsys.readouterr()
    assert main(["hardware", "plan", str(source), "--backend", "FakeManilaV2"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["jobs"] == 2 and plan["circuit_executions_unbatched"] == 2 * 256
    secret = "never-write-this-token"
    slow = tmp_path / "slow_manila.yaml"  # many shots: each layer's local job runs for seconds, a window to kill in
    slow.write_text("backend: ibm\ndevice_name: FakeManilaV2\nshots: 20000\nseed: 3\n")
    process = subprocess.Popen(
        [sys.executable, "-m", "qml_imaging.cli", "hardware", "submit", str(source), "--backend", str(slow)],
        cwd=REPO_ROOT, env={**os.environ, "QISKIT_IBM_TOKEN": secret},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    store = source / "hardware" / "slow_manila" / "jobs.json"
    deadline = time.monotonic() + 300
    while not store.is_file() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)  # layer 0 is recorded; layer 1's job is running or not yet submitted
    process.wait()
    assert store.is_file(), "the submission never happened"
    killed_states = [r["state"] for r in json.loads(store.read_text())["layers"].values()]
    assert killed_states != ["done", "done"], "the evaluation finished before it could be killed"
    folder = str(store.parent)
    assert main(["hardware", "fetch", folder]) == 0
    capsys.readouterr()
    assert main(["hardware", "fetch", folder]) == 0
    summary = json.loads(capsys.readouterr().out)
    records = json.loads(store.read_text())["layers"]
    assert summary["state"] == "complete" and summary["results_recorded"] == 2
    assert [r["state"] for r in records.values()] == ["done", "done"]
    assert summary["jobs"] == sum(len(r["attempts"]) for r in records.values()) == 2
    assert summary["mse_vs_exact"] < 0.05
    for path in source.rglob("*"):
        assert not path.is_file() or secret.encode() not in path.read_bytes()
    assert main(["hardware", "submit", str(source), "--backend", str(slow)]) == 2
    assert "already holds this evaluation" in capsys.readouterr().err


@pytest.mark.qiskit
def test_hardware_errors_name_the_problem(tmp_path, capsys, monkeypatch):
    source = tmp_path / "source"
    assert main(["run", SMOKE, "--out", str(source), "train.epochs=1"]) == 0
    assert main(["hardware", "plan", str(source), "--backend", "aer_shots"]) == 2  # a user's choice: one line, status 2
    error = capsys.readouterr().err.strip()
    assert "is of kind 'qiskit.aer'" in error and "\n" not in error, error
    monkeypatch.delenv("QISKIT_IBM_TOKEN", raising=False)
    monkeypatch.setenv("QISKIT_IBM_CONFIG", str(tmp_path / "absent.json"))
    assert main(["hardware", "submit", str(source), "--backend", "ibm_brisbane"]) == 2
    assert "no IBM Quantum credentials" in capsys.readouterr().err


def test_noise_bank_command_stores_a_bank_and_prints_its_statistics(tmp_path, capsys):
    from qml_imaging.quantum.noise import NoiseBank

    out = tmp_path / "bank.npz"
    assert main(["hardware", "noise-bank", "--backend", "fast", "--size", "4000", "--out", str(out), "--seed", "3"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["n"] == 4000 and printed["ks_pvalue"] > 1e-3 and printed["backend"]["backend"] == "fast"
    assert len(NoiseBank.load(out)) == 4000
    assert main(["hardware", "noise-bank", "--backend", "nonsense", "--size", "4000", "--out", str(out)]) == 2
    assert "unknown backend 'nonsense'" in capsys.readouterr().err
    assert main(["hardware", "noise-bank", "--backend", "fast", "--size", "10", "--out", str(out)]) == 2
    assert "--size must be an integer from 100 to 268,435,456" in capsys.readouterr().err


# --- one error boundary, one process per run folder, nothing executed from a run folder ----------------


@pytest.fixture(scope="module")
def finished_smoke_run(tmp_path_factory):
    """A finished two-epoch inr_smoke run; tests copy it before changing anything."""
    out = tmp_path_factory.mktemp("source") / "run"
    assert main(["run", SMOKE, "--out", str(out), "train.epochs=2"]) == 0
    return out


def copy_of(run, tmp_path):
    return Path(shutil.copytree(run, tmp_path / "copy"))


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


def test_user_errors_are_one_line_exit_2_and_leave_no_run_folder(tmp_path, capsys):
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt ")  # a real header, cut short
    out = tmp_path / "run"
    arguments = ["run", str(EXPERIMENTS / "signal_smoke.yaml"), f"signal.wav={corrupt}", "--out", str(out)]
    for _ in range(2 if not missing("soundfile") else 0):  # audio files need the [audio] extra  # the same command again is refused for the same reason, not for a half-made folder
        assert main(arguments) == 2
        assert f"{corrupt}: not a PCM WAV file" in one_line_error(capsys)
        assert not out.exists()
    if not missing("soundfile"):
        with pytest.raises(ValueError, match="not a PCM WAV file"):
            main(["--debug", *arguments])
        with pytest.raises(ValueError, match="not a PCM WAV file"):
            main([*arguments, "--debug"])
    assert not out.exists()
    assert main(["run", SMOKE, "parameter_budget=1000", "--out", str(out)]) == 2
    assert "not within 10 % of the budget 1000" in one_line_error(capsys) and not out.exists()
    out.write_text("a file, not a folder")
    assert main(["run", SMOKE, "--out", str(out)]) == 2
    assert "is an existing file, not a folder" in one_line_error(capsys)
    assert main(["run", "--resume", str(tmp_path / "absent")]) == 2
    assert "is not a run folder" in one_line_error(capsys)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a CUDA GPU")
def test_cuda_without_a_gpu_is_a_config_error_before_any_folder(tmp_path, capsys):
    assert main(["run", SMOKE, "train.device=cuda", "--out", str(tmp_path / "run")]) == 2
    assert "train.device is 'cuda' but torch sees no CUDA GPU" in one_line_error(capsys)
    assert not (tmp_path / "run").exists()


def test_unexpected_errors_are_one_line_with_a_pointer_to_debug(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("qml_imaging.cli._validate", lambda arguments: {}["missing"])
    assert main(["validate", SMOKE]) == 1
    assert "internal error (KeyError" in one_line_error(capsys)
    with pytest.raises(KeyError):
        main(["validate", SMOKE, "--debug"])


def test_wrong_kind_of_source_run_is_named(finished_smoke_run, tmp_path, capsys):
    out = tmp_path / "scan"
    assert main(["run", str(EXPERIMENTS / "srm_scan.yaml"), f"source_run={finished_smoke_run}", "--out", str(out)]) == 2
    assert "is a 'inr_image' run; expected a g2_regression run" in one_line_error(capsys)
    assert not out.exists()


@pytest.mark.qiskit
def test_hardware_commands_refuse_a_folder_of_the_wrong_kind(finished_smoke_run, capsys):
    assert main(["hardware", "status", str(finished_smoke_run)]) == 2
    assert "is a 'inr_image' run; a 'inr_runtime' run is needed here" in one_line_error(capsys)
    assert main(["hardware", "fetch", str(finished_smoke_run)]) == 2
    assert "hardware submit" in one_line_error(capsys)


class WritesAFileWhenUnpickled:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def hostile_copy(run, tmp_path):
    """A copy of ``run`` whose QIREN checkpoint would create ``tmp_path/PWNED`` if it were unpickled."""
    copy = copy_of(run, tmp_path)
    marker = tmp_path / "PWNED"
    torch.save({"epoch": WritesAFileWhenUnpickled(marker)}, copy / "checkpoints" / "camera" / "qiren" / "seed0" / "last.pt")
    return copy, marker


@pytest.mark.parametrize("hostile", ["last.pt", "result.pt"])
def test_a_hostile_checkpoint_is_refused_on_resume_and_never_run(finished_smoke_run, tmp_path, capsys, hostile):
    run, marker = hostile_copy(finished_smoke_run, tmp_path)
    result = run / "tasks" / "camera" / "qiren" / "seed0" / "result.pt"
    if hostile == "last.pt":
        result.unlink()  # the fit is not done: resume reads its checkpoint
    else:  # the kept result of a finished fit, read by the grid runner on resume
        torch.save({"seconds": WritesAFileWhenUnpickled(marker)}, result)
    assert main(["run", "--resume", str(run)]) == 2
    err = one_line_error(capsys)
    assert "refusing to load" in err and hostile in err and ("global io.open" in err or "global _io.open" in err)
    assert not marker.exists()


@pytest.mark.qiskit
def test_a_hostile_checkpoint_is_refused_by_hardware_plan(finished_smoke_run, tmp_path, capsys):
    run, marker = hostile_copy(finished_smoke_run, tmp_path)
    assert main(["hardware", "plan", str(run), "--backend", "FakeManilaV2", "--n-coordinates", "2"]) == 2
    assert "refusing to load" in one_line_error(capsys)
    assert not marker.exists()


def test_a_second_process_on_a_run_folder_is_refused(finished_smoke_run, tmp_path, capsys):
    run = copy_of(finished_smoke_run, tmp_path)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from qml_imaging.runs import RunDir; "
         "RunDir.open(sys.argv[1], lock=True); print('locked', flush=True); time.sleep(60)", str(run)],
        stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert main(["run", "--resume", str(run)]) == 2
        assert f"is in use by another process (pid {holder.pid})" in one_line_error(capsys)
    finally:
        holder.kill()
        holder.wait()
    assert main(["run", "--resume", str(run)]) == 0  # the lock went with its process


@pytest.mark.qiskit
def test_a_hardware_job_killed_between_submit_and_record_is_found_by_its_tag_not_run_twice(
        finished_smoke_run, tmp_path, capsys):
    source = copy_of(finished_smoke_run, tmp_path)
    killed = subprocess.Popen(  # record_submission stalls: the job of layer 0 is accepted, its id not yet recorded
        [sys.executable, "-c", "import sys, time\nfrom qml_imaging.quantum import jobstore\n"
         "def stall(*args):\n    print('accepted', flush=True); time.sleep(120)\n"
         "jobstore.JobStore.record_submission = stall\nfrom qml_imaging.cli import main\nmain(sys.argv[1:])",
         "hardware", "submit", str(source), "--backend", "FakeManilaV2", "--n-coordinates", "16"],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert killed.stdout.readline().strip() == "accepted"
    finally:
        killed.send_signal(signal.SIGKILL)
        killed.wait()
    folder = source / "hardware" / "FakeManilaV2"
    assert json.loads((folder / "jobs.json").read_text())["layers"]["0"]["intent"]["tag"].endswith(":layer0:attempt1")
    capsys.readouterr()
    assert main(["hardware", "status", str(folder)]) == 0
    assert ":layer0:attempt1 not recorded (fetch looks it up)" in capsys.readouterr().out
    holder = subprocess.Popen(  # a second process on the folder is refused while another holds it
        [sys.executable, "-c", "import sys, time; from qml_imaging.runs import holding_lock\n"
         "with holding_lock(sys.argv[1]):\n    print('locked', flush=True); time.sleep(60)", str(folder)],
        stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert main(["hardware", "fetch", str(folder)]) == 2
        assert f"{folder}' is in use by another process (pid {holder.pid})" in one_line_error(capsys)
    finally:
        holder.kill()
        holder.wait()
    assert main(["hardware", "fetch", str(folder)]) == 0
    assert "not submitted again" in capsys.readouterr().err
    records = json.loads((folder / "jobs.json").read_text())["layers"]
    assert [[a["state"] for a in r["attempts"]] for r in records.values()] == [["done"], ["done"]]
    assert len(list((folder / "local_jobs").glob("*.npz"))) == 2, "one job per layer ran, in all"


@pytest.mark.qiskit
def test_a_lost_or_damaged_job_store_is_refused_with_the_way_to_recover(finished_smoke_run, tmp_path, capsys):
    source = copy_of(finished_smoke_run, tmp_path)
    assert main(["hardware", "submit", str(source), "--backend", "FakeManilaV2", "--n-coordinates", "4"]) == 0
    folder = source / "hardware" / "FakeManilaV2"
    store = folder / "jobs.json"
    intact = store.read_text()
    results = (folder / "results" / "layer1.npz").read_bytes()
    capsys.readouterr()
    store.unlink()
    for command in ("fetch", "status"):
        assert main(["hardware", command, str(folder)]) == 1
        err = one_line_error(capsys)
        assert "jobs.json is missing" in err and "results/ (2 files)" in err and "restore jobs.json" in err
    assert (folder / "results" / "layer1.npz").read_bytes() == results, "nothing was submitted again"
    store.write_text(intact[:100])
    assert main(["hardware", "fetch", str(folder)]) == 1
    assert f"{store} is damaged: not valid JSON" in one_line_error(capsys)
    store.write_text(intact)
    assert main(["hardware", "fetch", str(folder)]) == 0
