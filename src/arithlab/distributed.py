"""Data-parallel training under torchrun: which process this is, and the few messages
the processes exchange. Without torchrun every function is the single-process no-op.

All processes draw the same global batch from the same seeded generator and each trains
on its own slice of it, so a run's data order does not depend on the number of processes;
process 0 alone writes the run directory and evaluates.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def start(device: str) -> str:
    """Join the process group torchrun set up; returns this process's device."""
    if world_size() == 1:
        return device
    if device == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return device


def stop() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def any_true(flags: list[bool], device: str) -> list[bool]:
    """For each flag, whether it is set in any process (all processes call this together)."""
    if not dist.is_initialized():
        return flags
    values = torch.tensor([int(f) for f in flags], device=device)
    dist.all_reduce(values, op=dist.ReduceOp.MAX)
    return [bool(v) for v in values.tolist()]


def from_main(value: str | None) -> str | None:
    """Process 0's `value`, in every process."""
    if not dist.is_initialized():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def my_slice(x: torch.Tensor) -> torch.Tensor:
    """This process's rows of a global batch."""
    return x[rank() :: world_size()] if world_size() > 1 else x
