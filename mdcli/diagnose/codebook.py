"""`diagnose codebook`: how a VQ autoencoder uses its codes, over the whole dataset.

Counts are accumulated over every image (streamed in batches, or read from stored indices), so the
numbers do not depend on the batch size. The report is a plain dict with stable keys (`--json`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from mdcli.data.batches import to_model
from mdcli.diagnose.recon import check_shapes, stream_batches
from mdcli.errors import MdcliError
from mdcli.latents import read_indices
from mdcli.sample import lineage_autoencoder
from mdcli.metrics import codebook_stats
from mdcli.models.load import load_autoencoder
from mdcli.plotting import save_figure


@torch.no_grad()
def codebook_report(ae_path: Path | None, data_path: Path | None, latents_path: Path | None = None,
                    batch_size: int = 64) -> tuple[dict, np.ndarray]:
    """Code usage over the whole dataset -> (report, code counts). From stored indices or by encoding."""
    if latents_path is not None:
        if data_path is not None:
            raise MdcliError("diagnose codebook: give --latents (its stored codes), or --ae and --data; not both")
        idx, labels, names, ae_record = read_indices(latents_path)
        ae_path = ae_path or lineage_autoencoder(ae_record, latents_path)
        ae, attrs, _ = load_autoencoder(ae_path)
        k = ae.quantizer.cfg.codebook_size
    else:
        if ae_path is None or data_path is None:
            raise MdcliError("diagnose codebook: give --ae and --data, or --latents")
        ae, attrs, _ = load_autoencoder(ae_path)
        if attrs["arch"] not in ("vqvae", "vqgan"):
            raise MdcliError(f"{ae_path}: is a '{attrs['arch']}' autoencoder; codebook statistics need vqvae or vqgan")
        check_shapes(attrs, data_path)
        k = ae.quantizer.cfg.codebook_size
        stream = stream_batches(data_path, batch_size)
        names, _, labels = next(stream)
        idx = np.concatenate([ae.encode(to_model(x01)).indices.numpy() for _, x01 in stream])
    counts = np.bincount(idx.reshape(-1), minlength=k)
    stats = codebook_stats(counts)
    order = np.sort(counts)[::-1]
    top = max(1, int(np.ceil(0.1 * k)))
    report = {
        "arch": attrs["arch"], "codebook_size": int(k), "n_images": int(len(idx)), "n_codes_drawn": int(counts.sum()),
        **stats, "dead_codes": int((counts == 0).sum()), "top10pct_mass": float(order[:top].sum() / max(1, counts.sum())),
        "per_class": {},
    }
    for c, name in enumerate(names):
        m = labels == c
        if m.any():
            cc = np.bincount(idx[m].reshape(-1), minlength=k)
            report["per_class"][name] = codebook_stats(cc)
    return report, counts


def plot_codebook(report: dict, counts: np.ndarray, folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = folder / "codebook_usage.png"
    fig, axs = plt.subplots(1, 2, figsize=(9, 3), constrained_layout=True)
    axs[0].bar(np.arange(len(counts)), counts, width=1.0)
    axs[0].set_xlabel("code index")
    axs[0].set_ylabel("count")
    axs[0].set_title(f"usage {report['codebook_usage']:.0%}, perplexity {report['perplexity']:.1f}/{report['codebook_size']}", fontsize=9)
    ranked = np.sort(counts)[::-1] / max(1, counts.sum())
    axs[1].plot(np.arange(1, len(ranked) + 1), np.cumsum(ranked))
    axs[1].set_xlabel("codes, most used first")
    axs[1].set_ylabel("cumulative share")
    return [save_figure(fig, out)]
