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

import numpy as np
import pennylane as qml
import torch

from qml_imaging.extras import require
from qml_imaging.quantum.angles import AngleForm, angle_form
from qml_imaging.quantum.backends import BackendSpec
from qml_imaging.quantum.executors import Executor
from qml_imaging.quantum.ibm import fake_device
from qml_imaging.quantum.shift import Estimate, Runner, gradient_rule, sampled_expvals

CHUNK_ELEMENTS = 1 << 24
"""Shot outcomes turned into readout statistics at a time (bounds the memory of a large batch)."""


def readout_statistics(bits: np.ndarray, readout: tuple[int, ...]) -> Estimate:
    """Means of ``<Z>`` ``(N, O)`` and covariances of the means ``(N, O, O)`` from bits ``(N, shots, n_qubits)``
    (bit 1 is ``Z = -1``); the covariance is the unbiased sample covariance of one shot over ``shots``."""
    count, shots, _ = bits.shape
    means = np.empty((count, len(readout)))
    covariance = np.empty((count, len(readout), len(readout)))
    step = max(1, CHUNK_ELEMENTS // (shots * max(1, len(readout))))
    for start in range(0, count, step):
        signs = 1.0 - 2.0 * bits[start:start + step][..., list(readout)].astype(np.float64)
        mean = signs.mean(axis=1)
        second = np.einsum("nso,nsp->nop", signs, signs) / shots
        means[start:start + step] = mean
        spread = (second - mean[:, :, None] * mean[:, None, :]) * shots / max(shots - 1, 1)
        covariance[start:start + step] = spread / shots
    return Estimate(means, covariance)


def _bits_of(bit_array, n_qubits: int) -> np.ndarray:
    """A Qiskit ``BitArray`` ``(N,)`` as bits ``(N, shots, n_qubits)``, column j = clbit j."""
    packed = np.asarray(bit_array.array).reshape(-1, bit_array.num_shots, bit_array.array.shape[-1])
    return np.unpackbits(packed, axis=-1)[..., ::-1][..., :n_qubits]


class AerRunner:
    """Runs angle forms on Qiskit Aer for ``spec`` (see the module docstring)."""

    def __init__(self, spec: BackendSpec):
        self.spec = spec
        self.seeds = np.random.default_rng(spec.seed)
        self.noise_model = None
        if spec.noise_from:
            NoiseModel = require("qiskit_aer.noise", "a noisy Aer backend").NoiseModel
            self.noise_model = NoiseModel.from_backend(fake_device(spec.noise_from))
        self._circuits: dict[tuple, object] = {}

    def __call__(self, form: AngleForm, sets: np.ndarray) -> Estimate:
        if self.spec.shots is None:
            return self._exact(form, sets)
        bits = self.sample(form, sets, self.spec.shots, None)
        return readout_statistics(bits, form.readout)

    def sample(self, form: AngleForm, sets: np.ndarray, shots: int, seed: int | None) -> np.ndarray:
        """Bits ``(N, shots, n_qubits)`` of every wire at parameter sets ``(N, G)``, one SamplerV2 PUB;
        ``seed`` (None: the next seed of this runner's generator) seeds the simulator."""
        aer = require("qiskit_aer.primitives", "backend 'qiskit.aer'")
        circuit = self._circuit(form, measure=True)
        seed = int(self.seeds.integers(2**31)) if seed is None else seed
        sampler = aer.SamplerV2(default_shots=shots, seed=seed, options={"backend_options": self._options()})
        (result,) = sampler.run([(circuit, _values(circuit, sets))]).result()
        return _bits_of(result.data.meas, form.n_qubits)

    def _exact(self, form: AngleForm, sets: np.ndarray) -> Estimate:
        aer = require("qiskit_aer.primitives", "backend 'qiskit.aer'")
        circuit = self._circuit(form, measure=False)
        estimator = aer.EstimatorV2(options={"backend_options": self._options(), "default_precision": 0.0})
        observables = [_z_observable(wire, form.n_qubits) for wire in form.readout]
        pub = (circuit, [observables], _values(circuit, sets)[:, None, :])
        (result,) = estimator.run([pub]).result()
        means = np.asarray(result.data.evs, dtype=np.float64).reshape(len(sets), -1)
        return Estimate(means, np.zeros((len(sets), len(form.readout), len(form.readout))))

    def _options(self) -> dict:
        options = {"method": self.spec.method, **self.spec.device_kwargs}
        return {**options, "noise_model": self.noise_model} if self.noise_model is not None else options

    def _circuit(self, form: AngleForm, measure: bool):
        key = (id(form), measure)
        if key not in self._circuits:
            circuit = form.qiskit_circuit(measure)
            if self.noise_model is not None:
                transpile = require("qiskit", "transpiling").transpile
                circuit = transpile(circuit, basis_gates=self.noise_model.basis_gates, seed_transpiler=0,
                                    optimization_level=self.spec.optimization_level)
            self._circuits[key] = circuit
        return self._circuits[key]


def _z_observable(wire: int, n_qubits: int):
    SparsePauliOp = require("qiskit.quantum_info", "an observable").SparsePauliOp
    return SparsePauliOp.from_sparse_list([("Z", [wire], 1.0)], num_qubits=n_qubits)


def _values(circuit, sets: np.ndarray) -> np.ndarray:
    """The columns of ``sets`` for the angle parameters the (transpiled) circuit still holds, in its order."""
    return np.ascontiguousarray(sets[:, [parameter.index for parameter in circuit.parameters]])


class PennyLaneRunner:
    """Runs angle forms on a PennyLane device with shots: the sets broadcast in one sampled tape."""

    def __init__(self, spec: BackendSpec, make_device):
        self.spec = spec
        self.seeds = np.random.default_rng(spec.seed)
        self._make_device = make_device

    def __call__(self, form: AngleForm, sets: np.ndarray) -> Estimate:
        return readout_statistics(self.sample(form, sets, self.spec.shots, None), form.readout)

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

    def __init__(self, spec: BackendSpec, max_qubits: int, runner: Runner):
        super().__init__(spec, max_qubits)
        self.runner = runner
        self.rule = gradient_rule(spec)

    def describe(self) -> str:
        """The backend's name, with the fake device its noise comes from."""
        return f"{self.name!r}" + (f" ({self.spec.noise_from})" if self.spec.noise_from else "")

    def _run(self, template, inputs, weights, noise=None):
        form = angle_form(template)
        return sampled_expvals(form, form.angles(inputs, weights), self.runner, self.rule, noise).to(inputs.dtype)

    def _sample(self, template, weights, shots, seed):
        form = angle_form(template)
        inputs = torch.zeros(1, template.n_inputs, dtype=torch.float64)
        sets = form.angles(inputs, weights.detach().double()).numpy()
        return self.runner.sample(form, sets, shots, seed)[0]
