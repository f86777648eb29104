"""Build a labelled spectrogram dataset: per-sample seeding, workers, aliasing report.

Sample i of target T draws all its randomness from SeedSequence([seed, T's index
in ALL_TARGETS, i]), so results do not depend on the number of workers, the order of
`--targets`, or which other targets are simulated. With `identities: N` the classes are
N virtual walkers and sample index = identity * n_per_class + window (see identity.py).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
from pathlib import Path
from dataclasses import dataclass
from typing import Callable

import numpy as np

from mdcli.artifacts import Spectrograms
from mdcli.sim.bird import bird_signal, sample_bird
from mdcli.sim.config import ALL_TARGETS, SimulateConfig
from mdcli.sim.identity import IDENTITY_PARAM_NAMES, draw_identity, sample_window, window_rng
from mdcli.sim.mocap import mocap_signal, sample_mocap
from mdcli.sim.rotor import drone_signal, helicopter_signal, sample_drone, sample_helicopter
from mdcli.sim.scene import draw_scene
from mdcli.sim.signal import C, add_noise, resample_axis, stft_power, to_unit_db
from mdcli.sim.vehicle import sample_vehicle, vehicle_signal
from mdcli.sim.walker import draw_in_range, sample_walker, walker_signal

MODELS: dict[str, tuple[Callable, Callable]] = {
    "walker": (sample_walker, walker_signal),
    "drone": (sample_drone, drone_signal),
    "helicopter": (sample_helicopter, helicopter_signal),
    "bird": (sample_bird, bird_signal),
    "vehicle": (sample_vehicle, vehicle_signal),
    "mocap": (sample_mocap, mocap_signal),
}

DRIFT_KEY = 39  # spawn key of the treadmill drift's stream (apart from the simulation's, the identities' and --like's)

# Per-sample physical parameters stored under /params (NaN where they do not apply).
PARAM_NAMES = (
    "radial_speed_mps", "speed_mps", "aspect_deg", "snr_db", "range_m", "max_doppler_hz",
    "height_m", "relative_velocity", "gait_cycle_s", "cadence_scale", "phase0", "rpm", "rpm_min", "rpm_max", "blade_length_m", "n_blades", "n_rotors", "tail_blades", "tail_gear_ratio",
    "flap_hz", "flap_amplitude_deg", "wingspan_m", "altitude_m", "blade_rcs_rel",
    "wheel_radius_m", "wheelbase_m", "rim_points",
)


@dataclass
class SampleResult:
    image: np.ndarray  # (F, T) float32 in [0, 1]
    params: dict[str, float]
    iq: np.ndarray | None


def slow_time(cfg: SimulateConfig) -> np.ndarray:
    n = int(round(cfg.radar.prf_hz * cfg.radar.duration_s))
    return np.arange(n) / cfg.radar.prf_hz


def simulate_signal(cfg: SimulateConfig, target: str, index: int, looks: int = 1) -> tuple[np.ndarray, dict]:
    """Noisy complex slow-time signal of sample `index` of `target`, and its parameters.

    looks > 1 (`simulate --like`, non-coherent sums over channels): (looks, S) signals, the same target return
    with independent noise; the first look's noise is the one a single-look run draws."""
    sample_params, signal = MODELS[target]
    if cfg.identities:
        ident_i, window = divmod(index, cfg.n_per_class)
        ident = draw_identity(cfg.identity, cfg.seed, ALL_TARGETS.index(target), ident_i)
        rng = window_rng(cfg.seed, ALL_TARGETS.index(target), ident_i, window)
    else:
        rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, ALL_TARGETS.index(target), index]))
    wavelength = C / cfg.radar.carrier_hz
    scene = draw_scene(cfg.scene, slow_time(cfg), cfg.radar.height_m, wavelength, rng, cfg.radar.beam_elevation_deg)
    if cfg.identities:
        p = sample_window(ident, rng, cfg.identity.cycle_s, cfg.walker.start_phase)
        p.update(identity=ident_i, window=window)
    else:
        p = sample_params(getattr(cfg, target), rng)
    if target == "walker":  # the body model (identity windows too)
        p.update(points_per_segment=cfg.walker.points_per_segment, range_gate_m=cfg.walker.range_gate_m)
        if cfg.walker.foot_lock:
            p.update(foot_lock=True)
        if cfg.walker.diffuse:
            p.update(diffuse=float(cfg.walker.diffuse))
        if cfg.walker.leg_rcs != 1.0:
            p.update(leg_rcs=float(cfg.walker.leg_rcs))
        if cfg.walker.swing_skew:
            p.update(swing_skew=float(cfg.walker.swing_skew))
        if cfg.walker.treadmill:
            p.update(treadmill=True)
            # its own keyed stream: the sample's other draws (SNR, noise) are those of a run without drift
            key = np.random.SeedSequence([cfg.seed, ALL_TARGETS.index(target), index], spawn_key=(DRIFT_KEY,))
            drift = draw_in_range(cfg.walker.treadmill_drift_mps, np.random.default_rng(key))
            if drift:
                p.update(drift_mps=drift)
        if cfg.walker.belt_rcs:
            p.update(belt_rcs=float(cfg.walker.belt_rcs))
    sig, fmax, v_r = signal(p, scene, rng)
    snr = rng.uniform(*cfg.scene.snr_db)
    sig = add_noise(sig, snr, rng) if looks == 1 else np.stack([add_noise(sig, snr, rng) for _ in range(looks)])
    p.update(
        radial_speed_mps=v_r, aspect_deg=scene.aspect_deg, snr_db=snr,
        range_m=float(scene.start[0]), max_doppler_hz=fmax,
    )
    return sig, p


def spectrogram_image(sig: np.ndarray, cfg: SimulateConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Signal -> STFT power -> image size -> dB -> [0, 1]. Returns image (F, T), doppler_hz, time_s."""
    pc = cfg.processing
    h, w = pc.image_size
    power, doppler, time = stft_power(sig, cfg.radar.prf_hz, pc.win_len, pc.nfft, w * pc.time_oversample, pc.window)
    power, time = resample_axis(power, time, w, axis=1)  # block means of time_oversample frames (none at 1)
    power, doppler = resample_axis(power, doppler, h, axis=0)
    return to_unit_db(power, pc.dynamic_range_db), doppler, time


def simulate_sample(cfg: SimulateConfig, target: str, index: int) -> SampleResult:
    if cfg.like.file:
        from mdcli.sim.like import like_sample

        return like_sample(cfg, target, index)
    sig, p = simulate_signal(cfg, target, index)
    image, _, _ = spectrogram_image(sig, cfg)
    return SampleResult(image, p, sig.astype(np.complex64) if cfg.save_iq else None)


def axes(cfg: SimulateConfig) -> tuple[np.ndarray, np.ndarray]:
    if cfg.like.file:
        from mdcli.sim.like import like_axes

        return like_axes(cfg)
    _, doppler, time = spectrogram_image(np.ones(len(slow_time(cfg)), complex), cfg)
    return doppler, time


_WORKER_CFG: SimulateConfig | None = None


def _init_worker(cfg: SimulateConfig) -> None:
    global _WORKER_CFG
    _WORKER_CFG = cfg


def _init_pool_worker(cfg: SimulateConfig) -> None:
    """A forked worker: the parent's signal handlers do not belong here. The CLI's SIGTERM handler (end a run as
    Ctrl-C does) turned the pool's own terminate() into a KeyboardInterrupt traceback from each idle worker; with
    the default a terminated worker ends at once. Ctrl-C reaches the whole process group: the parent stops and
    terminates the pool, so the workers ignore it instead of each printing a traceback mid-sample."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _init_worker(cfg)


def _run_chunk(tasks: list[tuple[str, int]]) -> list[SampleResult]:
    return [simulate_sample(_WORKER_CFG, target, i) for target, i in tasks]


def shard_range(n_tasks: int, shard: tuple[int, int]) -> tuple[int, int]:
    """Contiguous block [start, stop) of the canonical task order that shard i of N simulates."""
    i, n = shard
    return n_tasks * i // n, n_tasks * (i + 1) // n


def simulate_dataset(
    cfg: SimulateConfig, progress: Callable[[int], None] | None = None, chunk: int = 16,
    shard: tuple[int, int] | None = None,
) -> tuple[Spectrograms, dict[str, dict]]:
    """Simulate `n_per_class` spectrograms of each target in `cfg.targets` (or shard i of N of them).

    Returns the dataset and, per target, an aliasing report
    {"aliased": count, "max_doppler_hz": largest |f_D|} against the PRF/2 limit. Every sample is
    seeded by (seed, target, index), so shards concatenated in order equal the whole run.
    """
    per_target = cfg.n_per_class * (cfg.identities or 1)  # identities: index = identity * n_per_class + window
    tasks = [(target, i) for target in cfg.targets for i in range(per_target)]
    if shard is not None:
        tasks = tasks[slice(*shard_range(len(tasks), shard))]
    chunks = [tasks[k : k + chunk] for k in range(0, len(tasks), chunk)]
    results: list[SampleResult] = []
    if cfg.workers == 1:
        _init_worker(cfg)
        for c in chunks:
            results += _run_chunk(c)
            if progress:
                progress(len(c))
    else:
        ctx = mp.get_context("fork" if os.name == "posix" else "spawn")
        with ctx.Pool(cfg.workers, initializer=_init_pool_worker, initargs=(cfg,)) as pool:
            for c, res in zip(chunks, pool.imap(_run_chunk, chunks)):
                results += res
                if progress:
                    progress(len(c))
    doppler, time = axes(cfg)
    n = len(results)
    names = PARAM_NAMES + (tuple(k for k in IDENTITY_PARAM_NAMES if k not in PARAM_NAMES) if cfg.identities else ())
    params = {name: np.full(n, np.nan) for name in names}
    for k, r in enumerate(results):
        for name, v in r.params.items():
            if name in params:
                params[name][k] = float(v)
    if cfg.identities:
        labels = np.array([i // cfg.n_per_class for _, i in tasks], dtype=np.int64)
    else:
        labels = np.array([cfg.targets.index(t) for t, _ in tasks], dtype=np.int64)
    task_target = np.array([t for t, _ in tasks])
    nyquist = cfg.radar.prf_hz / 2
    report = {}
    for target in cfg.targets:
        fm = params["max_doppler_hz"][task_target == target]
        if len(fm):
            report[target] = {"aliased": int((fm > nyquist).sum()), "n": int(len(fm)), "max_doppler_hz": float(fm.max())}
    data = Spectrograms(
        spectrograms=np.stack([r.image for r in results]),
        labels=labels,
        class_names=cfg.class_names(),
        doppler_hz=doppler,
        time_s=time,
        carrier_hz=cfg.radar.carrier_hz,
        prf_hz=cfg.radar.prf_hz,
        dynamic_range_db=cfg.processing.dynamic_range_db,
        source="simulated",
        params=params,
        iq=np.stack([r.iq for r in results]) if cfg.save_iq else None,
        iq_rate_hz=cfg.radar.prf_hz if cfg.save_iq else None,
    )
    return data, report


def merge_shards(paths: list[Path]) -> tuple[Spectrograms, str, int]:
    """Shards of one `simulate` run -> (the whole dataset in canonical order, its config, its seed).

    Refuses shards of different runs, duplicates and gaps, with the file named.
    """
    from mdcli.artifacts import open_artifact, read_header
    from mdcli.errors import MdcliError

    found: dict[int, Path] = {}
    config, seed, total = None, None, None
    for path in paths:
        with open_artifact(path, "spectrograms") as f:
            header = read_header(f)
            spec = f.attrs.get("shard")
        if spec is None:
            raise MdcliError(f"{path}: not a shard (written without simulate --shard)")
        i, n = (int(v) for v in str(spec.decode() if isinstance(spec, bytes) else spec).split("/"))
        if config is None:
            config, seed, total = header["config"], header["seed"], n
        elif header["config"] != config or n != total:
            raise MdcliError(f"{path}: shard of a different simulate run (config or shard count differs from {paths[0]})")
        if i in found:
            raise MdcliError(f"{path}: shard {i}/{n} given twice (also {found[i]})")
        found[i] = path
    missing = sorted(set(range(total)) - set(found))
    if missing:
        raise MdcliError(f"merge: shard {missing[0]}/{total} is missing")
    parts = [Spectrograms.load(found[i], with_iq=True) for i in range(total)]
    first = parts[0]
    for i, part in enumerate(parts):
        if set(part.params) != set(first.params):
            raise MdcliError(f"{found[i]}: its /params columns differ from {found[0]}'s (shards written by different mdcli "
                             f"versions); simulate the shards again with one version")
    merged = Spectrograms(
        spectrograms=np.concatenate([p.spectrograms for p in parts]),
        labels=np.concatenate([p.labels for p in parts]),
        class_names=first.class_names, doppler_hz=first.doppler_hz, time_s=first.time_s,
        carrier_hz=first.carrier_hz, prf_hz=first.prf_hz, dynamic_range_db=first.dynamic_range_db,
        source=first.source, params={k: np.concatenate([p.params[k] for p in parts]) for k in first.params},
        iq=np.concatenate([p.iq for p in parts]) if first.iq is not None else None, iq_rate_hz=first.iq_rate_hz,
    )
    return merged, config, seed
