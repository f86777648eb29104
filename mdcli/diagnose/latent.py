"""`diagnose latent` and `diagnose collapse`: is this latent space one a diffusion model can learn?

`latent_report` works on any autoencoder object with the common interface (encode/decode,
and `decode_indices` plus a `quantizer` for VQ models), so constructed failure cases are
measured by the same code as trained artifacts.

Metrics (all computed over the whole dataset or a seeded subset of it):
- VAE: KL per channel, active units (Burda et al. 2016: Cov_x E[z|x] > 0.01), the
  variance-collapse index (mean posterior sigma / spread of posterior means; ~0: isolated
  points) and a Monte-Carlo estimate of I(x; z) (at most log N).
- All: per-channel statistics, the 2-D DCT power of latents vs images (high-frequency
  share; "Improving the diffusability of autoencoders", 2025), scale equivariance (EQ-VAE),
  decoder robustness to latent noise, linear-probe / k-NN accuracy, interpolation smoothness.
- VQ: usage/perplexity, neighbour-code mutual information over the code entropy (structure
  in the code maps), and the code-neighbour damage ratio: the image change when codes are
  swapped for their nearest code in code space, over the change when swapped for a random
  code (~1: codes are pointers whose geometry the decoder ignores).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from mdcli.data.batches import from_model
from mdcli.data.splits import split_indices
from mdcli.diagnose import stats
from mdcli.errors import ConfigError
from mdcli.metrics import codebook_stats, psnr


@dataclass
class LatentConfig:
    seed: int = 0
    batch_size: int = 64
    max_images: int = 2000  # seeded subset for the O(N^2) estimators
    split: str = "random"  # random | blocked (probes' train/test split)
    split_gap: int = 3
    test_fraction: float = 0.3
    noise_levels: list[float] = field(default_factory=lambda: [0.0, 0.1, 0.25, 0.5, 1.0])  # x latent std
    interp_pairs: int = 32
    interp_steps: int = 8
    swap_fraction: float = 0.1  # share of code positions swapped for the damage ratio
    active_threshold: float = 0.01

    def validate(self) -> None:
        if self.split not in ("random", "blocked"):
            raise ConfigError(f"split: unknown '{self.split}'; valid: random, blocked")
        if not 0 < self.test_fraction < 1:
            raise ConfigError("test_fraction: must be between 0 and 1")
        if not 0 < self.swap_fraction <= 1:
            raise ConfigError("swap_fraction: must be in (0, 1]")


@dataclass
class CollapseThresholds:
    """The rules of `diagnose collapse` (documented in docs/DIAGNOSE.md)."""

    variance_index_max: float = 0.01  # VAE: mean sigma / spread of means below this -> variance collapse
    active_share_min: float = 0.1  # VAE: fewer active units than this share -> posterior collapse (KL vanishing)
    perplexity_ratio_min: float = 0.1  # VQ: perplexity / K below this -> codebook collapse
    top10_mass_max: float = 0.8  # VQ: top 10% of codes carry more than this -> codebook collapse
    neighbour_mi_ratio_min: float = 0.02  # VQ: less neighbour-code structure than this -> posterior collapse
    damage_ratio_max: float = 0.5  # VQ: nearest-code swaps nearly as harmful as random ones -> posterior collapse

    def validate(self) -> None:
        for key in ("active_share_min", "perplexity_ratio_min", "top10_mass_max", "neighbour_mi_ratio_min"):
            if not 0 <= getattr(self, key) <= 1:
                raise ConfigError(f"{key}: a share, in [0, 1], got {getattr(self, key)}")
        for key in ("variance_index_max", "damage_ratio_max"):
            if not getattr(self, key) >= 0:
                raise ConfigError(f"{key}: must be >= 0, got {getattr(self, key)}")


def is_vq(model) -> bool:
    return hasattr(model, "quantizer")


def _device(model) -> torch.device:
    p = next(iter(model.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


@torch.no_grad()
def encode_all(model, x: torch.Tensor, bs: int) -> dict:
    """Encode in batches on the model's device; results on the CPU."""
    out: dict[str, list] = {"latent": [], "logvar": [], "indices": []}
    dev = _device(model)
    for i in range(0, len(x), bs):
        e = model.encode(x[i : i + bs].to(dev))
        out["latent"].append(e.latent.float().cpu())
        if e.logvar is not None:
            out["logvar"].append(e.logvar.float().cpu())
        if e.indices is not None:
            out["indices"].append(e.indices.cpu())
    return {k: torch.cat(v) if v else None for k, v in out.items()}


@torch.no_grad()
def _decode(model, z: torch.Tensor, bs: int) -> torch.Tensor:
    dev = _device(model)
    return torch.cat([from_model(model.decode(z[i : i + bs].to(dev))).float().cpu() for i in range(0, len(z), bs)])


@torch.no_grad()
def _decode_idx(model, idx: torch.Tensor, bs: int) -> torch.Tensor:
    dev = _device(model)
    return torch.cat([from_model(model.decode_indices(idx[i : i + bs].to(dev))).float().cpu() for i in range(0, len(idx), bs)])


def _moments(z: torch.Tensor) -> dict:
    zc = z.transpose(0, 1).flatten(1).double()  # (C, N h w)
    mean, std = zc.mean(1), zc.std(1)
    s = (zc - mean[:, None]) / std.clamp_min(1e-12)[:, None]
    return {"mean": mean.tolist(), "std": std.tolist(), "skew": s.pow(3).mean(1).tolist(),
            "excess_kurtosis": (s.pow(4).mean(1) - 3).tolist(), "beyond_3sigma": (s.abs() > 3).double().mean(1).tolist()}


@torch.no_grad()
def vae_metrics(mu: torch.Tensor, logvar: torch.Tensor, cfg: LatentConfig) -> dict:
    kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)  # per element
    sigma = torch.exp(0.5 * logvar)
    spread = mu.transpose(0, 1).flatten(1).std(1)  # per channel, over images and positions
    index = (sigma.transpose(0, 1).flatten(1).mean(1) / spread.clamp_min(1e-12))
    active = stats.active_units(mu.flatten(1).numpy(), cfg.active_threshold)
    active_ch = stats.active_units(mu.mean((2, 3)).numpy(), cfg.active_threshold)
    n = len(mu)
    return {
        "kl_per_channel": kl.mean((0, 2, 3)).tolist(),  # nats per latent element
        "kl_total": float(kl.flatten(1).sum(1).mean()),  # nats per image
        "active_units": int(active.sum()), "latent_dims": int(active.size), "active_share": float(active.mean()),
        "active_channels_pooled": int(active_ch.sum()),
        "posterior_sigma_mean": float(sigma.mean()),
        "variance_collapse_index_per_channel": index.tolist(),
        "variance_collapse_index": float(index.mean()),
        "mutual_information": stats.gaussian_mutual_information(mu, logvar, cfg.seed),
        "mutual_information_bound": float(np.log(n)),
    }


@torch.no_grad()
def vq_metrics(model, indices: torch.Tensor, cfg: LatentConfig) -> dict:
    k = model.quantizer.cfg.codebook_size
    idx = indices.numpy()
    counts = np.bincount(idx.ravel(), minlength=k)
    out = {"codebook_size": int(k), **codebook_stats(counts)}
    order = np.sort(counts)[::-1]
    out["top10pct_mass"] = float(order[: max(1, int(np.ceil(0.1 * k)))].sum() / max(1, counts.sum()))
    out.update(stats.neighbour_code_mi(idx, k, cfg.seed))
    out.update(code_damage(model, indices, cfg))
    return out


@torch.no_grad()
def code_damage(model, indices: torch.Tensor, cfg: LatentConfig) -> dict:
    """Image change from swapping codes for their nearest other code vs for a random used code."""
    codes = model.quantizer.codebook().float().cpu()
    d = torch.cdist(codes, codes)
    d.fill_diagonal_(float("inf"))
    used = torch.unique(indices)
    d[:, ~torch.isin(torch.arange(len(codes)), used)] = float("inf")  # swap only among codes in use
    nearest = d.argmin(1)
    gen = torch.Generator().manual_seed(cfg.seed)
    swap = torch.rand(indices.shape, generator=gen) < cfg.swap_fraction
    rand = used[torch.randint(0, len(used), indices.shape, generator=gen)]
    rand = torch.where(rand == indices, used[(torch.searchsorted(used, rand) + 1) % len(used)], rand)
    base = _decode_idx(model, indices, cfg.batch_size)
    near = _decode_idx(model, torch.where(swap, nearest[indices], indices), cfg.batch_size)
    far = _decode_idx(model, torch.where(swap, rand, indices), cfg.batch_size)
    mse_near = float((near - base).pow(2).mean())
    mse_rand = float((far - base).pow(2).mean())
    return {"swap_mse_nearest": mse_near, "swap_mse_random": mse_rand,
            "damage_ratio": mse_near / max(mse_rand, 1e-12)}


@torch.no_grad()
def latent_report(model, x: torch.Tensor, labels: np.ndarray, cfg: LatentConfig,
                  sequence: np.ndarray | None = None, arch: str | None = None) -> dict:
    """Every latent metric for `model` on images x (N, 1, H, W) in [-1, 1]."""
    cfg.validate()
    model.eval()
    n_all = len(x)
    if n_all > cfg.max_images:
        keep = np.sort(np.random.default_rng(cfg.seed).choice(n_all, cfg.max_images, replace=False))
        x, labels = x[keep], labels[keep]
        sequence = sequence[keep] if sequence is not None else None
    bs = cfg.batch_size
    enc = encode_all(model, x, bs)
    z = enc["latent"]
    x01 = from_model(x).float()
    report: dict = {"arch": arch or getattr(model, "arch", "?"), "n": int(len(x)), "latent_shape": list(z.shape[1:])}
    report["channels"] = _moments(z)
    ch_mean = z.mean((0, 2, 3), keepdim=True)
    ch_std = z.transpose(0, 1).flatten(1).std(1).view(1, -1, 1, 1).clamp_min(1e-12)
    zs = (z - ch_mean) / ch_std

    # spectra: latents against images on the same normalised frequency axis
    prof_z = stats.radial_dct_power(zs.numpy())
    prof_x = stats.radial_dct_power(x.numpy())
    report["spectrum"] = {"latent_profile": prof_z.tolist(), "image_profile": prof_x.tolist(),
                          "latent_high_freq_share": stats.high_frequency_share(prof_z),
                          "image_high_freq_share": stats.high_frequency_share(prof_x)}

    # reconstruction, scale equivariance, robustness
    rec = _decode(model, z, bs)
    recon_psnr = float(psnr(rec, x01).mean())
    eq = {"recon_psnr": recon_psnr}
    if z.shape[-1] % 2 == 0 and z.shape[-2] % 2 == 0:
        half = _decode(model, F.avg_pool2d(z, 2), bs)
        x_half = F.avg_pool2d(x01, 2)
        eq.update({"half_psnr": float(psnr(half, x_half).mean()), "half_mse": float((half - x_half).pow(2).mean())})
    report["equivariance"] = eq
    gen = torch.Generator().manual_seed(cfg.seed)
    robust = {}
    for s in cfg.noise_levels:
        noisy = z + s * ch_std * torch.randn(z.shape, generator=gen)
        robust[f"{s:g}"] = float(psnr(_decode(model, noisy, bs), x01).mean())
    report["robustness_psnr"] = robust

    # class information: linear probe and k-NN on standardised flattened latents
    tr, te = split_indices(labels, cfg.test_fraction, cfg.seed, cfg.split, sequence, cfg.split_gap)
    feats = zs.flatten(1).numpy()
    probe = {"split": cfg.split, "n_train": int(len(tr)), "n_test": int(len(te))}
    if len(np.unique(labels)) > 1 and len(tr) > 5 and len(te) > 0:
        probe["linear_probe_accuracy"] = stats.linear_probe_accuracy(feats[tr], labels[tr], feats[te], labels[te], seed=cfg.seed)
        probe["knn_accuracy"] = stats.knn_accuracy(feats[tr], labels[tr], feats[te], labels[te], k=5)
    report["probe"] = probe

    # interpolation smoothness between same-class pairs: decoded path length / endpoint distance
    rng = np.random.default_rng(cfg.seed)
    pairs = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        if len(idx) >= 2:
            for _ in range(max(1, cfg.interp_pairs // len(np.unique(labels)))):
                pairs.append(rng.choice(idx, 2, replace=False))
    if pairs:
        p = np.array(pairs)
        w = torch.linspace(0, 1, cfg.interp_steps + 1).view(-1, 1, 1, 1, 1)
        path = (1 - w) * z[p[:, 0]][None] + w * z[p[:, 1]][None]  # (T+1, P, C, h, w)
        imgs = _decode(model, path.flatten(0, 1), bs).view(cfg.interp_steps + 1, len(p), -1)
        steps = (imgs[1:] - imgs[:-1]).norm(dim=-1).sum(0)
        ends = (imgs[-1] - imgs[0]).norm(dim=-1).clamp_min(1e-8)
        jumps = (imgs[1:] - imgs[:-1]).norm(dim=-1)
        report["interpolation"] = {"pairs": int(len(p)), "path_length_ratio": float((steps / ends).mean()),
                                   "max_step_share": float((jumps.max(0).values / jumps.sum(0).clamp_min(1e-8)).mean())}

    if enc["logvar"] is not None:
        report["vae"] = vae_metrics(z, enc["logvar"], cfg)
    if is_vq(model):
        report["vq"] = vq_metrics(model, enc["indices"], cfg)
    return report


def collapse_label(report: dict, th: CollapseThresholds) -> tuple[str, list[dict]]:
    """-> (label, evidence rows {metric, value, rule, fired}) from a latent report."""
    rows: list[dict] = []

    def check(metric: str, value: float, op: str, limit: float, label: str) -> bool:
        fired = value < limit if op == "<" else value > limit
        rows.append({"metric": metric, "value": value, "rule": f"{op} {limit:g}", "fired": bool(fired), "label": label})
        return fired

    labels = []
    if "vae" in report:
        v = report["vae"]
        if check("variance_collapse_index", v["variance_collapse_index"], "<", th.variance_index_max, "variance collapse"):
            labels.append("variance collapse")
        if check("active_share", v["active_share"], "<", th.active_share_min, "posterior collapse"):
            labels.append("posterior collapse")
    if "vq" in report:
        q = report["vq"]
        a = check("perplexity_ratio", q["perplexity_ratio"], "<", th.perplexity_ratio_min, "codebook collapse")
        b = check("top10pct_mass", q["top10pct_mass"], ">", th.top10_mass_max, "codebook collapse")
        if a or b:
            labels.append("codebook collapse")
        else:  # pointer codes only make sense to judge when usage is healthy
            c = check("neighbour_mi_ratio", q["neighbour_mi_ratio"], "<", th.neighbour_mi_ratio_min, "posterior collapse")
            d = check("damage_ratio", q["damage_ratio"], ">", th.damage_ratio_max, "posterior collapse")
            if c or d:
                labels.append("posterior collapse")
    return (labels[0] if labels else "healthy"), rows


def latent_report_files(ae_path, data_path, cfg: LatentConfig) -> dict:
    """`diagnose latent` on artifacts: the autoencoder and the spectrograms it is measured on."""
    from mdcli.data.batches import load_images
    from mdcli.diagnose.recon import check_shapes
    from mdcli.models.load import load_autoencoder

    model, attrs, _ = load_autoencoder(ae_path, "cuda" if torch.cuda.is_available() else "cpu")
    check_shapes(attrs, data_path)
    x, labels, data = load_images(data_path)
    return latent_report(model, x, labels, cfg, data.sequence, attrs["arch"])


def plot_latent(report: dict, folder: Path) -> list[Path]:
    """DCT radial power of latents vs images, and decoder robustness to latent noise."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mdcli.plotting import save_figure

    sp = report["spectrum"]
    fig, axs = plt.subplots(1, 2, figsize=(9, 3), constrained_layout=True)
    bands = (np.arange(len(sp["latent_profile"])) + 0.5) / len(sp["latent_profile"])
    axs[0].semilogy(bands, sp["image_profile"], "o-", label="images")
    axs[0].semilogy(bands, sp["latent_profile"], "s-", label="latents")
    axs[0].set_xlabel("normalised radial frequency")
    axs[0].set_ylabel("share of DCT power")
    axs[0].legend(fontsize=8)
    sig = [float(k) for k in report["robustness_psnr"]]
    axs[1].plot(sig, list(report["robustness_psnr"].values()), "o-")
    axs[1].set_xlabel("latent noise (x channel std)")
    axs[1].set_ylabel("PSNR of decode(z + noise) (dB)")
    fig.suptitle(f"{report['arch']} latent space", fontsize=10)
    return [save_figure(fig, folder / "latent_spectrum_robustness.png")]
