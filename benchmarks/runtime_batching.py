"""One Estimator PUB per layer against one job per parameter set, on a fake IBM backend, in one run.

    python benchmarks/runtime_batching.py [--batch 64] [--repeats 3] [--backend FakeManilaV2]

A QIREN layer (4 qubits, L = 2, K = 2) is evaluated on ``--batch`` inputs through IBM Runtime's
EstimatorV2 in local testing mode: (a) batched, the whole batch as the parameter array of one PUB
(what ``qml-imaging hardware`` submits); (b) per sample, one job per parameter set (what a
per-circuit device such as PennyLane's ``qiskit.remote`` submits). Both transpile once. Times are
medians over ``--repeats``; on hardware each job also waits in the queue, so the job count matters
more than these local seconds.
"""

from __future__ import annotations

import argparse

import torch
from timing import median_seconds

from qml_imaging.quantum.backends import BackendSpec
from qml_imaging.quantum.circuits import qiren_block
from qml_imaging.quantum.isa import transpile_template
from qml_imaging.quantum.runtime import LocalJobService


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backend", default="FakeManilaV2")
    arguments = parser.parse_args()

    torch.manual_seed(0)
    template = qiren_block(4, reuploads=2, sublayers=2)
    weights = (2 * torch.rand(template.weight_shape, dtype=torch.float64) - 1) * torch.pi
    inputs = (2 * torch.rand(arguments.batch, 4, dtype=torch.float64) - 1).numpy()
    jobs = LocalJobService(BackendSpec(backend="ibm", device_name=arguments.backend, shots=4096, seed=1))
    isa = transpile_template(template, weights, jobs.device)

    batched = median_seconds(lambda: jobs.submit([isa.pub(inputs)]), arguments.repeats)
    per_sample = median_seconds(lambda: [jobs.submit([isa.pub(row[None])]) for row in inputs], arguments.repeats)
    print(f"{arguments.backend}, QIREN layer 4 qubits, {arguments.batch} parameter sets, 4096 shots, "
          f"median of {arguments.repeats}")
    print(f"  one PUB (1 job)            {batched:8.2f} s")
    print(f"  one job per parameter set  {per_sample:8.2f} s  ({arguments.batch} jobs)")
    print(f"  ratio per-sample / batched {per_sample / batched:8.2f}x")


if __name__ == "__main__":
    main()
