"""`diagnose recon` and `diagnose codebook`: what an autoencoder keeps and how it uses its codes.

Both stream the dataset in batches and accumulate over the whole of it, so the numbers do
not depend on the batch size. Reports are plain dicts with stable keys (`--json`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from mdcli.artifacts import class_names as artifact_class_names
from mdcli.artifacts import open_artifact
from mdcli.data import from_model, to_model
from mdcli.errors import MdcliError
from mdcli.metrics import psnr, ssim
from mdcli.models.load import load_autoencoder
from mdcli.stats import codebook_stats


def _stream(data_path: Path, batch_size: int):
    with open_artifact(data_path, "spectrograms") as f:
        labels = f["labels"][()]
        names = artifact_class_names(f)
        dr = float(f.attrs["dynamic_range_db"])
        n = len(labels)
        yield names, dr, labels
        for i in range(0, n, batch_size):
            yield i, torch.from_numpy(f["spectrograms"][i : i + batch_size])[:, None]


def check_shapes(ae_attrs: dict, data_path: Path) -> None:
    with open_artifact(data_path, "spectrograms") as f:
        shape = list(f["spectrograms"].shape[1:])
    if shape != list(ae_attrs["image_shape"]):
        raise MdcliError(f"{data_path}: images are {shape[0]}x{shape[1]}, the autoencoder expects "
                         f"{ae_attrs['image_shape'][0]}x{ae_attrs['image_shape'][1]}")


@torch.no_grad()
def reconstruct_examples(data, data_path: Path, ae_path: Path, per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """`plot --ae`: up to `per_class` seeded examples of each class of `data` (a Spectrograms loaded from
    `data_path`) through the autoencoder -> (reconstructions (n, F, T) in [0, 1], their indices, the AE's attrs)."""
    model, attrs, _ = load_autoencoder(ae_path)
    if list(attrs["image_shape"]) != list(data.spectrograms.shape[1:]):
        raise MdcliError(f"--ae {ae_path}: trained on {attrs['image_shape'][0]}x{attrs['image_shape'][1]} images, but {data_path} "
                         f"holds {data.spectrograms.shape[1]}x{data.spectrograms.shape[2]}")
    rng = np.random.default_rng(seed)
    index = np.concatenate([rng.choice(np.flatnonzero(data.labels == c), size=min(per_class, int((data.labels == c).sum())), replace=False)
                            for c in np.unique(data.labels)])
    x = to_model(torch.from_numpy(data.spectrograms[index])[:, None])
    recon = from_model(model.decode(model.encode(x).latent))[:, 0].numpy()
    return recon, index, attrs


@torch.no_grad()
def recon_report(ae_path: Path, data_path: Path, classifier: Path | None = None, batch_size: int = 64) -> dict:
    """PSNR, SSIM, L1, log-spectral distance (dB) and perceptual distance; overall and per class.

    With a classifier also the reconstruction FMD: the Fréchet distance between the classifier's
    penultimate features of the reconstructions and of the originals: what the decoder alone costs.
    The gap between a generation FMD and this one is the part the latent diffusion model adds. It is
    a reference, not a bound: guided samples can land below it (docs/findings.md, simulated VQ-GAN).
    """
    ae, attrs, _ = load_autoencoder(ae_path)
    check_shapes(attrs, data_path)
    judge = None
    if classifier is not None:
        from mdcli.losses import DomainPerceptual
        from mdcli.models.load import load_classifier

        judge = load_classifier(classifier)[0]
    from mdcli import kinematics as kin

    stream = _stream(data_path, batch_size)
    names, dr, labels = next(stream)
    kin_axes, kin_real, kin_rec = kin.read_axes(data_path), [], []  # kinematic features of inputs and reconstructions
    keys = ["psnr", "ssim", "l1", "lsd_db"] + (["perceptual"] if judge is not None else [])
    per_image = {k: np.zeros(len(labels)) for k in keys}
    feats_real, feats_rec = [], []
    for i, x01 in stream:
        r01 = from_model(ae.decode(ae.encode(to_model(x01)).latent)).float()
        sl = slice(i, i + len(x01))
        per_image["psnr"][sl] = psnr(r01, x01).numpy()
        per_image["ssim"][sl] = ssim(r01, x01).numpy()
        diff = (r01 - x01).flatten(1)
        per_image["l1"][sl] = diff.abs().mean(1).numpy()
        # [0, 1] is linear in dB over the dynamic range: the RMS dB error of the spectrogram.
        per_image["lsd_db"][sl] = (diff.pow(2).mean(1).sqrt() * (dr if np.isfinite(dr) else np.nan)).numpy()
        kin_real.append(kin.features(x01[:, 0].numpy(), **kin_axes))
        kin_rec.append(kin.features(r01[:, 0].numpy(), **kin_axes))
        if judge is not None:  # one pass of the classifier per image set: perceptual distance and FMD features
            fr, fx = judge.features(to_model(r01)), judge.features(to_model(x01))
            per_image["perceptual"][sl] = DomainPerceptual.between(fr, fx).numpy()
            feats_real.append(judge.pool(fx[-1]).double().numpy())
            feats_rec.append(judge.pool(fr[-1]).double().numpy())
    report = {"arch": attrs["arch"], "n": int(len(labels)), "overall": {k: float(np.mean(v)) for k, v in per_image.items()},
              "per_class": {}}
    if judge is not None:
        from mdcli.stats import feature_frechet

        f_real, f_rec = np.concatenate(feats_real), np.concatenate(feats_rec)
        report["overall"]["fmd"] = feature_frechet(f_real, f_rec)
    for c, name in enumerate(names):
        m = labels == c
        if m.any():
            report["per_class"][name] = {k: float(np.mean(v[m])) for k, v in per_image.items()}
            if judge is not None and m.sum() > 2:
                report["per_class"][name]["fmd"] = feature_frechet(f_real[m], f_rec[m])
    if kin_real:
        report["kinematics"] = kin.recon_kinematics(kin.concat(kin_real), kin.concat(kin_rec), labels, names)
    return report


@torch.no_grad()
def codebook_report(ae_path: Path | None, data_path: Path | None, latents_path: Path | None = None,
                    batch_size: int = 64) -> tuple[dict, np.ndarray]:
    """Code usage over the whole dataset -> (report, code counts). From stored indices or by encoding."""
    if latents_path is not None:
        with open_artifact(latents_path, "latents") as f:
            if "indices" not in f:
                raise MdcliError(f"{latents_path}: holds no code indices (arch {f.attrs['arch']}); codebook statistics need a VQ model")
            idx = f["indices"][()]
            labels = f["labels"][()]
            names = artifact_class_names(f)
            parents = f.attrs["parents"]
        import json

        ae_rec = json.loads(parents)[0]
        ae_path = ae_path or Path(ae_rec["path"])
        if not ae_path.exists():
            raise MdcliError(f"{latents_path}: its autoencoder {ae_path} is missing; pass --ae")
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
        stream = _stream(data_path, batch_size)
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


def plot_recon(report: dict, folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    classes = list(report["per_class"])
    out = folder / "recon_per_class.png"
    fig, axs = plt.subplots(1, 2, figsize=(8, 3), constrained_layout=True)
    axs[0].bar(classes, [report["per_class"][c]["psnr"] for c in classes])
    axs[0].set_ylabel("PSNR (dB)")
    axs[1].bar(classes, [report["per_class"][c]["ssim"] for c in classes])
    axs[1].set_ylabel("SSIM")
    for ax in axs:
        ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    return [_save(fig, out)]


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
    return [_save(fig, out)]


def _save(fig, out: Path) -> Path:
    import matplotlib.pyplot as plt

    from mdcli.artifacts import atomic_path

    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return out


def plot_latent(report: dict, folder: Path) -> list[Path]:
    """DCT radial power of latents vs images, and decoder robustness to latent noise."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    return [_save(fig, folder / "latent_spectrum_robustness.png")]


def plot_generation(report: dict, folder: Path) -> list[Path]:
    """Held-out real accuracy of the augmentation arms (mean ± sample std over seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = ("real", "real+classic", "real+generated")
    groups = list(report["augmentation"])
    fig, ax = plt.subplots(figsize=(6, 3), constrained_layout=True)
    width = 0.25
    for j, arm in enumerate(arms):
        means = [report["augmentation"][g][arm]["mean"] for g in groups]
        stds = [report["augmentation"][g][arm]["std"] for g in groups]  # None for one seed: no error bar
        ax.bar(np.arange(len(groups)) + (j - 1) * width, means, width, label=arm, capsize=3,
               yerr=None if None in stds else stds)
    if "tstr" in report:
        ax.axhline(report["tstr"]["trtr"]["mean"], color="k", lw=0.8, ls="--", label="all real")
        ax.axhline(report["tstr"]["tstr"]["mean"], color="r", lw=0.8, ls=":", label="generated only (TSTR)")
    ax.set_xticks(np.arange(len(groups)), [f"{g} real/class" for g in groups])
    ax.set_ylabel("accuracy on held-out real")
    ax.legend(fontsize=7)
    return [_save(fig, folder / "augmentation.png")]
