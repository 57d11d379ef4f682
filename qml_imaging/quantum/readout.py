"""Readout-error mitigation of ``<Z_j>``: per-qubit assignment matrices inverted in closed form.

A qubit prepared in ``|0>`` reads 1 with probability ``p10``, one in ``|1>`` reads 0 with probability
``p01``: its assignment matrix is ``A = [[1 - p10, p01], [p10, 1 - p01]]`` (measured probabilities =
``A @`` true probabilities). For the single-qubit observable ``Z`` this gives

    ``<Z>_measured = (1 - p10 - p01) <Z> + (p01 - p10)``,

so ``<Z> = (<Z>_measured - (p01 - p10)) / (1 - p10 - p01)``: the tensor-product inverse of the
assignment matrices (tensored mitigation, Bravyi et al., Phys. Rev. A 103, 042605 (2021), for uncorrelated errors)
restricted to one qubit's marginal, which is all a ``<Z_j>`` readout needs. Corrected values are not
clipped to [-1, 1] (clipping would bias them); shot noise is amplified by ``1 / (1 - p10 - p01)``.

The errors come from the device's own calibration data (:func:`reported_errors`): the ``measure``
instruction of its Qiskit ``Target``, with ``prob_meas1_prep0`` / ``prob_meas0_prep1`` where the
target carries them and the symmetric ``error`` otherwise, which is what Qiskit Aer's noise model of
a fake device uses (``qiskit_aer.noise.device.basic_device_readout_errors``). This module imports no torch.
"""

from __future__ import annotations

import numpy as np


def reported_errors(target, qubits: list[int]) -> np.ndarray:
    """``(len(qubits), 2)`` float64 ``[p10, p01]`` of the physical ``qubits`` from ``target``'s ``measure``.

    Raises ValueError when the target has no ``measure`` instruction or no properties for a qubit.
    """
    if "measure" not in target.operation_names:
        raise ValueError("the device's target has no measure instruction, so no readout errors to correct")
    rows = []
    for qubit in qubits:
        properties = target["measure"].get((qubit,))
        if properties is None or properties.error is None:
            raise ValueError(f"the device reports no readout error for qubit {qubit}")
        p10 = getattr(properties, "prob_meas1_prep0", None)
        p01 = getattr(properties, "prob_meas0_prep1", None)
        rows.append([properties.error, properties.error] if p10 is None or p01 is None else [p10, p01])
    return np.asarray(rows, dtype=np.float64).reshape(len(qubits), 2)


def apply_assignment(z: np.ndarray, errors: np.ndarray) -> np.ndarray:
    """``<Z_j>`` as read through assignment errors ``errors`` ``(n, 2)`` (``[p10, p01]`` per column ``j``
    of ``z`` ``(..., n)``): ``(1 - p10 - p01) z + (p01 - p10)``."""
    p10, p01 = _checked(errors, np.shape(z))
    return (1.0 - p10 - p01) * np.asarray(z, dtype=np.float64) + (p01 - p10)


def mitigate_z(measured: np.ndarray, errors: np.ndarray) -> np.ndarray:
    """The inverse of :func:`apply_assignment`: ``(measured - (p01 - p10)) / (1 - p10 - p01)``, float64, same shape.

    Raises ValueError when ``errors`` does not have one row per column of ``measured`` or a qubit's
    ``p10 + p01 >= 1`` (its readout carries no information).
    """
    p10, p01 = _checked(errors, np.shape(measured))
    return (np.asarray(measured, dtype=np.float64) - (p01 - p10)) / (1.0 - p10 - p01)


def _checked(errors: np.ndarray, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    errors = np.asarray(errors, dtype=np.float64)
    if errors.ndim != 2 or errors.shape[1] != 2 or not shape or errors.shape[0] != shape[-1]:
        raise ValueError(f"readout errors must have shape ({shape[-1] if shape else 'n'}, 2), got {errors.shape}")
    if not np.all(np.isfinite(errors)) or np.any(errors < 0) or np.any(errors.sum(axis=1) >= 1):
        raise ValueError(f"readout errors must be probabilities with p10 + p01 < 1 per qubit, got {errors.tolist()}")
    return errors[:, 0], errors[:, 1]
