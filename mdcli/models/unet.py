"""Class-conditional UNet denoiser for latents (Ho et al. 2020; Rombach et al. 2022).

Residual blocks with GroupNorm and an additive (timestep + class) embedding, sinusoidal
timestep features through an MLP, self-attention at the chosen levels and, where asked, attention along time
within each Doppler row (with a relative-offset bias: periodic limb and wing-beat timing); the class
embedding has one extra row, the null class, for classifier-free guidance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from mdcli.models.blocks import AttnBlock, Downsample, TimeAttnBlock, Upsample, norm


@dataclass
class UNetConfig:
    channels: int = 64
    channel_mult: list[int] = field(default_factory=lambda: [1, 2])
    num_res_blocks: int = 2
    attention_levels: list[int] = field(default_factory=lambda: [1])  # levels (0 = full latent resolution) with attention
    time_attention_levels: list[int] = field(default_factory=list)  # levels with attention along time (TimeAttnBlock)
    groups: int = 8
    dropout: float = 0.0


def timestep_features(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal features of integer timesteps (Vaswani et al. 2017): (B,) -> (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class EmbResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, emb_dim: int, groups: int, dropout: float):
        super().__init__()
        self.norm1 = norm(c_in, groups)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, c_out)
        self.norm2 = norm(c_out, groups)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)  # each block starts as the identity
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb(F.silu(emb))[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(x) + h


class UNet(nn.Module):
    """(x_t (B, C, h, w), t (B,), y (B,) class index or `n_classes` for null[, cond (B, n_cond)]) -> eps or v.

    n_cond > 0: also conditioned on that many scalars in [0, 1] (kinematic features of the image,
    mdcli.kinematics.condition_vector), each embedded as the diffusion time is (sinusoids, the size
    micro-conditioning of SDXL, Podell et al. 2023), then an MLP added to the time and class embedding. A null
    class drops them too: classifier-free guidance guides both."""

    def __init__(self, cfg: UNetConfig, in_channels: int, n_classes: int, n_cond: int = 0):
        super().__init__()
        self.cfg = cfg
        self.n_classes = n_classes
        self.n_cond = n_cond
        ch = cfg.channels
        emb_dim = 4 * ch
        self.time_mlp = nn.Sequential(nn.Linear(ch, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.class_emb = nn.Embedding(n_classes + 1, emb_dim)  # last row: the null class
        if n_cond:
            self.cond_mlp = nn.Sequential(nn.Linear(n_cond * ch, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.conv_in = nn.Conv2d(in_channels, ch, 3, padding=1)
        self.down = nn.ModuleList()
        skips = [ch]
        c = ch
        for level, mult in enumerate(cfg.channel_mult):
            for _ in range(cfg.num_res_blocks):
                block = nn.ModuleList([EmbResBlock(c, ch * mult, emb_dim, cfg.groups, cfg.dropout)])
                c = ch * mult
                block.extend(self._attention(level, c))
                self.down.append(block)
                skips.append(c)
            if level < len(cfg.channel_mult) - 1:
                self.down.append(nn.ModuleList([Downsample(c)]))
                skips.append(c)
        self.mid1 = EmbResBlock(c, c, emb_dim, cfg.groups, cfg.dropout)
        self.mid_attn = AttnBlock(c, cfg.groups)
        self.mid2 = EmbResBlock(c, c, emb_dim, cfg.groups, cfg.dropout)
        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(cfg.channel_mult))):
            for i in range(cfg.num_res_blocks + 1):
                block = nn.ModuleList([EmbResBlock(c + skips.pop(), ch * mult, emb_dim, cfg.groups, cfg.dropout)])
                c = ch * mult
                block.extend(self._attention(level, c))
                if level > 0 and i == cfg.num_res_blocks:
                    block.append(Upsample(c))
                self.up.append(block)
        self.norm_out = norm(c, cfg.groups)
        self.conv_out = nn.Conv2d(c, in_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def _attention(self, level: int, c: int) -> list[nn.Module]:
        cfg = self.cfg
        return ([AttnBlock(c, cfg.groups)] if level in cfg.attention_levels else []) + \
            ([TimeAttnBlock(c, cfg.groups)] if level in cfg.time_attention_levels else [])

    @staticmethod
    def _run_block(block: nn.ModuleList, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        for layer in block:
            h = layer(h, emb) if isinstance(layer, EmbResBlock) else layer(h)
        return h

    def cond_embedding(self, cond: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(B, n_cond) scalars in [0, 1] -> (B, emb_dim), zero where y is the null class."""
        if cond is None or cond.shape[-1] != self.n_cond:
            got = "none" if cond is None else cond.shape[-1]
            raise ValueError(f"this UNet is conditioned on {self.n_cond} kinematic scalars, got {got}")
        b = len(cond)
        feats = timestep_features(cond.reshape(-1) * 1000.0, self.cfg.channels).reshape(b, -1)
        keep = (y != self.n_classes).to(feats.dtype)[:, None]
        return self.cond_mlp(feats.to(self.cond_mlp[0].weight.dtype)) * keep

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        emb = self.time_mlp(timestep_features(t, self.cfg.channels)) + self.class_emb(y)
        if self.n_cond:
            emb = emb + self.cond_embedding(cond, y)
        h = self.conv_in(x)
        hs = [h]
        for block in self.down:
            h = self._run_block(block, h, emb)
            hs.append(h)
        h = self.mid2(self.mid_attn(self.mid1(h, emb)), emb)
        for block in self.up:
            h = self._run_block(block, torch.cat([h, hs.pop()], dim=1), emb)
        return self.conv_out(F.silu(self.norm_out(h)))
