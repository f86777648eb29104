"""Autoencoders broken on purpose: the ground truth `diagnose collapse` is tested against.

Each wraps a trained model and keeps the common interface (encode/decode, and for VQ models
`quantizer` and `decode_indices`), so the diagnostics measure them like any artifact.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from mdcli.models.autoencoder import Encoding


class ForcedSigmaVAE(nn.Module):
    """Variance collapse: the posterior log-variance is pinned at `logvar` (sigma ~ 0)."""

    arch = "vae"

    def __init__(self, vae: nn.Module, logvar: float = -20.0):
        super().__init__()
        self.inner, self.logvar = vae, logvar

    def encode(self, x: torch.Tensor) -> Encoding:
        e = self.inner.encode(x)
        return Encoding(latent=e.latent, logvar=torch.full_like(e.latent, self.logvar))

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        return self.inner.decode(latent)


def collapse_codebook(vq: nn.Module, keep: int, counts: torch.Tensor | None = None) -> nn.Module:
    """Codebook collapse: a copy whose lookup only ever reaches `keep` codes (the most used ones).

    The other codes are moved far away, so encoding and decoding (which quantises) use only the kept ones.
    """
    model = copy.deepcopy(vq)
    q = model.quantizer
    k = q.cfg.codebook_size
    order = torch.argsort(counts, descending=True) if counts is not None else torch.arange(k)
    far = torch.ones(k, dtype=torch.bool)
    far[order[:keep]] = False
    with torch.no_grad():
        q.embed[far] = 1e4
    return model


class PermutedVQ(nn.Module):
    """Posterior collapse by relabelling: codes become pointers without geometry.

    Where the healthy model emits code k, this encoder emits the vector of code pi(k) (one fixed random
    permutation, or a different one at each spatial position), and the decoder applies pi^-1 before
    decoding. Reconstructions, usage and (for a global pi) every index statistic are unchanged; what is
    lost is that nearby latent vectors mean similar content.
    """

    def __init__(self, vq: nn.Module, latent_hw: tuple[int, int], per_position: bool = False, seed: int = 0):
        super().__init__()
        self.inner = vq
        self.quantizer = vq.quantizer
        self.arch = vq.arch
        k = vq.quantizer.cfg.codebook_size
        gen = torch.Generator().manual_seed(seed)
        n_pos = latent_hw[0] * latent_hw[1] if per_position else 1
        perm = torch.stack([torch.randperm(k, generator=gen) for _ in range(n_pos)])  # (P, K)
        self.register_buffer("perm", perm)
        self.register_buffer("inverse", torch.argsort(perm, dim=1))
        self.hw = latent_hw

    def _map(self, table: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        b, h, w = idx.shape
        if table.shape[0] == 1:
            return table[0][idx]
        pos = torch.arange(h * w, device=idx.device).view(1, h, w).expand(b, h, w)
        return table[pos, idx]

    def _vectors(self, idx: torch.Tensor) -> torch.Tensor:
        e = self.quantizer.codebook()[idx].permute(0, 3, 1, 2)
        return self.quantizer.proj_out(e)

    def encode(self, x: torch.Tensor) -> Encoding:
        j = self._map(self.perm, self.inner.encode(x).indices)
        return Encoding(latent=self._vectors(j), indices=j)

    def decode_indices(self, j: torch.Tensor) -> torch.Tensor:
        return self.inner.decode_indices(self._map(self.inverse, j))

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        return self.decode_indices(self.quantizer.lookup_indices(latent))
