"""Spectrogram artifacts as tensors for the networks (which all see images in [-1, 1])."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from mdcli.artifacts import Spectrograms


def to_model(x01: torch.Tensor) -> torch.Tensor:
    return x01 * 2.0 - 1.0


def from_model(x: torch.Tensor) -> torch.Tensor:
    return ((x + 1.0) * 0.5).clamp(0.0, 1.0)


def load_images(path: str | Path) -> tuple[torch.Tensor, np.ndarray, Spectrograms]:
    """-> images (N, 1, F, T) in [-1, 1], labels (N,), and the artifact itself."""
    data = Spectrograms.load(path)
    x = torch.from_numpy(np.ascontiguousarray(data.spectrograms))[:, None]
    return to_model(x), data.labels, data
