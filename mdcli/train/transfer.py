"""`--init` for `train-ae` and `train-ldm`: start from a trained generator (e.g. pretrained on simulated walkers,
fine-tuned on measured windows).

The architecture is not taken from the init artifact: the run's config must describe the same network, and any
difference is one line naming it (arch, image size, latent shape, then the first differing config keys). Keys that
only shape training (learning rate, losses, dropout, VQ commitment and EMA decay, discriminator, CFG dropout...) may
differ: those are what one changes to fine-tune. `train-classifier --init` replaces the net instead; a generator
config has no separate "net" section to replace without also replacing training choices, and a silent replacement
would ignore an explicit `--set model.channels=...`.

The autoencoder artifact keeps the (EMA) encoder, decoder and quantiser weights, codebook included (already
initialised, so no k-means restart); it keeps no discriminator, so a VQ-GAN's discriminator starts fresh (it trains
from `disc.start - disc.pretrain_steps`, before its term reaches the generator).

The LDM artifact keeps the EMA UNet. Its class embedding has one row per class and a last, null-class row
(classifier-free guidance). Against other classes: the null row is kept, a class of the same name keeps its row,
and every other class's row starts as a copy of the null row: each new class starts as the pretrained
unconditional model and moves away from it as fine-tuning sees its windows. The latents are standardised with
their own per-channel statistics (those `encode` stored for the new data), so each domain reaches the denoiser as
zero-mean, unit-variance channels; the output records them and `sample` undoes them.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from mdcli.artifacts import build_and_load, load_model, stored_config_of
from mdcli.errors import ArtifactError, MdcliError
from mdcli.stages import TrainAEConfig, TrainLDMConfig

# config keys that fix the shapes (and meaning) of the weights; the others are training choices
AE_MODEL_FREE = {"dropout"}
AE_VQ_KEYS = ("codebook_size", "code_dim", "cosine")
UNET_FREE = {"dropout"}
DIFFUSION_KEYS = ("schedule", "timesteps", "beta_start", "beta_end", "prediction")


def _differences(stored, current, prefix: str, keys=None, free: set[str] = frozenset()) -> list[str]:
    """'prefix.key X vs Y here' for each key of two config sections that differs."""
    a, b = dataclasses.asdict(stored), dataclasses.asdict(current)
    out = []
    for k in keys or a:
        if k in free or a.get(k) == b.get(k):
            continue
        out.append(f"{prefix}.{k} {a.get(k)} vs {b.get(k)} here")
    return out


def _refuse_differences(path: Path, diffs: list[str]) -> None:
    if diffs:
        raise MdcliError(f"--init {path}: trained with {', '.join(diffs[:3])}{' ...' if len(diffs) > 3 else ''}; "
                         f"fine-tune with the config it was made with (mdcli info {path})")


def _shape(v) -> str:
    return "x".join(str(int(x)) for x in v)


def autoencoder_init(path: Path, cfg, image_shape: tuple[int, int]) -> dict:
    """Check that the autoencoder `path` fits this run (cfg: TrainAEConfig, images of `image_shape`) -> its weights."""
    header, attrs, weights = load_model(path, "autoencoder")
    stored = stored_config_of(TrainAEConfig, header, path)
    arch = str(attrs.get("arch", stored.arch))
    if arch != cfg.arch:
        raise MdcliError(f"--init {path}: a {arch} autoencoder, this run trains a {cfg.arch} "
                         f"(--arch {arch}, or start from a {cfg.arch})")
    trained = tuple(int(v) for v in attrs.get("image_shape", ()))
    if trained != tuple(image_shape):
        raise MdcliError(f"--init {path}: trained on {_shape(trained)} images, --data holds {_shape(image_shape)} "
                         "(simulate or import the data at the init's size: --image-size)")
    fh, fw = cfg.model.factors
    latent = [cfg.model.latent_channels, image_shape[0] // fh, image_shape[1] // fw]
    diffs = _differences(stored.model, cfg.model, "model", free=AE_MODEL_FREE)
    if cfg.arch != "vae":
        diffs += _differences(stored.vq, cfg.vq, "vq", AE_VQ_KEYS)
    if [int(v) for v in attrs.get("latent_shape", latent)] != latent:
        raise MdcliError(f"--init {path}: its latents are {_shape(attrs['latent_shape'])}, this run's would be "
                         f"{_shape(latent)} ({', '.join(diffs) or 'model config'})")
    _refuse_differences(path, diffs)
    return weights


def load_autoencoder_init(path: Path, cfg, image_shape: tuple[int, int], ae) -> None:
    """Load the autoencoder `path` into the freshly built `ae` (after autoencoder_init's checks)."""
    weights = autoencoder_init(path, cfg, image_shape)
    build_and_load(path, "autoencoder", lambda: ae, weights)


def ldm_init(path: Path, cfg, latent_attrs: dict, latent_shape: tuple[int, ...], class_names: list[str]) -> dict:
    """Check that the LDM `path` fits this run (cfg: TrainLDMConfig; the new latents' attrs, shape [C, h, w] and
    classes) -> its weights, the class embedding mapped onto `class_names` (see the module docstring)."""
    header, attrs, weights = load_model(path, "ldm")
    stored = stored_config_of(TrainLDMConfig, header, path)
    arch, new_arch = str(attrs.get("arch", "")), str(latent_attrs.get("arch", ""))
    if arch != new_arch:
        raise MdcliError(f"--init {path}: trained on latents of a {arch} autoencoder, --latents come from a {new_arch} "
                         "(encode with the autoencoder behind the init, or one fine-tuned from it: train-ae --init)")
    trained = [int(v) for v in attrs.get("image_shape", [])]
    if trained != [int(v) for v in latent_attrs["image_shape"]]:
        raise MdcliError(f"--init {path}: trained on latents of {_shape(trained)} images, --latents encode "
                         f"{_shape(latent_attrs['image_shape'])} images")
    if [int(v) for v in attrs.get("latent_shape", [])] != [int(v) for v in latent_shape]:
        raise MdcliError(f"--init {path}: works on latents {_shape(attrs['latent_shape'])}, --latents holds "
                         f"{_shape(latent_shape)} (encode with the autoencoder behind the init, or one fine-tuned "
                         "from it: train-ae --init)")
    if list(stored.kinematics) != list(cfg.kinematics):
        raise MdcliError(f"--init {path}: conditioned on kinematics {list(stored.kinematics)}, this run on "
                         f"{list(cfg.kinematics)} (set kinematics as the init has it)")
    diffs = _differences(stored.unet, cfg.unet, "unet", free=UNET_FREE)
    diffs += _differences(stored.diffusion, cfg.diffusion, "diffusion", DIFFUSION_KEYS)
    _refuse_differences(path, diffs)
    old = [str(c) for c in attrs.get("class_names", [])]
    emb = weights.get("class_emb.weight")
    if emb is None or emb.ndim != 2 or emb.shape[0] != len(old) + 1:
        raise ArtifactError(f"{path}: damaged 'ldm' artifact: its class embedding does not fit its {len(old)} classes")
    if old != list(class_names):
        rows = [emb[old.index(c)] if c in old else emb[-1] for c in class_names] + [emb[-1]]
        weights = {**weights, "class_emb.weight": np.stack(rows).astype(emb.dtype)}
    return weights


def load_ldm_init(path: Path, cfg, latent_attrs: dict, latent_shape, class_names: list[str], model) -> None:
    """Load the LDM `path` into the freshly built UNet `model` (after ldm_init's checks)."""
    weights = ldm_init(path, cfg, latent_attrs, latent_shape, class_names)
    build_and_load(path, "ldm", lambda: model, weights)
