"""Measuring a final state: each basis's probabilities once, every mean and second moment from one
matrix product with the readout's functionals, marginals for ``probs``, dense observables applied."""

from __future__ import annotations

import torch

from qml_imaging.quantum.fast.gates import GateKind
from qml_imaging.quantum.fast.kernels import (
    apply_dense,
    apply_one_qubit,
    embed_diagonal,
    marginal,
    permute,
    probabilities,
)
from qml_imaging.quantum.fast.readout import Basis, DenseObservable, Marginal, Mean, Output, Readout, Variance


def measure(readout: Readout, state: torch.Tensor, batch: int,
            final_permutation: torch.Tensor | None = None) -> torch.Tensor:
    """The measurements ``(batch, n_values)`` of final states ``(batch or 1, 2**n)``: one column per
    ``expval`` / ``var``, ``2**k`` per ``probs`` over ``k`` wires, in the order returned;
    ``final_permutation`` (a program's absorbed tail) acts on the computational-basis probabilities."""
    matrices, constant = readout.functionals
    per_basis = {}
    moments = constant.expand(state.shape[0], -1)
    for key, basis in readout.bases.items():
        p = probabilities(_rotate(state, basis, readout.n))
        if key == () and final_permutation is not None:
            p = permute(p, final_permutation)
        per_basis[key] = p
        if key in matrices:
            moments = moments + p @ matrices[key]
    if readout.only_means:
        result = moments
    else:
        columns = [_output_value(output, moments, per_basis, state, readout.n) for output in readout.outputs]
        result = torch.cat(columns, dim=-1) if columns else state.real.new_zeros(state.shape[0], 0)
    return result.expand(batch, -1) if result.shape[0] == 1 and batch > 1 else result


def _rotate(state: torch.Tensor, basis: Basis, n: int) -> torch.Tensor:
    for gate in basis.rotation:
        if gate.kind is GateKind.DIAGONAL:
            state = state * embed_diagonal(torch.diagonal(gate.constant), gate.wires, n)
        elif gate.kind is GateKind.ONE_QUBIT:
            state = apply_one_qubit(state, gate.constant, gate.wires[0], n)
        else:
            state = apply_dense(state, gate.constant, gate.wires, n)
    return state


def _output_value(output: Output, moments: torch.Tensor, per_basis: dict, state: torch.Tensor,
                  n: int) -> torch.Tensor:
    """One measurement's columns ``(rows, k)``."""
    if isinstance(output, Mean):
        return moments[:, output.moment:output.moment + 1]
    if isinstance(output, Variance):
        return (moments[:, output.square] - moments[:, output.moment] ** 2).unsqueeze(-1)
    if isinstance(output, Marginal):
        return marginal(per_basis[output.basis], output.wires, n)
    if not isinstance(output, DenseObservable):
        raise TypeError(f"unknown readout output {output!r}")
    applied = apply_dense(state, output.matrix, output.wires, n)
    mean = (state.conj() * applied).real.sum(dim=-1)
    if output.variance:
        mean = (applied.conj() * applied).real.sum(dim=-1) - mean**2
    return mean.unsqueeze(-1)
