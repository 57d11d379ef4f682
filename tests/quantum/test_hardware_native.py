"""Hardware-native QIREN: the device chain (coupling map + error rates), SWAP-free ISA circuits, readout mitigation."""

import math

import numpy as np
import pennylane as qml
import pytest
import torch

from qml_imaging.config import ConfigError
from qml_imaging.models.inr import QIREN, parameter_count
from qml_imaging.quantum.backends import BackendSpec, backend_spec
from qml_imaging.quantum.circuits import qiren_chain_block
from qml_imaging.quantum.device_chain import best_chain
from qml_imaging.quantum.hardware import HardwareEvaluation
from qml_imaging.quantum.ibm import fake_device
from qml_imaging.quantum.isa import transpile_template
from qml_imaging.quantum.layer import QuantumLayer
from qml_imaging.quantum.readout import apply_assignment, mitigate_z, reported_errors
from qml_imaging.quantum.runtime import LocalJobService
from tests.quantum.conftest import random_batch, reference_expvals

pytestmark = pytest.mark.qiskit


def line_target(edge_errors, readout, t1=None, t2=None):
    """A Target on a path graph plus one shortcut: CZ edges with ``edge_errors`` {(a, b): error}, measure errors."""
    from qiskit.circuit import Measure
    from qiskit.circuit.library import CZGate
    from qiskit.providers import QubitProperties
    from qiskit.transpiler import InstructionProperties, Target

    n = len(readout)
    properties = [QubitProperties(t1=t1[q] if t1 else None, t2=t2[q] if t2 else None) for q in range(n)]
    target = Target(num_qubits=n, qubit_properties=properties)
    target.add_instruction(CZGate(), {edge: InstructionProperties(error=error, duration=1e-7)
                                      for edge, error in edge_errors.items()})
    target.add_instruction(Measure(), {(q,): InstructionProperties(error=readout[q], duration=1e-6) for q in range(n)})
    return target


def test_the_chain_avoids_a_bad_edge_and_a_bad_readout():
    # the path 0-1-2-3-4 and a detour 1-5-3: edge 2-3 is poor, qubit 0 reads badly, qubit 2 a little worse
    edges = {(0, 1): 0.01, (1, 2): 0.01, (2, 3): 0.2, (3, 4): 0.01, (1, 5): 0.01, (5, 3): 0.01}
    readout = [0.3, 0.01, 0.02, 0.01, 0.01, 0.01]
    chain = best_chain(line_target(edges, readout), 4)
    assert set(chain.qubits) == {1, 5, 3, 4} and chain.qubits in ((1, 5, 3, 4), (4, 3, 5, 1))
    expected = 3 * -math.log(0.99) + 4 * -math.log(0.99)
    assert chain.cost == pytest.approx(expected)
    assert all(edge in edges or edge[::-1] in edges for edge in chain.edges)


def test_short_coherence_times_move_the_chain_and_more_uses_weigh_the_gates():
    edges = {(0, 1): 0.01, (1, 2): 0.01, (2, 3): 0.01}
    t1, t2 = [1e-4, 1e-4, 1e-4, 1e-7], [1e-4, 1e-4, 1e-4, 1e-7]  # qubit 3 decoheres in 0.1 us
    chain = best_chain(line_target(edges, [0.01] * 4, t1, t2), 3, uses=5)
    assert sorted(chain.qubits) == [0, 1, 2]
    assert chain.cost == pytest.approx(5 * 2 * -math.log(0.99) + 3 * (-math.log(0.99) + 2 * 5 * 1e-7 / 1e-4))


def test_a_chain_longer_than_any_path_is_a_clear_error():
    with pytest.raises(ValueError, match="has no chain of 4 connected qubits"):
        best_chain(line_target({(0, 1): 0.01, (1, 2): 0.01}, [0.01] * 4), 4)
    with pytest.raises(ValueError, match="chain length must be a positive integer, got 0"):
        best_chain(line_target({(0, 1): 0.01}, [0.01] * 2), 0)


def test_the_chain_block_is_the_chain_circuit_on_every_backend():
    template = qiren_chain_block(4, reuploads=2, sublayers=2)
    inputs, weights = random_batch(template, 5)
    wires = range(4)

    def sequential(x, w):  # the chain in wire order, written without the brickwork
        for block in range(3):
            for sublayer in range(2):
                for j in wires:
                    qml.Rot(*w[block, sublayer, j], wires=j)
                for j in range(3):
                    qml.CZ(wires=[j, j + 1])
            if block < 2:
                for j in wires:
                    qml.RZ(x[..., j], wires=j)
        return [qml.expval(qml.PauliZ(j)) for j in wires]

    device = qml.device("default.qubit", wires=4)
    expected = torch.stack(qml.QNode(sequential, device, interface="torch")(inputs, weights), dim=-1)
    torch.testing.assert_close(reference_expvals(template, inputs, weights), expected, atol=1e-10, rtol=0)
    torch.testing.assert_close(QuantumLayer(template).executor.expvals(template, inputs, weights), expected,
                               atol=1e-10, rtol=0)


def test_the_chain_qiren_has_the_parameter_count_of_the_authors_qiren():
    assert parameter_count(QIREN(entangler="chain")) == parameter_count(QIREN()) == 657
    with pytest.raises(ValueError, match="entangler must be one of \\['ring', 'chain'\\], got 'star'"):
        QIREN(n_qubits=2, entangler="star")


@pytest.mark.parametrize("device", ["FakeBrisbane", "FakeTorino"])
def test_the_chain_circuit_needs_no_swap_on_a_heavy_hex_device(device):
    backend = fake_device(device)
    template = qiren_chain_block(5, reuploads=1, sublayers=2)
    _, weights = random_batch(template, 1)
    isa = transpile_template(template, weights, backend)
    chain = best_chain(backend.target, 5, uses=template.chain_uses)
    assert tuple(isa.physical_qubits) == chain.qubits
    assert isa.circuit.layout.routing_permutation() == list(range(backend.num_qubits)), "routing moved no qubit"
    assert isa.two_qubit_gates == template.chain_uses * len(chain.edges) == 4 * 4, "one native gate per chain edge"
    coupled = {tuple(sorted(isa.circuit.find_bit(q).index for q in instruction.qubits))
               for instruction in isa.circuit.data if instruction.operation.num_qubits == 2}
    assert coupled == {tuple(sorted(edge)) for edge in chain.edges}


def test_assignment_errors_applied_and_inverted_in_closed_form():
    errors = np.array([[0.02, 0.05], [0.10, 0.01], [0.0, 0.0]])
    z = np.array([[1.0, -1.0, 0.3], [-0.4, 0.0, -1.0]])
    for row in z:  # against the assignment matrices acting on the probabilities
        for j, (p10, p01) in enumerate(errors):
            probabilities = np.array([(1 + row[j]) / 2, (1 - row[j]) / 2])
            measured = np.array([[1 - p10, p01], [p10, 1 - p01]]) @ probabilities
            assert apply_assignment(row[None], errors)[0, j] == pytest.approx(measured[0] - measured[1])
    np.testing.assert_allclose(apply_assignment(z, errors)[:, 0], [0.96, -0.342])
    np.testing.assert_allclose(mitigate_z(apply_assignment(z, errors), errors), z, atol=1e-14)


def test_readout_errors_that_cannot_be_inverted_are_refused():
    with pytest.raises(ValueError, match=r"readout errors must have shape \(3, 2\), got \(2, 2\)"):
        mitigate_z(np.zeros((4, 3)), np.full((2, 2), 0.01))
    with pytest.raises(ValueError, match="p10 \\+ p01 < 1 per qubit"):
        mitigate_z(np.zeros((4, 1)), np.array([[0.6, 0.4]]))


def test_reported_errors_are_the_targets_measure_errors():
    target = line_target({(0, 1): 0.01}, [0.03, 0.2])
    np.testing.assert_array_equal(reported_errors(target, [1, 0]), [[0.2, 0.2], [0.03, 0.03]])
    backend = fake_device("FakeManilaV2")
    assert reported_errors(backend.target, [4])[0, 0] == backend.target["measure"][(4,)].error


def test_readout_mitigation_is_checked_with_the_backend_spec():
    with pytest.raises(ConfigError, match="readout_mitigation applies to backend 'ibm' only"):
        backend_spec({"backend": "qiskit.aer", "readout_mitigation": True})
    with pytest.raises(ConfigError, match="would correct readout twice"):
        backend_spec({"backend": "ibm", "device_name": "ibm_brisbane", "readout_mitigation": True})
    assert backend_spec({"backend": "ibm", "device_name": "ibm_brisbane", "readout_mitigation": True,
                         "runtime": {"resilience_level": 0}}).readout_mitigation
    assert backend_spec({"backend": "ibm", "device_name": "FakeManilaV2", "readout_mitigation": True}).readout_mitigation


class KnownReadout:
    """Local testing mode without gate noise: exact <Z> through the device's reported assignment errors."""

    def __init__(self, spec):
        self.inner = LocalJobService(spec)
        self.local, self.device = True, self.inner.device
        self.isa = {}

    def submit(self, pubs, tag=None):
        from qiskit.quantum_info import Statevector

        (circuit, (observables,), values), = pubs
        qubits = [int(observable.paulis[0].z.nonzero()[0][0]) for observable in observables]
        exact = np.array([[Statevector(circuit.assign_parameters(row[0])).expectation_value(o).real
                           for o in observables] for row in values])
        measured = apply_assignment(exact, reported_errors(self.device.target, qubits))
        self.inner._keep(tag, {"evs": [measured], "stds": [np.zeros_like(measured)]})
        return tag

    def find(self, tag):
        return None

    def state(self, job_id):
        return self.inner.state(job_id)

    def result(self, job_id):
        return self.inner.result(job_id)


def test_readout_mitigation_recovers_the_exact_outputs_of_a_hybrid_model(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(2, 3), QuantumLayer(qiren_chain_block(3, reuploads=1, sublayers=1)),
                                torch.nn.Linear(3, 1))
    inputs = torch.rand(6, 2, dtype=torch.float32) * 2 - 1
    with torch.no_grad():
        exact = model(inputs)
    outputs = {}
    for mitigation in (False, True):
        spec = BackendSpec(backend="ibm", device_name="FakeManilaV2", readout_mitigation=mitigation,
                           runtime={"poll_seconds": 0.01})
        run = HardwareEvaluation(model, inputs, spec, tmp_path / str(mitigation), jobs=KnownReadout(spec))
        outputs[mitigation] = run.advance()
        assert run.plan()["readout_mitigation"] is mitigation
    torch.testing.assert_close(outputs[True], exact, atol=1e-5, rtol=0)
    assert (outputs[False] - exact).abs().max() > 1e-3, "Manila's readout errors show without mitigation"
