"""Data-parallel training under ``torchrun``: process-group set-up and the few collectives the loop needs.

Without ``torchrun`` (no ``WORLD_SIZE`` in the environment, or 1) every function is a cheap no-op,
so the same code runs on one process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class ProcessGroup:
    """This process's place among the data-parallel workers."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1


def init_process_group(use_cuda: bool) -> ProcessGroup:
    """Join the ``torchrun`` process group (NCCL on GPU, gloo on CPU) if launched by it."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return ProcessGroup()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        if use_cuda:
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return ProcessGroup(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=local_rank)


def current_process_group() -> ProcessGroup:
    """The process group already joined, or the single-process one."""
    if not (dist.is_available() and dist.is_initialized()):
        return ProcessGroup()
    return ProcessGroup(
        rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=int(os.environ.get("LOCAL_RANK", "0"))
    )


def broadcast_object(value: Any) -> Any:
    """Rank 0's ``value`` on every rank."""
    if not current_process_group().is_distributed:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_objects(value: Any) -> list[Any]:
    """Every rank's ``value``, in rank order, on every rank."""
    group = current_process_group()
    if not group.is_distributed:
        return [value]
    gathered: list[Any] = [None] * group.world_size
    dist.all_gather_object(gathered, value)
    return gathered


def mean_over_ranks(value: float) -> float:
    """Average of a scalar over all ranks."""
    group = current_process_group()
    if not group.is_distributed:
        return value
    return sum(gather_objects(value)) / group.world_size


def barrier() -> None:
    """Wait for every process of a ``torchrun`` group; nothing in a single process."""
    if current_process_group().is_distributed:
        dist.barrier()
