"""Kinematic features of micro-Doppler spectrograms: what FMD and PSNR do not see.

One implementation, vectorised over images, used by `diagnose recon`, `diagnose generation` and `report`
(their comparisons and tables: mdcli/diagnose/kinematics.py), the `kinematic` filter of `augment` and `sample`
(through `within_ranges`) and the `--like` fit of `simulate`. Images are the project's
[0, 1] convention (1 = the image's peak, 0 = `dynamic_range_db` below it, dB-linear in between), Doppler
on axis 1 (ascending), time on axis 2.

Per image:

- **noise floor**: the median pixel value (most of a micro-Doppler image is noise; the median of the dB of
  exponential noise power is 1.6 dB below its mean, a constant offset).
- **level**: floor + `threshold_db` / `dynamic_range_db` (default 20 dB above the floor). Without a dB range
  (imports on a unit scale, `dynamic_range_db` NaN) the level is floor + `threshold_unit` (default 0.4 of
  the image scale, which is 20 dB at the simulator's 50 dB range).
- **torso line**: the strongest Doppler bin of each column (argmax).
- **upper / lower envelope**: per column, the highest / lowest Doppler where the image is above the level,
  refined to a fraction of a bin by linear interpolation of the crossing; NaN in a column with nothing above
  the level.
- **bandwidth**: 95th percentile of the upper envelope minus 5th percentile of the lower one over the
  columns (how far the limbs / wings / blades reach, robust to a stray column).
- **period**: the dominant period of the envelopes (see `envelope_period`); NaN when there is none.
  For a walker this is **one step, half the gait cycle**: the limb envelope peaks once per step (each leg's
  swing), so it oscillates at twice the stride (gait-cycle) frequency; compare it with `gait_cycle_s / 2`.
  For a bird it is the wing-beat period `1 / flap_hz`; for a rotor the blade-flash period.
- **period_strength**: the autocorrelation at that period, reported also when below the detection threshold
  (NaN when the search does not apply: too few envelope columns, a constant line, no peak).
- **outside_share**: the share of the power above the level that lies outside the torso line (more than
  `torso_halfwidth` bins from the column's peak); linear power from the dB scale, or the image value as
  power without a dB range.
- **torso**: the median of the torso line over the columns that have an envelope (NaN when none has).

Units: on calibrated axes Doppler features are in Hz (the axis spacing) and periods in seconds; on
uncalibrated axes (imports without axes) in Doppler bins and time columns. `Kinematics.units` says which.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

THRESHOLD_DB = 20.0  # envelope level above the noise floor, dB (images with a dB range)
THRESHOLD_UNIT = 0.4  # the same without a dB range, in image units (= 20 dB at a 50 dB range)
TORSO_HALFWIDTH = 1  # bins either side of the column's peak that count as the torso line
MIN_STRENGTH = 0.5  # autocorrelation peak below this: no period
MIN_SWING_BINS = 0.25  # high-passed RMS swing (the larger envelope's) below this, in bins: no period (a constant line)
MIN_VALID = 0.75  # share of columns that must have an envelope for a period search
MIN_LAG = 3  # columns; the shortest period searched
CHUNK = 512  # images per pass of `features`
PEAK_TOLERANCE = 0.4  # the first autocorrelation peak within this of the highest one is the period

SCALAR_FEATURES = ("bandwidth", "period", "period_strength", "outside_share", "torso")


@dataclass
class Kinematics:
    """Features of N images (see the module docstring). Tracks are in Doppler bins (fractional), scalars
    in `units` (Hz and s, or bins and columns)."""

    torso_bins: np.ndarray  # (N, T) argmax bin per column
    upper_bins: np.ndarray  # (N, T) NaN where nothing is above the level
    lower_bins: np.ndarray  # (N, T)
    floor: np.ndarray  # (N,) image units
    level: np.ndarray  # (N,) image units
    bandwidth: np.ndarray  # (N,)
    period: np.ndarray  # (N,) NaN: no period
    period_strength: np.ndarray  # (N,)
    outside_share: np.ndarray  # (N,)
    torso: np.ndarray  # (N,)
    units: dict

    def scalars(self) -> dict[str, np.ndarray]:
        return {k: getattr(self, k) for k in SCALAR_FEATURES}

    @property
    def has_period(self) -> np.ndarray:
        return np.isfinite(self.period)


def axis_steps(doppler: np.ndarray, time: np.ndarray, calibrated: bool) -> tuple[float, float, dict]:
    """-> (Doppler per bin, time per column, units): axis spacings on calibrated axes, 1 otherwise."""
    if calibrated and len(doppler) > 1 and len(time) > 1:
        df = float(np.mean(np.diff(doppler)))
        dt = float(np.mean(np.diff(time)))
        return df, dt, {"doppler": "Hz", "time": "s"}
    return 1.0, 1.0, {"doppler": "bins", "time": "columns"}


def envelopes(images: np.ndarray, dynamic_range_db: float = 50.0, threshold_db: float = THRESHOLD_DB,
              threshold_unit: float = THRESHOLD_UNIT) -> tuple[np.ndarray, ...]:
    """-> (torso, upper, lower) (N, T) in fractional Doppler bins, floor (N,), level (N,), mask (N, F, T)."""
    x = np.asarray(images, dtype=np.float32)
    if x.ndim == 2:
        x = x[None]
    n, nf, nt = x.shape
    floor = np.median(x.reshape(n, -1), axis=1)
    step = threshold_db / dynamic_range_db if np.isfinite(dynamic_range_db) and dynamic_range_db > 0 else threshold_unit
    level = (floor + step).astype(np.float32)
    lv = level[:, None, None]
    mask = x > lv
    anyc = mask.any(1)  # (N, T)
    lo = mask.argmax(1)  # first bin above the level
    hi = nf - 1 - mask[:, ::-1].argmax(1)  # last bin above the level

    def crossing(idx: np.ndarray, outward: int) -> np.ndarray:
        """Fractional position where the image falls to the level between idx and idx + outward."""
        nxt = np.clip(idx + outward, 0, nf - 1)
        v0 = np.take_along_axis(x, idx[:, None], 1)[:, 0]
        v1 = np.take_along_axis(x, nxt[:, None], 1)[:, 0]
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = np.where((nxt != idx) & (v0 > v1), (v0 - level[:, None]) / (v0 - v1), 0.0)
        return idx + outward * np.clip(frac, 0.0, 1.0)

    upper = np.where(anyc, crossing(hi, 1), np.nan)
    lower = np.where(anyc, crossing(lo, -1), np.nan)
    torso = x.argmax(1).astype(np.float64)
    return torso, upper, lower, floor, level, mask


def _highpass(y: np.ndarray, window: int) -> np.ndarray:
    """Each row minus its running mean over `window` columns: drifts slower than the longest period
    searched (the bulk speed changing with the aspect) go, periods up to `window` stay (a running mean
    over at least one period removes at most a fifth of a sinusoid). NaNs stay NaN (filled with the row
    mean for the filter)."""
    from scipy.ndimage import uniform_filter1d

    ok = np.isfinite(y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(y, axis=1, keepdims=True)
    z = np.where(ok, y, np.where(np.isfinite(mean), mean, 0.0))
    z = z - uniform_filter1d(z, size=max(3, window | 1), axis=1, mode="nearest")
    return np.where(ok, z, np.nan)


def envelope_period(upper: np.ndarray, lower: np.ndarray, min_strength: float = MIN_STRENGTH,
                    min_swing: float = MIN_SWING_BINS, min_valid: float = MIN_VALID,
                    min_lag: int = MIN_LAG) -> tuple[np.ndarray, np.ndarray]:
    """Dominant period (columns, fractional) and its strength of the upper and lower envelopes (N, T).

    Both envelopes are high-passed (minus their running mean over T/2 + 1 columns); their autocovariances
    are summed, so the envelope that moves more dominates (a bird's wing tips swing both up and down at
    the flap rate; a walker's limbs reach mostly to one side). r(k) is normalised per lag by the overlap (the Pearson-like unbiased estimate: a peak of
    1 is a perfect repetition at any lag). The search is wide: every lag from `min_lag` to T/2 (at least
    two repetitions must be visible), not a window around an expected value. It starts after r first
    drops below zero (so a slow drift is no period); among the local maxima the first within
    `PEAK_TOLERANCE` of the highest is taken (the fundamental rather than one of its multiples), refined by
    a parabola. No period (NaN) when: fewer than `min_valid` of the columns have an envelope; the
    envelopes' RMS swing (the larger of the two, after the high-pass) is below `min_swing` bins (a
    constant-Doppler line); r never drops below zero or has no local maximum; or the peak is below
    `min_strength`. The strength is the peak's value whenever the search applies (also below
    `min_strength`), NaN for the other reasons.
    """
    n, nt = upper.shape
    period = np.full(n, np.nan)
    strength = np.full(n, np.nan)
    max_lag = nt // 2
    if max_lag <= min_lag:
        return period, strength
    ys = [_highpass(np.asarray(e, dtype=np.float64), max_lag + 1) for e in (upper, lower)]
    valid = np.isfinite(ys[0]).mean(1) >= min_valid
    swing = np.max([np.sqrt(np.where(np.isfinite(y), y * y, 0.0).sum(1) / np.maximum(np.isfinite(y).sum(1), 1))
                    for y in ys], axis=0)  # the RMS of the envelope that moves more
    zs = [np.where(np.isfinite(y), y, 0.0) for y in ys]
    oks = [np.isfinite(y).astype(np.float64) for y in ys]
    lags = np.arange(max_lag + 1)
    r = np.zeros((n, len(lags)))
    for k in lags:
        num = sum((z[:, : nt - k] * z[:, k:]).sum(1) for z in zs)
        cnt = sum((o[:, : nt - k] * o[:, k:]).sum(1) for o in oks)
        r[:, k] = num / np.maximum(cnt, 1)
    r0 = r[:, :1]
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(r0 > 0, r / r0, 0.0)
    neg = r < 0
    first_neg = np.where(neg.any(1), neg.argmax(1), len(lags))
    inner = np.zeros_like(r, dtype=bool)
    inner[:, 1:-1] = (r[:, 1:-1] > r[:, :-2]) & (r[:, 1:-1] >= r[:, 2:])
    inner &= (lags[None] >= np.maximum(first_neg, min_lag)[:, None])
    cand = np.where(inner, r, -np.inf)
    best = cand.max(1)
    has_peak = np.isfinite(best)
    first = np.where(inner & (cand >= best[:, None] - PEAK_TOLERANCE), 1, 0).argmax(1)
    k = np.clip(first, 1, len(lags) - 2)
    rows = np.arange(n)
    y0, y1, y2 = r[rows, k - 1], r[rows, k], r[rows, k + 1]
    den = y0 - 2 * y1 + y2
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.where(den < 0, 0.5 * (y0 - y2) / den, 0.0)
    shift = np.clip(shift, -0.5, 0.5)
    peak = y1 - 0.25 * (y0 - y2) * shift
    usable = valid & (swing >= min_swing) & has_peak
    strength = np.where(usable, np.minimum(peak, 1.0), np.nan)
    period = np.where(usable & (strength >= min_strength), k + shift, np.nan)
    return period, strength


def envelope_lean(upper: np.ndarray, height: int, level: float = 0.1) -> np.ndarray:
    """How each image's limb spikes lean: per image (N,), the median over its whole spikes of log2(rise / fall).
    A spike's rise: the columns from where the envelope last stood under `level` of the way from the trough before
    it up to the peak, its fall: from the peak's last column to where the envelope first comes down under `level`
    of the way to the trough after it (the troughs: the lowest within T / 4 either side; so plateaus and small
    wiggles on a slope do not end it). 0 for symmetric spikes, > 0 for a slow rise and a fast fall (a measured
    gait: the swinging foot speeds up through the swing and stops at heel strike), < 0 for the reverse; NaN
    without a whole spike (both crossings inside the image). upper: (N, T) envelope in bins (NaN where nothing is
    above the level), smoothed over 3 columns; a peak is the highest column within +-2 that stands at least
    height / 16 bins above the lowest within +-T / 8 (a flat top counts once)."""
    upper = np.atleast_2d(np.asarray(upper, np.float64))
    n, w = upper.shape
    reach, side, prom = max(2, w // 8), max(3, w // 4), max(1.0, height / 16)
    out = np.full(n, np.nan)
    for i, u in enumerate(upper):
        if not np.isfinite(u).any():
            continue
        u = np.where(np.isfinite(u), u, np.nanmin(u))
        v = np.convolve(np.r_[u[0], u, u[-1]], np.ones(3) / 3, mode="valid")
        tol = 1e-9 * max(1.0, float(np.abs(v).max()))
        leans = []
        for t in range(1, w - 1):
            if v[t] <= v[t - 1] + tol or v[t] < v[max(0, t - 2):t + 3].max() - tol:
                continue
            if v[t] - v[max(0, t - reach):t + reach + 1].min() < prom:
                continue
            top = t
            while top + 1 < w and abs(v[top + 1] - v[t]) <= tol:
                top += 1
            left, right = v[max(0, t - side):t], v[top + 1:top + 1 + side]
            if not len(left) or not len(right):
                continue
            up_at = v[t] - (1 - level) * (v[t] - left.min())  # `level` of the way up from the trough before
            down_at = v[t] - (1 - level) * (v[t] - right.min())
            below_l = np.flatnonzero(left <= up_at)
            below_r = np.flatnonzero(right <= down_at)
            if not len(below_l) or not len(below_r):
                continue
            start = max(0, t - side) + below_l[-1]
            end = top + 1 + below_r[0]
            leans.append(np.log2((t - start) / (end - top)))
        if leans:
            out[i] = float(np.median(leans))
    return out


def features(images: np.ndarray, doppler: np.ndarray | None = None, time: np.ndarray | None = None,
             calibrated: bool = True, dynamic_range_db: float = 50.0, threshold_db: float = THRESHOLD_DB,
             threshold_unit: float = THRESHOLD_UNIT, torso_halfwidth: int = TORSO_HALFWIDTH,
             min_strength: float = MIN_STRENGTH) -> Kinematics:
    """Kinematic features of images (N, F, T) in [0, 1]; see the module docstring for the definitions.

    doppler / time: the axes (F,), (T,); None or `calibrated=False`: bins and columns. Works through
    `CHUNK` images at a time, so memory stays bounded for any N (an HDF5 dataset is read chunk by chunk too).
    """
    n = len(images)
    if np.ndim(images) == 3 and n > CHUNK:
        kw = dict(doppler=doppler, time=time, calibrated=calibrated, dynamic_range_db=dynamic_range_db,
                  threshold_db=threshold_db, threshold_unit=threshold_unit, torso_halfwidth=torso_halfwidth,
                  min_strength=min_strength)
        return concat([features(images[i : i + CHUNK], **kw) for i in range(0, n, CHUNK)])
    x = np.asarray(images, dtype=np.float32)
    if x.ndim == 2:
        x = x[None]
    n, nf, nt = x.shape
    if doppler is None or time is None:
        calibrated = False
        doppler, time = np.arange(nf, dtype=float), np.arange(nt, dtype=float)
    df, dt, units = axis_steps(np.asarray(doppler, float), np.asarray(time, float), calibrated)
    torso, upper, lower, floor, level, mask = envelopes(x, dynamic_range_db, threshold_db, threshold_unit)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        bw = (np.nanpercentile(upper, 95, axis=1) - np.nanpercentile(lower, 5, axis=1)) * df
    period, strength = envelope_period(upper, lower, min_strength=min_strength)
    # power share outside the torso line, among the pixels above the level
    if np.isfinite(dynamic_range_db) and dynamic_range_db > 0:
        power = np.power(10.0, (x - 1.0) * (dynamic_range_db / 10.0), dtype=np.float32)
    else:
        power = x
    power = np.where(mask, power, 0.0)
    bins = np.arange(nf)[None, :, None]
    torso_band = np.abs(bins - torso[:, None, :]) <= torso_halfwidth
    total = power.sum((1, 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        outside = np.where(total > 0, (power * ~torso_band).sum((1, 2)) / total, np.nan)
    # the torso line's median over the columns with an envelope (a column of noise has no torso); NaN if none
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        torso_med = np.nanmedian(np.where(np.isfinite(upper), torso, np.nan), 1)
    if units["doppler"] == "Hz":
        hz = np.interp(np.nan_to_num(torso_med), np.arange(nf), np.asarray(doppler, float))
        torso_val = np.where(np.isfinite(torso_med), hz, np.nan)
    else:
        torso_val = torso_med
    return Kinematics(
        torso_bins=torso, upper_bins=upper, lower_bins=lower, floor=floor, level=level,
        bandwidth=bw, period=period * dt, period_strength=strength, outside_share=outside, torso=torso_val,
        units={**units, "bandwidth": units["doppler"], "period": units["time"], "torso": units["doppler"],
               "period_strength": "", "outside_share": ""},
    )


def features_of(data, **kw) -> Kinematics:
    """`features` of a Spectrograms object, on its own axes and dB range."""
    return features(data.spectrograms, data.doppler_hz, data.time_s, data.axes_calibrated,
                    float(data.dynamic_range_db), **kw)


# ---------------------------------------------------------------------------------------------------------
# the filter helper


def class_ranges(k: Kinematics, labels: np.ndarray, n_classes: int, quantiles: tuple[float, float] = (0.0, 100.0)) -> dict:
    """Per class index, per scalar feature, the real (lo, hi) range (percentiles `quantiles` of the finite
    values; (nan, nan) when none), and the class's share of images with a period."""
    out: dict = {}
    for c in range(n_classes):
        m = np.asarray(labels) == c
        cls: dict = {}
        for f in SCALAR_FEATURES:
            v = getattr(k, f)[m]
            v = v[np.isfinite(v)]
            cls[f] = tuple(float(q) for q in np.percentile(v, quantiles)) if len(v) else (np.nan, np.nan)
        cls["period_share"] = float(k.has_period[m].mean()) if m.any() else np.nan
        out[c] = cls
    return out


def within_ranges(k: Kinematics, labels: np.ndarray, ranges: dict, margin: float = 0.1,
                  features_checked: tuple[str, ...] = SCALAR_FEATURES, period_share_min: float = 0.5) -> np.ndarray:
    """(N,) bool: each sample's features lie inside its class's real range widened by `margin` times the
    range's width on both sides. A NaN feature of the sample is not checked, except the period: when at
    least `period_share_min` of the class's real images have one, a sample without a period fails (a walker
    without steps is what the filter is for). A class missing from `ranges` fails."""
    labels = np.asarray(labels)
    known = np.array([int(c) in ranges for c in labels], bool)
    ok = known.copy()
    idx = [int(c) if int(c) in ranges else next(iter(ranges), None) for c in labels]
    if not ranges:
        return ok
    for f in features_checked:
        lo = np.array([ranges[c][f][0] for c in idx], float)
        hi = np.array([ranges[c][f][1] for c in idx], float)
        v = np.asarray(getattr(k, f), float)
        w = margin * (hi - lo)
        with np.errstate(invalid="ignore"):
            out = np.isfinite(v) & np.isfinite(lo) & ((v < lo - w) | (v > hi + w))
        if f == "period":
            need = np.array([ranges[c]["period_share"] >= period_share_min for c in idx], bool)
            out |= ~np.isfinite(v) & need
        ok &= ~out
    return ok


# ---------------------------------------------------------------------------------------------------------
# batches and axes


def concat(parts: list[Kinematics]) -> Kinematics:
    """Features of consecutive batches as one set."""
    first = parts[0]
    return Kinematics(**{f: (np.concatenate([getattr(p, f) for p in parts]) if isinstance(v, np.ndarray) else v)
                         for f, v in vars(first).items()})


def read_axes(path) -> dict:
    """The keyword arguments of `features` for the images of a spectrograms file: its axes, whether they are
    calibrated and its dB range."""
    from mdcli.artifacts import open_artifact

    with open_artifact(path, "spectrograms") as f:
        return {"doppler": f["axes/doppler_hz"][()], "time": f["axes/time_s"][()],
                "calibrated": bool(f["axes"].attrs.get("calibrated", True)),
                "dynamic_range_db": float(f.attrs["dynamic_range_db"])}


# ---------------------------------------------------------------------------------------------------------
# conditioning: the features a latent diffusion model can be conditioned on (train-ldm `kinematics`)

# What `encode` stores per latent (/kinematics), in bins and columns whatever the axes: the period of the
# envelopes (NaN: none), its autocorrelation strength (NaN: no search applied), the bandwidth (NaN: no envelope).
RAW_CONDITION = ("period_columns", "period_strength", "bandwidth_bins")
CONDITIONS = {"period": 2, "strength": 1, "bandwidth": 1}  # name -> its scalars in the condition vector


def raw_condition(images: np.ndarray, dynamic_range_db: float) -> np.ndarray:
    """(N, F, T) images -> (N, 3) float32, the `RAW_CONDITION` columns (bins and columns, not Hz and s, so
    calibrated and uncalibrated sets read the same)."""
    k = features(images, calibrated=False, dynamic_range_db=dynamic_range_db)
    return np.stack([k.period, k.period_strength, k.bandwidth], 1).astype(np.float32)


def condition_width(names: list[str]) -> int:
    """Scalars in the condition vector of `names` (train-ldm `kinematics`)."""
    return sum(CONDITIONS[n] for n in names)


def condition_vector(raw: np.ndarray, names: list[str], image_shape: tuple[int, int] | list[int]) -> np.ndarray:
    """(N, 3) `raw_condition` rows -> (N, condition_width) float32, each scalar in [0, 1]: `period` = [has a
    period, log2(period) / log2(width) (0 when none)], `strength` = (strength + 1) / 2 (0 when none),
    `bandwidth` = bandwidth / height (0 when none). The UNet embeds each scalar as it embeds the diffusion time."""
    h, w = int(image_shape[0]), int(image_shape[1])
    raw = np.asarray(raw, np.float64).reshape(-1, len(RAW_CONDITION))
    period, strength, bandwidth = raw[:, 0], raw[:, 1], raw[:, 2]
    parts: list[np.ndarray] = []
    for name in names:
        if name == "period":
            has = np.isfinite(period) & (period > 0)
            parts += [has.astype(np.float64), np.where(has, np.log2(np.where(has, period, 1.0)) / np.log2(max(w, 2)), 0.0)]
        elif name == "strength":
            parts.append(np.where(np.isfinite(strength), (np.clip(strength, -1, 1) + 1) / 2, 0.0))
        elif name == "bandwidth":
            parts.append(np.where(np.isfinite(bandwidth), np.clip(bandwidth / h, 0, 1), 0.0))
        else:
            raise ValueError(f"unknown kinematic condition '{name}' ({', '.join(CONDITIONS)})")
    if not parts:
        return np.zeros((len(raw), 0), np.float32)
    return np.clip(np.stack(parts, 1), 0.0, 1.0).astype(np.float32)
