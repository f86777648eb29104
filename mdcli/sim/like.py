"""`simulate --like measured.h5`: render simulated spectrograms the way a measured set looks, fitting what is unknown.

Rendering (every image, `like_sample`): the walker with `like.points_per_segment` scatterers per body segment
(resolve sets walker.points_per_segment), the target's slow-time signal with `looks` independent noise draws
(non-coherent sum over channels / range bins), static-clutter removal (each look minus its slow-time mean: the
notch at 0 Hz), STFT with the named window (`processing.window`, `like.window_s` long), powers averaged over the
looks, the Doppler axis placed so that 0 Hz sits at row `doppler_zero` of the image (one PRF of the periodic
spectrum, as a radar with that PRF shows it: what lies beyond the top wraps to the bottom), the image size, a
Gaussian smear of the power along Doppler (`doppler_spread_px`) and a unit-mean gamma fading of each pixel's power
(`speckle`), dB -> [0, 1] over `processing.dynamic_range_db`, a Gaussian blur of `blur_px`, and optionally the colour-map + JPEG
round trip the measured images went through (render at their original size, colour with the map, JPEG at
`jpeg_quality`, invert by nearest colour like `mdcli import`, peak re-reference, block means to the image size).

Fitting (`fit_like`): the parameters in `like.fit` (of prf_hz = the image's Doppler span, doppler_zero, the SNR
centre, the dynamic range, the blur, the smear, the fading, the walkers' speed centre, largest aspect, the share
walking away, their cadence, the gait phase every window starts at and the timing of the swing) are searched
so that `fit_n` seeded walkers match the measured images' statistics (`like_statistics`): the mean Doppler profile,
the mean time profile (flat for windows cut at any gait phase, the gait's rhythm for windows cut at one), the
intensity histogram, and the means and spreads of per-image features: those of mdcli.kinematics on uncalibrated
axes (torso line, envelope quantiles, bandwidth, step period, outside share, noise floor) and a texture (the mean
absolute step between neighbouring pixels along time and Doppler), the limbs' asymmetry about the torso line and
the lean of their spikes (`kinematics.envelope_lean`).
Coarse grids over PRF x zero row, then over speed x aspect x cadence, then over the start phase (for each walking
direction: all towards the radar, all away, half and half), then Nelder-Mead from each direction's best grid point within DIRECTION_MARGIN of the best
one (the best result wins). The walkers (and
their noise) are the same at every evaluation, so the objective is deterministic.
"""

from __future__ import annotations

import copy
import io
import itertools
import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mdcli.errors import ConfigError, MdcliError
from mdcli.sim.config import FIT_PARAMS, MAX_POINTS_PER_SEGMENT, SimulateConfig

BOUNDS = {"prf_hz": (300.0, 30000.0), "doppler_zero": (0.02, 0.98), "snr_db": (-20.0, 60.0),
          "dynamic_range_db": (10.0, 90.0), "blur_px": (0.0, 3.0),
          "doppler_spread_px": (0.0, 4.0), "speckle": (0.0, 1.5), "speed_mps": (0.3, 2.0), "aspect_deg": (0.0, 80.0),
          "receding_fraction": (0.0, 1.0), "cadence_scale": (0.6, 1.6),
          "diffuse": (0.0, 1.0), "leg_rcs": (0.25, 16.0),
          # the gait phase at the window's start wraps: the box reaches past 0 and 1 so the search crosses them
          "start_phase": (-0.25, 1.25), "swing_skew": (-0.9, 0.9), "belt_rcs": (1e-5, 1.0),
          "treadmill_drift": (0.0, 0.5)}
LIKE_KEY = 38  # spawn key of the fading stream (apart from the simulation's streams)
LOG_PARAMS = {"prf_hz", "leg_rcs", "belt_rcs"}
HIST_BINS = 16
GRID_IMAGE = {"prf_hz": np.geomspace(1000.0, 16000.0, 7), "doppler_zero": [0.15, 0.3, 0.5, 0.7, 0.85]}
GRID_WALKERS = {"speed_mps": [0.5, 0.7, 0.9, 1.2, 1.6], "aspect_deg": [10.0, 30.0, 60.0], "cadence_scale": [0.8, 1.0, 1.25]}
GRID_PHASE = {"start_phase": np.arange(16) / 16}  # after the cadence is set: the phase only means something then
GRID_BELT = {"belt_rcs": np.geomspace(1e-4, 1e-1, 4)}  # the belt's line against the walker's, last
DISCRETE_PARAMS = {"receding_fraction"}  # chosen on the grid only (the fit's walkers make it a step function)
DIRECTIONS = (0.0, 1.0, 0.5)  # receding_fraction: all coming, all going, half and half (each gets both grids)
DIRECTION_MARGIN = 1.25  # Nelder-Mead refines each direction whose grid best is within this factor of the best
FIT_SEED_OFFSET = 7919  # the fit's walkers: seed + this, so they are not the output's first images


@dataclass
class Measured:
    """What `--like` takes from the measured file: image size, colour map, original size, statistics."""

    path: Path
    image_size: list[int]
    colormap: str | None
    original_size: list[int] | None
    stats: dict
    n: int


def _measured_info(path: Path) -> dict:
    from mdcli.artifacts import open_artifact

    with open_artifact(path, "spectrograms") as f:
        shape = list(f["spectrograms"].shape)
        transform = json.loads(f.attrs["import_transform"]) if "import_transform" in f.attrs else {}
    return {"shape": shape, "transform": transform}


def validate_like(cfg: SimulateConfig) -> None:
    lk = cfg.like
    path = Path(lk.file)
    if not path.is_file():
        raise ConfigError(f"--like {path}: file not found")
    bad = [p for p in lk.fit if p not in FIT_PARAMS]
    if bad:
        raise ConfigError(f"like.fit: unknown parameter '{bad[0]}'; valid: {', '.join(FIT_PARAMS)}")
    if lk.fit and (lk.fit_steps < 0 or lk.fit_n < 2 or lk.fit_measured < 2):
        raise ConfigError("like.fit_steps must be >= 0, like.fit_n and like.fit_measured >= 2")
    if not 0.0 < lk.doppler_zero < 1.0:
        raise ConfigError(f"like.doppler_zero: must lie within (0, 1), got {lk.doppler_zero}")
    if lk.doppler_spread_px < 0 or lk.speckle < 0:
        raise ConfigError("like.doppler_spread_px and like.speckle must be >= 0")
    if lk.blur_px < 0 or lk.window_s <= 0 or lk.looks < 1 or lk.snr_width_db < 0 or lk.speed_width_mps < 0:
        raise ConfigError("like: blur_px, snr_width_db and speed_width_mps must be >= 0, window_s > 0, looks >= 1")
    for k in ("belt_rcs", "treadmill_drift"):
        if k in lk.fit and not cfg.walker.treadmill:
            raise ConfigError(f"like.fit: {k} needs walker.treadmill=true (a walk over the ground has no belt)")
    if not 0.0 <= lk.phase_width <= 1.0:
        raise ConfigError(f"like.phase_width: a share of the gait cycle from 0 to 1, got {lk.phase_width}")
    if not 0 <= lk.points_per_segment <= MAX_POINTS_PER_SEGMENT:
        raise ConfigError(f"like.points_per_segment: 0 (walker.points_per_segment as given) to {MAX_POINTS_PER_SEGMENT}, "
                          f"got {lk.points_per_segment}")
    if lk.points_per_segment and cfg.walker.points_per_segment not in (1, lk.points_per_segment):
        raise ConfigError(f"walker.points_per_segment {cfg.walker.points_per_segment} and like.points_per_segment "
                          f"{lk.points_per_segment} disagree: under --like set like.points_per_segment (0 keeps the walker's)")
    if not 0 <= lk.jpeg_quality <= 100:
        raise ConfigError(f"like.jpeg_quality: 0 (no JPEG) to 100, got {lk.jpeg_quality}")
    if lk.render_size and (len(lk.render_size) != 2 or min(lk.render_size) < 8):
        raise ConfigError("like.render_size: expected [rows, columns], each >= 8 (or [] for the measured originals')")
    if lk.colormap not in ("auto", "none"):
        from mdcli.data.importing import COLORMAPS

        if lk.colormap not in COLORMAPS or lk.colormap == "parula":
            raise ConfigError(f"like.colormap: auto, none or one of {', '.join(c for c in COLORMAPS if c != 'parula')}")
    if cfg.radar.prf_hz * lk.window_s < 8:
        raise ConfigError(f"like.window_s: {lk.window_s} s at radar.prf_hz {cfg.radar.prf_hz:g} is under 8 samples")
    if cfg.radar.prf_hz * lk.window_s > cfg.radar.prf_hz * cfg.radar.duration_s:
        raise ConfigError("like.window_s: longer than radar.duration_s")


def resolve(cfg: SimulateConfig) -> Measured:
    """Read the measured file's size and colour map into the config (image size, render size, colour map);
    -> the measured statistics. Raises MdcliError for a file that cannot be used."""
    from mdcli.artifacts import Spectrograms

    path = Path(cfg.like.file)
    if cfg.like.points_per_segment:
        cfg.walker.points_per_segment = cfg.like.points_per_segment
    info = _measured_info(path)
    n, h, w = info["shape"]
    if n < 2:
        raise MdcliError(f"--like {path}: needs at least 2 measured images, found {n}")
    tr = info["transform"] or {}
    cfg.processing.image_size = [h, w]
    cmap = tr.get("colormap")
    if cfg.like.colormap == "auto":
        from mdcli.data.importing import COLORMAPS

        cfg.like.colormap = cmap if cmap in COLORMAPS and cmap != "parula" else "none"
    shapes = tr.get("original_shapes") or []
    if not cfg.like.render_size:
        cfg.like.render_size = list(shapes[0]) if len(shapes) == 1 else [h, w]
    data = Spectrograms.load(path)
    x = data.spectrograms
    if len(x) > cfg.like.fit_measured:
        pick = np.sort(np.random.default_rng(cfg.seed).choice(len(x), cfg.like.fit_measured, replace=False))
        x = x[pick]
    return Measured(path, [h, w], cmap, cfg.like.render_size, like_statistics(x), n)


# ---------------------------------------------------------------------------------------------- rendering

_LUT: dict[str, np.ndarray] = {}
LUT_BITS = 6


def _inverse_lut(name: str) -> np.ndarray:
    """RGB quantised to LUT_BITS per channel -> map position in [0, 1] (nearest colour, like `import`)."""
    if name not in _LUT:
        from mdcli.data.importing import ColourInverter, colormap_table

        q = 1 << LUT_BITS
        c = (np.arange(q) + 0.5) / q
        grid = np.stack(np.meshgrid(c, c, c, indexing="ij"), -1)
        pos, _ = ColourInverter(colormap_table(name, None))(grid)
        _LUT[name] = pos.reshape(-1).astype(np.float32)
    return _LUT[name]


_TABLES: dict[str, np.ndarray] = {}


def colour_round_trip(img: np.ndarray, name: str, quality: int, size: list[int]) -> np.ndarray:
    """[0, 1] image (F ascending, T) -> colour image at `size` -> JPEG -> nearest colour -> [0, 1] at img's size."""
    from mdcli.data.importing import colormap_table, resize

    h, w = img.shape
    if name not in _TABLES:
        _TABLES[name] = (np.clip(colormap_table(name, None), 0, 1) * 255 + 0.5).astype(np.uint8)
    table = _TABLES[name]
    idx = (np.clip(img[::-1], 0.0, 1.0) * 255 + 0.5).astype(np.uint8)  # row 0 = top, as the files are
    fy, fx = size[0] // h, size[1] // w
    if [fy * h, fx * w] == list(size):  # integer factors: pixel repetition (the blur, if any, came before)
        rgb = table[idx]
        rgb = np.repeat(np.repeat(rgb, fy, axis=0), fx, axis=1) if fy * fx > 1 else rgb
    else:
        rgb = table[(np.clip(resize(idx / 255.0, tuple(size)), 0, 1) * 255 + 0.5).astype(np.uint8)]
    if quality > 0:
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(rgb, "RGB").save(buf, format="JPEG", quality=int(quality))
        buf.seek(0)
        with Image.open(buf) as im:
            rgb = np.asarray(im.convert("RGB"))
    q = rgb.astype(np.uint32) >> (8 - LUT_BITS)
    pos = _inverse_lut(name)[(q[..., 0] << (2 * LUT_BITS)) | (q[..., 1] << LUT_BITS) | q[..., 2]][::-1]
    out = np.clip(pos + (1.0 - pos.max()), 0.0, 1.0)  # peak re-reference, as `import` does
    if [fy * h, fx * w] == list(size):
        return (out.reshape(h, fy, size[1]).sum(1).reshape(h, w, fx).sum(2) / (fy * fx)).astype(np.float32)
    return resize(out, (h, w)).astype(np.float32)


def stft_setup(cfg: SimulateConfig) -> tuple[int, int]:
    h = cfg.processing.image_size[0]
    win = max(8, int(round(cfg.radar.prf_hz * cfg.like.window_s)))
    n = int(round(cfg.radar.prf_hz * cfg.radar.duration_s))
    win = min(win, n)
    nfft = h * max(1, -(-win // h))  # a multiple of the image height >= the window: block means, whole-bin shifts
    return win, nfft


def render(sig: np.ndarray, cfg: SimulateConfig, rng: np.random.Generator | None = None) -> np.ndarray:
    """(looks, S) or (S,) noisy signal -> the [0, 1] image (F, T) as `--like` renders it (see the module doc)."""
    from scipy.ndimage import gaussian_filter

    from mdcli.sim.signal import resample_axis, stft_power, to_unit_db

    lk, pc = cfg.like, cfg.processing
    h, w = pc.image_size
    sig = np.atleast_2d(sig)
    if lk.clutter_removal:
        sig = sig - sig.mean(axis=1, keepdims=True)
    win, nfft = stft_setup(cfg)
    cols = w * pc.time_oversample
    power = None
    for look in sig:
        p, _, t = stft_power(look, cfg.radar.prf_hz, win, nfft, cols, pc.window)
        power = p if power is None else power + p
    power = power / len(sig)
    shift = int(round(lk.doppler_zero * nfft)) - nfft // 2  # 0 Hz from the centre row to doppler_zero
    if shift:
        power = np.roll(power, shift, axis=0)
    power, _ = resample_axis(power, np.arange(cols, dtype=float), w, axis=1)
    power, _ = resample_axis(power, np.arange(nfft, dtype=float), h, axis=0)
    if lk.doppler_spread_px > 0:
        from scipy.ndimage import gaussian_filter1d

        power = gaussian_filter1d(power, lk.doppler_spread_px, axis=0, mode="wrap")
    if lk.speckle > 0:
        rng = rng if rng is not None else np.random.default_rng(0)
        k = 1.0 / lk.speckle**2
        power = power * rng.gamma(k, 1.0 / k, size=power.shape)
    img = to_unit_db(power, pc.dynamic_range_db)
    if lk.blur_px > 0:
        img = np.clip(gaussian_filter(img.astype(np.float64), lk.blur_px, mode="nearest"), 0, 1)
        img = np.clip(img + (1.0 - img.max()), 0, 1).astype(np.float32)
    if lk.colormap not in ("none", "auto", ""):
        img = colour_round_trip(img, lk.colormap, lk.jpeg_quality, lk.render_size or [h, w])
    return img


def like_sample(cfg: SimulateConfig, target: str, index: int):
    from mdcli.sim.dataset import SampleResult, simulate_signal

    sig, p = simulate_signal(cfg, target, index, looks=cfg.like.looks)
    iq = None
    if cfg.save_iq:
        iq = (sig if sig.ndim == 1 else sig[0]).astype(np.complex64)
    from mdcli.sim.config import ALL_TARGETS

    rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, ALL_TARGETS.index(target), index], spawn_key=(LIKE_KEY,)))
    return SampleResult(render(sig, cfg, rng), p, iq)


def like_axes(cfg: SimulateConfig) -> tuple[np.ndarray, np.ndarray]:
    """Doppler (F,) with 0 Hz at row `doppler_zero` (the image spans one PRF) and time (T,) at the column centres."""
    h, w = cfg.processing.image_size
    prf = cfg.radar.prf_hz
    rows = np.arange(h)
    _, nfft = stft_setup(cfg)
    f = nfft // h
    zero_bin = int(round(cfg.like.doppler_zero * nfft))  # the STFT bin holding 0 Hz after the shift
    doppler = ((rows * f + (f - 1) / 2) - zero_bin) * prf / nfft
    time = (np.arange(w) + 0.5) * cfg.radar.duration_s / w
    return doppler, time


# ---------------------------------------------------------------------------------------------- statistics

STAT_NAMES = ("torso", "upper_q50", "upper_q95", "lower_q05", "lower_q50", "asymmetry", "bandwidth", "period",
              "outside_share", "floor", "texture_t", "texture_f", "lean")


def image_statistics(x: np.ndarray) -> dict[str, np.ndarray]:
    """Per-image statistics (STAT_NAMES) of [0, 1] images (N, F, T) on uncalibrated axes: bins as fractions of
    the height, periods as fractions of the width (NaN: no period)."""
    from mdcli.kinematics import envelope_lean, features

    x = np.asarray(x, dtype=np.float32)
    n, h, w = x.shape
    k = features(x, calibrated=False, dynamic_range_db=float("nan"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        upper_q95, lower_q05 = np.nanpercentile(k.upper_bins, 95, axis=1), np.nanpercentile(k.lower_bins, 5, axis=1)
        per = {
            "torso": k.torso / h,
            "upper_q50": np.nanpercentile(k.upper_bins, 50, axis=1) / h,
            "upper_q95": upper_q95 / h,
            "lower_q05": lower_q05 / h,
            "lower_q50": np.nanpercentile(k.lower_bins, 50, axis=1) / h,
            # which way the limbs reach from the torso line in each image (> 0: further up, as for a walker coming
            # towards the radar): a set of half approaching, half receding walkers can match every mean above
            # but not this one's mean and spread together
            "asymmetry": ((upper_q95 - k.torso) - (k.torso - lower_q05)) / h,
            "bandwidth": k.bandwidth / h,
            "period": k.period / w,
            "outside_share": k.outside_share,
            "floor": k.floor,
            # texture: mean absolute step between neighbouring pixels along time and along Doppler (thin traces and
            # speckle are rough, filled clouds and blur smooth)
            "texture_t": np.abs(np.diff(x, axis=2)).mean((1, 2)),
            "texture_f": np.abs(np.diff(x, axis=1)).mean((1, 2)),
            # how the limb spikes lean along time (log2 rise / fall of the upper envelope's spikes): a measured
            # foot speeds up through its swing and stops at heel strike, Boulic's swings are nearly symmetric
            "lean": envelope_lean(k.upper_bins, h),
        }
    return per


def like_statistics(x: np.ndarray) -> dict:
    """Per-set statistics of [0, 1] images (N, F, T): means and sds of `image_statistics`, the share of images
    with a period, the mean Doppler profile, the intensity histogram."""
    x = np.asarray(x, dtype=np.float32)
    per = image_statistics(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = {s: float(np.nanmean(v)) if np.isfinite(v).any() else float("nan") for s, v in per.items()}
        sd = {s: float(np.nanstd(v)) if np.isfinite(v).any() else float("nan") for s, v in per.items()}
    mean["period_share"] = float(np.isfinite(per["period"]).mean())
    return {"mean": mean, "sd": sd, "profile": x.mean((0, 2)).astype(np.float64).tolist(),
            "time_profile": x.mean((0, 1)).astype(np.float64).tolist(),
            "histogram": (np.histogram(x, bins=HIST_BINS, range=(0.0, 1.0))[0] / x.size).tolist()}


def profile_gap(a, b, floor: float = 1e-3) -> float:
    """Mean absolute difference of two mean profiles (along Doppler or time), over b's mean (at least `floor`)."""
    return float(np.abs(np.subtract(a, b)).mean() / max(float(np.mean(b)), floor))


def distance(sim: dict, meas: dict) -> tuple[float, dict]:
    """Objective: squared differences of the per-image statistics' means, and half of those of their sds (how much
    the images vary: the walkers' speeds and aspects), in units of the measured sd (averaged), plus the Doppler
    profile and intensity histogram gaps (L1, scaled). -> (total, parts)."""
    terms, spread = [], []
    for s in STAT_NAMES:
        a, b, sd = sim["mean"][s], meas["mean"][s], meas["sd"][s]
        if not np.isfinite(b):
            continue
        scale = max(sd if np.isfinite(sd) else 0.0, 0.02)
        terms.append(((a - b) / scale) ** 2 if np.isfinite(a) else 25.0)
        if np.isfinite(sd):
            spread.append(((sim["sd"][s] - sd) / scale) ** 2 if np.isfinite(sim["sd"][s]) else 25.0)
    kin = float(np.mean(terms)) if terms else 0.0
    kin += (sim["mean"]["period_share"] - meas["mean"]["period_share"]) ** 2 * 4
    prof = profile_gap(sim["profile"], meas["profile"])
    hist = float(np.abs(np.subtract(sim["histogram"], meas["histogram"])).sum())
    parts = {"kinematics": kin, "spread": 0.5 * float(np.mean(spread)) if spread else 0.0, "profile": 4 * prof,
             "histogram": 4 * hist}
    if "time_profile" in sim and "time_profile" in meas:
        # the mean image along time: flat when the windows start at any gait phase, the gait's rhythm when every
        # window starts at one (a set cut at a gait event), a slope when the scene changes over the window
        parts["time_profile"] = 4 * profile_gap(sim["time_profile"], meas["time_profile"])
    return float(sum(parts.values())), parts


# ---------------------------------------------------------------------------------------------- fit

def _apply(cfg: SimulateConfig, values: dict) -> None:
    for k, v in values.items():
        if k == "prf_hz":
            cfg.radar.prf_hz = float(v)
        elif k == "snr_db":
            half = cfg.like.snr_width_db / 2
            cfg.scene.snr_db = [float(v) - half, float(v) + half]
        elif k == "dynamic_range_db":
            cfg.processing.dynamic_range_db = float(v)
        elif k == "speed_mps":
            half = cfg.like.speed_width_mps / 2
            cfg.walker.speed_mps = [max(float(v) - half, 0.1), float(v) + half]
            # virtual walkers (--identities): each person's preferred speed is drawn from the same fitted range, so
            # the identities walk at the measured cadence and differ in body and style around it
            cfg.identity.speed_mps = list(cfg.walker.speed_mps)
        elif k == "aspect_deg":
            cfg.scene.aspect_deg = [-float(v), float(v)]
        elif k == "receding_fraction":
            cfg.scene.receding_fraction = float(v)
        elif k == "cadence_scale":
            # one cadence for the fitted walkers and for every virtual person (their speeds still differ)
            cfg.walker.cadence_scale = [float(v), float(v)]
            cfg.identity.cadence_scale = [float(v), float(v)]
        elif k == "diffuse":
            cfg.walker.diffuse = float(v)
        elif k == "leg_rcs":
            cfg.walker.leg_rcs = float(v)
        elif k == "swing_skew":
            cfg.walker.swing_skew = float(v)
        elif k == "belt_rcs":
            cfg.walker.belt_rcs = float(v)
        elif k == "treadmill_drift":
            cfg.walker.treadmill_drift_mps = [-float(v), float(v)]
        elif k == "start_phase":
            half, centre = cfg.like.phase_width / 2, float(v) % 1.0  # the search may cross 0 or 1: the phase wraps
            cfg.walker.start_phase = [centre - half, centre + half]
        else:
            setattr(cfg.like, k, float(v))


def current(cfg: SimulateConfig) -> dict:
    return {"prf_hz": cfg.radar.prf_hz, "doppler_zero": cfg.like.doppler_zero,
            "snr_db": float(np.mean(cfg.scene.snr_db)), "dynamic_range_db": cfg.processing.dynamic_range_db,
            "blur_px": cfg.like.blur_px, "doppler_spread_px": cfg.like.doppler_spread_px, "speckle": cfg.like.speckle,
            "speed_mps": float(np.mean(cfg.walker.speed_mps)), "aspect_deg": float(np.max(np.abs(cfg.scene.aspect_deg))),
            "receding_fraction": cfg.scene.receding_fraction, "cadence_scale": float(np.mean(cfg.walker.cadence_scale)),
            "diffuse": cfg.walker.diffuse, "leg_rcs": cfg.walker.leg_rcs,
            "start_phase": float(np.mean(cfg.walker.start_phase)), "swing_skew": cfg.walker.swing_skew,
            "belt_rcs": cfg.walker.belt_rcs,
            "treadmill_drift": float(np.max(np.abs(cfg.walker.treadmill_drift_mps)))}


def _fit_images(cfg: SimulateConfig, seed_offset: int = FIT_SEED_OFFSET) -> np.ndarray:
    from mdcli.sim.dataset import simulate_sample

    c = copy.deepcopy(cfg)
    c.identities = 0
    c.seed = cfg.seed + seed_offset
    target = cfg.targets[0]
    return np.stack([simulate_sample(c, target, i).image for i in range(cfg.like.fit_n)])


def _nelder_mead(objective_values, start: dict, smooth: list[str], to_u, from_u, steps: int) -> tuple[dict, float]:
    """Nelder-Mead over the smooth values (unit box, a quadratic penalty outside) from start; -> (values, distance)."""
    from scipy.optimize import minimize

    def objective(u: np.ndarray) -> float:
        penalty = float(np.sum(np.clip(u - 1, 0, None) ** 2 + np.clip(-u, 0, None) ** 2)) * 100
        return objective_values({**start, **from_u(u)})[0] + penalty

    u0 = to_u(start)
    simplex = [u0] + [u0 + np.eye(len(smooth))[i] * (0.08 if u0[i] < 0.9 else -0.08) for i in range(len(smooth))]
    res = minimize(objective, u0, method="Nelder-Mead",
                   options={"maxfev": steps, "initial_simplex": np.array(simplex), "xatol": 1e-3, "fatol": 1e-4})
    v = {**start, **from_u(res.x)}
    return v, objective_values(v)[0]


def fit_like(cfg: SimulateConfig, measured: Measured, say=lambda s: None) -> dict:
    """Search the `like.fit` parameters (see the module doc); write the best into cfg; -> the fit report."""
    names = list(cfg.like.fit)
    smooth = [k for k in names if k not in DISCRETE_PARAMS]  # what Nelder-Mead moves
    start = current(cfg)
    evals = []

    def to_u(v: dict) -> np.ndarray:
        out = []
        for k in smooth:
            lo, hi = BOUNDS[k]
            x = v[k]
            if k in LOG_PARAMS:  # a start at 0 (no belt) has no logarithm: it starts at the box's floor
                out.append((np.log(max(x, lo)) - np.log(lo)) / (np.log(hi) - np.log(lo)))
            else:
                out.append((x - lo) / (hi - lo))
        return np.array(out, dtype=np.float64)

    def from_u(u: np.ndarray) -> dict:
        out = {}
        for k, x in zip(smooth, np.clip(u, 0.0, 1.0)):
            lo, hi = BOUNDS[k]
            out[k] = float(np.exp(np.log(lo) + x * (np.log(hi) - np.log(lo)))) if k in LOG_PARAMS else float(lo + x * (hi - lo))
        return out

    def objective_values(v: dict) -> tuple[float, dict]:
        c = copy.deepcopy(cfg)
        _apply(c, v)
        try:
            validate_like(c)
        except ConfigError:
            return 1e6, {}
        d, parts = distance(like_statistics(_fit_images(c)), measured.stats)
        evals.append({**v, "distance": d})
        return d, parts

    # without start_phase, a value set renders walker.start_phase as the config has it (any phase, by default), not
    # the like.phase_width-wide range around a centre: so the start and the grids before the phase grid
    best_v = {k: start[k] for k in names if k != "start_phase"}
    d0, parts0 = objective_values(best_v)
    best_d = d0
    if not names:
        _, parts = distance(like_statistics(_fit_images(cfg)), measured.stats)
        return {"fitted": {}, "distance": d0, "distance_start": d0, "parts": parts, "parts_start": parts,
                "evaluations": 0}
    # coarse grids: over the Doppler span and the zero row (the statistics move most with them), then over the
    # walkers' speed (the step period) and largest aspect (the spread of the torso line), from the best so far;
    # when the walking direction is fitted, both grids for each direction from the start (the zero row that suits
    # walkers coming towards the radar is not the one that suits a mixture, so one grid over all three would
    # settle the direction before the speed)
    choices = [{"receding_fraction": d} for d in DIRECTIONS] if "receding_fraction" in names else [{}]
    start_v = dict(best_v)
    candidates = []  # the grids' best for each direction
    for choice in choices:
        dir_v = {**start_v, **choice}
        dir_d = d0 if dir_v == start_v else objective_values(dir_v)[0]  # the start is evaluated already
        for grid in (GRID_IMAGE, GRID_WALKERS, GRID_PHASE, GRID_BELT):
            axes = [[(k, float(x)) for x in values] for k, values in grid.items() if k in names]
            base = dict(dir_v)
            for combo in itertools.product(*axes) if axes else []:
                v = {**base, **dict(combo)}
                d, _ = objective_values(v)
                if d < dir_d:
                    dir_v, dir_d = v, d
        candidates.append((dir_d, dir_v))
    if d0 < min(d for d, _ in candidates):
        candidates.append((d0, dict(start_v)))
    grid_best = min(d for d, _ in candidates)
    # Nelder-Mead from every direction whose grid best is within DIRECTION_MARGIN of the best one: the grids'
    # ranking of the directions can flip once the smooth values settle (walkers with a locked stance foot on the
    # gait data: refined from the grids' choice, the half-and-half mixture ended at 5.36; all coming, at 4.38)
    candidates = sorted((c for c in candidates if c[0] <= grid_best * DIRECTION_MARGIN), key=lambda c: c[0])
    say(f"like: coarse grid best {candidates[0][1]} distance {grid_best:.3f} ({len(candidates)} to refine)")
    for cand_d, cand_v in candidates:
        if cand_d < best_d:
            best_v, best_d = cand_v, cand_d
        if cfg.like.fit_steps > 0 and smooth:
            v, d = _nelder_mead(objective_values, {k: start[k] for k in smooth} | cand_v, smooth, to_u, from_u,
                                cfg.like.fit_steps)
            if d < best_d:
                best_v, best_d = v, d
    _apply(cfg, best_v)  # no start_phase in it when no locked phase beat the phases as given
    _, parts = distance(like_statistics(_fit_images(cfg)), measured.stats)
    return {"fitted": best_v, "distance": best_d, "distance_start": d0, "parts": parts, "parts_start": parts0,
            "evaluations": len(evals)}


def prepare(cfg: SimulateConfig, say=lambda s: None) -> dict:
    """Resolve `--like` (sizes, colour map) and fit; cfg is updated in place. -> the report stored as `like_fit`."""
    measured = resolve(cfg)
    report = fit_like(cfg, measured, say)
    sim_stats = like_statistics(_fit_images(cfg))
    return {
        "measured": str(measured.path), "measured_images": measured.n, "image_size": measured.image_size,
        "colormap": cfg.like.colormap, "render_size": cfg.like.render_size, "fit": list(cfg.like.fit),
        "fitted": report["fitted"], "values": current(cfg), "distance": report["distance"],
        "distance_start": report["distance_start"], "distance_parts": report["parts"],
        "distance_start_parts": report["parts_start"],
        "evaluations": report["evaluations"], "fit_n": cfg.like.fit_n,
        "statistics": {"measured": measured.stats["mean"], "simulated": sim_stats["mean"]},
    }
