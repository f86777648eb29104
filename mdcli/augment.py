"""`augment`: variations of real spectrograms (SDEdit, Meng et al. 2022; DA-Fusion, Trabucco et al. 2024).

For each real spectrogram and each of K variants: encode with the LDM's autoencoder (pre-quantisation latent
for VQ, posterior mean for the VAE), standardise with the LDM's channel mean / std, noise it to the diffusion
time given by the strength, denoise it from there with the image's own label (classifier-free guidance, the
chosen sampler), un-standardise, decode (VQ decoders quantise), re-reference to the image's peak as `sample`
does.

Strength s in [0, 1]: 0 is the image itself (no noise, no sampler: exactly decode(encode(x)), and with `--ae`
alone no LDM is needed: the autoencoder's round trip, lineage the autoencoder and the data); 1 is pure noise
and the full sampler (what `sample` does, with the label of the source); in between, the sampler's timestep
grid (`steps` points for the whole range) is cut to start at the point nearest s (T - 1), the latent noised to
the first of them with the forward process, and the sampler run over the rest. The strength actually used
(that grid point / (T - 1)) is stored per variant. A range `lo:hi` draws s uniformly per variant.

Seeding: one random stream per (seed, source index, variant) gives its strength, its noise and every noise
draw of a stochastic sampler, so a variant does not depend on the batch size or on which classes are chosen.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from mdcli.artifacts import Spectrograms, parent_record
from mdcli.data.batches import from_model, to_model
from mdcli.diffusion import NoiseSchedule, guided_eps, run_sampler
from mdcli.kinematics import RAW_CONDITION, condition_vector, raw_condition
from mdcli.errors import ConfigError, MdcliError
from mdcli.sample import check_classes, check_sampling


@dataclass
class AugmentConfig:
    """`mdcli augment`: how many variants per real image, how far from it, which sampler."""

    seed: int = 0
    per_image: int = 10  # variants per real spectrogram
    strength: str = "0.3:0.6"  # s or lo:hi (drawn per variant); 0 = the image itself, 1 = pure noise
    classes: list[str] = field(default_factory=list)  # empty: all classes of --data
    sampler: str = "dpmpp-2m-sde"  # ddpm | ddim | dpmpp-2m | dpmpp-2m-sde
    steps: int = 25  # grid points over the whole diffusion; a variant runs those at and below its start
    eta: float = 0.0  # DDIM noise
    cfg_scale: float = 1.5  # classifier-free guidance (1: conditional model only)
    batch_size: int = 64
    filters: list[str] = field(default_factory=list)  # NAME[:options], see mdcli/filters.py
    # What the LDM denoises towards: `own` (each image's own label, a class of the LDM), `null` (the LDM's
    # unconditional class: the training data's look without a class, e.g. simulated windows carried towards
    # measured ones), or one class of the LDM for every image. The output keeps the sources' labels.
    condition: str = "own"

    def strength_range(self) -> tuple[float, float]:
        return parse_strength(self.strength)

    def validate(self) -> None:
        check_sampling(self.sampler, self.eta, {"--per-image": self.per_image, "--batch-size": self.batch_size,
                                                "--steps": self.steps})
        check_classes(self.classes)
        self.strength_range()
        if not isinstance(self.condition, str) or not self.condition.strip():
            raise ConfigError(f"--condition {self.condition!r}: expected own, null or a class of the LDM")
        from mdcli.filters import parse_filters

        parse_filters(self.filters)


def parse_strength(text) -> tuple[float, float]:
    """`s` or `lo:hi` with 0 <= lo <= hi <= 1 -> (lo, hi)."""
    parts = str(text).split(":")
    try:
        vals = [float(p) for p in parts]
    except ValueError:
        vals = []
    if len(vals) not in (1, 2) or not all(np.isfinite(vals)):
        raise ConfigError(f"--strength {text}: expected a number in [0, 1] or a range lo:hi, e.g. 0.3:0.6")
    lo, hi = vals[0], vals[-1]
    if not (0 <= lo <= 1 and 0 <= hi <= 1):
        raise ConfigError(f"--strength {text}: must lie in [0, 1] (0 = the image itself, 1 = pure noise)")
    if lo > hi:
        raise ConfigError(f"--strength {text}: the range's start is above its end")
    return lo, hi


def spacing(sampler: str) -> str:
    """The timestep spacing a sampler uses (diffusion.py): uniform in lambda for the DPM-Solver++ family."""
    return "lambda" if sampler.startswith("dpmpp") else "linear"


def truncated(schedule: NoiseSchedule, t: int) -> NoiseSchedule:
    """The schedule's first t + 1 steps as a schedule of its own: its timestep grids start at t, and every
    quantity at a timestep <= t is the original's (the network sees the same integer timesteps)."""
    out = copy.copy(schedule)
    out.T = t + 1
    out.betas = schedule.betas[: t + 1]
    out.alphabar = schedule.alphabar[: t + 1]
    return out


def start_index(grid: list[int], strength: float, T: int) -> int | None:
    """Index of the grid timestep nearest strength (T - 1) (the first of equals, i.e. the noisier); None for
    strength 0 (no noise at all), 0 for strength 1 (pure noise)."""
    if strength <= 0:
        return None
    if strength >= 1:
        return 0
    target = strength * (T - 1)
    return int(np.argmin([abs(t - target) for t in grid]))


def variant_generator(seed: int, source: int, variant: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(np.random.SeedSequence([seed, source, variant, 35]).generate_state(1)[0]))


def peak_referenced(img: np.ndarray) -> np.ndarray:
    """Each image shifted so its peak is 1, clipped to [0, 1] (the [0, 1] scale is linear in dB), as `sample`."""
    n = len(img)
    return np.clip(img + (1.0 - img.reshape(n, -1).max(1))[:, None, None], 0.0, 1.0).astype(np.float32)


@dataclass
class Setup:
    """Everything `augment` checks before it generates."""

    data: Spectrograms
    sources: np.ndarray  # indices into data
    ldm_path: Path | None  # None: strength 0 through the autoencoder alone
    ae_path: Path
    ldm_index: np.ndarray  # data class index -> LDM class index
    filters: list = field(default_factory=list)  # filters.Prepared, checked


def check_inputs(cfg: AugmentConfig, ldm_path: Path | None, data_path: Path, ae_path: Path | None = None,
                 output: Path | None = None) -> Setup:
    """Validate the config, the LDM, its autoencoder and the data before anything is generated. Without an LDM
    (`ldm_path` None) only strength 0 runs: the data through `ae_path`."""
    from mdcli.artifacts import load_model, open_artifact
    from mdcli.sample import check_decoder, check_decoder_output, find_autoencoder

    cfg.validate()
    if ldm_path is None:
        if cfg.strength_range()[1] > 0:
            raise ConfigError(f"--ldm: needed for --strength {cfg.strength} (only --strength 0, the autoencoder's "
                              "round trip, runs without one)")
        if ae_path is None:
            raise ConfigError("--ae: --strength 0 without --ldm needs the autoencoder (or --ldm to find it)")
        attrs = None
    else:
        with open_artifact(ldm_path, "ldm", header_only=True):
            pass
        header, attrs, _ = load_model(ldm_path, "ldm")
        ae_path = find_autoencoder(attrs, ae_path, ldm_path)
        from mdcli.artifacts import stored_config_of
        from mdcli.sample import check_guidance
        from mdcli.stages import TrainLDMConfig

        dropout = stored_config_of(TrainLDMConfig, header, ldm_path).diffusion.cfg_dropout
        if cfg.condition == "null" and dropout <= 0:
            raise ConfigError(f"--condition null: {ldm_path} was trained with diffusion.cfg_dropout 0, so its "
                              "unconditional class never learnt anything; give a class or train with dropout")
        if cfg.condition != "null" and cfg.strength_range()[1] > 0:  # null runs unguided
            check_guidance(cfg.cfg_scale, dropout, ldm_path)
    check_decoder_output(ae_path, output)
    with open_artifact(ae_path, "autoencoder", header_only=True):
        pass
    _, ae_attrs, _ = load_model(ae_path, "autoencoder")
    data = Spectrograms.load(data_path)
    if attrs is not None:
        check_decoder(attrs, ae_attrs, ldm_path, ae_path)
    shape = list(data.spectrograms.shape[1:])
    if shape != list(ae_attrs["image_shape"]):
        whose = "the LDM's autoencoder " if attrs is not None else "--ae "
        raise MdcliError(f"--data {data_path}: images are {shape[0]}x{shape[1]}, but {whose}{ae_path} "
                         f"works on {ae_attrs['image_shape'][0]}x{ae_attrs['image_shape'][1]}")
    names = list(attrs["class_names"]) if attrs is not None else list(data.class_names)
    wanted = cfg.classes or [c for c in data.class_names]
    bad = [c for c in wanted if c not in data.class_names]
    if bad:
        raise ConfigError(f"--classes: unknown class '{bad[0]}'; --data {data_path} has: {', '.join(data.class_names)}")
    ldm_index = condition_index(cfg.condition, data, names, wanted, data_path, ldm_path)
    chosen = np.array([data.class_names.index(c) for c in wanted])
    sources = np.flatnonzero(np.isin(data.labels, chosen))
    if not len(sources):
        raise MdcliError(f"--data {data_path}: no images of the classes {', '.join(wanted)}")
    setup = Setup(data, sources, None if ldm_path is None else Path(ldm_path), Path(ae_path), ldm_index)
    if cfg.filters:
        from mdcli.filters import check_filter_files, parse_filters, prepare

        setup.filters = prepare(parse_filters(cfg.filters), Path(data_path), list(wanted), tuple(shape))
        if output is not None:
            check_filter_files(setup.filters, output)
    return setup


def condition_index(condition: str, data: Spectrograms, names: list[str], wanted: list[str], data_path: Path,
                    ldm_path: Path | None) -> np.ndarray:
    """--data class index -> the LDM class each of its images is denoised with (-1: a class not varied).

    `own`: the image's own class, which the LDM must know; `null`: the LDM's unconditional class (index
    len(names), as classifier-free guidance trains it); a class name of the LDM: that class for every image."""
    if condition == "own":
        bad = [c for c in wanted if c not in names]
        if bad:
            raise MdcliError(f"--data {data_path}: class '{bad[0]}' is unknown to {ldm_path} ({', '.join(names)}); "
                             "pick others with --classes, or --condition null (the LDM's unconditional class)")
        return np.array([names.index(c) if c in names else -1 for c in data.class_names])
    if ldm_path is None:
        raise ConfigError(f"--condition {condition}: only an LDM is conditioned; --strength 0 through --ae alone "
                          "has no condition")
    if condition == "null":
        target = len(names)
    elif condition in names:
        target = names.index(condition)
    else:
        raise ConfigError(f"--condition {condition}: not a class of {ldm_path} ({', '.join(names)}); expected own, "
                          "null or one of them")
    return np.full(len(data.class_names), target)


def run_augment(cfg: AugmentConfig, setup: Setup, data_path: Path, output: Path,
                progress: Callable[[int], None] | None = None, preview: Path | None = None) -> tuple[Spectrograms, dict]:
    """Generate, filter, write (and preview) -> (the kept variations, a summary with the filter reports)."""
    import json

    from mdcli.artifacts import atomic_path
    from mdcli.config import to_yaml
    from mdcli.filters import apply

    data, source_index, used, _ = generate(cfg, setup, progress)
    n_generated = len(data)
    keep, reports = apply(setup.filters, data) if setup.filters else (np.arange(n_generated), [])
    if setup.filters:
        from mdcli.filters import check_kept

        check_kept(keep, reports, n_generated, "variations")
    data, source_index, used = data.select(keep), source_index[keep], used[keep]
    parents = parents_of(setup, data_path)
    seen = {r["sha256"] for r in parents}
    for p in setup.filters:
        for r in p.parents():
            if r["sha256"] not in seen:
                seen.add(r["sha256"])
                parents.append(r)
    attrs = {"generated_before_filters": int(n_generated)}
    if setup.filters:
        attrs["filters"] = json.dumps(reports)
    save(data, output, to_yaml(cfg), cfg.seed, parents,
         {"source_index": source_index.astype(np.int64), "strength": used.astype(np.float32)}, attrs)
    if preview is not None:
        with atomic_path(preview) as tmp:
            plot_variations(data, setup.data, source_index, tmp, setup.sources, seed=cfg.seed,
                            title=f"{output.name}: real sources (left) and variations, strength {cfg.strength}")
    return data, {**summary(data, source_index, used), "generated": int(n_generated), "filters": reports}


@torch.no_grad()
def generate(cfg: AugmentConfig, setup: Setup, progress: Callable[[int], None] | None = None,
             ) -> tuple[Spectrograms, np.ndarray, np.ndarray, np.ndarray]:
    """-> (variations, source index per variation, strength used per variation, their standardised latents before
    decoding (unstandardised without an LDM)), in (source, variant) order."""
    from mdcli.diffusion import build_schedule
    from mdcli.models.load import load_autoencoder, load_ldm

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    ae, ae_attrs, _ = load_autoencoder(setup.ae_path, device)
    if setup.ldm_path is not None:
        unet, ldm_cfg, attrs, _ = load_ldm(setup.ldm_path, device)
        schedule = build_schedule(ldm_cfg.diffusion)
        T = schedule.T
        grid = schedule.timesteps(cfg.steps, spacing(cfg.sampler))
        mean = torch.tensor(attrs["channel_mean"], dtype=torch.float32, device=device)[None, :, None, None]
        std = torch.tensor(attrs["channel_std"], dtype=torch.float32, device=device)[None, :, None, None]
        null = len(attrs["class_names"])
        latent_shape = attrs["latent_shape"]
        kin_names = list(ldm_cfg.kinematics)
    else:  # strength 0 only (check_inputs): no sampler, latents as the autoencoder gives them
        T, grid, mean, std, latent_shape, kin_names = 1, [], 0.0, 1.0, ae_attrs["latent_shape"], []
    lo, hi = cfg.strength_range()
    data, sources = setup.data, setup.sources
    # a model conditioned on kinematics varies each source under the source's own features
    raw = np.full((len(data.labels), len(RAW_CONDITION)), np.nan, np.float32)
    if kin_names:
        raw[sources] = raw_condition(data.spectrograms[sources], float(data.dynamic_range_db))
    K = cfg.per_image

    # Every variant's stream, its strength and its start on the grid (None: strength 0, 0: pure noise).
    jobs = []  # (position in output, source index, generator, strength asked, start index)
    for a, i in enumerate(sources):
        for v in range(K):
            gen = variant_generator(cfg.seed, int(i), v)
            s = lo if hi == lo else lo + (hi - lo) * float(torch.rand((), generator=gen, dtype=torch.float64))
            jobs.append((a * K + v, int(i), gen, s, start_index(grid, s, T)))
    n_out = len(jobs)
    images = np.zeros((n_out, *data.spectrograms.shape[1:]), np.float32)
    used = np.zeros(n_out, np.float32)
    latents = np.zeros((n_out, *latent_shape), np.float32)

    def encode(idx: list[int]) -> torch.Tensor:
        x = to_model(torch.from_numpy(np.ascontiguousarray(data.spectrograms[idx]))[:, None]).to(device)
        return ae.encode(x).latent.float()

    def finish(batch: list[tuple], z: torch.Tensor) -> None:
        img = peak_referenced(from_model(ae.decode(z)).float()[:, 0].cpu().numpy())
        zs = ((z - mean) / std).cpu().numpy()
        for row, job in enumerate(batch):
            images[job[0]] = img[row]
            latents[job[0]] = zs[row]
        if progress:
            progress(len(batch))

    groups: dict = {}
    for job in jobs:
        groups.setdefault(job[4], []).append(job)
    for j in sorted(groups, key=lambda k: -1 if k is None else k):
        group = groups[j]
        for b in range(0, len(group), cfg.batch_size):
            batch = group[b : b + cfg.batch_size]
            z0 = encode([job[1] for job in batch])
            if j is None:  # strength 0: the image through the autoencoder, no noise
                finish(batch, z0)
                continue
            gens = [job[2] for job in batch]
            eps = torch.stack([torch.randn(z0.shape[1:], generator=g) for g in gens]).to(device)
            y = torch.as_tensor(setup.ldm_index[data.labels[[job[1] for job in batch]]], dtype=torch.long, device=device)
            if j == 0:  # the whole grid: pure noise, as `sample` starts
                sched, x, steps = schedule, eps, len(grid)
            else:
                sched = truncated(schedule, grid[j])
                steps = len(grid) - j
                t0 = sched.timesteps(steps, spacing(cfg.sampler))[0]
                x = sched.q_sample((z0 - mean) / std, torch.full((len(batch),), t0, dtype=torch.long, device=device), eps)
            scale = 1.0 if cfg.condition == "null" else cfg.cfg_scale  # guiding the null class towards itself: a no-op
            cond = None
            if kin_names:
                rows = raw[[job[1] for job in batch]]
                cond = torch.from_numpy(condition_vector(rows, kin_names, data.spectrograms.shape[1:])).to(device)
            eps_fn = guided_eps(unet, sched, ldm_cfg.diffusion.prediction, y, null, scale, cond)
            z = run_sampler(cfg.sampler, eps_fn, x, sched, steps, cfg.eta, gens)
            finish(batch, z * std + mean)
            for job in batch:
                used[job[0]] = 1.0 if j == 0 else grid[j] / (T - 1)
    source_index = np.repeat(sources, K).astype(np.int64)
    out = Spectrograms(
        spectrograms=images, labels=data.labels[source_index].astype(np.int64), class_names=list(data.class_names),
        doppler_hz=np.asarray(data.doppler_hz), time_s=np.asarray(data.time_s), carrier_hz=data.carrier_hz,
        prf_hz=data.prf_hz, dynamic_range_db=data.dynamic_range_db, source="generated",
        axes_calibrated=data.axes_calibrated,
        sequence=data.sequence[source_index] if data.sequence is not None else None,
    )
    return out, source_index, used, latents


def save(data: Spectrograms, output: Path, config_yaml: str, seed: int, parents: list[dict],
         per_sample: dict[str, np.ndarray], attrs: dict | None = None) -> None:
    """Spectrograms.save plus per-sample datasets (`/source_index`, `/strength`), written atomically."""
    import h5py

    from mdcli.artifacts import atomic_path

    with atomic_path(output) as tmp:
        data.save(tmp, config_yaml, seed, parents, attrs)
        with h5py.File(tmp, "a") as f:
            for name, values in per_sample.items():
                f.create_dataset(name, data=values)


def plot_variations(data: Spectrograms, real: Spectrograms, source_index: np.ndarray, path: Path,
                    sources: np.ndarray | None = None, rows: int = 6, cols: int = 5, seed: int = 0,
                    title: str | None = None) -> None:
    """A grid: per row one real source (left) beside up to `cols` of its variants, sources spread over the classes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mdcli.plotting import axis_labels, show

    rng = np.random.default_rng(seed)
    srcs = np.unique(source_index if sources is None else sources)
    by_class = [list(rng.permutation(srcs[real.labels[srcs] == c])) for c in range(len(real.class_names))]
    pick: list[int] = []
    while len(pick) < min(rows, len(srcs)):  # round robin over the classes
        for lst in by_class:
            if lst and len(pick) < rows:
                pick.append(int(lst.pop(0)))
    fig, axs = plt.subplots(len(pick), cols + 1, figsize=(2.3 * (cols + 1), 2.1 * len(pick)), squeeze=False,
                            constrained_layout=True)
    dl, tl = axis_labels(real)
    for r, i in enumerate(pick):
        show(axs[r, 0], real.spectrograms[i], real)
        axs[r, 0].set_title(f"{real.class_names[real.labels[i]]} #{i} (real)", fontsize=8)
        axs[r, 0].set_ylabel(dl, fontsize=7)
        variants = np.flatnonzero(source_index == i)[:cols]
        for c in range(cols):
            ax = axs[r, c + 1]
            if c >= len(variants):
                ax.axis("off")
                if c == 0:
                    ax.text(0.5, 0.5, "all variants dropped\nby the filters", ha="center", va="center", fontsize=8,
                            transform=ax.transAxes)
                continue
            show(ax, data.spectrograms[variants[c]], data)
            ax.set_title(f"variant {c + 1}", fontsize=8)
        for ax in axs[r]:
            ax.tick_params(labelsize=6)
    for ax in axs[-1]:
        ax.set_xlabel(tl, fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def summary(data: Spectrograms, source_index: np.ndarray, used: np.ndarray) -> dict:
    return {"n": int(len(data)), "sources": int(len(np.unique(source_index))), "per_class": data.class_counts(),
            "strength_min": float(used.min()) if len(used) else None,
            "strength_max": float(used.max()) if len(used) else None}


def parents_of(setup: Setup, data_path: Path) -> list[dict]:
    models = [setup.ae_path] if setup.ldm_path is None else [setup.ldm_path, setup.ae_path]
    return [parent_record(p) for p in models] + [parent_record(data_path)]
