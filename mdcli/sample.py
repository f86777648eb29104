"""`sample`: generate latents per class with the LDM, decode them, write `spectrograms` (source = generated)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from mdcli.artifacts import Spectrograms, parent_record, read_tables, sha256_file
from mdcli.config import to_yaml
from mdcli.data.batches import from_model
from mdcli.diffusion import SAMPLERS, build_schedule, guided_eps, run_sampler
from mdcli.errors import ArtifactError, ConfigError, MdcliError
from mdcli.kinematics import RAW_CONDITION, condition_vector
from mdcli.models.load import load_autoencoder, load_ldm


@dataclass
class SampleConfig:
    """`mdcli sample`: how many, which classes, which sampler."""

    seed: int = 0
    n_per_class: int = 16
    classes: list[str] = field(default_factory=list)  # empty: all classes
    sampler: str = "dpmpp-2m-sde"  # ddpm | ddim | dpmpp-2m | dpmpp-2m-sde (default: FMD of ddpm-1000 at 20 steps)
    steps: int = 25
    eta: float = 0.0  # DDIM noise (0 deterministic, 1 = DDPM posterior)
    cfg_scale: float = 1.5  # classifier-free guidance (1: conditional model only)
    batch_size: int = 64

    def validate(self) -> None:
        check_sampling(self.sampler, self.eta, {"--n-per-class": self.n_per_class, "--batch-size": self.batch_size,
                                                "--steps": self.steps})
        check_classes(self.classes)


def check_classes(classes: list[str]) -> None:
    """--classes names each class once."""
    twice = sorted({c for c in classes if classes.count(c) > 1})
    if twice:
        raise ConfigError(f"--classes: '{twice[0]}' is named twice")


def check_sampling(sampler: str, eta: float, counts: dict[str, int]) -> None:
    """The sampler options of `sample` and `augment`: a known sampler, each count >= 1, eta >= 0."""
    if sampler not in SAMPLERS:
        raise ConfigError(f"--sampler: unknown '{sampler}'; valid: {', '.join(SAMPLERS)}")
    if min(counts.values()) < 1:
        names = list(counts)
        raise ConfigError(f"{', '.join(names[:-1])} and {names[-1]} must be >= 1")
    if eta < 0:
        raise ConfigError("--eta: must be >= 0")


def find_autoencoder(ldm_attrs: dict, ae: Path | None, ldm_path: Path) -> Path:
    """The autoencoder from the lineage (ldm -> latents -> ae), checked by hash, unless --ae is given."""
    if ae is not None:
        return ae
    return lineage_autoencoder(ldm_attrs["ae_parent"], ldm_path)


def lineage_autoencoder(rec: dict, child: Path) -> Path:
    """The autoencoder of a lineage record of `child` (latents, or an LDM through them): where it was or beside
    `child`, refused when missing or when its content is not the recorded one (another model's decoder or codes)."""
    from mdcli.artifacts import locate_parent

    path = locate_parent(rec, child)
    if not path.exists():
        raise MdcliError(f"{child}: its autoencoder {path} (from the lineage) is missing; pass --ae ae.h5")
    if sha256_file(path) != rec["sha256"]:
        raise MdcliError(f"{child}: its autoencoder {path} has changed since the latents were encoded (sha256 differs); "
                         "pass --ae to use it anyway")
    return path


def check_guidance(cfg_scale: float, cfg_dropout: float, ldm_path: Path) -> None:
    """Classifier-free guidance needs the LDM's unconditional class: refused on an LDM trained without it."""
    if cfg_scale != 1 and cfg_dropout <= 0:
        raise ConfigError(f"--cfg-scale {cfg_scale:g}: {ldm_path} was trained with diffusion.cfg_dropout 0, so its "
                          "unconditional class never learnt anything to guide with; use --cfg-scale 1 or train with dropout")


def check_decoder_output(ae_path: Path, output: Path | None) -> None:
    """The autoencoder found through the lineage is an input too: the output must not overwrite it."""
    if output is not None:
        from mdcli.outputs import check_outputs

        check_outputs({"--output": (output, None)}, {"the LDM's autoencoder": Path(ae_path)})


def check_decoder(ldm_attrs: dict, ae_attrs: dict, ldm_path: Path, ae_path: Path) -> None:
    """The autoencoder must make the LDM's images from the LDM's latents (one line naming both files)."""
    image_shape = [len(ldm_attrs["doppler_hz"]), len(ldm_attrs["time_s"])]
    if list(ae_attrs["image_shape"]) != image_shape or list(ae_attrs["latent_shape"]) != list(ldm_attrs["latent_shape"]):
        raise MdcliError(f"--ae {ae_path}: makes {ae_attrs['image_shape'][0]}x{ae_attrs['image_shape'][1]} images from "
                         f"{'x'.join(map(str, ae_attrs['latent_shape']))} latents, but {ldm_path} was trained on "
                         f"{'x'.join(map(str, ldm_attrs['latent_shape']))} latents of {image_shape[0]}x{image_shape[1]} images")


class KinematicConditions:
    """The kinematic conditions of a model trained with `kinematics` (train-ldm): per sample, the features of
    one of its training images of the class, drawn at random (seeded), recorded as the samples' params
    `target_<column>` (mdcli.kinematics.RAW_CONDITION). A class-conditional model: no condition, no params."""

    def __init__(self, ldm_path: Path, names: list[str], attrs: dict, wanted: list[str]):
        self.names, self.shape = list(names), [len(attrs["doppler_hz"]), len(attrs["time_s"])]
        self.drawn: list[np.ndarray] = []
        if self.names:
            tables = read_tables(ldm_path, "ldm")
            table, labels = tables.get("kinematics"), tables.get("kinematics_labels")
            if (table is None or labels is None or table.ndim != 2 or table.shape[1] != len(RAW_CONDITION)
                    or labels.shape != (len(table),)):
                raise ArtifactError(f"{ldm_path}: damaged 'ldm' artifact: conditioned on kinematics {self.names} "
                                    f"but /tables holds no [M, {len(RAW_CONDITION)}] kinematics with M labels")
            self.table, self.labels = table, labels
            classes = list(attrs["class_names"])
            for c in wanted:  # before anything is sampled
                if not np.any(labels == classes.index(c)):
                    raise MdcliError(f"class '{c}': {ldm_path} saw no training image of it, so it has no kinematics "
                                     "to draw")

    def draw(self, ci: int, n: int, key: list[int], device) -> torch.Tensor | None:
        if not self.names:
            return None
        rows = self.table[self.labels == ci]
        raw = rows[np.random.default_rng(key + [1]).integers(len(rows), size=n)]
        self.drawn.append(raw)
        return torch.from_numpy(condition_vector(raw, self.names, self.shape)).to(device)

    def params(self) -> dict[str, np.ndarray]:
        if not self.drawn:
            return {}
        raw = np.concatenate(self.drawn)
        return {f"target_{col}": raw[:, i].astype(np.float64) for i, col in enumerate(RAW_CONDITION)}


@torch.no_grad()
def generate(cfg: SampleConfig, ldm_path: Path, ae_path: Path | None = None,
             progress: Callable[[int], None] | None = None,
             output: Path | None = None) -> tuple[Spectrograms, list[dict], np.ndarray]:
    """-> (generated spectrograms, lineage records, standardised latents)."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    unet, ldm_cfg, attrs, _ = load_ldm(ldm_path, device)
    check_guidance(cfg.cfg_scale, ldm_cfg.diffusion.cfg_dropout, ldm_path)
    ae_path = find_autoencoder(attrs, ae_path, ldm_path)
    check_decoder_output(ae_path, output)
    ae, ae_attrs, _ = load_autoencoder(ae_path, device)
    check_decoder(attrs, ae_attrs, ldm_path, ae_path)
    names = attrs["class_names"]
    wanted = cfg.classes or names
    bad = [c for c in wanted if c not in names]
    if bad:
        raise ConfigError(f"--classes: unknown class '{bad[0]}'; this model knows: {', '.join(names)}")
    schedule = build_schedule(ldm_cfg.diffusion)
    shape = tuple(attrs["latent_shape"])
    mean = torch.tensor(attrs["channel_mean"], dtype=torch.float32, device=device)[None, :, None, None]
    std = torch.tensor(attrs["channel_std"], dtype=torch.float32, device=device)[None, :, None, None]
    images, labels, latents = [], [], []
    conditions = KinematicConditions(ldm_path, ldm_cfg.kinematics, attrs, list(wanted))
    for c in wanted:
        ci = names.index(c)
        for start in range(0, cfg.n_per_class, cfg.batch_size):
            n = min(cfg.batch_size, cfg.n_per_class - start)
            gen = torch.Generator().manual_seed(int(np.random.SeedSequence([cfg.seed, ci, start]).generate_state(1)[0]))
            x = torch.randn((n, *shape), generator=gen).to(device)
            y = torch.full((n,), ci, dtype=torch.long, device=device)
            cond = conditions.draw(ci, n, [cfg.seed, ci, start], device)
            eps_fn = guided_eps(unet, schedule, ldm_cfg.diffusion.prediction, y, len(names), cfg.cfg_scale, cond)
            z = run_sampler(cfg.sampler, eps_fn, x, schedule, cfg.steps, cfg.eta, gen)
            latents.append(z.cpu().numpy())
            img = from_model(ae.decode(z * std + mean)).float()[:, 0].cpu().numpy()
            # Re-reference each image to its own peak (1 = peak; the [0, 1] scale is linear in dB).
            img = np.clip(img + (1.0 - img.reshape(n, -1).max(1))[:, None, None], 0.0, 1.0)
            images.append(img.astype(np.float32))
            labels.append(np.full(n, ci))
            if progress:
                progress(n)
    data = Spectrograms(
        spectrograms=np.concatenate(images), labels=np.concatenate(labels), class_names=list(names),
        doppler_hz=np.asarray(attrs["doppler_hz"]), time_s=np.asarray(attrs["time_s"]),
        carrier_hz=attrs["carrier_hz"], prf_hz=attrs["prf_hz"], dynamic_range_db=attrs["dynamic_range_db"],
        source="generated", axes_calibrated=bool(attrs.get("axes_calibrated", True)), params=conditions.params(),
    )
    return data, [parent_record(ldm_path), parent_record(ae_path)], np.concatenate(latents)


def write_samples(cfg: SampleConfig, ldm_path: Path, output: Path, ae_path: Path | None = None,
                  progress: Callable[[int], None] | None = None) -> Spectrograms:
    data, parents, _ = generate(cfg, ldm_path, ae_path, progress, output)
    data.save(output, to_yaml(cfg), cfg.seed, parents)
    return data
