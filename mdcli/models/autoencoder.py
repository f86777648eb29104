"""One encoder/decoder family for every autoencoder; the bottleneck is what differs.

All autoencoders share `encode(x) -> Encoding` and `decode(latent) -> image`, and
`forward(x) -> AEOutput` for training, so later stages never branch on the architecture.
`Encoding.latent` is what the `encode` stage stores and the LDM diffuses: the posterior
mean for the VAE, the pre-quantisation encoder output for VQ models (quantised again in
`decode`, the latent-diffusion convention).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from mdcli.models.blocks import AttnBlock, Downsample, ResBlock, Upsample, norm
from mdcli.models.quantizer import VectorQuantizer
from mdcli.ranks import global_randn_like


@dataclass
class ModelConfig:
    channels: int = 32  # width of the first level
    channel_mult: list[int] = field(default_factory=lambda: [1, 2, 4])  # per level; f = 2^(levels - 1)
    num_res_blocks: int = 1  # residual blocks per level
    attention: bool = True  # self-attention at the lowest resolution
    latent_channels: int = 4
    groups: int = 8  # GroupNorm groups
    dropout: float = 0.0
    # time-axis downsampling, a power of 2 up to f (0 = f, a square latent cell): the first log2 of it levels
    # halve both axes, the rest only Doppler, so a wing beat of a few columns keeps its own latent columns
    time_factor: int = 0

    @property
    def downsample_factor(self) -> int:
        """f, the Doppler-axis (row) downsampling."""
        return 2 ** (len(self.channel_mult) - 1)

    @property
    def factors(self) -> tuple[int, int]:
        """(rows, columns) downsampling: (f, time_factor or f)."""
        return self.downsample_factor, self.time_factor or self.downsample_factor

    def halves_time(self, level: int) -> bool:
        """Whether the downsampling after encoder level `level` also halves the time axis."""
        return 2**level < self.factors[1]


class Encoder(nn.Module):
    """Image (B, 1, H, W) -> features (B, c_out, H/f, W/time_factor)."""

    def __init__(self, cfg: ModelConfig, c_out: int, in_channels: int = 1):
        super().__init__()
        ch = [cfg.channels * m for m in cfg.channel_mult]
        self.conv_in = nn.Conv2d(in_channels, ch[0], 3, padding=1)
        layers: list[nn.Module] = []
        c = ch[0]
        for level, c_level in enumerate(ch):
            for _ in range(cfg.num_res_blocks):
                layers.append(ResBlock(c, c_level, cfg.groups, cfg.dropout))
                c = c_level
            if level < len(ch) - 1:
                layers.append(Downsample(c, time=cfg.halves_time(level)))
        self.down = nn.Sequential(*layers)
        mid: list[nn.Module] = [ResBlock(c, c, cfg.groups)]
        if cfg.attention:
            mid.append(AttnBlock(c, cfg.groups))
        mid.append(ResBlock(c, c, cfg.groups))
        self.mid = nn.Sequential(*mid)
        self.norm_out = norm(c, cfg.groups)
        self.conv_out = nn.Conv2d(c, c_out, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.mid(self.down(self.conv_in(x)))
        return self.conv_out(F.silu(self.norm_out(h)))


class Decoder(nn.Module):
    """Latent (B, c_in, h, w) -> image (B, 1, h f, w time_factor); the mirror of the encoder."""

    def __init__(self, cfg: ModelConfig, c_in: int, out_channels: int = 1):
        super().__init__()
        ch = [cfg.channels * m for m in cfg.channel_mult][::-1]
        c = ch[0]
        self.conv_in = nn.Conv2d(c_in, c, 3, padding=1)
        mid: list[nn.Module] = [ResBlock(c, c, cfg.groups)]
        if cfg.attention:
            mid.append(AttnBlock(c, cfg.groups))
        mid.append(ResBlock(c, c, cfg.groups))
        self.mid = nn.Sequential(*mid)
        layers: list[nn.Module] = []
        for level, c_level in enumerate(ch):
            for _ in range(cfg.num_res_blocks + 1):
                layers.append(ResBlock(c, c_level, cfg.groups, cfg.dropout))
                c = c_level
            if level < len(ch) - 1:  # the mirror: decoder level l undoes encoder level (levels - 2 - l)
                layers.append(Upsample(c, time=cfg.halves_time(len(ch) - 2 - level)))
        self.up = nn.Sequential(*layers)
        self.norm_out = norm(c, cfg.groups)
        self.conv_out = nn.Conv2d(c, out_channels, 3, padding=1)

    @property
    def last_layer(self) -> torch.Tensor:
        """Weight of the final convolution: where the adaptive GAN weight compares gradients."""
        return self.conv_out.weight

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.up(self.mid(self.conv_in(z)))
        return self.conv_out(F.silu(self.norm_out(h)))


class Encoding(NamedTuple):
    latent: torch.Tensor  # (B, C, h, w): VAE posterior mean / VQ pre-quantisation output
    logvar: torch.Tensor | None = None  # VAE only
    indices: torch.Tensor | None = None  # VQ only, (B, h, w)


class AEOutput(NamedTuple):
    recon: torch.Tensor  # (B, 1, H, W), in the model's [-1, 1] scale
    loss: torch.Tensor  # the bottleneck's own loss, already weighted (KL or VQ terms)
    stats: dict  # scalars for logging (kl, vq losses, perplexity, ...)
    indices: torch.Tensor | None = None


class GaussianAutoencoder(nn.Module):
    """VAE: diagonal Gaussian posterior N(mu, exp(logvar)), reparameterised, KL to N(0, I)."""

    arch = "vae"

    def __init__(self, cfg: ModelConfig, kl_weight: float = 1e-6, logvar_range: tuple[float, float] = (-30.0, 20.0)):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg, 2 * cfg.latent_channels)
        self.decoder = Decoder(cfg, cfg.latent_channels)
        self.kl_weight = kl_weight
        self.logvar_range = logvar_range

    def _posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, logvar = self.encoder(x).float().chunk(2, dim=1)  # the KL in fp32 under bf16 autocast
        return mean, logvar.clamp(*self.logvar_range)

    def encode(self, x: torch.Tensor) -> Encoding:
        mean, logvar = self._posterior(x)
        return Encoding(latent=mean, logvar=logvar)

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        return self.decoder(latent)

    def forward(self, x: torch.Tensor, sample: bool = True) -> AEOutput:
        mean, logvar = self._posterior(x)
        z = mean + torch.exp(0.5 * logvar) * global_randn_like(mean) if sample else mean
        # KL(N(mu, s^2) || N(0, 1)) summed over latent elements, averaged over the batch.
        kl = 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).flatten(1).sum(1).mean()
        stats = {"kl": kl.detach(), "posterior_std": torch.exp(0.5 * logvar).mean().detach()}
        return AEOutput(self.decoder(z), self.kl_weight * kl, stats)


class VQAutoencoder(nn.Module):
    """VQ-VAE (and the generator of the VQ-GAN): encoder -> vector quantiser -> decoder."""

    arch = "vqvae"

    def __init__(self, cfg: ModelConfig, quantizer: VectorQuantizer, arch: str = "vqvae"):
        super().__init__()
        self.cfg = cfg
        self.arch = arch
        self.encoder = Encoder(cfg, cfg.latent_channels)
        self.quantizer = quantizer
        self.decoder = Decoder(cfg, cfg.latent_channels)

    def encode(self, x: torch.Tensor) -> Encoding:
        z = self.encoder(x)
        return Encoding(latent=z, indices=self.quantizer.lookup_indices(z))

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """Quantise (nearest code) then decode: latents from the LDM land on the codebook."""
        return self.decoder(self.quantizer(latent).z_q)

    def decode_indices(self, indices: torch.Tensor) -> torch.Tensor:
        """Decode a code map (B, h, w) directly."""
        e = self.quantizer.codebook()[indices].permute(0, 3, 1, 2)
        return self.decoder(self.quantizer.proj_out(e))

    def forward(self, x: torch.Tensor, sample: bool = True) -> AEOutput:
        q = self.quantizer(self.encoder(x))
        return AEOutput(self.decoder(q.z_q), q.loss, q.stats, q.indices)
