"""Throughput and peak memory of quantum layers on every local backend, measured in one run.

    python benchmarks/quantum_layer.py [--repeats 5] [--aer-batch 16]

Cases: the QIREN layer (8 qubits, L = 2, K = 2, batch 1024) and the bottleneck layer (8 and 12
qubits, 3 layers, batch 64), forward + backward of ``sum(outputs @ r)``. Each (case, backend) runs
in a fresh process so that its peak resident memory (above the process's baseline after imports)
is its own. Backends that run one circuit per sample cost time linear in the batch, so they are
timed on fewer samples and reported per sample: lightning.qubit (adjoint) on at most
``--per-sample-batch`` samples, Qiskit Aer (parameter shift: two circuits per weight per sample)
forward-only on ``--aer-batch`` samples.
Times are medians; the machine is shared, so compare ratios from the same run.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource

CASES = {
    "QIREN layer (8 qubits, L=2, K=2, batch 1024)": ("qiren", 8, 1024),
    "bottleneck (8 qubits, 3 layers, batch 64)": ("bottleneck", 8, 64),
    "bottleneck (12 qubits, 3 layers, batch 64)": ("bottleneck", 12, 64),
}
BACKENDS = ("fast", "default_qubit", "lightning", "aer_statevector")


def measure(template_kind: str, n_qubits: int, batch: int, backend: str, repeats: int, limits: dict, queue) -> None:
    import torch

    from qml_imaging.quantum.circuits import bottleneck_ansatz, qiren_block
    from qml_imaging.quantum.layer import QuantumLayer
    from qml_imaging.reporting.stats import median_seconds

    torch.manual_seed(0)
    template = qiren_block(n_qubits) if template_kind == "qiren" else bottleneck_ansatz(n_qubits, layers=3)
    layer = QuantumLayer(template, backend)
    forward_only = backend == "aer_statevector"
    samples = min(batch, limits.get(backend, batch))
    inputs = torch.rand(samples, n_qubits) * 2 - 1
    projection = torch.randn(n_qubits)

    def step() -> None:
        if forward_only:
            with torch.no_grad():
                layer(inputs)
        else:
            layer.zero_grad()
            (layer(inputs) @ projection).sum().backward()

    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    seconds = median_seconds(step, repeats, warmup=1)  # warm-up: QNode construction, compiled plans
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    queue.put({"seconds": seconds, "samples_per_second": samples / seconds,
               "peak_mib": max(peak - baseline, 0) / 1024, "forward_only": forward_only, "samples": samples})


def run_case(case: tuple[str, int, int], backend: str, repeats: int, limits: dict) -> dict:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=measure, args=(*case, backend, repeats, limits, queue))
    process.start()
    result = queue.get()
    process.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--aer-batch", type=int, default=16)
    parser.add_argument("--per-sample-batch", type=int, default=128)
    arguments = parser.parse_args()
    limits = {"aer_statevector": arguments.aer_batch, "lightning": arguments.per_sample_batch}
    results = {}
    print(f"{'case':46s} {'backend':16s} {'median s':>10s} {'samples/s':>12s} {'peak MiB':>9s}")
    for label, case in CASES.items():
        for backend in BACKENDS:
            repeats = arguments.repeats if backend == "fast" else max(1, min(arguments.repeats, 3))
            result = run_case(case, backend, repeats, limits)
            results[label, backend] = result
            note = f"  ({'forward only, ' if result['forward_only'] else ''}{result['samples']} samples)"
            print(f"{label:46s} {backend:16s} {result['seconds']:10.4f} {result['samples_per_second']:12.1f} "
                  f"{result['peak_mib']:9.1f}{note}", flush=True)
    for label in CASES:
        for peer in ("default_qubit", "lightning"):
            ratio = results[label, "fast"]["samples_per_second"] / results[label, peer]["samples_per_second"]
            print(f"throughput fast / {peer} ({label}): {ratio:.1f}x")
    qiren = next(iter(CASES))
    ratio = results[qiren, "fast"]["samples_per_second"] / results[qiren, "default_qubit"]["samples_per_second"]
    print(f"speedup fast vs default.qubit (QIREN layer): {ratio:.1f}x")


if __name__ == "__main__":
    main()
