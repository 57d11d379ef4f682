"""The cost model that picks the Kronecker group size and whether a data-independent run is fused
into one dense unitary (see ``docs/architecture.md``, "The fast quantum backend").

Per amplitude of the state: one element-wise pass costs ``pass``, a matrix product with a ``d x d``
factor ``pass + mac * d``, a gather ``gather``; every element of a Kronecker factor built costs
``kron`` (forward and backward); every torch call costs ``overhead`` amplitude-passes. Measured with
``benchmarks/quantum_layer.py`` (2 CPU cores; one H200).
"""

from __future__ import annotations

from functools import lru_cache

import torch

from qml_imaging.quantum.fast.gates import Gate
from qml_imaging.quantum.fast.kernels import chunks
from qml_imaging.quantum.fast.options import MAX_GROUP_SIZE, FastOptions, Strategy
from qml_imaging.quantum.fast.program import GateStep, Layer, MonomialRun, Step

FUSE_MAX_QUBITS = 11
"""Largest qubit count for which a data-independent run may be fused into one dense unitary."""

COSTS = {
    "cpu": {"pass": 1.0, "mac": 0.015, "gather": 1.5, "kron": 4.0, "overhead": 5000.0},
    "cuda": {"pass": 1.0, "mac": 0.004, "gather": 1.5, "kron": 4.0, "overhead": 300000.0},
}


def _device_type(device: torch.device) -> str:
    return "cuda" if device.type == "cuda" else "cpu"


def group_size(rows: int, n: int, device: torch.device, options: FastOptions) -> int:
    """Wires per Kronecker group for ``rows`` states of ``n`` qubits: ``options.group_size`` where
    set, else the size with the least cost per wire (:func:`chunk_cost`)."""
    return options.group_size or _cheapest_group(rows, n, _device_type(device))


@lru_cache(maxsize=256)
def _cheapest_group(rows: int, n: int, device_type: str) -> int:
    costs = COSTS[device_type]
    amplitudes = rows * 2**n
    return min(range(1, min(n, MAX_GROUP_SIZE) + 1), key=lambda g: chunk_cost(costs, amplitudes, g) / g)


def chunk_cost(costs: dict, amplitudes: int, size: int) -> float:
    """One group of ``size`` wires of a one-qubit layer: build its ``2**size`` Kronecker factor
    (``size - 1`` products of ``4**size`` elements at most), then one matrix product on one axis."""
    return (costs["overhead"] * (2 + size) + costs["kron"] * 4**size
            + amplitudes * (costs["pass"] + costs["mac"] * 2**size))


def _structured_cost(gates: list[Gate], steps: list[Step], rows: int, n: int, group: int, device_type: str) -> float:
    costs = COSTS[device_type]
    amplitudes = rows * 2**n
    total = 0.0
    for step in steps:
        if isinstance(step, Layer):
            for chunk in chunks(sorted(step.wires), n, group):
                total += (chunk_cost(costs, amplitudes, chunk.size) if chunk.touched
                          else costs["overhead"] + amplitudes * costs["pass"])
        elif isinstance(step, MonomialRun):
            total += 2 * costs["overhead"] + amplitudes * (costs["gather"] + costs["pass"])
        elif isinstance(step, GateStep):
            k = len(gates[step.gate].wires)
            total += 3 * costs["overhead"] + amplitudes * (2 * costs["pass"] + costs["mac"] * 2**k)
    return total


def _dense_pays(gates: list[Gate], steps: list[Step], rows: int, n: int, device: torch.device, group: int) -> bool:
    """Whether building ``U^T`` (the structured steps on ``2**n`` rows) plus one dense product costs
    less than the structured steps on ``rows`` states."""
    if rows <= 1 or n > FUSE_MAX_QUBITS:
        return False
    device_type = _device_type(device)
    costs = COSTS[device_type]
    dimension = 2**n
    build = _structured_cost(gates, steps, dimension, n, _cheapest_group(dimension, n, device_type), device_type)
    apply = costs["overhead"] + rows * dimension * (costs["pass"] + costs["mac"] * dimension)
    return build + apply < _structured_cost(gates, steps, rows, n, group, device_type)


def fuses(gates: list[Gate], steps: list[Step], rows: int, n: int, device: torch.device,
          options: FastOptions) -> bool:
    """Whether a data-independent run on ``rows`` states is fused into one dense unitary."""
    if n > FUSE_MAX_QUBITS or options.strategy is Strategy.STRUCTURED:
        return False
    if options.strategy is Strategy.DENSE:
        return True
    return rows > 1 and _dense_pays(gates, steps, rows, n, device, group_size(rows, n, device, options))
