"""The executor of sampled (and Qiskit Aer) backends: a batch, or a batch with every shifted copy its
gradient needs, is one execution of the template's :class:`~qml_imaging.quantum.angles.AngleForm`.

Runners (each ``runner(form, sets (N, G)) -> Estimate``, one execution per call):

- :class:`AerRunner`: Qiskit Aer primitives, one PUB of ``N`` parameter sets: ``SamplerV2`` with the
  spec's shots (means and covariances from the measured bits), ``EstimatorV2`` at precision 0 when
  ``shots`` is null (exact); a ``noise_from`` spec adds the fake device's noise model, the circuit
  transpiled to its basis gates (no routing) once per template.
- :class:`PennyLaneRunner`: a PennyLane device with shots (``default.qubit``), the sets broadcast in one tape.

Seeds: a runner owns a ``numpy.random.Generator`` seeded with the spec's ``seed`` and draws the
simulator seed of every call from it, so a run repeated with one seed gives the same numbers and
another seed different ones; nothing reads a global random state (``seed: null`` draws fresh entropy).
"""

from __future__ import annotations

import functools

import numpy as np
import pennylane as qml
import torch

from qml_imaging.extras import require
from qml_imaging.quantum.angles import AngleForm, angle_form
from qml_imaging.quantum.backends import BackendSpec
from qml_imaging.quantum.executors import Executor
from qml_imaging.quantum.ibm import fake_device
from qml_imaging.quantum.shift import (
    Estimate,
    Runner,
    generator_states,
    gradient_rule,
    sampled_expvals,
    set_generator_states,
)

CHUNK_ELEMENTS = 1 << 24
"""Shot outcomes turned into readout statistics at a time (bounds the memory of a large batch)."""


def readout_statistics(frequencies: np.ndarray, n_qubits: int, readout: tuple[int, ...], shots: int) -> Estimate:
    """Means of ``<Z>`` ``(N, O)`` and covariances of the means ``(N, O, O)`` from outcome frequencies
    ``(N, 2**n_qubits)`` (index bit ``j`` is wire ``j``; bit 1 is ``Z = -1``) of ``shots`` shots each;
    the covariance is the unbiased sample covariance of one shot over ``shots``."""
    outcomes = np.arange(frequencies.shape[1])
    signs = 1.0 - 2.0 * ((outcomes[:, None] >> np.asarray(readout)[None, :]) & 1)
    means = frequencies @ signs
    covariance = np.empty((len(frequencies), len(readout), len(readout)))
    step = max(1, CHUNK_ELEMENTS // (signs.size * len(readout)))
    for start in range(0, len(frequencies), step):
        weighted = frequencies[start:start + step, :, None] * signs[None]
        second = np.einsum("nko,kp->nop", weighted, signs)
        mean = means[start:start + step]
        spread = (second - mean[:, :, None] * mean[:, None, :]) * shots / max(shots - 1, 1)
        covariance[start:start + step] = spread / shots
    return Estimate(means, covariance)


class AerRunner:
    """Runs angle forms on Qiskit Aer for ``spec``, every parameter set of a call in one ``AerSimulator.run``
    (parameter binds). Noiseless and ``density_matrix`` specs with shots: Aer's exact outcome probabilities
    (gate noise included; the device's per-qubit readout errors applied as assignment matrices), the counts
    then drawn from them (multinomial) by this runner's seeded generator, which is how Aer samples a final
    measurement too; noisy ``statevector`` specs (trajectories): Aer's own shot counts, seeded per call."""

    def __init__(self, spec: BackendSpec):
        self.spec = spec
        self.seeds = np.random.default_rng(spec.seed)
        self.noise_model = device_noise_model(spec.noise_from) if spec.noise_from else None
        self._circuits: dict[tuple, object] = {}

    def __call__(self, form: AngleForm, sets: np.ndarray) -> Estimate:
        shots = self.spec.shots
        if shots is None:
            means = readout_statistics(self._probabilities(form, sets), form.n_qubits, form.readout, 1).means
            return Estimate(means, np.zeros((len(sets), len(form.readout), len(form.readout))))
        if self.noise_model is not None and self.spec.method != "density_matrix":
            frequencies = self._counts(form, sets, shots) / shots
        else:
            probabilities = self._probabilities(form, sets)
            if self.noise_model is not None:
                probabilities = with_readout_errors(probabilities, readout_matrices(self.spec.noise_from))
            frequencies = self.seeds.multinomial(shots, probabilities / probabilities.sum(1, keepdims=True)) / shots
        return readout_statistics(frequencies, form.n_qubits, form.readout, shots)

    def sample(self, form: AngleForm, sets: np.ndarray, shots: int, seed: int | None) -> np.ndarray:
        """Bits ``(N, shots, n_qubits)`` of every wire, in shot order, at parameter sets ``(N, G)``;
        ``seed`` (None: the next seed of this runner's generator) seeds the simulator."""
        circuit = self._circuit(form, measure=True)
        result = self._simulator(seed).run(circuit, shots=shots, memory=True, **_binds(circuit, sets)).result()
        text = "".join("".join(result.get_memory(index)) for index in range(len(sets)))
        bits = (np.frombuffer(text.encode("ascii"), dtype=np.uint8) - ord("0")).reshape(len(sets), shots, -1)
        return bits[..., ::-1][..., :form.n_qubits]  # Qiskit writes clbit 0 last

    def _probabilities(self, form: AngleForm, sets: np.ndarray) -> np.ndarray:
        circuit = self._circuit(form, measure=False)
        result = self._simulator(None).run(circuit, **_binds(circuit, sets)).result()
        return np.stack([np.asarray(result.data(index)["probabilities"]) for index in range(len(sets))])

    def _counts(self, form: AngleForm, sets: np.ndarray, shots: int) -> np.ndarray:
        circuit = self._circuit(form, measure=True)
        result = self._simulator(None).run(circuit, shots=shots, **_binds(circuit, sets)).result()
        counts = np.zeros((len(sets), 2**form.n_qubits))
        for index in range(len(sets)):
            for outcome, count in result.data(index)["counts"].items():
                counts[index, int(outcome, 16)] = count
        return counts

    def _simulator(self, seed: int | None):
        AerSimulator = require("qiskit_aer", "backend 'qiskit.aer'").AerSimulator
        seed = int(self.seeds.integers(2**31)) if seed is None else seed
        options = {"method": self.spec.method, "seed_simulator": seed, **self.spec.device_kwargs}
        return AerSimulator(**options, **({"noise_model": self.noise_model} if self.noise_model is not None else {}))

    def _circuit(self, form: AngleForm, measure: bool):
        key = (id(form), measure)
        if key not in self._circuits:
            circuit = form.qiskit_circuit(measure)
            if self.noise_model is not None:
                transpile = require("qiskit", "transpiling").transpile
                circuit = transpile(circuit, basis_gates=self.noise_model.basis_gates, seed_transpiler=0,
                                    optimization_level=self.spec.optimization_level)
            if not measure:
                SaveProbabilities = require("qiskit_aer.library", "backend 'qiskit.aer'").SaveProbabilities
                circuit.append(SaveProbabilities(form.n_qubits), circuit.qubits)
            self._circuits[key] = circuit
        return self._circuits[key]


@functools.lru_cache(maxsize=4)
def device_noise_model(name: str):
    """Aer's ``NoiseModel.from_backend`` of the fake device ``name`` (built once per process: about 8 s
    for a 127-qubit device)."""
    NoiseModel = require("qiskit_aer.noise", "a noisy Aer backend").NoiseModel
    return NoiseModel.from_backend(fake_device(name))


@functools.lru_cache(maxsize=4)
def readout_matrices(name: str) -> dict[int, np.ndarray]:
    """The fake device ``name``'s readout errors in its Aer noise model: qubit -> ``A`` ``(2, 2)``,
    ``A[true, recorded]``. Raises ValueError for a correlated (multi-qubit) readout error."""
    matrices = {}
    for error in device_noise_model(name).to_dict()["errors"]:
        if error["type"] != "roerror":
            continue
        for qubits in error["gate_qubits"]:
            if len(qubits) != 1:
                raise ValueError(f"{name}: correlated readout error on qubits {qubits} is not supported")
            matrices[int(qubits[0])] = np.asarray(error["probabilities"], dtype=np.float64)
    return matrices


def with_readout_errors(probabilities: np.ndarray, matrices: dict[int, np.ndarray]) -> np.ndarray:
    """Outcome probabilities ``(N, 2**n)`` (index bit ``j`` is qubit ``j``) after each qubit's readout error
    ``A[true, recorded]`` (qubits without one read perfectly)."""
    count, size = probabilities.shape
    n_qubits = size.bit_length() - 1
    tensor = probabilities.reshape(count, *[2] * n_qubits)
    for qubit in range(n_qubits):
        if qubit in matrices:
            axis = n_qubits - qubit
            tensor = np.moveaxis(np.tensordot(tensor, matrices[qubit], axes=([axis], [0])), -1, axis)
    return tensor.reshape(count, size)


def _binds(circuit, sets: np.ndarray) -> dict:
    """``AerSimulator.run`` keyword arguments binding the angle parameters the (transpiled) circuit holds to
    the columns of ``sets`` ``(N, G)``: ``N`` experiments in one run."""
    if not circuit.parameters:
        return {}
    return {"parameter_binds": [{parameter: sets[:, parameter.index] for parameter in circuit.parameters}]}


class PennyLaneRunner:
    """Runs angle forms on a PennyLane device with shots: the sets broadcast in one sampled tape."""

    def __init__(self, spec: BackendSpec, make_device):
        self.spec = spec
        self.seeds = np.random.default_rng(spec.seed)
        self._make_device = make_device

    def __call__(self, form: AngleForm, sets: np.ndarray) -> Estimate:
        shots = self.spec.shots
        if shots is None:
            raise ValueError(f"PennyLaneRunner samples; backend {self.spec.backend!r} has shots: null")
        bits = self.sample(form, sets, shots, None)
        outcomes = (bits.astype(np.int64) << np.arange(form.n_qubits)).sum(-1)
        offsets = np.arange(len(sets))[:, None] * 2**form.n_qubits
        counts = np.bincount((outcomes + offsets).ravel(), minlength=len(sets) * 2**form.n_qubits)
        frequencies = counts.reshape(len(sets), -1) / shots
        return readout_statistics(frequencies, form.n_qubits, form.readout, shots)

    def sample(self, form: AngleForm, sets: np.ndarray, shots: int, seed: int | None) -> np.ndarray:
        """Bits ``(N, shots, n_qubits)`` at parameter sets ``(N, G)``; ``seed`` as :meth:`AerRunner.sample`."""
        seed = int(self.seeds.integers(2**31)) if seed is None else seed
        device = self._make_device(form.n_qubits, seed)
        broadcast = np.concatenate([sets, sets[:1]]) if len(sets) == 1 else sets  # PennyLane broadcasts from 2 up
        (samples,) = qml.execute([form.pennylane_script(broadcast, shots)], device)
        samples = np.asarray(samples, dtype=np.uint8).reshape(len(broadcast), shots, form.n_qubits)
        return samples[:len(sets)]


class SampledExecutor(Executor):
    """Runs templates through a runner; parameter-shift or SPSA gradients (the spec's ``gradient``)
    with every shifted circuit of a batch in the runner's one execution (:mod:`qml_imaging.quantum.shift`)."""

    def __init__(self, spec: BackendSpec, max_qubits: int, runner: AerRunner | PennyLaneRunner):
        super().__init__(spec, max_qubits)
        self.runner: Runner = runner
        self.seeds = runner.seeds
        self.rule = gradient_rule(spec)

    def describe(self) -> str:
        """The backend's name, with the fake device its noise comes from."""
        return f"{self.name!r}" + (f" ({self.spec.noise_from})" if self.spec.noise_from else "")

    def random_state(self) -> dict:
        """The runner's seed generator and SPSA's direction generator, as plain data (checkpoints hold them)."""
        return generator_states(self.seeds, self.rule)

    def set_random_state(self, state: object) -> None:
        """Inverse of :meth:`random_state`."""
        set_generator_states(self.seeds, self.rule, state)

    def _run(self, template, inputs, weights, noise=None):
        form = angle_form(template)
        return sampled_expvals(form, form.angles(inputs, weights), self.runner, self.rule, noise).to(inputs.dtype)

    def _sample(self, template, weights, shots, seed):
        form = angle_form(template)
        inputs = torch.zeros(1, template.n_inputs, dtype=torch.float64)
        sets = form.angles(inputs, weights.detach().double()).numpy()
        return self.runner.sample(form, sets, shots, seed)[0]
