"""Vector quantiser with the usual defences against codebook collapse.

van den Oord et al., "Neural Discrete Representation Learning" (2017): straight-through
estimator, codebook loss ||sg(z) - e||^2 and commitment beta ||z - sg(e)||^2 with
beta = 0.25 on the *commitment* term (public VQGAN code long had the two swapped).
Options: EMA codebook (Razavi et al. 2019, with Laplace smoothing), k-means
initialisation on the first batch, dead-code restart when a code's EMA cluster size
falls below a threshold (Dhariwal et al. 2020, "Jukebox"), l2-normalised (cosine)
codes and a low-dimensional code space (Yu et al. 2022, "Vector-quantized image
modeling with improved VQGAN").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from mdcli.ranks import all_gather_rows, all_sum


@dataclass
class VQConfig:
    codebook_size: int = 256
    code_dim: int = 0  # 0: the latent channels; smaller: look codes up in a projected low-dim space
    beta: float = 0.25  # commitment weight
    ema: bool = True  # EMA codebook updates instead of a codebook loss
    ema_decay: float = 0.99
    kmeans_init: bool = True  # initialise the codebook by k-means on the first training batch
    kmeans_iters: int = 10
    dead_code_threshold: float = 1.0  # restart codes whose EMA cluster size drops below this (0: never)
    cosine: bool = False  # l2-normalise codes and inputs (cosine-similarity lookup)


class QuantizerOutput(NamedTuple):
    z_q: torch.Tensor  # (B, C, h, w) quantised latent, straight-through to the encoder
    loss: torch.Tensor  # codebook (if not EMA) + beta * commitment
    indices: torch.Tensor  # (B, h, w)
    stats: dict


class VectorQuantizer(nn.Module):
    def __init__(self, dim: int, cfg: VQConfig):
        super().__init__()
        self.cfg = cfg
        self.dim = dim
        self.code_dim = cfg.code_dim or dim
        k, d = cfg.codebook_size, self.code_dim
        self.proj_in = nn.Conv2d(dim, d, 1) if d != dim else nn.Identity()
        self.proj_out = nn.Conv2d(d, dim, 1) if d != dim else nn.Identity()
        embed = torch.randn(k, d) / d**0.5
        if cfg.ema:
            self.register_buffer("embed", embed)
        else:
            self.embed = nn.Parameter(embed)
        self.register_buffer("embed_avg", embed.clone())
        self.register_buffer("cluster_size", torch.ones(k))
        self.register_buffer("initialised", torch.tensor(not cfg.kmeans_init))

    # -- lookup ------------------------------------------------------------------------------
    def codebook(self) -> torch.Tensor:
        return F.normalize(self.embed, dim=-1) if self.cfg.cosine else self.embed

    def _flat(self, z: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w) -> (B h w, d) in code space."""
        ze = self.proj_in(z).permute(0, 2, 3, 1).reshape(-1, self.code_dim)
        return F.normalize(ze, dim=-1) if self.cfg.cosine else ze

    @staticmethod
    def _nearest(ze: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        # in fp32 even under bf16 autocast: |z|^2 - 2 z.c + |c|^2 cancels, and a bf16 product
        # (8 bits of mantissa) would hand many vectors to a neighbouring code
        with torch.autocast(ze.device.type, enabled=False):
            return (ze.pow(2).sum(1, keepdim=True) - 2 * ze @ codes.t() + codes.pow(2).sum(1)[None]).argmin(1)

    @torch.no_grad()
    def lookup_indices(self, z: torch.Tensor) -> torch.Tensor:
        b, _, h, w = z.shape
        return self._nearest(self._flat(z).float(), self.codebook().float()).view(b, h, w)

    # -- codebook maintenance ----------------------------------------------------------------
    @torch.no_grad()
    def _kmeans_init(self, ze: torch.Tensor) -> None:
        ze = all_gather_rows(ze)  # every rank clusters the global batch, identically
        k = self.cfg.codebook_size
        pick = torch.randint(0, len(ze), (k,), device=ze.device) if len(ze) < k else torch.randperm(len(ze), device=ze.device)[:k]
        centres = ze[pick].clone()
        for _ in range(self.cfg.kmeans_iters):
            idx = self._nearest(ze, centres)
            counts = torch.bincount(idx, minlength=k).float()
            sums = torch.zeros_like(centres).index_add_(0, idx, ze)
            filled = counts > 0
            centres[filled] = sums[filled] / counts[filled, None]
            if self.cfg.cosine:
                centres = F.normalize(centres, dim=-1)
        self.embed.data.copy_(centres)
        self.embed_avg.copy_(centres)
        self.cluster_size.fill_(1.0)
        self.initialised.fill_(True)

    @torch.no_grad()
    def _ema_update(self, ze: torch.Tensor, idx: torch.Tensor) -> None:
        k, decay, eps = self.cfg.codebook_size, self.cfg.ema_decay, 1e-5
        counts = all_sum(torch.bincount(idx, minlength=k).to(ze.dtype))
        sums = all_sum(torch.zeros(k, self.code_dim, device=ze.device, dtype=ze.dtype).index_add_(0, idx, ze))
        self.cluster_size.mul_(decay).add_(counts, alpha=1 - decay)
        self.embed_avg.mul_(decay).add_(sums, alpha=1 - decay)
        n = self.cluster_size.sum()
        smoothed = (self.cluster_size + eps) / (n + k * eps) * n  # Laplace smoothing
        self.embed.data.copy_(self.embed_avg / smoothed[:, None])

    @torch.no_grad()
    def _track_usage(self, idx: torch.Tensor) -> None:
        """Without EMA codes, still keep the EMA cluster size: it drives dead-code restarts."""
        counts = all_sum(torch.bincount(idx, minlength=self.cfg.codebook_size).float())
        self.cluster_size.mul_(self.cfg.ema_decay).add_(counts, alpha=1 - self.cfg.ema_decay)

    @torch.no_grad()
    def _restart_dead(self, ze: torch.Tensor) -> int:
        dead = self.cluster_size < self.cfg.dead_code_threshold
        n_dead = int(dead.sum())
        if n_dead == 0:
            return 0
        ze = all_gather_rows(ze)  # the same replacements on every rank (cluster sizes are all-reduced)
        pick = torch.randint(0, len(ze), (n_dead,), device=ze.device)
        fresh = ze[pick]
        self.embed.data[dead] = fresh
        self.embed_avg[dead] = fresh * self.cfg.dead_code_threshold
        self.cluster_size[dead] = self.cfg.dead_code_threshold
        return n_dead

    # -- forward -----------------------------------------------------------------------------
    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        b, _, h, w = z.shape
        ze = self._flat(z).float()
        if self.training and not bool(self.initialised):
            self._kmeans_init(ze.detach())
        codes = self.codebook().float()
        idx = self._nearest(ze.detach(), codes)
        e = codes[idx]
        restarted = 0
        if self.training:
            if self.cfg.ema:
                self._ema_update(ze.detach(), idx)
            else:
                self._track_usage(idx)
            if self.cfg.dead_code_threshold > 0:
                restarted = self._restart_dead(ze.detach())
        commitment = F.mse_loss(ze, e.detach())
        codebook_loss = torch.zeros((), device=z.device) if self.cfg.ema else F.mse_loss(e, ze.detach())
        loss = codebook_loss + self.cfg.beta * commitment
        zq = ze + (e - ze).detach()  # straight-through: forward e, backward identity
        zq = zq.view(b, h, w, self.code_dim).permute(0, 3, 1, 2)
        counts = torch.bincount(idx, minlength=self.cfg.codebook_size).float()
        p = counts / counts.sum()
        perplexity = torch.exp(-(p * torch.log(p + 1e-10)).sum())
        stats = {"commitment": commitment.detach(), "perplexity": perplexity.detach(), "restarted": restarted}
        return QuantizerOutput(self.proj_out(zq.to(z.dtype)), loss, idx.view(b, h, w), stats)
