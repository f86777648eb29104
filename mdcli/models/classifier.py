"""A small spectrogram CNN: the class judge, and the feature extractor of the domain perceptual loss."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mdcli.models.blocks import ResBlock, norm


@dataclass
class ClassifierNetConfig:
    channels: list[int] = field(default_factory=lambda: [16, 32, 64, 128])  # one stage each, /2 between
    groups: int = 8
    dropout: float = 0.1
    # How the deepest feature map becomes the head's input. 0: its mean over Doppler and time (translation invariant
    # along both axes). k > 0: its mean over time, then over k equal Doppler slices (C x k features), so the head
    # knows at which radial speed a feature lies. Doppler is an absolute axis (the torso's speed, how far the limbs
    # reach) where time is not; on the measured gait windows the k = 8 head scores 9 points more than the global mean
    # at N = 20 per person and 16 at N = 50 (docs/findings.md).
    doppler_bins: int = 0

    def validate(self, what: str = "net") -> None:
        from mdcli.errors import ConfigError

        if not self.channels or min(self.channels) < 1 or self.groups < 1:
            raise ConfigError(f"{what}.channels: at least one stage, each >= 1 (and {what}.groups >= 1), "
                              f"got {self.channels}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"{what}.dropout: must be in [0, 1), got {self.dropout}")
        if not 0 <= self.doppler_bins <= 64:
            raise ConfigError(f"{what}.doppler_bins: 0 (mean over Doppler and time) or 1-64 Doppler slices, "
                              f"got {self.doppler_bins}")


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
        self.doppler_bins = cfg.doppler_bins
        self.head = nn.Linear(c * max(cfg.doppler_bins, 1), n_classes)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Feature maps after each stage (shallow to deep), for perceptual distances and FMD."""
        h = self.stem(x)
        out = []
        for stage in self.stages:
            h = stage(h)
            out.append(h)
        return out

    def pool(self, deepest: torch.Tensor) -> torch.Tensor:
        """The deepest feature map (last of `features`) -> pooled penultimate features (B, C), or (B, C k) with
        `doppler_bins` k: the mean over time in k Doppler slices (channel-major)."""
        h = F.silu(self.norm(deepest))
        if not self.doppler_bins:
            return h.mean((2, 3))
        return F.adaptive_avg_pool1d(h.mean(3), self.doppler_bins).flatten(1)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled penultimate features (B, C) or (B, C k) (see pool)."""
        return self.pool(self.features(x)[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.embed(x)))


def class_logits(model: SpectrogramClassifier, x: torch.Tensor, batch_size: int) -> np.ndarray:
    """The head's logits per image (N, classes), float64, in eval mode and batches of `batch_size` (the argmax is
    the prediction `diagnose`'s embed makes)."""
    out = []
    device = next(model.parameters()).device
    model.eval()
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            out.append(model.head(model.embed(x[i: i + batch_size].to(device)).float()).double().cpu().numpy())
    return np.concatenate(out)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Class probabilities from logits (N, classes); (0, k) in, (0, k) out: the reductions run along k."""
    z = np.exp(logits - logits.max(1, keepdims=True))
    return z / z.sum(1, keepdims=True)
