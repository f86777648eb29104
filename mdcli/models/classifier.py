"""A small spectrogram CNN: the class judge, and the feature extractor of the domain perceptual loss."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from mdcli.models.blocks import ResBlock, norm


@dataclass
class ClassifierNetConfig:
    channels: list[int] = field(default_factory=lambda: [16, 32, 64, 128])  # one stage each, /2 between
    groups: int = 8
    dropout: float = 0.1


class SpectrogramClassifier(nn.Module):
    def __init__(self, cfg: ClassifierNetConfig, n_classes: int):
        super().__init__()
        self.stem = nn.Conv2d(1, cfg.channels[0], 3, padding=1)
        stages = []
        c = cfg.channels[0]
        for i, c_out in enumerate(cfg.channels):
            stages.append(nn.Sequential(ResBlock(c, c_out, cfg.groups), nn.AvgPool2d(2) if i < len(cfg.channels) - 1 else nn.Identity()))
            c = c_out
        self.stages = nn.ModuleList(stages)
        self.norm = norm(c, cfg.groups)
        self.dropout = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(c, n_classes)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Feature maps after each stage (shallow to deep), for perceptual distances and FMD."""
        h = self.stem(x)
        out = []
        for stage in self.stages:
            h = stage(h)
            out.append(h)
        return out

    def pool(self, deepest: torch.Tensor) -> torch.Tensor:
        """The deepest feature map (last of `features`) -> pooled penultimate features (B, C)."""
        return F.silu(self.norm(deepest)).mean((2, 3))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled penultimate features (B, C)."""
        return self.pool(self.features(x)[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.embed(x)))
