"""Spectrogram grids with physical axes (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mdcli.artifacts import Spectrograms


def axis_labels(data: Spectrograms) -> tuple[str, str]:
    """(Doppler label, time label): physical units, or a normalised range for uncalibrated imports."""
    if getattr(data, "axes_calibrated", True):
        return "Doppler (Hz)", "time (s)"
    return "Doppler (norm.)", "time (norm.)"


def show(ax, image: np.ndarray, data: Spectrograms):
    """One spectrogram on `data`'s Doppler/time axes, jet over the [0, 1] dB scale."""
    f, t = data.doppler_hz, data.time_s
    return ax.imshow(image, origin="lower", aspect="auto", extent=[t[0], t[-1], f[0], f[-1]],
                     cmap="jet", vmin=0.0, vmax=1.0, interpolation="nearest")


def save_figure(fig, out: Path) -> Path:
    """Write `fig` to `out` as a PNG (110 dpi) by an atomic rename, and close it."""
    import matplotlib.pyplot as plt

    from mdcli.artifacts import atomic_path

    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return out


def plot_grid(data: Spectrograms, path: str | Path, per_class: int = 4, seed: int = 0, title: str | None = None) -> None:
    """A grid of spectrograms: one row per class, `per_class` random examples each.

    Doppler (Hz) on the vertical axis, time (s) on the horizontal, jet colour map
    over the [0, 1] dB scale (0 = dynamic-range floor, 1 = peak).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(seed)
    classes = [c for c in range(len(data.class_names)) if (data.labels == c).any()]
    if not classes:
        raise ValueError("no samples to plot")
    cols = per_class
    fig, axs = plt.subplots(
        len(classes), cols, figsize=(2.6 * cols, 2.3 * len(classes)), squeeze=False, constrained_layout=True
    )
    doppler_label, time_label = axis_labels(data)
    im = None
    for row, c in enumerate(classes):
        idx = np.flatnonzero(data.labels == c)
        pick = np.sort(rng.choice(idx, size=min(cols, len(idx)), replace=False))
        for col in range(cols):
            ax = axs[row, col]
            if col >= len(pick):
                ax.axis("off")
                continue
            im = show(ax, data.spectrograms[pick[col]], data)
            ax.set_title(f"{data.class_names[c]} #{pick[col]}", fontsize=9)
            ax.tick_params(labelsize=7)
            if col == 0:
                ax.set_ylabel(doppler_label, fontsize=8)
            if row == len(classes) - 1:
                ax.set_xlabel(time_label, fontsize=8)
    if im is not None:
        cb = fig.colorbar(im, ax=axs, shrink=0.6, pad=0.01)
        floor = f"-{data.dynamic_range_db:g} dB" if np.isfinite(data.dynamic_range_db) else "floor"
        cb.set_label(f"power (0 = {floor}, 1 = peak)", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_reconstructions(data: Spectrograms, recon: np.ndarray, index: np.ndarray, path: str | Path, title: str | None = None) -> None:
    """Originals (top of each pair of rows) over their reconstructions, a column per example.

    recon: (len(index), F, T) in [0, 1], the reconstructions of data.spectrograms[index].
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = len(index)
    fig, axs = plt.subplots(2, cols, figsize=(2.2 * cols, 4.6), squeeze=False, constrained_layout=True)
    for col, i in enumerate(index):
        for row, img in enumerate((data.spectrograms[i], recon[col])):
            ax = axs[row, col]
            show(ax, img, data)
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(data.class_names[data.labels[i]], fontsize=9)
        if col == 0:
            axs[0, 0].set_ylabel("input", fontsize=9)
            axs[1, 0].set_ylabel("reconstruction", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=100)
    plt.close(fig)
