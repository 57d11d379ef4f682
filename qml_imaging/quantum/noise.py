"""Gaussian noise made from quantum measurement outcomes, generated once into a stored bank.

Construction:

1. **Bits.** :func:`~qml_imaging.quantum.circuits.noise_circuit` puts every one of ``n_qubits``
   wires into ``|+>``; measuring all wires in the computational basis gives ``n_qubits`` bits per
   shot. The circuit runs on the executor of any backend spec
   (:meth:`~qml_imaging.quantum.executors.Executor.sample_bits`): ``fast`` samples the torch
   statevector's outcome distribution with ``torch.multinomial``, ``default.qubit`` and Qiskit Aer
   take samples through PennyLane, an ``ibm`` spec runs IBM Runtime's ``SamplerV2`` (a ``Fake*``
   device adds its readout errors). On a simulator the bits are the simulator's pseudo-random
   numbers: only hardware makes them physically random.
2. **Debiasing** (optional, on by default): von Neumann extraction per wire turns the pairs
   ``01 -> 0`` and ``10 -> 1`` and drops ``00`` and ``11``, which removes any constant bias of a
   wire's bits (e.g. readout error) at the cost of at least 3/4 of them.
3. **Uniforms.** Consecutive groups of 32 bits are read as integers ``k`` and mapped to
   ``u = (k + 1/2) / 2^32`` in (0, 1).
4. **Normals.** ``z = Phi^-1(u)`` (``torch.special.ndtri``), exact in distribution for uniform ``u``.

A :class:`NoiseBank` holds the normals (``.npz`` with its provenance, written atomically) and hands
them out in order; it raises when exhausted rather than reusing samples silently.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch

from qml_imaging.data.arrays import read_npz
from qml_imaging.quantum.backends import MAX_SIMULATED_QUBITS, BackendSpec
from qml_imaging.quantum.circuits import noise_circuit
from qml_imaging.quantum.executors import Executor
from qml_imaging.quantum.factory import as_executor
from qml_imaging.runs import save_arrays_atomic

BITS_PER_UNIFORM = 32


def measured_bits(executor: Executor, n_qubits: int, shots: int, seed: int | None = None) -> np.ndarray:
    """``(shots, n_qubits)`` uint8 outcomes of measuring ``n_qubits`` qubits in ``|+>`` on ``executor``.

    Raises ValueError when ``n_qubits`` or ``shots`` is not a positive integer or the backend has too few qubits.
    """
    if isinstance(n_qubits, bool) or not 1 <= n_qubits <= MAX_SIMULATED_QUBITS:
        raise ValueError(f"n_qubits must be in 1..{MAX_SIMULATED_QUBITS} for noise generation, got {n_qubits!r}")
    return executor.sample_bits(noise_circuit(n_qubits), torch.zeros(0), shots, seed)


def von_neumann(bits: np.ndarray) -> np.ndarray:
    """Unbiased bits from each column of ``bits`` ``(shots, wires)``: pairs 01 -> 0, 10 -> 1, others dropped."""
    kept = []
    for wire in bits.T:
        pairs = wire[: len(wire) // 2 * 2].reshape(-1, 2)
        differ = pairs[:, 0] != pairs[:, 1]
        kept.append(pairs[differ, 0])
    return np.concatenate(kept).astype(np.uint8)


def normals_from_bits(bits: np.ndarray) -> torch.Tensor:
    """Standard normals ``(len(bits) // 32,)`` float64 from a flat bit stream (32 bits per sample)."""
    bits = np.asarray(bits, dtype=np.uint8).reshape(-1)
    usable = len(bits) // BITS_PER_UNIFORM * BITS_PER_UNIFORM
    words = bits[:usable].reshape(-1, BITS_PER_UNIFORM).astype(np.float64)
    integers = words @ (2.0 ** np.arange(BITS_PER_UNIFORM - 1, -1, -1))
    uniforms = (integers + 0.5) / 2.0**BITS_PER_UNIFORM
    return torch.special.ndtri(torch.from_numpy(uniforms))


def noise_statistics(samples: torch.Tensor) -> dict[str, float]:
    """Mean, variance, the KS test against N(0, 1) (statistic and p-value) and the lag-1 correlation."""
    from scipy import stats

    values = samples.detach().double().reshape(-1).numpy()
    if len(values) < 100:
        raise ValueError(f"need at least 100 samples for noise statistics, got {len(values)}")
    test = stats.kstest(values, "norm")
    return {"n": len(values), "mean": float(values.mean()), "variance": float(values.var(ddof=1)),
            "ks_statistic": float(test.statistic), "ks_pvalue": float(test.pvalue),
            "lag1_correlation": float(np.corrcoef(values[:-1], values[1:])[0, 1])}


class NoiseBank:
    """Standard normals (float32) from quantum measurements, handed out in order by :meth:`draw`
    or read at a fixed offset by :meth:`window`."""

    CHUNK = 2**20

    def __init__(self, samples: torch.Tensor, provenance: dict):
        self.samples = samples.reshape(-1).to(torch.float32)
        self.provenance = provenance
        self.position = 0

    def __len__(self) -> int:
        return len(self.samples)

    @classmethod
    def generate(cls, size: int, executor: Executor | BackendSpec | None = None, *, n_qubits: int = 16,
                 debias: bool = True, seed: int | None = None) -> NoiseBank:
        """``size`` normals measured on ``executor`` (an executor or a validated backend spec; None: the
        ``fast`` backend; see the module docstring), made in chunks of :attr:`CHUNK` normals so memory
        stays bounded (chunk ``i`` is seeded with ``seed + i``)."""
        if size < 1:
            raise ValueError(f"a noise bank needs at least 1 sample, got size {size}")
        executor = as_executor(executor)
        chunks, shots, kept = [], 0, 0
        for index, start in enumerate(range(0, size, cls.CHUNK)):
            count = min(cls.CHUNK, size - start)
            chunk_seed = None if seed is None else seed + index
            samples, chunk_shots, chunk_kept = _normals(count, executor, n_qubits, debias, chunk_seed)
            chunks.append(samples.to(torch.float32))
            shots, kept = shots + chunk_shots, kept + chunk_kept
        provenance = {"backend": executor.spec.model_dump(mode="json"), "n_qubits": n_qubits,
                      "shots": shots, "debias": debias, "seed": seed, "bits_kept": kept, "chunk": cls.CHUNK}
        return cls(torch.cat(chunks), provenance)

    def draw(self, *shape: int) -> torch.Tensor:
        """The next ``prod(shape)`` normals as a float32 tensor of ``shape``."""
        values = self.window(self.position, *shape)
        self.position += values.numel()
        return values

    def window(self, offset: int, *shape: int) -> torch.Tensor:
        """The ``prod(shape)`` normals from ``offset`` on, as a float32 tensor of ``shape`` (position unchanged)."""
        count = math.prod(shape)
        if offset < 0 or offset + count > len(self.samples):
            raise RuntimeError(f"noise bank exhausted: {len(self.samples) - max(offset, 0)} samples left at offset "
                               f"{offset}, {count} asked for; generate a larger bank")
        return self.samples[offset: offset + count].reshape(shape)

    def save(self, path: str | Path) -> None:
        """Write the samples and provenance to ``path`` (``.npz``) atomically."""
        save_arrays_atomic(path, samples=self.samples.numpy(), provenance=np.array(json.dumps(self.provenance)))

    @classmethod
    def load(cls, path: str | Path) -> NoiseBank:
        """Read a bank written by :meth:`save` (``samples`` and its ``provenance``); a damaged file is one
        ValueError naming it and the fix."""
        stored = read_npz(path, ("samples", "provenance"), what="a noise bank",
                          fix="make it again with `qml-imaging hardware noise-bank`")
        try:
            provenance = json.loads(str(stored["provenance"]))
        except ValueError:
            raise ValueError(f"{path} (a noise bank) is damaged: its provenance is not JSON; make it again with "
                             "`qml-imaging hardware noise-bank`") from None
        samples = stored["samples"]
        if samples.ndim != 1 or samples.dtype.kind != "f" or not np.isfinite(samples).all():
            raise ValueError(f"{path} (a noise bank) is damaged: its samples are {samples.dtype} {samples.shape} "
                             "where finite float normals (n,) belong; make it again with "
                             "`qml-imaging hardware noise-bank`")
        return cls(torch.from_numpy(samples), provenance)


def _normals(count: int, executor: Executor, n_qubits: int, debias: bool, seed: int | None) -> tuple[torch.Tensor, int, int]:
    """``(count normals, shots used, bits kept)`` from one batch of measurements."""
    efficiency = 0.25 if debias else 1.0
    shots = math.ceil(1.1 * count * BITS_PER_UNIFORM / (n_qubits * efficiency)) + 64
    bits = measured_bits(executor, n_qubits, shots, seed)
    stream = von_neumann(bits) if debias else bits.reshape(-1)
    samples = normals_from_bits(stream)
    if len(samples) < count:
        raise RuntimeError(f"backend {executor.describe()} gave {len(samples)} normals, fewer than the {count} asked for")
    return samples[:count], shots, len(stream)
