"""Tensor kernels on a ``(B, 2**n)`` state (wire 0 the most significant bit, as in PennyLane): gates
on their axes, Kronecker groups of one-qubit gates, index gathers, phases, probabilities, marginals."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from qml_imaging.quantum.fast.caches import tensor_cache

CACHE_BYTES = 64 * 2**20
"""Bytes each index-table cache keeps (:mod:`.caches`: least recently used dropped first)."""


@tensor_cache(CACHE_BYTES)
def basis_bits(n_qubits: int, device: str) -> torch.Tensor:
    """``(2**n, n)`` table of computational-basis bits, wire 0 the most significant."""
    states = torch.arange(2**n_qubits, device=device)
    shifts = torch.arange(n_qubits - 1, -1, -1, device=device)
    return (states.unsqueeze(1) >> shifts) & 1


@tensor_cache(CACHE_BYTES)
def local_index(wires: tuple[int, ...], n_qubits: int, device: str) -> torch.Tensor:
    """For every basis state, the index of its bits on ``wires`` (first wire most significant)."""
    bits = basis_bits(n_qubits, device)[:, list(wires)]
    weights = 2 ** torch.arange(len(wires) - 1, -1, -1, device=device)
    return (bits * weights).sum(dim=1)


@tensor_cache(CACHE_BYTES)
def bit_selector(wires: tuple[int, ...], n_qubits: int, dtype: torch.dtype, device: str) -> torch.Tensor:
    """``(2k, 2**n)`` 0/1 matrix: row ``2i + b`` selects the basis states whose bit on ``wires[i]`` is ``b``."""
    bits = basis_bits(n_qubits, device)[:, list(wires)]  # (2**n, k)
    rows = torch.stack([1 - bits, bits], dim=-1).reshape(2**n_qubits, -1)  # (2**n, 2k)
    return rows.transpose(0, 1).to(dtype).contiguous()


def embed_diagonal(diagonal: torch.Tensor, wires: tuple[int, ...], n_qubits: int) -> torch.Tensor:
    """A k-qubit diagonal ``(..., 2**k)`` as the full ``(..., 2**n)`` diagonal."""
    return diagonal[..., local_index(wires, n_qubits, str(diagonal.device))]


@dataclass(frozen=True)
class Chunk:
    """Consecutive wires ``first .. first + size - 1`` of a one-qubit layer; ``touched``: some carry a gate."""

    first: int
    size: int
    touched: bool


def chunks(wires: list[int], n: int, group: int) -> list[Chunk]:
    """Partition of wires 0..n-1: touched runs split into as few groups of at most ``group`` wires as
    possible, of even sizes; untouched runs kept whole (they only rotate the axes)."""
    touched = set(wires)
    result, wire = [], 0
    while wire < n:
        run = 1
        while wire + run < n and ((wire + run in touched) == (wire in touched)):
            run += 1
        if wire not in touched:
            result.append(Chunk(wire, run, False))
            wire += run
            continue
        pieces = -(-run // group)
        for piece in range(pieces):
            size = run // pieces + (1 if piece < run % pieces else 0)
            result.append(Chunk(wire, size, True))
            wire += size
    return result


def apply_layer(state: torch.Tensor, factors: dict[int, torch.Tensor], n: int, group: int) -> torch.Tensor:
    """One-qubit matrices on distinct wires, a group of wires at a time.

    The state's wire axes are cycled: each group's Kronecker factor multiplies the leading group of
    axes and moves it to the end (one batched matrix product), so after all groups the order is
    back. A single group of wires is applied in place on its axis instead.
    """
    rows = state.shape[0]
    parts = chunks(sorted(factors), n, group)
    touched = [c for c in parts if c.touched]
    if len(touched) == 1 and len(parts) > 1:
        first, size = touched[0].first, touched[0].size
        factor = kron([factors[w] for w in range(first, first + size)])
        view = state.reshape(rows * 2**first, 2**size, -1)
        return (factor @ view).reshape(rows, -1)
    for chunk in parts:
        view = state.reshape(rows, 2**chunk.size, -1).transpose(1, 2)
        if chunk.touched:
            factor = kron([factors.get(w) for w in range(chunk.first, chunk.first + chunk.size)], like=state)
            state = (view @ factor.transpose(0, 1)).reshape(rows, -1)
        else:
            state = view.reshape(rows, -1)
    return state


def kron(matrices: list, like: torch.Tensor | None = None) -> torch.Tensor:
    """Kronecker product of ``matrices`` in order (None: the 2x2 identity, of ``like``'s dtype and
    device), multiplied as a balanced tree: the large products have balanced factors, whose
    backward is much cheaper than that of a chain ending in ``(2**(k-1) x 2**(k-1)) (x) (2 x 2)``."""
    identity = None
    factors = []
    for matrix in matrices:
        if matrix is None:
            if identity is None:
                identity = torch.eye(2, dtype=like.dtype, device=like.device)
            matrix = identity
        factors.append(matrix)
    while len(factors) > 1:
        factors = [torch.kron(*factors[i:i + 2]) if i + 1 < len(factors) else factors[i]
                   for i in range(0, len(factors), 2)]
    return factors[0]


class Gather(torch.autograd.Function):
    """``state[:, permutation]`` whose backward is the inverse gather (no scatter-add)."""

    @staticmethod
    def forward(ctx, state, permutation, inverse):
        """Permute the last axis of ``state`` by ``permutation``; keeps ``inverse`` for the backward pass."""
        ctx.save_for_backward(inverse)
        return state.index_select(-1, permutation)

    @staticmethod
    def backward(ctx, grad):
        """The gradient permuted back by the inverse permutation."""
        (inverse,) = ctx.saved_tensors
        return grad.index_select(-1, inverse), None, None


def permute(values: torch.Tensor, permutation: torch.Tensor) -> torch.Tensor:
    """``values[..., permutation]`` as a :class:`Gather` (its backward is the inverse gather)."""
    inverse = torch.empty_like(permutation)
    inverse[permutation] = torch.arange(len(permutation), device=permutation.device)
    return Gather.apply(values, permutation, inverse)


def apply_one_qubit(state: torch.Tensor, matrix: torch.Tensor, wire: int, n: int) -> torch.Tensor:
    """Element-wise application of a ``(2, 2)`` or per-sample ``(B, 2, 2)`` matrix on ``wire``."""
    batch = state.shape[0] if matrix.ndim == 2 else max(state.shape[0], matrix.shape[0])
    view = state.reshape(state.shape[0], 2**wire, 2, 2 ** (n - wire - 1))
    zero, one = view[:, :, 0], view[:, :, 1]
    entries = matrix.reshape(-1, 2, 2, 1, 1) if matrix.ndim == 3 else matrix.reshape(1, 2, 2, 1, 1)
    new_zero = entries[:, 0, 0] * zero + entries[:, 0, 1] * one
    new_one = entries[:, 1, 0] * zero + entries[:, 1, 1] * one
    return torch.stack((new_zero, new_one), dim=2).reshape(batch, -1)


def apply_dense(state: torch.Tensor, matrix: torch.Tensor, wires: tuple[int, ...], n: int) -> torch.Tensor:
    """General k-qubit matrix ``(d, d)`` or per-sample ``(B, d, d)`` on ``wires``."""
    batch = max(state.shape[0], matrix.shape[0] if matrix.ndim == 3 else 1)
    k = len(wires)
    axes = [1 + w for w in wires]
    last = list(range(n + 1 - k, n + 1))
    moved = state.reshape((state.shape[0],) + (2,) * n).movedim(axes, last)
    flat = moved.reshape(state.shape[0], -1, 2**k)
    flat = flat @ matrix.transpose(-2, -1)
    result = flat.reshape((batch,) + tuple(moved.shape[1:]))
    return result.movedim(last, axes).reshape(batch, -1)


class Phases(torch.autograd.Function):
    """``exp(1j * angles)`` for real ``angles``, keeping its output for the backward
    (d angles = Im(grad * conj(out))): no sines and cosines recomputed, no real/imaginary split."""

    @staticmethod
    def forward(ctx, angles):
        """``exp(i angles)`` as a complex tensor of the angles' shape."""
        phases = torch.complex(torch.cos(angles), torch.sin(angles))
        ctx.save_for_backward(phases)
        return phases

    @staticmethod
    def backward(ctx, grad):
        """d/d angles of ``exp(i angles)``: ``Im(grad * conj(phases))``."""
        (phases,) = ctx.saved_tensors
        return (grad * phases.conj()).imag.contiguous()


class SquaredMagnitude(torch.autograd.Function):
    """``Re^2 + Im^2`` as a contiguous real tensor; the backward scales the real and imaginary parts by
    ``2 * grad`` in real arithmetic (a complex-by-real product would first promote ``grad`` to complex)."""

    @staticmethod
    def forward(ctx, state):
        """``|state|^2`` elementwise (real tensor)."""
        ctx.save_for_backward(state)
        return torch.addcmul(state.real.square(), state.imag, state.imag)

    @staticmethod
    def backward(ctx, grad):
        """The gradient ``2 grad * state`` of ``|state|^2`` as a complex tensor."""
        (state,) = ctx.saved_tensors
        return torch.view_as_complex(torch.view_as_real(state) * (2 * grad).unsqueeze(-1))


def probabilities(state: torch.Tensor) -> torch.Tensor:
    """``|state|**2`` (its backward is one multiplication: ``2 * grad * state``)."""
    return SquaredMagnitude.apply(state)


def marginal(probabilities: torch.Tensor, wires: tuple[int, ...], n: int) -> torch.Tensor:
    """Marginal probabilities ``(rows, 2**k)`` of ``wires`` (in that order) from ``(rows, 2**n)``."""
    rows = probabilities.shape[0]
    view = probabilities.reshape((rows,) + (2,) * n)
    others = [1 + w for w in range(n) if w not in wires]
    if others:
        view = view.sum(dim=others)
    kept = sorted(wires)
    order = [1 + kept.index(w) for w in wires]
    return view.permute(0, *order).reshape(rows, -1)
