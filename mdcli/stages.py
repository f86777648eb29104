"""The configs of the training stages (train-classifier, train-ae, train-ldm), as their artifacts store them.

An artifact's `config` attribute is one of these as YAML: `models.load` rebuilds a network from it, the
trainers in `mdcli.train` run from it, `--resume` and `--init` compare it. Each stage's `train` section is an
`OptimConfig`. Plain dataclasses with their checks; nothing here trains.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from mdcli.choices import PERCEPTUAL_CHOICES
from mdcli.errors import ConfigError
from mdcli.models.autoencoder import ModelConfig
from mdcli.models.classifier import ClassifierNetConfig
from mdcli.models.discriminator import DiscConfig
from mdcli.models.quantizer import VQConfig
from mdcli.models.unet import UNetConfig

ARCHS = ("vae", "vqvae", "vqgan")


@dataclass
class OptimConfig:
    steps: int = 2000  # optimiser steps in total
    batch_size: int = 16
    lr: float = 2e-4
    weight_decay: float = 0.0
    warmup_steps: int = 100  # linear warm-up from 0
    schedule: str = "constant"  # constant | cosine (after warm-up)
    grad_clip: float = 1.0  # max global grad norm (0: off)
    ema_decay: float = 0.0  # EMA of weights for the saved model (0: off; e.g. 0.999), bias-corrected
    val_fraction: float = 0.1  # held-out share of the data (stratified by class)
    split: str = "random"  # random | blocked (contiguous runs of the recording held out; measured data)
    split_gap: int = 3  # blocked: training windows at least this many sequence steps from held-out ones
    eval_every: int = 0  # validate every N steps (0: once per epoch)
    max_eval: int = 1000  # held-out samples used per validation (a seeded subset; bounds time and memory)
    checkpoint_every: int = 200  # steps between checkpoints
    log_every: int = 10  # steps between JSONL records
    device: str = "auto"  # auto | cpu | cuda
    compile: bool = False  # torch.compile the training forward (worth it on a GPU for long runs)
    # auto: bf16 autocast on a GPU, fp32 on a CPU | fp32: never autocast | bf16: also on a CPU
    # (1.4-1.7x per step on CPUs with AMX, docs/PERFORMANCE.md; other numerics than the fp32 runs)
    # | bf16-native: bf16 where the device computes in bf16 natively (a GPU, a CPU with AVX512-BF16 or
    # AMX), fp32 elsewhere (an AVX2 CPU emulates bf16 at 0.06-0.09x). Artifacts record what was used.
    precision: str = "auto"


PRECISIONS = ("auto", "fp32", "bf16", "bf16-native")


def check_optim(cfg: OptimConfig) -> None:
    """The checks every trainer's `train` section shares."""
    if cfg.precision not in PRECISIONS:
        raise ConfigError(f"train.precision: unknown '{cfg.precision}'; valid: {', '.join(PRECISIONS)}")
    if cfg.split not in ("random", "blocked"):
        raise ConfigError(f"--split: unknown '{cfg.split}'; valid: random, blocked")
    if cfg.split_gap < 0:
        raise ConfigError("train.split_gap: must be >= 0")
    if not 0 <= cfg.ema_decay < 1:
        raise ConfigError(f"train.ema_decay: must be in [0, 1) (0: off), got {cfg.ema_decay}")
    check_rates(cfg.lr, cfg.weight_decay, cfg.warmup_steps, "train")
    if cfg.checkpoint_every < 1 or cfg.log_every < 1 or cfg.max_eval < 1:
        raise ConfigError("train.checkpoint_every, train.log_every and train.max_eval: must be >= 1, got "
                          f"{cfg.checkpoint_every}, {cfg.log_every}, {cfg.max_eval}")
    if cfg.eval_every < 0:
        raise ConfigError(f"train.eval_every: must be >= 0 (0: once per epoch), got {cfg.eval_every}")
    if not (math.isfinite(cfg.grad_clip) and cfg.grad_clip >= 0):
        raise ConfigError(f"train.grad_clip: must be >= 0 (0: off), got {cfg.grad_clip}")
    if cfg.schedule not in SCHEDULES:
        raise ConfigError(f"train.schedule: unknown '{cfg.schedule}'; valid: {', '.join(SCHEDULES)}")
    if cfg.device not in DEVICES:
        raise ConfigError(f"train.device: unknown '{cfg.device}'; valid: {', '.join(DEVICES)}")


SCHEDULES = ("constant", "cosine")
DEVICES = ("auto", "cpu", "cuda")


def check_rates(lr: float, weight_decay: float, warmup_steps: int, section: str) -> None:
    """A learning rate > 0, a weight decay >= 0 and warm-up steps >= 0, all finite (`section`.lr etc. in errors)."""
    if not (math.isfinite(lr) and lr > 0):
        raise ConfigError(f"{section}.lr: must be a finite number > 0, got {lr}")
    if not (math.isfinite(weight_decay) and weight_decay >= 0):
        raise ConfigError(f"{section}.weight_decay: must be >= 0, got {weight_decay}")
    if warmup_steps < 0:
        raise ConfigError(f"{section}.warmup_steps: must be >= 0, got {warmup_steps}")


@dataclass
class ExtraOptions:
    """How extra (generated, simulated, other) images enter the batches of real ones."""

    weight: float = 1.0  # loss weight of an extra image (a real one weighs 1)
    ratio: float = 1.0  # extra images per real image in each batch (added on top of the real batch)
    prob: float = 0.0  # chance that a real image of a batch is swapped for an extra image of its class (DA-Fusion)

    def validate(self, what: str = "extra", used: bool = True) -> None:
        if not 0 <= self.weight <= 1:
            raise ConfigError(f"{what} weight: must be in [0, 1], got {self.weight}")
        if not 0 <= self.prob <= 1:
            raise ConfigError(f"{what} prob: must be in [0, 1], got {self.prob}")
        if not 0 <= self.ratio <= 64:
            raise ConfigError(f"{what} ratio: must be in [0, 64], got {self.ratio}")
        if used and self.ratio == 0 and self.prob == 0:
            raise ConfigError(f"{what}: ratio 0 and prob 0 would never use an extra image")


@dataclass
class TrainClassifierConfig:
    """`mdcli train-classifier`: spectrogram CNN with a held-out validation split."""

    seed: int = 0
    net: ClassifierNetConfig = field(default_factory=ClassifierNetConfig)
    train: OptimConfig = field(default_factory=lambda: OptimConfig(
        steps=600, batch_size=32, lr=1e-3, weight_decay=1e-4, warmup_steps=50, val_fraction=0.2))
    time_shift: bool = True  # augment with random circular time shifts (spectrograms are stationary-ish in time)
    extra: ExtraOptions = field(default_factory=ExtraOptions)  # how --extra images enter the batches
    finetune: str = "all"  # with --init: train all weights, or the head alone

    def validate(self) -> None:
        check_optim(self.train)
        self.net.validate()
        self.extra.validate("--extra", used=False)
        if self.finetune not in ("all", "head"):
            raise ConfigError(f"--finetune: all or head, got '{self.finetune}'")
        t = self.train
        if t.steps < 1 or t.batch_size < 1:
            raise ConfigError("train.steps and train.batch_size must be >= 1")
        if not 0 <= t.val_fraction < 1:  # 0: every window trains (a few-shot set has none to spare), no validation
            raise ConfigError(f"train.val_fraction: must be in [0, 1) (0: train on every window, no validation), "
                              f"got {t.val_fraction}")


@dataclass
class VAEOptions:
    # on the KL summed over latent elements, against a per-pixel MEAN reconstruction loss. Latent diffusion's
    # 1e-6 is against a per-image SUM, so its weight in these units is 1e-6 / (H W): at 64 x 64 the 1e-6 here
    # weighs the KL 4096x more than theirs (theirs is 2.4e-10 here, close to the study's KL-0 arm)
    kl_weight: float = 1e-6
    logvar_min: float = -30.0
    logvar_max: float = 20.0


@dataclass
class LossConfig:
    recon: str = "l1"  # l1 | l2
    recon_weight: float = 1.0
    temporal_weight: float = 0.0  # temporal-spectrum term (losses.temporal_spectrum): periodic limb / wing timing
    envelope_weight: float = 0.0  # envelope term (losses.envelope): the bins above the kinematic level, per column
    envelope_level: float = 0.4  # its level above the image's median, image units (20 dB at a 50 dB range)
    profile_weight: float = 0.0  # Doppler-profile term (losses.profile): per row mean and spread over time, band spectra
    perceptual: str = "domain"  # domain | lpips-vgg | lpips-alex | none
    perceptual_weight: float = 1.0
    perceptual_weights: str = ""  # lpips: torchvision ImageNet trunk file (default: the torch hub cache)
    classifier: str = ""  # domain: a classifier.h5 from `mdcli train-classifier`


@dataclass
class TrainAEConfig:
    """`mdcli train-ae`: the three autoencoders share everything except what defines them."""

    seed: int = 0
    arch: str = "vqgan"  # vae | vqvae | vqgan
    model: ModelConfig = field(default_factory=ModelConfig)
    vae: VAEOptions = field(default_factory=VAEOptions)
    vq: VQConfig = field(default_factory=VQConfig)
    disc: DiscConfig = field(default_factory=DiscConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: OptimConfig = field(default_factory=OptimConfig)

    def validate(self) -> None:
        check_optim(self.train)
        if self.arch not in ARCHS:
            raise ConfigError(f"--arch: unknown architecture '{self.arch}'; valid: {', '.join(ARCHS)}")
        if self.loss.perceptual not in PERCEPTUAL_CHOICES:
            raise ConfigError(f"--perceptual: unknown '{self.loss.perceptual}'; valid: {', '.join(PERCEPTUAL_CHOICES)}")
        if self.loss.recon not in ("l1", "l2"):
            raise ConfigError("loss.recon: expected l1 or l2")
        if self.loss.temporal_weight < 0:
            raise ConfigError(f"loss.temporal_weight: must be >= 0, got {self.loss.temporal_weight}")
        if self.loss.profile_weight < 0:
            raise ConfigError(f"loss.profile_weight: must be >= 0, got {self.loss.profile_weight}")
        if self.loss.envelope_weight < 0:
            raise ConfigError(f"loss.envelope_weight: must be >= 0, got {self.loss.envelope_weight}")
        if not 0 < self.loss.envelope_level < 1:
            raise ConfigError(f"loss.envelope_level: image units above the median, in (0, 1), got {self.loss.envelope_level}")
        if self.disc.loss not in ("hinge", "non-saturating"):
            raise ConfigError("disc.loss: expected hinge or non-saturating")
        if not self.model.channel_mult or self.model.downsample_factor not in (1, 2, 4, 8, 16):
            raise ConfigError("model.channel_mult: give 1 to 5 levels (downsampling factor f = 2^(levels-1))")
        f = self.model.downsample_factor
        if self.model.time_factor and (self.model.time_factor > f or self.model.time_factor & (self.model.time_factor - 1)):
            raise ConfigError(f"model.time_factor: 0 (= f) or a power of 2 up to f = {f}, got {self.model.time_factor}")
        if self.model.latent_channels < 1 or self.model.channels < 1:
            raise ConfigError("model.channels and model.latent_channels must be >= 1")
        if self.vq.codebook_size < 2:
            raise ConfigError("vq.codebook_size: must be >= 2")
        if self.train.steps < 1 or self.train.batch_size < 1:
            raise ConfigError("train.steps and train.batch_size must be >= 1")
        if not 0 < self.train.val_fraction < 1:
            raise ConfigError("train.val_fraction: must be between 0 and 1")
        if self.loss.perceptual == "domain" and not self.loss.classifier:
            raise ConfigError(
                "--perceptual domain needs a spectrogram classifier: train one with `mdcli train-classifier` "
                "and pass --classifier classifier.h5 (or use --perceptual none)"
            )


@dataclass
class DiffusionConfig:
    schedule: str = "linear"  # linear | cosine
    timesteps: int = 1000
    beta_start: float = 1e-4
    beta_end: float = 0.02
    prediction: str = "v"  # v | eps (v: errors at high noise are not amplified into x_0)
    min_snr_gamma: float = 5.0  # min-SNR loss weighting (0: off)
    cfg_dropout: float = 0.1  # probability of training with the null class (classifier-free guidance)


@dataclass
class TrainLDMConfig:
    """`mdcli train-ldm`: class-conditional latent diffusion."""

    seed: int = 0
    unet: UNetConfig = field(default_factory=UNetConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    train: OptimConfig = field(default_factory=lambda: OptimConfig(
        steps=2000, batch_size=64, lr=2e-4, warmup_steps=100, ema_decay=0.999, val_fraction=0.1))
    # kinematic features of each training image the model is conditioned on (period, strength, bandwidth;
    # mdcli.kinematics.condition_vector); `sample` draws them from the training images of the class, `augment`
    # takes each source window's own. Empty: class-conditional only
    kinematics: list[str] = field(default_factory=list)

    def validate(self) -> None:
        check_optim(self.train)
        from mdcli.kinematics import CONDITIONS

        bad = [k for k in self.kinematics if k not in CONDITIONS]
        if bad:
            raise ConfigError(f"kinematics: unknown '{bad[0]}'; valid: {', '.join(CONDITIONS)}")
        if len(set(self.kinematics)) != len(self.kinematics):
            raise ConfigError(f"kinematics: each feature once, got {self.kinematics}")
        d = self.diffusion
        if d.schedule not in ("linear", "cosine"):
            raise ConfigError(f"diffusion.schedule: unknown '{d.schedule}'; valid: linear, cosine")
        if d.prediction not in ("eps", "v"):
            raise ConfigError(f"diffusion.prediction: unknown '{d.prediction}'; valid: eps, v")
        if d.timesteps < 10:
            raise ConfigError("diffusion.timesteps: must be >= 10")
        if not 0 <= d.cfg_dropout < 1:
            raise ConfigError("diffusion.cfg_dropout: must be in [0, 1)")
        levels = range(len(self.unet.channel_mult))
        for key in ("attention_levels", "time_attention_levels"):
            bad = [v for v in getattr(self.unet, key) if v not in levels]
            if bad:
                raise ConfigError(f"unet.{key}: {bad} outside the UNet's levels 0-{len(levels) - 1} (unet.channel_mult)")
        if self.train.steps < 1 or self.train.batch_size < 1:
            raise ConfigError("train.steps and train.batch_size must be >= 1")
        if not 0 < self.train.val_fraction < 1:
            raise ConfigError("train.val_fraction: must be between 0 and 1")
