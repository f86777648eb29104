"""`diagnose diffusability`: the decisive probe. Can a diffusion model learn these latents?

A small diffusion model with a fixed budget (the same for every autoencoder) is trained on the
latents; reported are its held-out denoising error per noise level, as x0-MSE in standardised
latent units (predicting the mean scores 1.0 everywhere), and the quality of what it generates:
k-NN precision / recall / density / coverage of generated against held-out latents, and, given
a judge and real data, FMD and the judge's accuracy on the decoded samples.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from mdcli.data.splits import split_indices
from mdcli.diagnose import stats
from mdcli.diffusion import build_schedule
from mdcli.errors import ConfigError, MdcliError
from mdcli.latents import load_latents
from mdcli.models.unet import UNetConfig
from mdcli.stages import DiffusionConfig, OptimConfig, TrainLDMConfig
from mdcli.train.ldm import train_ldm


def _probe_ldm() -> TrainLDMConfig:
    return TrainLDMConfig(
        seed=0,
        unet=UNetConfig(channels=32, channel_mult=[1, 2], num_res_blocks=1, attention_levels=[1], groups=8),
        diffusion=DiffusionConfig(),
        train=OptimConfig(steps=600, batch_size=32, lr=5e-4, warmup_steps=50, ema_decay=0.99,
                          val_fraction=0.2, eval_every=200, checkpoint_every=200),
    )


@dataclass
class DiffusabilityConfig:
    """The fixed probe budget: change it only to compare autoencoders under another common budget."""

    ldm: TrainLDMConfig = field(default_factory=_probe_ldm)
    n_per_class: int = 32
    sampler: str = "dpmpp-2m"
    sample_steps: int = 20
    cfg_scale: float = 1.0
    k: int = 5

    def validate(self) -> None:
        self.ldm.validate()
        if self.n_per_class < 2:
            raise ConfigError("n_per_class: must be >= 2")
        if self.cfg_scale != 1 and self.ldm.diffusion.cfg_dropout <= 0:  # before the probe trains (sample refuses it)
            raise ConfigError(f"cfg_scale {self.cfg_scale:g}: guidance needs ldm.diffusion.cfg_dropout > 0 (the probe's "
                              "unconditional class learns nothing without it); set cfg_scale=1")


def x0_mse(val_loss: float, t: int, schedule, prediction: str) -> float:
    """Convert a held-out v- or eps-MSE at timestep t into the implied x0-MSE."""
    ab = float(schedule.alphabar[t])
    return val_loss * (1 - ab) if prediction == "v" else val_loss * (1 - ab) / ab


def diffusability_report(latents_path: Path, cfg: DiffusabilityConfig, judge: Path | None = None,
                         real: Path | None = None, keep: Path | None = None,
                         progress: Callable[..., None] | None = None) -> dict:
    from mdcli.sample import SampleConfig, generate

    cfg.validate()
    if judge is not None and real is not None:  # before the probe trains: the judge and held-out set must be fit to score
        from mdcli.artifacts import Spectrograms
        from mdcli.diagnose.generation import check_judge_for

        r = Spectrograms.load(real)
        model, _ = check_judge_for(judge, r, real, latents_path, override=None)
        latent_classes = load_latents(latents_path)
        names, image_shape = list(latent_classes.class_names), tuple(latent_classes.attrs["image_shape"])
        latent_classes.reader.close()
        if names != list(r.class_names):
            raise MdcliError(f"--real {real}: classes {list(r.class_names)} differ from the latents' {names}")
        if tuple(r.spectrograms.shape[1:]) != image_shape:
            raise MdcliError(f"--real {real}: images are {tuple(r.spectrograms.shape[1:])}, the autoencoder's {image_shape}")
    with tempfile.TemporaryDirectory(dir=str(keep.parent) if keep else None) as tmp:
        out = keep or Path(tmp) / "probe_ldm.h5"
        metrics = train_ldm(cfg.ldm, latents_path, out, progress=progress)
        sc = SampleConfig(seed=cfg.ldm.seed, n_per_class=cfg.n_per_class, sampler=cfg.sampler,
                          steps=cfg.sample_steps, cfg_scale=cfg.cfg_scale)
        images, _, z_gen = generate(sc, out, None)
    schedule = build_schedule(cfg.ldm.diffusion)
    levels = {}
    for key, value in metrics.items():
        if key.startswith("val_loss_t"):
            t = int(key[len("val_loss_t"):])
            levels[str(t)] = {"loss": value, "x0_mse": x0_mse(value, t, schedule, cfg.ldm.diffusion.prediction)}
    data = load_latents(latents_path)
    _, va = split_indices(data.labels, cfg.ldm.train.val_fraction, cfg.ldm.seed, cfg.ldm.train.split,
                          data.sequence, cfg.ldm.train.split_gap)
    held = data.get(va).flatten(1).double().numpy()
    data.reader.close()
    gen = z_gen.reshape(len(z_gen), -1).astype(np.float64)
    report = {
        "latents": str(latents_path), "arch": data.attrs["arch"], "budget_steps": cfg.ldm.train.steps,
        "latents_per_s": metrics["latents_per_s"], "denoising": levels,
        "mean_x0_mse": float(np.mean([v["x0_mse"] for v in levels.values()])),
        "latent_prdc": stats.prdc(held, gen, min(cfg.k, len(held) - 1, len(gen) - 1)),
        "generated_latent_std": float(gen.std()), "n_generated": int(len(gen)), "n_held_out": int(len(held)),
    }
    if judge is not None and real is not None:
        from mdcli.data.batches import model_images
        from mdcli.diagnose.generation import embed

        f_real, _ = embed(model, model_images(r), 128)
        f_gen, p_gen = embed(model, model_images(images), 128)
        report["fmd"] = stats.feature_frechet(f_real, f_gen)
        report["judge_accuracy_generated"] = float((p_gen == images.labels).mean())
    return report
