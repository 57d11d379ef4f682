"""What a circuit measures, planned once: every ``expval`` / ``var`` as a linear functional of the
probabilities in some basis (Pauli words grouped by the rotation they need, observables with
eigenvalues and diagonalizing gates through those), ``probs`` as marginals, and anything else as a
dense matrix on its wires. :mod:`~qml_imaging.quantum.fast.measure` evaluates it on a final state."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import pennylane as qml
import torch
from pennylane.exceptions import DiagGatesUndefinedError, EigvalsUndefinedError, MatrixUndefinedError
from pennylane.measurements import ExpectationMP, ProbabilityMP, VarianceMP

from qml_imaging.quantum.fast.gates import Gate, kind_of
from qml_imaging.quantum.fast.kernels import basis_bits, local_index
from qml_imaging.quantum.fast.options import FALLBACKS, Fallback
from qml_imaging.quantum.fast.recording import as_complex, decompose, real_dtype, wires_of

BasisKey = tuple
"""A measurement basis: ``((wires, rounded matrix entries), ...)`` of its rotation gates; ``()`` is computational."""


@dataclass
class Basis:
    """One measurement basis: the constant gates that rotate into it, and the real vectors ``(2**n,)``
    of its probabilities that the moments read."""

    rotation: list[Gate]
    columns: list[torch.Tensor] = field(default_factory=list)


@dataclass(frozen=True)
class Term:
    """``coefficient`` times column ``column`` of basis ``basis``'s probabilities (``basis`` None: the identity)."""

    coefficient: float | torch.Tensor
    basis: BasisKey | None = None
    column: int = 0


@dataclass(frozen=True)
class Mean:
    """An ``expval``: moment ``moment``."""

    moment: int


@dataclass(frozen=True)
class Variance:
    """A ``var``: moment ``square`` minus the square of moment ``moment``."""

    moment: int
    square: int


@dataclass(frozen=True)
class Marginal:
    """A ``probs``: the probabilities of ``wires`` in basis ``basis``."""

    basis: BasisKey
    wires: tuple[int, ...]


@dataclass(frozen=True)
class DenseObservable:
    """An observable without eigenvalues or diagonalizing gates: ``<psi|M|psi>`` (or its variance)."""

    wires: tuple[int, ...]
    matrix: torch.Tensor
    variance: bool


Output = Mean | Variance | Marginal | DenseObservable


class Readout:
    """A circuit's measurements as moments (linear functionals of basis probabilities) and outputs.

    ``functionals`` (built once): per basis a real ``(2**n, n_moments)`` matrix and a ``(n_moments,)``
    constant (identity terms), so that ``moments = constant + sum over bases of probabilities @ matrix``.
    ``reusable``: no coefficient or observable entry is a tensor (trainable ones stay in the autograd
    graph, so such plans are recorded on every call). Raises ValueError for a non-Hermitian observable
    or a wire outside the register, NotImplementedError for a measurement other than expval, var, probs.
    """

    def __init__(self, measurements: list, n_qubits: int, dtype: torch.dtype, device: torch.device):
        self.n, self.dtype, self.device = n_qubits, dtype, device
        self.reusable = True
        self.bases: dict[BasisKey, Basis] = {}
        self.moments: list[list[Term]] = []
        self.outputs: list[Output] = [self._output(measurement) for measurement in measurements]
        self.computational_basis = list(self.bases) in ([], [()]) and not any(
            isinstance(output, DenseObservable) for output in self.outputs)
        self.only_means = all(isinstance(output, Mean) for output in self.outputs)  # moments are the outputs
        self.functionals = self._functionals()

    def _output(self, measurement) -> Output:
        if not isinstance(measurement, (ExpectationMP, VarianceMP, ProbabilityMP)) or measurement.mv is not None:
            raise NotImplementedError(f"the fast simulator computes expval, var and probs of a state vector, not "
                                      f"{type(measurement).__name__} ({measurement!r}); use default.qubit")
        observable = measurement.obs
        if isinstance(measurement, ProbabilityMP):
            if observable is None:
                wires = measurement.wires if len(measurement.wires) else range(self.n)
                self._basis((), [])
                return Marginal((), tuple(self._wire(w, measurement) for w in wires))
            key, rotation = self._rotation(list(decompose(observable.diagonalizing_gates())))
            self._basis(key, rotation)
            return Marginal(key, wires_of(observable, self.n))
        if any(isinstance(d, torch.Tensor) for d in observable.data):
            self.reusable = False  # a trainable observable: its values are read from each recording
        variance = isinstance(measurement, VarianceMP)
        terms = self._terms(observable, variance)
        if isinstance(terms, DenseObservable):
            return terms
        mean, squares = terms
        return Variance(self._moment(mean), self._moment(squares)) if variance else Mean(self._moment(mean))

    def _terms(self, observable, variance: bool) -> tuple[list[Term], list[Term] | None] | DenseObservable:
        """The terms of the observable's mean and (for a variance) of its square."""
        sentence = observable.pauli_rep
        if sentence is not None:
            return self._pauli_terms(sentence), self._pauli_terms(sentence @ sentence) if variance else None
        matrix = _hermitian_matrix(observable)
        try:
            rotation_ops = list(decompose(observable.diagonalizing_gates()))
            eigenvalues = torch.as_tensor(qml.eigvals(observable))
        except (DiagGatesUndefinedError, EigvalsUndefinedError, MatrixUndefinedError):
            FALLBACKS.add(Fallback.DENSE_OBSERVABLE)
            if matrix is None:  # neither diagonalizing gates nor a matrix: PennyLane's own error
                matrix = qml.matrix(observable, wire_order=list(observable.wires))
            return DenseObservable(wires_of(observable, self.n), as_complex(matrix, self.dtype, self.device), variance)
        key, rotation = self._rotation(rotation_ops)
        eigenvalues = (eigenvalues.real if eigenvalues.is_complex() else eigenvalues).to(
            device=self.device, dtype=real_dtype(self.dtype))
        column = eigenvalues[local_index(wires_of(observable, self.n), self.n, str(self.device))]
        basis = self._basis(key, rotation)
        mean = [Term(1.0, key, self._column(basis, column))]
        return mean, [Term(1.0, key, self._column(basis, column**2))] if variance else None

    def _wire(self, wire, measurement) -> int:
        if not isinstance(wire, (int, np.integer)) or not 0 <= int(wire) < self.n:
            raise ValueError(f"{measurement!r} measures wire {wire!r}; wires are 0..{self.n - 1}")
        return int(wire)

    def _rotation(self, rotation_ops: list) -> tuple[BasisKey, list[Gate]]:
        rotation = []
        for operation in rotation_ops:
            matrix = as_complex(qml.matrix(operation), self.dtype, self.device)
            wires = wires_of(operation, self.n)
            rotation.append(Gate(operation, wires, kind_of(matrix, len(wires)), False, constant=matrix))
        key = tuple((r.wires, tuple(np.round(r.constant.detach().cpu().numpy().ravel(), 12).tolist()))
                    for r in rotation)
        return key, rotation

    def _basis(self, key: BasisKey, rotation: list[Gate]) -> Basis:
        if key not in self.bases:
            self.bases[key] = Basis(rotation)
        return self.bases[key]

    @staticmethod
    def _column(basis: Basis, column: torch.Tensor) -> int:
        basis.columns.append(column)
        return len(basis.columns) - 1

    def _pauli_terms(self, sentence) -> list[Term]:
        """The terms of a Pauli sentence: each word's parity vector in the basis that diagonalises it."""
        terms = []
        bits = basis_bits(self.n, str(self.device))
        for word, coefficient in sentence.items():
            coefficient = self._coefficient(sentence, word, coefficient)
            letters = {self._wire(w, word): letter for w, letter in dict(word).items() if letter != "I"}
            if not letters:
                terms.append(Term(coefficient))
                continue
            rotation_ops = []
            for wire, letter in sorted(letters.items()):
                if letter != "Z":
                    rotation_ops += {"X": qml.PauliX, "Y": qml.PauliY}[letter](wire).diagonalizing_gates()
            key, rotation = self._rotation(rotation_ops)
            parity = bits[:, sorted(letters)].sum(dim=1) % 2
            column = (1 - 2 * parity).to(real_dtype(self.dtype))
            terms.append(Term(coefficient, key, self._column(self._basis(key, rotation), column)))
        return terms

    def _coefficient(self, sentence, word, coefficient) -> float | torch.Tensor:
        if isinstance(coefficient, torch.Tensor):
            self.reusable = False
            return coefficient.real if coefficient.is_complex() else coefficient
        if abs(np.imag(coefficient)) > 1e-12:
            raise ValueError(f"the observable {sentence} has the complex coefficient {coefficient} on {word}, "
                             f"so it is not Hermitian; measure a Hermitian operator (real coefficients)")
        return float(np.real(coefficient))

    def _moment(self, terms: list[Term]) -> int:
        self.moments.append(terms)
        return len(self.moments) - 1

    def _functionals(self) -> tuple[dict[BasisKey, torch.Tensor], torch.Tensor]:
        real, device = real_dtype(self.dtype), self.device
        entries: dict = defaultdict(list)  # basis key -> (column, moment, coefficient)
        constant = [torch.zeros((), dtype=real, device=device) for _ in self.moments]
        for moment, terms in enumerate(self.moments):
            for term in terms:
                coefficient = torch.as_tensor(term.coefficient, dtype=real, device=device)
                if term.basis is None:
                    constant[moment] = constant[moment] + coefficient
                else:
                    entries[term.basis].append((term.column, moment, coefficient))
        matrices = {}
        for key, items in entries.items():
            columns = torch.stack(self.bases[key].columns, dim=1)
            weights = torch.zeros(columns.shape[1], len(self.moments), dtype=real, device=device).index_put(
                (torch.tensor([c for c, _, _ in items], device=device),
                 torch.tensor([m for _, m, _ in items], device=device)),
                torch.stack([value for _, _, value in items]), accumulate=True)
            matrices[key] = columns @ weights
        return matrices, (torch.stack(constant) if constant else torch.zeros(0, dtype=real, device=device))


def _hermitian_matrix(observable):
    """``observable``'s matrix on its own wires (trainable entries kept in the graph), None where
    PennyLane has none (``Fallback.NO_OBSERVABLE_MATRIX``); raises ValueError naming it when the
    matrix is not Hermitian (its expectation value would not be real)."""
    try:
        matrix = qml.matrix(observable, wire_order=list(observable.wires))
    except MatrixUndefinedError:  # no matrix: its diagonalizing gates and eigenvalues decide
        FALLBACKS.add(Fallback.NO_OBSERVABLE_MATRIX)
        return None
    check = torch.as_tensor(matrix).detach().to(torch.complex128)
    if not torch.allclose(check, check.conj().transpose(-2, -1), atol=1e-10):
        raise ValueError(f"the observable {observable!r} is not Hermitian, so its expectation value is not a real "
                         f"measurement; measure a Hermitian operator (qml.Hermitian, Pauli words, their sums)")
    return matrix
