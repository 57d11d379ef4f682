"""The fast backend against every peer a user would compare it with, in one run.

    python benchmarks/quantum_layer.py [--repeats 5] [--per-sample-batch 32] [--cases qiren8,bn16]

Peers: PennyLane default.qubit (backprop), lightning.qubit (adjoint), pyqtorch and torchquantum
(``pip install -e ".[bench]"``; a peer that cannot be imported is reported as missing, with why).
PennyLane's front door: ``TorchLayer/<device>`` rows run the same template functions as a
``qml.qnn.TorchLayer`` over a QNode on ``qml.device("qml_imaging.fast")``, default.qubit and
lightning.qubit, and are compared with the ``TorchLayer/qml_imaging.fast`` row.
Cases: the QIREN layer at 8 and 12 qubits (L = 2, K = 2, batch 1024) and the diffusion bottleneck at
8, 12 and 16 qubits (3 layers, ring, batch 64); forward + backward of ``sum(outputs @ r)``, float32
inputs. Before it is timed, every peer's outputs on 4 samples are checked against the fast backend's
in float64 (to 1e-5); a peer that disagrees is reported and not timed. The floor is the QIREN
layer's own two dense ``2^n x 2^n`` matrix products, forward and backward (6 GEMMs); it is timed in
rounds alternating with the fast backend in one process, and "fast / floor" is the median of the
rounds' ratios. When a GPU is present, CUDA rows (fast, pyqtorch, floor) follow the CPU rows.

Each (case, backend) runs in a fresh process so that its peak resident memory (above the process's
baseline after imports) is its own. lightning.qubit runs one circuit per sample, so it is timed on
``--per-sample-batch`` samples and its time scaled to the case's batch (marked ``scaled``).
Times are medians; the machine may be shared, so compare ratios from the same run.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import resource

CASES = {
    "qiren8": ("QIREN layer (8 qubits, L=2, K=2, batch 1024)", "qiren", 8, 1024),
    "qiren12": ("QIREN layer (12 qubits, L=2, K=2, batch 1024)", "qiren", 12, 1024),
    "bn8": ("bottleneck (8 qubits, 3 layers, batch 64)", "bottleneck", 8, 64),
    "bn12": ("bottleneck (12 qubits, 3 layers, batch 64)", "bottleneck", 12, 64),
    "bn16": ("bottleneck (16 qubits, 3 layers, batch 64)", "bottleneck", 16, 64),
}
TORCHLAYER = "TorchLayer/"
FRONT_DOOR = tuple(TORCHLAYER + name for name in ("qml_imaging.fast", "default.qubit", "lightning.qubit"))
PEERS = ("default.qubit", "lightning.qubit", "pyqtorch", "torchquantum", *FRONT_DOOR)
PER_SAMPLE = ("lightning.qubit", TORCHLAYER + "lightning.qubit")
AGREEMENT = 1e-5


def _template(kind: str, n_qubits: int):
    from qml_imaging.quantum.circuits import bottleneck_ansatz, qiren_block

    return qiren_block(n_qubits) if kind == "qiren" else bottleneck_ansatz(n_qubits, layers=3)


# ------------------------------------------------------------------------------------------ peers
# Each peer maps (angles (B, n) float, weights) -> <Z_j> (B, n); angles are already scaled.


def _ring_ranges(n_qubits: int, sublayers: int) -> list[int]:
    """StronglyEntanglingLayers' default ranges: sub-layer l couples i and i + (l mod (n-1)) + 1."""
    return [(layer % (n_qubits - 1)) + 1 for layer in range(sublayers)] if n_qubits > 1 else [0] * sublayers


def _pyqtorch_runner(kind: str, n_qubits: int, weight_shape, device):
    import pyqtorch as pyq
    import torch

    operations, names = [], []

    def parameter(name):
        names.append(name)
        return name

    if kind == "qiren":
        blocks, sublayers = weight_shape[0], weight_shape[1]
        for block in range(blocks):
            for sub, r in enumerate(_ring_ranges(n_qubits, sublayers)):
                for wire in range(n_qubits):
                    operations += [pyq.RZ(wire, parameter(f"w_{block}_{sub}_{wire}_0")),
                                   pyq.RY(wire, parameter(f"w_{block}_{sub}_{wire}_1")),
                                   pyq.RZ(wire, parameter(f"w_{block}_{sub}_{wire}_2"))]
                for wire in range(n_qubits):
                    operations.append(pyq.CZ(wire, (wire + r) % n_qubits))
            if block < blocks - 1:
                operations += [pyq.RZ(wire, parameter(f"x_{wire}")) for wire in range(n_qubits)]
    else:
        layers = weight_shape[0]
        operations += [pyq.RY(wire, parameter(f"x_{wire}")) for wire in range(n_qubits)]
        pairs = [(j, j + 1) for j in range(n_qubits - 1)] + ([(n_qubits - 1, 0)] if n_qubits > 2 else [])
        for layer in range(layers):
            for wire in range(n_qubits):
                operations += [pyq.RZ(wire, parameter(f"w_{layer}_{wire}_0")),
                               pyq.RY(wire, parameter(f"w_{layer}_{wire}_1"))]
            operations += [pyq.CNOT(control, target) for control, target in pairs]
    circuit = pyq.QuantumCircuit(n_qubits, operations).to(device)

    def run(angles, weights):
        complex_dtype = torch.complex128 if angles.dtype == torch.float64 else torch.complex64
        flat = weights.reshape(-1)
        values = {f"x_{wire}": angles[:, wire] for wire in range(n_qubits)}
        index = 0
        for name in names:
            if name.startswith("w_") and name not in values:
                values[name] = flat[index]
                index += 1
        state = pyq.zero_state(n_qubits, batch_size=angles.shape[0], device=device, dtype=complex_dtype)
        final = pyq.run(circuit.to(dtype=complex_dtype), state, values)  # (2,)*n + (B,)
        probabilities = (final.real**2 + final.imag**2).reshape(2**n_qubits, -1).transpose(0, 1)
        return probabilities.to(angles.dtype) @ _z_table(n_qubits, angles.dtype, device)

    return run


def _z_table(n_qubits, dtype, device):
    import torch

    states = torch.arange(2**n_qubits, device=device)
    bits = (states.unsqueeze(1) >> torch.arange(n_qubits - 1, -1, -1, device=device)) & 1
    return (1 - 2 * bits).to(dtype)


def _torchquantum_runner(kind: str, n_qubits: int, weight_shape, device):
    import torchquantum as tq
    import torchquantum.functional as tqf

    def run(angles, weights):
        qdev = tq.QuantumDevice(n_wires=n_qubits, bsz=angles.shape[0], device=device)
        flat = weights.reshape(-1)
        index = 0
        if kind == "qiren":
            blocks, sublayers = weight_shape[0], weight_shape[1]
            for block in range(blocks):
                for r in _ring_ranges(n_qubits, sublayers):
                    for wire in range(n_qubits):
                        for gate, k in ((tqf.rz, 0), (tqf.ry, 1), (tqf.rz, 2)):
                            gate(qdev, wires=wire, params=flat[index + k].reshape(1, 1))
                        index += 3
                    for wire in range(n_qubits):
                        tqf.cz(qdev, wires=[wire, (wire + r) % n_qubits])
                if block < blocks - 1:
                    for wire in range(n_qubits):
                        tqf.rz(qdev, wires=wire, params=angles[:, wire:wire + 1])
        else:
            for wire in range(n_qubits):
                tqf.ry(qdev, wires=wire, params=angles[:, wire:wire + 1])
            pairs = [(j, j + 1) for j in range(n_qubits - 1)] + ([(n_qubits - 1, 0)] if n_qubits > 2 else [])
            for _ in range(weight_shape[0]):
                for wire in range(n_qubits):
                    tqf.rz(qdev, wires=wire, params=flat[index].reshape(1, 1))
                    tqf.ry(qdev, wires=wire, params=flat[index + 1].reshape(1, 1))
                    index += 2
                for control, target in pairs:
                    tqf.cnot(qdev, wires=[control, target])
        state = qdev.get_states_1d()
        probabilities = state.real**2 + state.imag**2
        return probabilities.to(angles.dtype) @ _z_table(n_qubits, angles.dtype, device)

    return run


def _torchlayer_runner(device_name: str, template):
    """PennyLane's front door: ``qml.qnn.TorchLayer`` over a QNode of the template on ``qml.device(device_name)``
    (its default differentiation: backprop on qml_imaging.fast and default.qubit, adjoint on lightning.qubit)."""
    import pennylane as qml

    qnode = qml.QNode(template.function, qml.device(device_name, wires=template.n_qubits), interface="torch")
    layer = qml.qnn.TorchLayer(qnode, {"weights": template.weight_shape})

    def run(angles, weights):
        layer.qnode_weights["weights"] = weights  # the step's own weights, so their gradient is timed too
        return layer(angles).to(angles.dtype)

    return run


def _runner(backend: str, template, device):
    """``run(angles, weights)`` for a backend; angles are scaled inputs (what the circuit sees)."""
    kind = "qiren" if template.name == "qiren" else "bottleneck"
    if backend.startswith(TORCHLAYER):
        return _torchlayer_runner(backend.removeprefix(TORCHLAYER), template)
    if backend == "pyqtorch":
        return _pyqtorch_runner(kind, template.n_qubits, template.weight_shape, device)
    if backend == "torchquantum":
        return _torchquantum_runner(kind, template.n_qubits, template.weight_shape, device)
    from qml_imaging.quantum.backends import backend_spec
    from qml_imaging.quantum.factory import make_executor

    executor = make_executor(backend_spec(backend))

    def run(angles, weights):
        return executor.expvals(template, angles, weights).to(angles.dtype)

    return run


# ------------------------------------------------------------------------------------------ measuring


def measure(case: str, backend: str, device_name: str, repeats: int, per_sample_batch: int, queue) -> None:
    try:
        queue.put(_measure(case, backend, device_name, repeats, per_sample_batch))
    except ImportError as error:
        queue.put({"missing": f"{type(error).__name__}: {error}"})
    except Exception as error:  # reported in the table, the run goes on
        queue.put({"failed": f"{type(error).__name__}: {str(error)[:160]}"})


def _measure(case: str, backend: str, device_name: str, repeats: int, per_sample_batch: int) -> dict:
    import torch

    from qml_imaging.reporting.stats import median_seconds

    torch.set_num_threads(max(1, torch.get_num_threads()))
    _, kind, n_qubits, batch = CASES[case]
    device = torch.device(device_name)
    template = _template(kind, n_qubits)
    generator = torch.Generator().manual_seed(0)
    weights = ((2 * torch.rand(template.weight_shape, generator=generator) - 1) * math.pi).to(device)
    angles = ((2 * torch.rand(batch, n_qubits, generator=generator) - 1) * template.input_scale).to(device)
    projection = torch.randn(n_qubits, generator=generator).to(device)
    if backend == "floor":
        fast_step = _step(_runner("fast", template, device), angles, weights, projection)
        return _floor(n_qubits, batch, device, repeats, fast_step)
    run = _runner(backend, template, device)
    # agreement first: 4 samples, float64, against the fast backend
    reference = _runner("fast", template, device)(angles[:4].double(), weights.double())
    peer = run(angles[:4].double(), weights.double())
    deviation = (peer.double() - reference).abs().max().item()
    if deviation > AGREEMENT:
        return {"failed": f"disagrees with the fast backend by {deviation:.1e}"}
    samples = min(batch, per_sample_batch) if backend in PER_SAMPLE else batch
    step = _step(run, angles[:samples], weights, projection)
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    seconds = median_seconds(step, repeats, warmup=1)  # warm-up: plans, QNodes, kernels
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"seconds": seconds * batch / samples, "scaled": samples != batch, "deviation": deviation,
            "peak_mib": max(peak - baseline, 0) / 1024}


def _step(run, angles, weights, projection):
    """One forward + backward of ``sum(run(x, w) @ projection)`` with gradients for inputs and weights."""
    import torch

    x = angles.clone().requires_grad_()
    w = weights.clone().requires_grad_()

    def step() -> None:
        x.grad = w.grad = None
        (run(x, w) @ projection).sum().backward()
        if x.device.type == "cuda":
            torch.cuda.synchronize()

    return step


def _floor(n_qubits: int, batch: int, device, repeats: int, fast_step) -> dict:
    """Two dense products ``(B, 2^n) @ (2^n, 2^n)``, forward and backward (the QIREN layer's own),
    timed in rounds alternating with the fast backend's step in the same process; ``ratio`` is the
    median over rounds of fast / floor (on a shared machine both see the same load in a round)."""
    import statistics
    import time

    import torch

    dimension = 2**n_qubits
    state = torch.randn(batch, dimension, dtype=torch.complex64, device=device, requires_grad=True)
    first = torch.randn(dimension, dimension, dtype=torch.complex64, device=device, requires_grad=True)
    second = torch.randn(dimension, dimension, dtype=torch.complex64, device=device, requires_grad=True)

    def floor() -> None:
        state.grad = first.grad = second.grad = None
        out = (state @ first) @ second
        torch.view_as_real(out).sum().backward()
        if device.type == "cuda":
            torch.cuda.synchronize()

    def seconds(function) -> float:
        started = time.perf_counter()
        function()
        return time.perf_counter() - started

    floor(), fast_step()  # warm-up: plans, kernels
    rounds = [(seconds(fast_step), seconds(floor)) for _ in range(max(4 * repeats, 20))]
    return {"seconds": statistics.median(f for _, f in rounds), "scaled": False, "deviation": 0.0, "peak_mib": 0.0,
            "ratio": statistics.median(fast / f for fast, f in rounds)}


def run_case(case: str, backend: str, device: str, repeats: int, per_sample_batch: int) -> dict:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=measure, args=(case, backend, device, repeats, per_sample_batch, queue))
    process.start()
    result = queue.get()
    process.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--per-sample-batch", type=int, default=32)
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated subset of " + ", ".join(CASES))
    parser.add_argument("--peers", default=",".join(PEERS), help="comma-separated subset of " + ", ".join(PEERS))
    arguments = parser.parse_args()
    import torch

    cases = [c for c in arguments.cases.split(",") if c]
    peers = [p for p in arguments.peers.split(",") if p]
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"{'device':6s} {'case':48s} {'backend':28s} {'median s':>10s} {'peak MiB':>9s}  fast is")
    for device in devices:
        for case in cases:
            backends = ["fast"] + (["floor"] if CASES[case][1] == "qiren" and CASES[case][2] <= 11 else [])
            backends += peers if device == "cpu" else [p for p in peers if p in ("pyqtorch", "torchquantum")]
            _run_rows(device, case, backends, arguments)


def _run_rows(device: str, case: str, backends: list[str], arguments) -> None:
    """One table row per backend; a TorchLayer row is compared with TorchLayer over qml_imaging.fast."""
    label = CASES[case][0]
    reference: dict[str, float] = {}
    for backend in backends:
        slow = "default.qubit" in backend or "lightning.qubit" in backend or CASES[case][2] >= 16
        repeats = arguments.repeats if not slow else max(1, min(arguments.repeats, 3))
        result = run_case(case, backend, device, repeats, arguments.per_sample_batch)
        if "missing" in result or "failed" in result:
            status = "MISSING" if "missing" in result else "FAILED"
            print(f"{device:6s} {label:48s} {backend:28s} {status:>10s}  {result.get('missing') or result['failed']}",
                  flush=True)
            continue
        seconds = result["seconds"]
        kind = "front door" if backend.startswith(TORCHLAYER) else "layer"
        if backend in ("fast", FRONT_DOOR[0]):
            reference[kind], note = seconds, ""
        elif backend == "floor":
            note = f"fast / floor = {result['ratio']:.2f} (median of interleaved rounds)"
        else:
            note = f"{seconds / reference[kind]:.2f}x faster" if kind in reference else ""
            note += " (scaled from per-sample runs)" if result["scaled"] else ""
        print(f"{device:6s} {label:48s} {backend:28s} {seconds:10.4f} {result['peak_mib']:9.1f}  {note}", flush=True)

if __name__ == "__main__":
    main()
