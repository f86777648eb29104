"""Metrics that training logs and the diagnostics report alike: image quality on [0, 1] spectrograms (PSNR,
SSIM), the use of a VQ codebook, and the macro-F1 of predicted classes."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def psnr(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB for images in [0, 1] (peak 1). x, y: (B, 1, H, W) -> (B,)."""
    mse = (x.float() - y.float()).pow(2).flatten(1).mean(1)
    return 10.0 * torch.log10(1.0 / mse.clamp_min(1e-12))


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    g = torch.exp(-((torch.arange(size) - size // 2).float() ** 2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Per-image SSIM (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03). -> (B,)."""
    x, y = x.float(), y.float()
    size = min(11, x.shape[-1], x.shape[-2])
    w = _gaussian_window(size).to(x.device)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_x, mu_y = F.conv2d(x, w), F.conv2d(y, w)
    sxx = F.conv2d(x * x, w) - mu_x**2
    syy = F.conv2d(y * y, w) - mu_y**2
    sxy = F.conv2d(x * y, w) - mu_x * mu_y
    s = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))
    return s.flatten(1).mean(1)


def codebook_stats(counts: np.ndarray) -> dict:
    """Usage share, perplexity and perplexity/K of code counts gathered over a whole pass."""
    k = len(counts)
    p = counts / max(1, counts.sum())
    nz = p[p > 0]
    perplexity = float(np.exp(-(nz * np.log(nz)).sum())) if len(nz) else 0.0
    return {"codebook_usage": float((counts > 0).mean()), "perplexity": perplexity, "perplexity_ratio": perplexity / k}


def macro_f1(pred: np.ndarray, y: np.ndarray, n_classes: int) -> float:
    """The mean over classes of F1 (2 TP / (predicted + true)); a class neither predicted nor present is left out."""
    scores = []
    for c in range(n_classes):
        tp = int(((pred == c) & (y == c)).sum())
        denom = int((pred == c).sum() + (y == c).sum())
        if denom:
            scores.append(2 * tp / denom)
    return float(np.mean(scores)) if scores else 0.0
