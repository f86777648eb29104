"""Building blocks shared by the autoencoders, discriminator and classifier."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def norm(channels: int, groups: int = 32) -> nn.GroupNorm:
    """GroupNorm with the largest group count <= `groups` that divides `channels` (batch-size independent)."""
    g = min(groups, channels)
    while channels % g:
        g -= 1
    return nn.GroupNorm(g, channels, eps=1e-6)


class ResBlock(nn.Module):
    """GroupNorm -> SiLU -> 3x3 conv, twice, with a (1x1-projected) skip connection."""

    def __init__(self, c_in: int, c_out: int, groups: int = 32, dropout: float = 0.0):
        super().__init__()
        self.norm1 = norm(c_in, groups)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.norm2 = norm(c_out, groups)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(x) + h


class AttnBlock(nn.Module):
    """Single-head self-attention over spatial positions (scaled dot-product attention)."""

    def __init__(self, channels: int, groups: int = 32):
        super().__init__()
        self.norm = norm(channels, groups)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, c, h * w).transpose(-1, -2).unbind(1)  # (B, HW, C)
        out = F.scaled_dot_product_attention(q[:, None], k[:, None], v[:, None])[:, 0]
        return x + self.proj(out.transpose(-1, -2).reshape(b, c, h, w))


class TimeAttnBlock(nn.Module):
    """Multi-head self-attention along time (the columns) within each Doppler row, with a learnt bias per head and
    relative time offset (Shaw et al. 2018; Raffel et al. 2020's bucketless form): a head can attend one gait or
    wing-beat period back, which position-blind attention cannot single out. Offsets beyond `max_offset` share the
    last bias. The output projection starts at zero, so the block starts as the identity."""

    def __init__(self, channels: int, groups: int = 32, heads: int = 4, max_offset: int = 64):
        super().__init__()
        while channels % heads:
            heads -= 1
        self.heads, self.max_offset = heads, max_offset
        self.norm = norm(channels, groups)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)
        self.bias = nn.Parameter(torch.zeros(heads, 2 * max_offset + 1))
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        nh, d = self.heads, c // self.heads
        qkv = self.qkv(self.norm(x)).reshape(b, 3, nh, d, h, w).permute(1, 0, 4, 2, 5, 3)  # (3, B, H, heads, W, d)
        q, k, v = (t.reshape(b * h, nh, w, d) for t in qkv)
        pos = torch.arange(w, device=x.device)
        offset = (pos[None, :] - pos[:, None]).clamp(-self.max_offset, self.max_offset) + self.max_offset
        bias = self.bias[:, offset].to(q.dtype)  # (heads, W, W)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias[None])  # (B*H, heads, W, d)
        out = out.reshape(b, h, nh, w, d).permute(0, 2, 4, 1, 3).reshape(b, c, h, w)
        return x + self.proj(out)


class Downsample(nn.Module):
    """Stride-2 3x3 convolution (asymmetric padding keeps even sizes exact); time=False halves the rows only
    (stride 1 along the columns, which keep their size)."""

    def __init__(self, channels: int, time: bool = True):
        super().__init__()
        self.time = time
        self.conv = nn.Conv2d(channels, channels, 3, stride=2 if time else (2, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1) if self.time else (1, 1, 0, 1)))


class Upsample(nn.Module):
    """Nearest-neighbour x2 then 3x3 convolution (no checkerboard artefacts of transposed convs); time=False
    doubles the rows only."""

    def __init__(self, channels: int, time: bool = True):
        super().__init__()
        self.scale = 2.0 if time else (2.0, 1.0)
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=self.scale, mode="nearest"))
