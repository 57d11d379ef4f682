"""Hardware-native QIREN (CZ chain on a device's best qubit path) against the authors' QIREN (CZ rings), on fake devices.

    python benchmarks/hardware_native_qiren.py [--out runs/hardware_native] [--size 32] [--pixels 64]
        [--devices FakeBrisbane FakeTorino] [--shots 4096] [--source RUN_FOLDER]

1. ``qml-imaging run experiments/qiren_native.yaml size=SIZE``: both QIRENs (657 parameters each) fitted to
   the camera image on the exact simulator (skipped with ``--source``, an existing run of that config).
2. For each fit, device and readout mitigation (off / on): ``qml-imaging run experiments/qiren_runtime.yaml``
   on ``--pixels`` random pixels (the same for every row), through IBM Runtime EstimatorV2 in local
   testing mode (the fake device's noise on Aer), one job per quantum layer, ``--shots`` shots.

Each row: ISA two-qubit gates and depth of one quantum layer's circuit, the exact simulation's MSE to the image (all pixels, from step 1), MSE of the device's
prediction against the exact prediction and against the image, per-layer damping of <Z>, wall seconds.
Writes ``OUT/table.md`` and ``OUT/results.json``; every run folder stays under ``OUT``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

MODELS = ("qiren", "qiren_chain")
REP_DELAY_SECONDS = 250e-6
"""Default repetition delay of IBM Eagle and Heron devices (``configuration().default_rep_delay`` of FakeBrisbane
and FakeTorino)."""


def cli(*arguments: str) -> None:
    """``qml-imaging ARGUMENTS`` in a child process (this interpreter), failing loudly."""
    subprocess.run([sys.executable, "-m", "qml_imaging.cli", *arguments], check=True, stdout=subprocess.DEVNULL)


def spec_file(folder: Path, device: str, shots: int, mitigation: bool) -> Path:
    """A backend spec YAML for ``device`` in local testing mode, with or without readout mitigation."""
    path = folder / f"{device}_{'mitigated' if mitigation else 'raw'}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"backend: ibm\ndevice_name: {device}\nshots: {shots}\nseed: 1234\noptimization_level: 1\n"
                    f"readout_mitigation: {str(mitigation).lower()}\nruntime: {{mode: batch, poll_seconds: 1}}\n")
    return path


def evaluate(out: Path, source: Path, model: str, device: str, mitigation: bool, arguments) -> dict:
    """One Runtime evaluation (reused when its report exists) as a table row."""
    folder = out / f"{model}_{device}_{'mitigated' if mitigation else 'raw'}"
    if not (folder / "report.json").is_file():
        spec = spec_file(out / "specs", device, arguments.shots, mitigation)
        cli("run", "experiments/qiren_runtime.yaml", f"source_run={source}", f"fit=camera/{model}/seed0",
            f"backend={spec}", f"n_coordinates={arguments.pixels}", "--out", str(folder))
    report = json.loads((folder / "report.json").read_text())
    summary, layer = report["summary"], report["details"]["plan"]["layers"][0]
    fit = json.loads((source / "report.json").read_text())["summary"]["mse"]["camera"][model][0]
    return {"model": model, "device": device, "readout_mitigation": mitigation,
            "two_qubit_gates_per_layer": layer["two_qubit_gates"], "depth_per_layer": layer["depth"],
            "physical_qubits": layer["physical_qubits"], "exact_mse_vs_image_all_pixels": fit,
            "exact_mse_vs_image": summary["exact_mse_vs_image"], "mse_vs_exact": summary["mse_vs_exact"],
            "mse_vs_image": summary["mse_vs_image"],
            "damping": [round(row["damping"], 3) for row in summary["layer_agreement"]],
            "wall_seconds": summary["wall_seconds"], "layers": summary["layers"], "circuit_seconds": circuit_seconds(folder, device)}


def circuit_seconds(folder: Path, device: str) -> float:
    """Longest estimated duration (s) of the submitted layer circuits on ``device``, one readout included
    (``QuantumCircuit.estimate_duration`` with the device's gate durations)."""
    from qml_imaging.quantum.ibm import fake_device
    from qml_imaging.quantum.isa import IsaCircuit

    target = fake_device(device).target
    readout = max(properties.duration for properties in target["measure"].values())
    durations = []
    for path in sorted((folder / "circuits").glob("layer*.qpy")):
        circuit = IsaCircuit.load(path, "layer", 0).circuit
        bound = circuit.assign_parameters([0.0] * circuit.num_parameters)
        durations.append(bound.estimate_duration(target, unit="s") + readout)
    return max(durations)


def qpu_seconds(row: dict, pixels: int, shots: int) -> float:
    """Estimated QPU time (s) of one evaluation on the real device: its layers (one job each) x ``pixels``
    parameter sets x ``shots`` shots x (circuit + readout + the default repetition delay)."""
    return row["layers"] * pixels * shots * (row["circuit_seconds"] + REP_DELAY_SECONDS)


def cost_table(rows: list[dict], pixels: int, image_pixels: int, shots: int) -> str:
    """Jobs, shots and estimated QPU seconds per model and device (the rows without mitigation: it adds none)."""
    lines = ["| model | device | jobs | circuit + readout (us) | shots | QPU s, "
             f"{pixels} pixels | QPU s, all {image_pixels} pixels |", "|---" * 7 + "|"]
    for row in rows:
        if not row["readout_mitigation"]:
            lines.append(f"| {row['model']} | {row['device']} | {row['layers']} | {row['circuit_seconds'] * 1e6:.1f} "
                         f"| {row['layers'] * pixels * shots:,} | {qpu_seconds(row, pixels, shots):.0f} "
                         f"| {qpu_seconds(row, image_pixels, shots):.0f} |")
    return "\n".join(lines) + "\n"


def table(rows: list[dict]) -> str:
    """The rows as a Markdown table."""
    lines = ["| model | device | readout mitigation | 2q gates / layer | depth / layer | exact MSE (image) "
             "| MSE vs exact | MSE vs image | damping per layer | seconds |", "|---" * 10 + "|"]
    for row in rows:
        lines.append(f"| {row['model']} | {row['device']} | {'on' if row['readout_mitigation'] else 'off'} "
                     f"| {row['two_qubit_gates_per_layer']} | {row['depth_per_layer']} "
                     f"| {row['exact_mse_vs_image_all_pixels']:.5f} | **{row['mse_vs_exact']:.4f}** "
                     f"| {row['mse_vs_image']:.4f} | {' / '.join(f'{d:.2f}' for d in row['damping'])} "
                     f"| {row['wall_seconds']:.0f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/hardware_native"))
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--pixels", type=int, default=64)
    parser.add_argument("--shots", type=int, default=4096)
    parser.add_argument("--devices", nargs="+", default=["FakeBrisbane", "FakeTorino"])
    parser.add_argument("--source", type=Path, default=None, help="an existing run of experiments/qiren_native.yaml")
    arguments = parser.parse_args()
    out = arguments.out.resolve()
    source = arguments.source.resolve() if arguments.source else out / "fit"
    if not (source / "report.json").is_file():
        cli("run", "experiments/qiren_native.yaml", f"size={arguments.size}", "--out", str(source))
    rows = []
    for device in arguments.devices:
        for model in MODELS:
            for mitigation in (False, True):
                rows.append(evaluate(out, source, model, device, mitigation, arguments))
                print(table(rows[-1:]).splitlines()[-1], flush=True)
    (out / "results.json").write_text(json.dumps(rows, indent=1) + "\n")
    text = table(rows) + "\n" + cost_table(rows, arguments.pixels, arguments.size ** 2, arguments.shots)
    (out / "table.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
