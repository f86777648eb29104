"""`diagnose recon`: what an autoencoder keeps (and `plot --ae`'s reconstructions).

It streams the dataset in batches and accumulates over the whole of it, so the numbers do
not depend on the batch size. Reports are plain dicts with stable keys (`--json`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from mdcli.artifacts import class_names as artifact_class_names
from mdcli.artifacts import open_artifact
from mdcli.data.batches import from_model, to_model
from mdcli.errors import MdcliError
from mdcli.metrics import psnr, ssim
from mdcli.models.load import load_autoencoder
from mdcli.plotting import save_figure


def stream_batches(data_path: Path, batch_size: int):
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
    from mdcli import kinematics as kf
    from mdcli.diagnose import kinematics as kin

    stream = stream_batches(data_path, batch_size)
    names, dr, labels = next(stream)
    kin_axes, kin_real, kin_rec = kf.read_axes(data_path), [], []  # kinematic features of inputs and reconstructions
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
        kin_real.append(kf.features(x01[:, 0].numpy(), **kin_axes))
        kin_rec.append(kf.features(r01[:, 0].numpy(), **kin_axes))
        if judge is not None:  # one pass of the classifier per image set: perceptual distance and FMD features
            fr, fx = judge.features(to_model(r01)), judge.features(to_model(x01))
            per_image["perceptual"][sl] = DomainPerceptual.between(fr, fx).numpy()
            feats_real.append(judge.pool(fx[-1]).double().numpy())
            feats_rec.append(judge.pool(fr[-1]).double().numpy())
    report = {"arch": attrs["arch"], "n": int(len(labels)), "overall": {k: float(np.mean(v)) for k, v in per_image.items()},
              "per_class": {}}
    if judge is not None:
        from mdcli.diagnose.stats import feature_frechet

        f_real, f_rec = np.concatenate(feats_real), np.concatenate(feats_rec)
        report["overall"]["fmd"] = feature_frechet(f_real, f_rec)
    for c, name in enumerate(names):
        m = labels == c
        if m.any():
            report["per_class"][name] = {k: float(np.mean(v[m])) for k, v in per_image.items()}
            if judge is not None and m.sum() > 2:
                report["per_class"][name]["fmd"] = feature_frechet(f_real[m], f_rec[m])
    if kin_real:
        report["kinematics"] = kin.recon_kinematics(kf.concat(kin_real), kf.concat(kin_rec), labels, names)
    return report


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
    return [save_figure(fig, out)]
