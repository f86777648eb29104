"""PatchGAN discriminator (Isola et al. 2017, as in VQGAN) with GroupNorm instead of BatchNorm.

BatchNorm statistics are unreliable at the small batches micro-Doppler data allows and
differ between ranks under DDP; GroupNorm has neither problem.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from mdcli.models.blocks import norm


@dataclass
class DiscConfig:
    layers: int = 3  # stride-2 stages: receptive field 70x70 at 3
    channels: int = 32
    loss: str = "hinge"  # hinge | non-saturating
    weight: float = 0.5  # multiplies the adaptive weight
    start: int = 500  # step from which the generator gets the adversarial term
    pretrain_steps: int = 100  # the discriminator trains this many steps before `start`
    adaptive_max: float = 1e4  # clamp of the adaptive weight


class PatchDiscriminator(nn.Module):
    """Image (B, 1, H, W) -> patch logits (B, 1, h, w)."""

    def __init__(self, cfg: DiscConfig, in_channels: int = 1):
        super().__init__()
        c = cfg.channels
        layers: list[nn.Module] = [nn.Conv2d(in_channels, c, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        for i in range(1, cfg.layers + 1):
            c_prev, c = c, cfg.channels * min(2**i, 8)
            stride = 2 if i < cfg.layers else 1
            layers += [nn.Conv2d(c_prev, c, 4, stride=stride, padding=1), norm(c, 32), nn.LeakyReLU(0.2)]
        layers.append(nn.Conv2d(c, 1, 4, stride=1, padding=1))
        self.net = nn.Sequential(*layers)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, 0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
