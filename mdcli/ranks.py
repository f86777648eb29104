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


def global_randn_like(t: torch.Tensor) -> torch.Tensor:
    """Standard normal noise for this rank's rows of the global batch. Every rank seeds the same stream,
    draws the noise of the whole global batch and keeps its contiguous share (rank order, as the batch is
    sliced), so N ranks draw the noise 1 rank would instead of N copies of the first share."""
    if not distributed():
        return torch.randn_like(t)
    import torch.distributed as dist

    n, r = t.shape[0], dist.get_rank()
    full = torch.randn((n * dist.get_world_size(), *t.shape[1:]), dtype=t.dtype, device=t.device)
    return full[r * n : (r + 1) * n]
