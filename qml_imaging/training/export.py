"""Export one trained fit of a run folder as a small folder to share: safetensors weights, the arguments that
build the model as JSON, and a model card. ``qml-imaging export RUN [--fit NAME] --out DIR`` calls
:func:`export_model`; :func:`qml_imaging.load_model` reads the export as it reads a run folder, with
identical outputs.

An export is the run folder pruned to one fit, with every checkpoint replaced by its final weights::

    DIR/export.json                      {"format": 1, "fit", "experiment", "source", "exported"}
    DIR/config.yaml, DIR/report.json     the run's (the config builds the model; the report holds its metrics
                                         and the data's preprocessing, e.g. an INR's grid)
    DIR/checkpoints/<name>/model.json    the arguments that built the model (as the run stored them)
    DIR/checkpoints/<name>/weights.safetensors, weights.json
                                         the final (EMA where used) weights and their epoch, metrics, seconds
    DIR/README.md                        the model card: data, training length, metrics, how to load it

``<name>`` is the fit and any checkpoint folder below it (a tailored diffusion model's ``pilot`` and
``main``). Nothing in an export is a pickle, and loading one unpickles nothing.
"""

from __future__ import annotations

import datetime as _dt
import json
import shutil
import tempfile
from pathlib import Path

from qml_imaging.runs import RunDir, RunFolderError
from qml_imaging.training.artifacts import EXPORT_FILE, MODEL_FILE, TrainedModel, load_model
from qml_imaging.training.checkpoints import load_checkpoint
from qml_imaging.training.model_card import model_card
from qml_imaging.training.weights_files import write_weights

_FORMAT = 1


def export_model(run_dir: str | Path, out: str | Path, fit: str | None = None) -> Path:
    """Export ``fit`` (default: the run's first) of the finished run ``run_dir`` into the new folder ``out``.

    The fit is first loaded with :func:`~qml_imaging.training.artifacts.load_model` (so an unfinished or
    unknown fit is refused as there). ``out`` must not exist or be empty (FileExistsError otherwise); the
    export is written beside it and renamed into place, so a failed export leaves nothing. Returns ``out``.
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"--out {str(out)!r} already exists and is not an empty folder; give a new one")
    if (Path(run_dir) / EXPORT_FILE).is_file():
        raise RunFolderError(f"{run_dir} is already an export; share it as it is")
    trained = load_model(run_dir, fit)
    run = RunDir.open(run_dir, check_files=False)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        _write_export(run, trained, staging)
        if out.exists():
            out.rmdir()
        staging.rename(out)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return out


def _write_export(run: RunDir, trained: TrainedModel, folder: Path) -> None:
    """Every file of the export of ``trained`` into ``folder``."""
    shutil.copyfile(run.path / "config.yaml", folder / "config.yaml")
    report_path = run.path / "report.json"
    report = json.loads(report_path.read_text()) if report_path.is_file() else {}
    if report:
        shutil.copyfile(report_path, folder / "report.json")
    checkpoints = _write_checkpoints(run, trained.fit, folder)
    marker = {"format": _FORMAT, "fit": trained.fit, "experiment": run.config.experiment, "source": str(run.path),
              "exported": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")}
    (folder / EXPORT_FILE).write_text(json.dumps(marker, indent=1) + "\n")
    (folder / "README.md").write_text(model_card(trained, report, checkpoints, marker))


def _write_checkpoints(run: RunDir, fit: str, folder: Path) -> dict[str, dict]:
    """``model.json`` and the final weights of the fit's checkpoint folder and those below it; returns
    ``{name: weights info}`` of each folder that had a checkpoint."""
    root = run.checkpoint_dir(fit)
    written: dict[str, dict] = {}
    for source in [root, *sorted(path for path in root.rglob("*") if path.is_dir())]:
        name = source.relative_to(run.path / "checkpoints").as_posix()
        target = folder / "checkpoints" / name
        if (source / MODEL_FILE).is_file():
            target.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / MODEL_FILE, target / MODEL_FILE)
        state = load_checkpoint(source)
        if state is None:
            continue
        ema = state.get("ema")
        weights = ({k.removeprefix("module."): v for k, v in ema.items() if k.startswith("module.")}
                   if ema is not None else state["model"])
        info = {"epoch": state["epoch"], "ema": ema is not None, "metrics": dict(state.get("metrics") or {}),
                "seconds": state.get("seconds", 0.0)}
        target.mkdir(parents=True, exist_ok=True)
        write_weights(target, weights, info)
        written[name] = info
    if not written:
        raise RunFolderError(f"fit {fit!r} of {run.path} has no checkpoint to export")
    return written
