"""Collectives over data-parallel ranks (torchrun); each is the identity when running alone."""

from __future__ import annotations

import torch


def distributed() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def all_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum over ranks, in place (statistics that must see the global batch)."""
    if distributed():
        import torch.distributed as dist

        dist.all_reduce(t)
    return t


def all_mean(t: torch.Tensor) -> torch.Tensor:
    """Mean over ranks: of per-rank batch-mean gradients, the gradient of the global batch's mean."""
    if distributed():
        import torch.distributed as dist

        return all_sum(t) / dist.get_world_size()
    return t


def all_gather_rows(t: torch.Tensor) -> torch.Tensor:
    """Every rank's rows, concatenated in rank order."""
    if not distributed():
        return t
    import torch.distributed as dist

    parts = [torch.empty_like(t) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, t.contiguous())
    return torch.cat(parts)
