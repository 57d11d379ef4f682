"""The task-grid runner: local and Ray give the same metrics, a killed driver resumes without re-running
finished fits, failing tasks are retried then reported, and unusable set-ups are one clear line."""

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from qml_imaging import grid as grid_module
from qml_imaging.cli import main
from qml_imaging.config import ConfigError, GridSettings, config_from_dict, load_config
from qml_imaging.extras import missing
from qml_imaging.grid import ExecutorUnavailable, GridStorageError, Task, run_grid, task_folder
from qml_imaging.pipelines.inr import image
from tests.conftest import EXPERIMENTS, REPO_ROOT

SMOKE = str(EXPERIMENTS / "inr_smoke.yaml")
FITS = ("camera/qiren/seed0", "camera/tanh/seed0", "camera/siren/seed0")


@pytest.fixture(scope="session")
def ray_session():
    """One embedded Ray (2 CPUs) for the session's Ray tests; the runner reuses it."""
    ray = pytest.importorskip("ray")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


needs_ray = pytest.mark.skipif(bool(missing("ray")), reason="the [ray] extra")

def flaky(marker: str, failures: int, value: int) -> int:
    """Fails ``failures`` times (counted in the file ``marker``), then returns ``value``."""
    path = Path(marker)
    seen = int(path.read_text()) if path.exists() else 0
    path.write_text(str(seen + 1))
    if seen < failures:
        raise ValueError(f"attempt {seen + 1} fails")
    return value


def smoke_fits(executor: str, out: Path) -> dict[str, dict]:
    overrides = [f"grid.executor={executor}", "grid.num_cpus=1", "grid.tasks_at_once=2", "train.epochs=10"]
    assert main(["run", SMOKE, *overrides, "--out", str(out)]) == 0
    fits = json.loads((out / "report.json").read_text())["details"]["fits"]
    return {f"{f['image']}/{f['model']}/seed{f['seed']}": f for f in fits}


def test_ray_embedded_two_at_once_gives_the_local_metrics(ray_session, tmp_path):
    local = smoke_fits("local", tmp_path / "local")
    on_ray = smoke_fits("ray", tmp_path / "ray")
    assert set(local) == set(on_ray) == set(FITS)
    for name in FITS:
        for key in ("mse", "psnr", "superres_mse", "final_train_loss", "parameters"):
            assert on_ray[name][key] == local[name][key], f"{name} {key}"
    records = [json.loads(line) for line in (tmp_path / "ray" / "metrics.jsonl").read_text().splitlines()]
    assert sorted(r["epoch"] for r in records if r["fit"] == FITS[1] and "train_loss" in r) == list(range(1, 11))


def test_failing_tasks_on_ray_are_retried_then_reported_and_the_others_kept(ray_session, tmp_path):
    tasks = [Task("good", flaky, (str(tmp_path / "good"), 0, 1)),
             Task("recovers", flaky, (str(tmp_path / "recovers"), 1, 2)),
             Task("broken", flaky, (str(tmp_path / "broken"), 9, 3))]
    outcome = run_grid(tasks, GridSettings(executor="ray", tasks_at_once=2, max_retries=2), None, progress=False)
    assert outcome.results == [1, 2, None]
    assert outcome.failures == {"broken": "ValueError: attempt 3 fails"}
    assert [(tmp_path / n).read_text() for n in ("good", "recovers", "broken")] == ["1", "2", "3"]


def test_a_task_that_keeps_failing_is_named_in_report_json_with_the_other_fits_kept(tmp_path, monkeypatch, capsys):
    attempts = []

    def fit_or_fail(*args, **kwargs):
        attempts.append(kwargs["fit_name"])
        if kwargs["fit_name"] == "camera/siren/seed0":
            raise RuntimeError("the optimiser diverged")
        return real(*args, **kwargs)

    real = image.fit_model
    monkeypatch.setattr(image, "fit_model", fit_or_fail)
    out = tmp_path / "run"
    assert main(["run", SMOKE, "train.epochs=5", "grid.max_retries=1", "--out", str(out)]) == 1
    assert "camera/siren/seed0: RuntimeError: the optimiser diverged" in capsys.readouterr().err
    assert attempts.count("camera/siren/seed0") == 2, "one run and one retry"
    summary = json.loads((out / "report.json").read_text())["summary"]
    assert summary["failed_tasks"] == {"camera/siren/seed0": "RuntimeError: the optimiser diverged"}
    assert set(summary["mse"]["camera"]) == {"qiren", "tanh"}
    assert not (task_folder(out, "camera/siren/seed0") / "result.pt").exists()

    monkeypatch.setattr(image, "fit_model", real)  # the cause is fixed: --resume runs only the failed fit
    assert main(["run", "--resume", str(out)]) == 0
    summary = json.loads((out / "report.json").read_text())["summary"]
    assert summary["failed_tasks"] == {} and set(summary["mse"]["camera"]) == {"qiren", "tanh", "siren"}


def test_a_killed_driver_resumes_without_re_running_finished_fits(tmp_path, monkeypatch):
    out = tmp_path / "killed"
    overrides = ["train.epochs=30", "train.checkpoint_every=5", "train.eval_every=30"]
    process = subprocess.Popen([sys.executable, "-m", "qml_imaging.cli", "run", SMOKE, *overrides, "--out", str(out)],
                               cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if (task_folder(out, FITS[0]) / "result.pt").exists():
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = [name for name in FITS if (task_folder(out, name) / "result.pt").exists()]
    assert finished and not (out / "report.json").exists(), "the driver was not killed mid-grid"

    fitted = []
    real = image.fit_model
    monkeypatch.setattr(image, "fit_model", lambda *a, **k: fitted.append(k["fit_name"]) or real(*a, **k))
    assert main(["run", "--resume", str(out)]) == 0
    assert sorted(fitted) == sorted(set(FITS) - set(finished)), "finished fits are not run again"
    summary = json.loads((out / "report.json").read_text())["summary"]
    assert set(summary["mse"]["camera"]) == {"qiren", "tanh", "siren"} and summary["failed_tasks"] == {}
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    for name in FITS:
        epochs = [r["epoch"] for r in records if r["fit"] == name and "train_loss" in r]
        assert sorted(epochs) == list(range(1, 31)), f"{name}: every epoch logged exactly once"


def test_a_worker_that_cannot_write_the_run_folder_stops_the_grid_with_the_reason(tmp_path):
    tasks = [Task("a", flaky, (str(tmp_path / "a"), 0, 1))]
    with pytest.raises(GridStorageError, match="storage every worker sees"):
        run_grid(tasks, GridSettings(), tmp_path / "not_shared", progress=False)
    assert not (tmp_path / "a").exists(), "the task never started"


def test_finished_tasks_are_loaded_not_run_again(tmp_path):
    run_path = tmp_path / "run"
    run_path.mkdir()
    tasks = [Task("x/seed0", flaky, (str(tmp_path / "x"), 0, 7))]
    assert run_grid(tasks, GridSettings(), run_path, progress=False).ran == ["x/seed0"]
    again = run_grid(tasks, GridSettings(), run_path, progress=False)
    assert again.results == [7] and again.ran == [] and (tmp_path / "x").read_text() == "1"
    with pytest.raises(ValueError, match="unique"):
        run_grid(tasks * 2, GridSettings(), None, progress=False)


def test_ray_without_ray_installed_is_one_line_naming_the_install_command(tmp_path, monkeypatch, capsys):
    settings = GridSettings.model_construct(executor="ray")  # as if validated where Ray is installed
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    with pytest.raises(ExecutorUnavailable, match=r'pip install "qml-imaging\[ray\]"'):
        run_grid([Task("a", flaky, (str(tmp_path / "a"), 0, 1))], settings, None, progress=False)
    assert main(["validate", SMOKE, "grid.executor=ray"]) == 2  # refused at validation, before any work
    assert main(["run", SMOKE, "grid.executor=ray", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all('pip install "qml-imaging[ray]"' in line for line in err), err
    assert not (tmp_path / "run").exists(), "no run folder is left behind"


@needs_ray
def test_removed_and_misplaced_grid_settings_are_clear_errors(tmp_path, capsys):
    with pytest.raises(ConfigError, match=r"key 'workers' was removed: .*grid: \{executor: ray, tasks_at_once"):
        load_config(EXPERIMENTS / "diffusion_fewshot.yaml", ["workers=2"])
    with pytest.raises(ConfigError, match=r"key 'evaluation.workers' was removed"):
        load_config(EXPERIMENTS / "g2_smoke.yaml", ["evaluation.workers=2"])
    with pytest.raises(ConfigError, match="threads_per_worker' was removed: use grid.num_cpus"):
        load_config(EXPERIMENTS / "diffusion_fewshot.yaml", ["threads_per_worker=1"])
    with pytest.raises(ConfigError, match="grid.executor"):
        config_from_dict({**load_config(SMOKE).model_dump(), "grid": {"executor": "dask"}})
    assert main(["run", SMOKE, "--ray-address", "10.0.0.1:6379"]) == 2
    assert "this run's grid.executor is 'local'" in capsys.readouterr().err
    out = tmp_path / "unreachable"
    assert main(["run", SMOKE, "grid.executor=ray", "--ray-address", "127.0.0.1:1", "--out", str(out)]) == 2
    assert "no Ray cluster answers at 127.0.0.1:1" in capsys.readouterr().err and not out.exists()


@needs_ray
def test_validate_imports_neither_torch_nor_ray():
    script = textwrap.dedent(
        f"""
        import sys
        from qml_imaging.cli import main
        code = main(["validate", {SMOKE!r}, "grid.executor=ray", "grid.tasks_at_once=2"])
        assert "torch" not in sys.modules and "ray" not in sys.modules, "validate imported torch or ray"
        sys.exit(code)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "executor: ray" in result.stdout


def test_the_runner_is_what_every_grid_pipeline_calls():
    """No pipeline keeps a process pool of its own: the grid's worker processes are the only one."""
    package = Path(grid_module.__file__).parent
    pools = [p for p in package.rglob("*.py") if "ProcessPoolExecutor" in p.read_text() or "multiprocessing" in p.read_text()]
    assert [p.relative_to(package).as_posix() for p in pools] == ["grid_workers.py"]
    for module in ("inr/image.py", "inr/signal.py", "diffusion/pipeline.py", "qcrb/natural.py", "qcrb/parametric.py",
                   "g2/lm.py"):
        assert "run_grid(" in (package / "pipelines" / module).read_text(), module
