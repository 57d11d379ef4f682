"""The memory check run before a simulation: a state too large for the free memory is refused up front."""

from __future__ import annotations

import torch

from qml_imaging import limits


def check_memory(batch: int, n_qubits: int, dtype: torch.dtype, device: torch.device, copies: int) -> None:
    """Raise MemoryError, naming batch, qubits and the estimate, when ``copies`` states of ``batch`` x
    ``2**n_qubits`` amplitudes of ``dtype`` (autograd keeps about one per step) exceed the memory
    ``device`` has free (:func:`available_memory`); nothing is checked where that is unknown."""
    needed = batch * 2**n_qubits * torch.empty((), dtype=dtype).element_size() * copies
    free = available_memory(device)
    if free is not None and needed > free:
        raise MemoryError(
            f"simulating {n_qubits} qubits for a batch of {batch} needs about {needed / 2**30:.1f} GiB "
            f"({copies} states of {batch} x 2^{n_qubits} {dtype} amplitudes kept for the backward pass), but "
            f"{device} has {free / 2**30:.1f} GiB free (memory, ulimit -v and container limits); use fewer qubits or a smaller batch (train.batch_size)"
        )


def available_memory(device: torch.device) -> int | None:
    """Free bytes on ``device``: CUDA's free memory, or what the host, ``ulimit -v`` and the container still
    allow this process (:func:`qml_imaging.limits.available_memory`; None where unknown)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    return limits.available_memory()
