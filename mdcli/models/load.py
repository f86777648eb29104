"""Builders and loaders of the trained networks: an artifact (kind autoencoder, ldm, classifier) -> the module.

Everything outside training (encode, sample, the diagnostics, the CLI, the study) loads networks from here.
An artifact stores the config of the stage that made it (train-ae, train-ldm, train-classifier): the
dataclasses in `mdcli.stages`.
"""

from __future__ import annotations

from pathlib import Path

import torch

from mdcli.artifacts import build_and_load, load_model, stored_config_of
from mdcli.models.autoencoder import GaussianAutoencoder, VQAutoencoder
from mdcli.models.classifier import SpectrogramClassifier
from mdcli.models.quantizer import VectorQuantizer
from mdcli.models.unet import UNet
from mdcli.stages import TrainAEConfig, TrainClassifierConfig, TrainLDMConfig


def build_autoencoder(cfg: TrainAEConfig) -> torch.nn.Module:
    if cfg.arch == "vae":
        return GaussianAutoencoder(cfg.model, cfg.vae.kl_weight, (cfg.vae.logvar_min, cfg.vae.logvar_max))
    return VQAutoencoder(cfg.model, VectorQuantizer(cfg.model.latent_channels, cfg.vq), arch=cfg.arch)


def load_autoencoder(path: str | Path, device: torch.device | str = "cpu") -> tuple[torch.nn.Module, dict, dict]:
    """Rebuild a trained autoencoder from its artifact -> (model in eval mode, attrs, header)."""
    header, attrs, weights = load_model(path, "autoencoder")
    cfg = stored_config_of(TrainAEConfig, header, path)
    ae = build_and_load(path, "autoencoder", lambda: build_autoencoder(cfg), weights)
    return ae.to(device).eval(), attrs, header


def load_ldm(path: str | Path, device: torch.device | str = "cpu") -> tuple[UNet, TrainLDMConfig, dict, dict]:
    """-> (EMA UNet in eval mode, its config, attrs, header)."""
    header, attrs, weights = load_model(path, "ldm")
    cfg = stored_config_of(TrainLDMConfig, header, path)
    from mdcli.kinematics import condition_width

    model = build_and_load(path, "ldm", lambda: UNet(cfg.unet, int(attrs["latent_shape"][0]), int(attrs["n_classes"]),
                                                     condition_width(cfg.kinematics)), weights)
    return model.to(device).eval(), cfg, attrs, header


def load_classifier(path: str | Path, device: torch.device | str = "cpu") -> tuple[SpectrogramClassifier, dict]:
    """Rebuild a trained classifier from its artifact -> (model in eval mode, attrs)."""
    header, attrs, weights = load_model(path, "classifier")
    cfg = stored_config_of(TrainClassifierConfig, header, path)
    model = build_and_load(path, "classifier", lambda: SpectrogramClassifier(cfg.net, int(attrs["n_classes"])), weights)
    return model.to(device).eval(), attrs
