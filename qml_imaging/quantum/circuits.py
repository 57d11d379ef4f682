"""Circuit templates: PennyLane quantum functions of ``(inputs, weights)``, written once.

Every backend (the fast batched simulator, ``default.qubit``, ``lightning.qubit``, Qiskit Aer,
IBM Runtime) executes these same functions. Inputs are read as ``inputs[..., j]`` so a batch
``(B, n_qubits)`` broadcasts; ``weights`` is one tensor of shape :attr:`CircuitTemplate.weight_shape`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pennylane as qml


@dataclass(frozen=True)
class CircuitTemplate:
    """A quantum function with its sizes.

    ``function(inputs, weights)`` queues the gates and returns the measurements;
    ``inputs`` is ``(..., n_inputs)``, ``weights`` has ``weight_shape``; the circuit yields
    ``n_outputs`` real values per sample: one per ``expval`` / ``var``, ``2**k`` per ``probs`` over
    ``k`` wires, in the order returned (:func:`qml_imaging.quantum.user_circuits.count_outputs`).
    ``n_inputs`` and ``n_outputs`` are the qubit count unless ``input_count`` / ``output_count`` say otherwise.
    """

    name: str
    n_qubits: int
    weight_shape: tuple[int, ...]
    function: Callable[[Any, Any], Any]
    init_scale: float = math.pi
    """Weights are initialised ``U(-init_scale, init_scale)`` (radians)."""
    input_scale: float = 1.0
    """:class:`~qml_imaging.quantum.layer.QuantumLayer` multiplies its inputs by this before the circuit."""
    input_count: int | None = None
    """Input features per sample (None: one per qubit)."""
    output_count: int | None = None
    """Real outputs per sample (None: one per qubit, the <Z_j> readout of the templates here)."""
    chain_uses: int = 0
    """Nonzero: every two-qubit gate couples neighbouring wires ``j, j + 1``, each pair this many times, so the
    transpiler places the wires on a device's best chain of qubits (:mod:`qml_imaging.quantum.device_chain`)."""

    @property
    def n_inputs(self) -> int:
        return self.input_count if self.input_count is not None else self.n_qubits

    @property
    def n_outputs(self) -> int:
        return self.output_count if self.output_count is not None else self.n_qubits


def qiren_block(n_qubits: int, reuploads: int = 2, sublayers: int = 2) -> CircuitTemplate:
    """QIREN's data re-uploading circuit (Zhao et al., ICML 2024).

    ``reuploads`` times: a trainable StronglyEntanglingLayers block of ``sublayers`` sub-layers
    (Rot on every qubit, then a ring of CZ coupling i <-> i + k in sub-layer k), then RZ(x_j) on
    wire j. One more trainable block at the end; readout <Z_j> on every wire.
    Weights: ``(reuploads + 1, sublayers, n_qubits, 3)`` Rot angles ``(phi, theta, omega)`` of
    ``Rot = RZ(omega) RY(theta) RZ(phi)``.

    As in the authors' circuit, ``2 * n_qubits`` of these angles cannot change the output (see
    :func:`qiren_redundant_weights`): the first RZ of the first sub-layer acts on ``|0>`` (a global
    phase) and the last RZ of the final sub-layer is followed only by diagonal CZ gates and the Z
    readout. They are kept so the parameter count matches the paper (657 for the default network).
    """
    _check_sizes(n_qubits=n_qubits, reuploads=reuploads, sublayers=sublayers)
    wires = list(range(n_qubits))

    def circuit(inputs, weights):
        for block in range(reuploads):
            qml.StronglyEntanglingLayers(weights[block], wires=wires, imprimitive=qml.CZ)
            for j in wires:
                qml.RZ(inputs[..., j], wires=j)
        qml.StronglyEntanglingLayers(weights[reuploads], wires=wires, imprimitive=qml.CZ)
        return [qml.expval(qml.PauliZ(j)) for j in wires]

    return CircuitTemplate("qiren", n_qubits, (reuploads + 1, sublayers, n_qubits, 3), circuit)


def qiren_chain_block(n_qubits: int, reuploads: int = 2, sublayers: int = 2) -> CircuitTemplate:
    """QIREN's circuit (:func:`qiren_block`) with its entanglers on a chain: hardware-native on a device's path.

    Same weights ``(reuploads + 1, sublayers, n_qubits, 3)`` and the same Rot gates; each sub-layer's CZ
    ring of range 1, 2, ... is replaced by CZ on the ``n_qubits - 1`` chain pairs ``(j, j + 1)``, applied
    as a brickwork (even pairs, then odd pairs: CZ gates commute, so this is the same unitary as the
    chain in order, at two gate layers of depth). Transpiled for a device with its wires on the
    device's best chain of physical qubits (``chain_uses``), its ISA circuit needs no SWAP and has
    ``n_qubits - 1`` two-qubit gates per sub-layer. The redundant weights of :func:`qiren_redundant_weights`
    are redundant here too (diagonal CZ gates around the same RZ angles).
    """
    _check_sizes(n_qubits=n_qubits, reuploads=reuploads, sublayers=sublayers)
    wires = list(range(n_qubits))
    pairs = [(j, j + 1) for j in range(0, n_qubits - 1, 2)] + [(j, j + 1) for j in range(1, n_qubits - 1, 2)]

    def block(block_weights):
        for sublayer in range(sublayers):
            for j in wires:
                qml.Rot(block_weights[sublayer, j, 0], block_weights[sublayer, j, 1], block_weights[sublayer, j, 2],
                        wires=j)
            for a, b in pairs:
                qml.CZ(wires=[a, b])

    def circuit(inputs, weights):
        for index in range(reuploads):
            block(weights[index])
            for j in wires:
                qml.RZ(inputs[..., j], wires=j)
        block(weights[reuploads])
        return [qml.expval(qml.PauliZ(j)) for j in wires]

    return CircuitTemplate("qiren_chain", n_qubits, (reuploads + 1, sublayers, n_qubits, 3), circuit,
                           chain_uses=(reuploads + 1) * sublayers)


def qiren_redundant_weights(weight_shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Indices of the QIREN weights whose gradient is zero for every input (see :func:`qiren_block`)."""
    blocks, sublayers, n_qubits, _ = weight_shape
    first: list[tuple[int, ...]] = [(0, 0, wire, 0) for wire in range(n_qubits)]
    last = [(blocks - 1, sublayers - 1, wire, 2) for wire in range(n_qubits)]
    return first + last


def qiren_generator_block(n_qubits: int = 2, reuploads: int = 2, layers: int = 2) -> CircuitTemplate:
    """One of the many small circuits of QIREN's image generator (Zhao et al., ICML 2024, Fig. A1).

    ``reuploads`` times: an ansatz block of ``layers`` layers (``U3`` on every wire, then a CNOT
    chain 0 -> 1 -> ... -> n-1), then RZ(x_j) on wire j (the inputs are linear projections of the
    pixel coordinates); one more ansatz block at the end. Readout <Z_j> on every wire, so every
    backend (IBM included) reads it like the other templates; the generator's feature is <Z_0>.
    Weights: ``(reuploads + 1, layers, n_qubits, 3)`` angles ``(theta, phi, delta)`` of
    ``U3 = RZ(phi) RY(theta) RZ(delta)``. The paper's generator uses 2 qubits, 2 re-uploads, 2 layers.
    """
    _check_sizes(n_qubits=n_qubits, reuploads=reuploads, layers=layers)
    wires = list(range(n_qubits))

    def ansatz(block_weights):
        for layer in range(layers):
            for j in wires:
                qml.U3(block_weights[layer, j, 0], block_weights[layer, j, 1], block_weights[layer, j, 2], wires=j)
            for j in wires[:-1]:
                qml.CNOT(wires=[j, j + 1])

    def circuit(inputs, weights):
        for block in range(reuploads):
            ansatz(weights[block])
            for j in wires:
                qml.RZ(inputs[..., j], wires=j)
        ansatz(weights[reuploads])
        return [qml.expval(qml.PauliZ(j)) for j in wires]

    return CircuitTemplate("qiren_generator", n_qubits, (reuploads + 1, layers, n_qubits, 3), circuit)


def bottleneck_ansatz(n_qubits: int, layers: int = 3, entangler: str = "ring", input_scale: float = math.pi) -> CircuitTemplate:
    """Angle-encoded variational circuit for the diffusion U-Net's bottleneck.

    RY(x_j) on wire j (the layer scales features by ``input_scale`` first), then ``layers`` times: RZ(w) then RY(w) on every wire and a
    CNOT ``chain`` (0->1->...->n-1) or ``ring`` (plus n-1 -> 0). Readout <Z_j>. Every RZ is
    followed by an RY that turns its phase into a change of <Z>, so every weight has a nonzero
    gradient (an RZ followed only by CNOTs, as in the diffusion paper's ansatz, never changes <Z>).
    Weights: ``(layers, n_qubits, 2)``, ``[..., 0]`` the RZ and ``[..., 1]`` the RY angles.
    """
    _check_sizes(n_qubits=n_qubits, layers=layers)
    if entangler not in ("chain", "ring"):
        raise ValueError(f"entangler must be 'chain' or 'ring', got {entangler!r}")
    wires = list(range(n_qubits))
    pairs = [(j, j + 1) for j in range(n_qubits - 1)]
    if entangler == "ring" and n_qubits > 2:
        pairs.append((n_qubits - 1, 0))

    def circuit(inputs, weights):
        for j in wires:
            qml.RY(inputs[..., j], wires=j)
        for layer in range(layers):
            for j in wires:
                qml.RZ(weights[layer, j, 0], wires=j)
                qml.RY(weights[layer, j, 1], wires=j)
            for control, target in pairs:
                qml.CNOT(wires=[control, target])
        return [qml.expval(qml.PauliZ(j)) for j in wires]

    return CircuitTemplate(f"bottleneck_{entangler}", n_qubits, (layers, n_qubits, 2), circuit, input_scale=input_scale)


def noise_circuit(n_qubits: int) -> CircuitTemplate:
    """Hadamard on every wire: each computational-basis measurement gives ``n_qubits`` fair random bits.

    The inputs are unused (the circuit takes none); it has no weights. Measure it with shots
    (``sample``) to draw bits; its <Z_j> outputs are 0.
    """
    _check_sizes(n_qubits=n_qubits)
    wires = list(range(n_qubits))

    def circuit(inputs, weights):
        del inputs, weights
        for j in wires:
            qml.Hadamard(wires=j)
        return [qml.expval(qml.PauliZ(j)) for j in wires]

    return CircuitTemplate("noise", n_qubits, (0,), circuit, init_scale=0.0)


def _check_sizes(**sizes: int) -> None:
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
