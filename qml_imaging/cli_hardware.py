"""``qml-imaging hardware ...``: evaluate a trained QIREN on IBM Runtime (or a fake backend).

    qml-imaging hardware backends
    qml-imaging hardware plan RUN_DIR --backend NAME [--fit IMAGE/MODEL/seedN] [--n-coordinates N]
    qml-imaging hardware submit RUN_DIR --backend NAME [--fit ...] [--n-coordinates N] [--detach]
    qml-imaging hardware status EVAL_DIR
    qml-imaging hardware fetch EVAL_DIR [--no-wait]
    qml-imaging hardware noise-bank --backend SPEC --size N --out BANK.npz [--qubits Q] [--seed S]

``RUN_DIR`` is a finished ``inr_image`` run; ``submit`` makes the evaluation folder
``RUN_DIR/hardware/<backend>`` (an ``inr_runtime`` run) and prints it. ``--detach`` returns after
the first submission; ``fetch`` continues from the job store, whichever process submitted.
``noise-bank`` measures qubits in |+> on the executor of any backend spec (``fast``, ``aer_shots``,
``ibm_fake_brisbane``, an IBM / Fake* device name or a YAML path) and stores the Gaussian noise bank
that ``diffusion_fewshot`` reads through ``noise.bank``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from qml_imaging.config import ExperimentConfig, validate
from qml_imaging.extras import QISKIT_MODULES, check
from qml_imaging.limits import MAX_NOISE_NORMALS, check_bytes, check_count, integer
from qml_imaging.quantum.backends import MAX_SIMULATED_QUBITS, SIMULATOR_MAX_QUBITS, backend_spec
from qml_imaging.runs import RunDir


def add_hardware_commands(commands) -> None:
    """Register ``hardware`` and its sub-commands on the main parser's ``commands``."""
    hardware = commands.add_parser("hardware", help="IBM Runtime: backends, plan, submit, status, fetch")
    actions = hardware.add_subparsers(dest="hardware_command", required=True)
    actions.add_parser("backends", help="fake backends and, with credentials, your IBM backends").set_defaults(
        handler=_backends)
    for name, handler, text in (("plan", _plan, "transpile and count circuits, shots and jobs; submit nothing"),
                                ("submit", _submit, "submit a fitted QIREN's layers, one Estimator job each")):
        action = actions.add_parser(name, help=text)
        action.add_argument("run_dir", help="a finished inr_image run folder")
        action.add_argument("--backend", required=True, help="hardware_configs/ibm_*.yaml name, IBM or Fake* name")
        action.add_argument("--fit", default="camera/qiren/seed0", help="IMAGE/MODEL/seedN of the QIREN fit")
        action.add_argument("--n-coordinates", type=integer, default=None, help="random pixels (default: all)")
        action.set_defaults(handler=handler)
    actions.choices["submit"].add_argument("--detach", action="store_true", help="return after the first submission")
    status = actions.add_parser("status", help="state of every layer's job")
    status.add_argument("eval_dir")
    status.set_defaults(handler=_status)
    fetch = actions.add_parser("fetch", help="fetch finished jobs (each once) and continue the evaluation")
    fetch.add_argument("eval_dir")
    fetch.add_argument("--no-wait", action="store_true", help="do not wait for running jobs")
    fetch.set_defaults(handler=_fetch)
    bank = actions.add_parser("noise-bank", help="measure qubits and store a Gaussian noise bank (.npz)")
    bank.add_argument("--backend", required=True,
                      help="backend spec: fast, a hardware_configs name (aer_shots), an IBM or Fake* device name, a YAML path")
    bank.add_argument("--size", type=integer, required=True,
                      help=f"standard normals to store (100 to {MAX_NOISE_NORMALS:,})")
    bank.add_argument("--out", required=True, help="the .npz file to write")
    bank.add_argument("--qubits", type=integer, default=16, help="qubits measured per shot (at most the device's)")
    bank.add_argument("--seed", type=integer, default=None, help="simulator seed (fast, aer, Fake*)")
    bank.add_argument("--no-debias", action="store_true", help="skip von Neumann debiasing (keeps readout bias)")
    bank.set_defaults(handler=_noise_bank)


_EVALUATION_FOLDER = "the evaluation folder RUN_DIR/hardware/<backend> that `qml-imaging hardware submit` made"
_SOURCE_RUN = "a finished run of experiments/qiren_image.yaml or another inr_image config"


def _evaluation_config(arguments: argparse.Namespace) -> ExperimentConfig:
    from qml_imaging.pipelines.inr.config import InrRuntimeConfig

    if arguments.n_coordinates is not None:
        check_count("--n-coordinates", arguments.n_coordinates, 1, 2**31 - 1, "random pixels of the fitted image")

    return validate(InrRuntimeConfig, {"experiment": "inr_runtime", "name": f"hardware-{Path(arguments.backend).stem}",
                                       "description": f"{arguments.fit} of {arguments.run_dir} on {arguments.backend}",
                                       "source_run": str(arguments.run_dir), "fit": arguments.fit,
                                       "backend": arguments.backend, "n_coordinates": arguments.n_coordinates},
                    "hardware evaluation")


def _backends(arguments: argparse.Namespace) -> int:
    check("`qml-imaging hardware backends`", *QISKIT_MODULES)
    from qml_imaging.quantum.hardware import list_backends

    for row in list_backends():
        queue = f"  queue {row['pending_jobs']}" if row.get("pending_jobs") is not None else ""
        print(f"{row['name']:<24} {row['qubits']:>4} qubits  {row['kind']}{queue}")
    return 0


def _plan(arguments: argparse.Namespace) -> int:
    from qml_imaging.pipelines.inr.runtime import prepare

    config = _evaluation_config(arguments)
    RunDir.open(arguments.run_dir, experiments=("inr_image",), hint=_SOURCE_RUN)
    evaluation, _ = prepare(config, RunDir(Path(arguments.run_dir) / "hardware" / "plan-only", config))
    print(json.dumps(evaluation.plan(), indent=1))
    return 0


def _submit(arguments: argparse.Namespace) -> int:
    from qml_imaging.pipelines.inr.runtime import run

    config = _evaluation_config(arguments)
    RunDir.open(arguments.run_dir, experiments=("inr_image",), hint=_SOURCE_RUN)
    folder = Path(arguments.run_dir) / "hardware" / Path(arguments.backend).stem
    if (folder / "config.yaml").is_file():
        raise FileExistsError(f"{folder} already holds this evaluation; continue it with "
                              f"`qml-imaging hardware fetch {folder}`")
    evaluation = RunDir.create(config, folder, lock=True)

    def submit():
        try:
            return run(config, evaluation, wait=not arguments.detach)
        except Exception:
            evaluation.discard_if_unused()  # nothing submitted yet: leave no folder that blocks a retry
            raise

    return _advance(submit, folder)


def _status(arguments: argparse.Namespace) -> int:
    from qml_imaging.pipelines.inr.runtime import prepare

    run_dir = RunDir.open(arguments.eval_dir, experiments=("inr_runtime",), hint=_EVALUATION_FOLDER)
    evaluation, _ = prepare(run_dir.config, run_dir)
    for row in evaluation.status():
        live = f" ({row['service_status']})" if "service_status" in row else ""
        failures = f"; failed: {row['failures']}" if row["failures"] else ""
        unrecorded = (f"; submission under tag {row['unrecorded_tag']} not recorded (fetch looks it up)"
                      if "unrecorded_tag" in row else "")
        print(f"layer {row['layer']}: {row['state']}{live}  jobs {row['jobs']}{failures}{unrecorded}")
    return 0


def _fetch(arguments: argparse.Namespace) -> int:
    from qml_imaging.pipelines.inr.runtime import run

    run_dir = RunDir.open(arguments.eval_dir, experiments=("inr_runtime",), hint=_EVALUATION_FOLDER, lock=True)
    return _advance(lambda: run(run_dir.config, run_dir, wait=not arguments.no_wait), run_dir.path)


def _advance(evaluate, folder: Path) -> int:
    """Run ``evaluate`` (submit or fetch) and print its summary; Ctrl-C leaves submitted jobs running."""
    try:
        summary = evaluate()
    except KeyboardInterrupt:
        print(f"\ninterrupted; submitted jobs keep running; continue with: qml-imaging hardware fetch {folder}",
              file=sys.stderr)
        return 130
    print(json.dumps(summary, indent=1, default=str))
    print(f"evaluation folder: {folder}", file=sys.stderr)
    return 0


def _noise_bank(arguments: argparse.Namespace) -> int:
    from qml_imaging.quantum.noise import NoiseBank, noise_statistics

    check_count("--size", arguments.size, 100, MAX_NOISE_NORMALS, "normals: the statistics need 100; a bank "
                "is held in memory")
    check_count("--qubits", arguments.qubits, 1, max(MAX_SIMULATED_QUBITS, *SIMULATOR_MAX_QUBITS.values(), 1000),
                "qubits measured per shot")
    spec = backend_spec(arguments.backend)
    check_bytes(f"a bank of {arguments.size:,} normals", 3 * 4 * arguments.size, "ask for a smaller --size")
    bank = NoiseBank.generate(arguments.size, spec, n_qubits=arguments.qubits, debias=not arguments.no_debias,
                              seed=arguments.seed)
    bank.save(arguments.out)
    print(json.dumps({**bank.provenance, **noise_statistics(bank.samples), "out": arguments.out}, indent=1))
    return 0
