"""Where a run computes: the device, the CPU threads, the precision."""

from __future__ import annotations

import os
from contextlib import nullcontext

import torch

from arithlab.errors import ArithlabError

# The default's ceiling. The quickstart's 0.2M-parameter model already leaves 2 idle cores
# part unused (BENCHMARKS.md: ddp); past 2 threads it is not measured yet (BENCHMARKS.md:
# threads), so 4 keeps a large machine's cores from being spread over tiny matrices.
THREADS_CAP = 4


def pick_device(name: str) -> str:
    """`train.device`: the device named, once torch can see it; `auto`: CUDA, then MPS, then the CPU."""
    if name != "auto":
        if name == "cuda" and not torch.cuda.is_available():
            raise ArithlabError("train.device: cuda asked for, but torch sees no CUDA device")
        if name == "mps" and not torch.backends.mps.is_available():
            raise ArithlabError("train.device: mps asked for, but torch sees no MPS device")
        return name
    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def use(device: str, threads: int) -> None:
    """Compute in this process with `threads` CPU threads, and TF32 matrix products on CUDA."""
    torch.set_num_threads(threads)
    if device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def default_threads(processes: int = 1) -> int:
    """CPU threads for each of `processes` processes: the cores this process may use less
    those already busy (the 1-minute load average), at most THREADS_CAP, at least 1. A busy
    core shared by two threads of one training step slows the whole step to its pace."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    busy = round(os.getloadavg()[0]) if hasattr(os, "getloadavg") else 0
    return max(1, min(THREADS_CAP, (usable - busy) // processes))


def autocast_for(device: str):
    """bf16 autocast on CUDA; full precision elsewhere."""
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.startswith("cuda") else nullcontext()
