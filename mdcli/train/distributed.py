"""The device a run trains on, its threads, and distributed data parallel (torchrun).

Under `torchrun --nproc_per_node=N -m mdcli train-...` every rank draws the same global batch
(the seeded permutation), takes its own slice of it, and DDP averages the gradients: the run
follows a single-process run with the same global batch. Only rank 0 writes artifacts and logs.
The collectives the networks call themselves are in `mdcli.ranks`.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from torch import nn

from mdcli.errors import ConfigError, MdcliError


def pick_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise MdcliError("train.device=cuda: no CUDA device is available")
    if name == "cuda" and world_size() > 1:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device(name)


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def dist_setup(device: torch.device, batch_size: int) -> None:
    """Join the process group torchrun describes (NCCL on GPU, gloo on CPU); no-op for one process."""
    import torch.distributed as dist

    n = world_size()
    if n == 1 or dist.is_initialized():
        return
    if batch_size % n:
        raise ConfigError(f"train.batch_size={batch_size}: must be divisible by the {n} ranks (it is the global batch)")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")


def rank_slice(idx: np.ndarray | torch.Tensor):
    """This rank's contiguous share of a global batch (everything when running alone).

    Contiguous, so that gathering the ranks' rows in rank order restores the global batch.
    """
    n, r = world_size(), rank()
    per = len(idx) // n
    return idx[r * per : (r + 1) * per]


def ddp(module: nn.Module, device: torch.device) -> nn.Module:
    """Wrap for gradient averaging across ranks (the module itself when running alone)."""
    if world_size() == 1:
        return module
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)


def maybe_compile(module: nn.Module, enabled: bool) -> nn.Module:
    """torch.compile for the training forward; weights stay shared with `module` (saved as usual)."""
    return torch.compile(module) if enabled else module


def dist_teardown() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def set_threads() -> None:
    """Use the machine's cores for intra-op work unless the user pinned OMP_NUM_THREADS."""
    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(max(1, os.cpu_count() or 1))
