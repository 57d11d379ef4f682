"""MSE/QCRB of a ``qcrb_parametric`` run's U-Nets against training steps, read from their checkpoints as they train.

    python benchmarks/qcrb_training_curve.py evaluate RUN [RUN ...] --curve curve.jsonl
    python benchmarks/qcrb_training_curve.py figure --curve curve.jsonl --out mse_over_qcrb_vs_steps.png

``evaluate`` loads the EMA weights of each denoiser's last checkpoint (``checkpoints/<name>/last.pt``; a
run still training is only read) and evaluates them exactly as the pipeline does at its end
(:func:`qml_imaging.pipelines.qcrb.parametric.evaluate`: the config's theta, its photon numbers and
realisations, float64 statistics), then appends one JSON line per (run, denoiser, nbar) with the
checkpoint's epoch, its step count (epochs x ``training.batches_per_epoch``), the QCRB ratios of the MSE,
bias², variance, tangent and orthogonal parts, and the training seconds so far. A checkpoint already
in the curve file is skipped. ``figure`` draws MSE/QCRB against steps, one line per run and nbar.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from qml_imaging.physics.parametric import get_family
from qml_imaging.pipelines.qcrb.denoising import build_unet, denoise
from qml_imaging.pipelines.qcrb.parametric import evaluate
from qml_imaging.reporting import figures
from qml_imaging.runs import RunDir, checkpoint_folder
from qml_imaging.training.checkpoints import load_checkpoint


def ema_unet(run: RunDir, name: str) -> tuple[torch.nn.Module, dict] | None:
    """The U-Net ``name`` of ``run`` with its checkpoint's EMA weights (or plain weights without EMA) and the
    checkpoint; None before the first checkpoint."""
    state = load_checkpoint(checkpoint_folder(run.path, name))
    if state is None:
        return None
    model = build_unet(run.config.unet)
    weights = state["model"] if state["ema"] is None else {
        key.removeprefix("module."): value for key, value in state["ema"].items() if key.startswith("module.")}
    model.load_state_dict(weights)
    return model.eval(), state


def evaluate_run(path: str, done: set[tuple[str, str, int]]) -> list[dict]:
    """Rows for every denoiser of the run at ``path`` whose checkpoint epoch is not yet in ``done``."""
    run = RunDir.open(path)
    config = run.config
    family = get_family(config.family)
    theta = family.check(torch.tensor(config.theta))
    truth = family.phi(theta, config.image_size)[0]
    jacobian = family.jacobian(theta, config.image_size)[0]
    rows = []
    for name in config.denoisers:
        loaded = ema_unet(run, name)
        if loaded is None or (path, name, loaded[1]["epoch"]) in done:
            continue
        model, state = loaded
        found, _ = evaluate(config, truth, jacobian, {name: lambda counts, nbar, model=model: denoise(model, counts, nbar, config.unet)})
        for row in found:
            rows.append({"run": path, "denoiser": name, "epoch": state["epoch"],
                         "steps": state["epoch"] * config.training.batches_per_epoch,
                         "training_seconds": state["seconds"], "nbar": row["nbar"],
                         **{key: value for key, value in row.items() if key.endswith("_over_qcrb")}})
    return rows


def read_curve(path: Path) -> list[dict]:
    """The rows of a curve file (none when it does not exist)."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def draw(rows: list[dict], out: Path) -> None:
    """MSE/QCRB against steps, one line per (run, nbar)."""
    series: dict[str, tuple[list[float], list[float]]] = {}
    for row in sorted(rows, key=lambda r: (r["run"], r["nbar"], r["steps"])):
        xs, ys = series.setdefault(f"{Path(row['run']).name}, nbar {row['nbar']:g}", ([], []))
        xs.append(row["steps"])
        ys.append(row["mse_over_qcrb"])
    figure = figures.curves(series, xlabel="training steps (batches of 32)", ylabel="U-Net MSE / QCRB",
                            title="qcrb_sinusoid: U-Net MSE over the QCRB against training")
    figures.save_figure(figure, out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["evaluate", "figure"])
    parser.add_argument("runs", nargs="*", help="run folders (evaluate)")
    parser.add_argument("--curve", required=True, type=Path, help="JSON-lines file the rows are appended to")
    parser.add_argument("--out", type=Path, default=Path("mse_over_qcrb_vs_steps.png"), help="figure path (figure)")
    arguments = parser.parse_args()
    rows = read_curve(arguments.curve)
    if arguments.action == "figure":
        draw(rows, arguments.out)
        return
    done = {(row["run"], row["denoiser"], row["epoch"]) for row in rows}
    for path in arguments.runs:
        for row in evaluate_run(path, done):
            print(json.dumps(row), flush=True)
            with arguments.curve.open("a") as stream:
                stream.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
