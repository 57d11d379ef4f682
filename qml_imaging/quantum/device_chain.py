"""The best chain of physical qubits of a device, from its coupling map and reported error rates.

A circuit whose two-qubit gates couple only wires ``j`` and ``j + 1`` (a *chain* entangler, such as
:func:`qml_imaging.quantum.circuits.qiren_chain_block`) needs no SWAP on a device when wire ``j`` sits
on physical qubit ``p_j`` of a path ``p_0 - p_1 - ... - p_{n-1}`` of its coupling map. Of all such
paths, :func:`best_chain` picks the one whose estimated error is lowest, reading the calibration data
every Qiskit ``BackendV2`` carries in its ``Target`` (IBM devices and the fake devices of
``qiskit_ibm_runtime.fake_provider`` alike):

- two-qubit gate error ``e2`` of each edge (``ecr``, ``cz`` or ``cx``; the lower of both directions),
- readout error ``e_ro`` of each qubit (the ``measure`` instruction's error),
- ``T1`` and ``T2`` of each qubit (``Target.qubit_properties``).

Cost of a path (the negative log of an estimated success probability, lower is better):
``sum_edges uses * -log(1 - e2) + sum_qubits [-log(1 - e_ro) + t * (1/T1 + 1/T2) / 2]``, where ``uses``
is how often the circuit applies each edge's gate and ``t = 2 * uses * d2`` its duration, ``d2`` the
longest two-qubit gate duration on the path (a brickwork of two gate layers per entangling sub-layer).
The decoherence term is the exponent of the amplitude (``T1``) and phase (``T2``) decay of a qubit idle
for ``t``, averaged: a rough estimate, used only to rank paths. Missing values count as zero error.
This module imports no torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

TWO_QUBIT_NAMES = ("ecr", "cz", "cx")
"""Native two-qubit gates whose edges form the coupling graph."""


@dataclass(frozen=True)
class DeviceChain:
    """A path of physical qubits ``qubits`` (wire ``j`` on ``qubits[j]``) and its estimated ``cost`` (see module)."""

    qubits: tuple[int, ...]
    cost: float

    @property
    def edges(self) -> list[tuple[int, int]]:
        """The path's ``len(qubits) - 1`` physical edges, in wire order."""
        return list(zip(self.qubits[:-1], self.qubits[1:]))


def two_qubit_errors(target) -> dict[tuple[int, int], tuple[float, float]]:
    """``{(a, b): (error, duration_s)}`` with ``a < b`` for every native two-qubit edge of ``target``
    (the lower error of both directions; None values read as 0). ValueError when it has no such gate."""
    names = [name for name in TWO_QUBIT_NAMES if name in target.operation_names]
    if not names:
        raise ValueError(f"the device's target has no two-qubit gate of {list(TWO_QUBIT_NAMES)}; "
                         f"it has {sorted(target.operation_names)}")
    edges: dict[tuple[int, int], tuple[float, float]] = {}
    for name in names:
        for qubits, properties in target[name].items():
            if qubits is None or len(qubits) != 2 or qubits[0] == qubits[1]:
                continue
            error = (properties.error or 0.0) if properties is not None else 0.0
            duration = (properties.duration or 0.0) if properties is not None else 0.0
            key = (min(qubits), max(qubits))
            if key not in edges or error < edges[key][0]:
                edges[key] = (error, duration)
    return edges


def qubit_costs(target, duration: float) -> list[float]:
    """Per physical qubit: ``-log(1 - e_ro) + duration * (1/T1 + 1/T2) / 2`` (see the module docstring)."""
    measure = target["measure"] if "measure" in target.operation_names else {}
    costs = []
    for qubit in range(target.num_qubits):
        properties = measure.get((qubit,)) if measure else None
        readout = (properties.error or 0.0) if properties is not None else 0.0
        cost = -math.log(max(1.0 - readout, 1e-12))
        qubit_properties = target.qubit_properties[qubit] if target.qubit_properties else None
        for time in (getattr(qubit_properties, "t1", None), getattr(qubit_properties, "t2", None)):
            if time:
                cost += duration / (2.0 * time)
        costs.append(cost)
    return costs


def best_chain(target, length: int, *, uses: int = 1) -> DeviceChain:
    """The lowest-cost path of ``length`` physical qubits of ``target`` (a Qiskit ``Target``).

    ``uses``: how many times the circuit applies the gate of each chain edge (QIREN's chain block:
    ``(reuploads + 1) * sublayers``). Exhaustive over simple paths with branch and bound (heavy-hex
    and square lattices have degree at most 4, so a few thousand paths for 8 qubits).
    Raises ValueError when ``length`` is not positive or the coupling map has no such path.
    """
    if isinstance(length, bool) or not isinstance(length, int) or length < 1:
        raise ValueError(f"chain length must be a positive integer, got {length!r}")
    edges = two_qubit_errors(target)
    longest = max((duration for _, duration in edges.values()), default=0.0)
    nodes = qubit_costs(target, 2.0 * uses * longest)
    neighbours: dict[int, list[tuple[int, float]]] = {q: [] for q in range(target.num_qubits)}
    for (a, b), (error, _) in edges.items():
        weight = -uses * math.log(max(1.0 - error, 1e-12))
        neighbours[a].append((b, weight))
        neighbours[b].append((a, weight))
    best = _search(neighbours, nodes, length)
    if best is None:
        raise ValueError(f"the device's coupling map ({target.num_qubits} qubits) has no chain of {length} "
                         "connected qubits")
    return best


def _search(neighbours: dict[int, list[tuple[int, float]]], nodes: list[float], length: int) -> DeviceChain | None:
    """Depth-first search over simple paths, pruning any partial path already costlier than the best."""
    best: list[DeviceChain | None] = [None]

    def extend(path: list[int], cost: float) -> None:
        if best[0] is not None and cost >= best[0].cost:
            return
        if len(path) == length:
            if path[0] <= path[-1]:  # each path once, not also reversed
                best[0] = DeviceChain(tuple(path), cost)
            return
        for qubit, weight in neighbours[path[-1]]:
            if qubit not in path:
                path.append(qubit)
                extend(path, cost + weight + nodes[qubit])
                path.pop()

    for start in neighbours:
        extend([start], nodes[start])
    return best[0]
