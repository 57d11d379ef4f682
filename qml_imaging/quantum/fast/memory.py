"""The memory check run before a simulation: a state too large for the free memory is refused up front."""

from __future__ import annotations

import torch


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
            f"{device} has {free / 2**30:.1f} GiB free; use fewer qubits or a smaller batch (train.batch_size)"
        )


def available_memory(device: torch.device) -> int | None:
    """Free bytes on ``device``: CUDA's free memory, or the host's MemAvailable (None where unknown)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None
