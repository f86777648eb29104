"""Baseband slow-time signal synthesis and spectrogram processing.

Convention: the radar sits at `radar_pos`; a scatterer at range R(t) returns
a * exp(-j 4 pi R(t) / lambda). A closing target (dR/dt < 0) therefore has a
positive Doppler frequency f_D = -2 (dR/dt) / lambda.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import get_window

C = 299_792_458.0  # speed of light, m/s


def ranges(pos: np.ndarray, radar_pos: np.ndarray) -> np.ndarray:
    """Distance of points (..., S, 3) to the radar -> (..., S)."""
    d = pos - radar_pos
    return np.sqrt(np.einsum("...i,...i->...", d, d))


def _phase32(r: np.ndarray, wavelength: float, scale: float = 1.0) -> np.ndarray:
    """float32 phase -scale * 4 pi r / lambda, after removing a whole number of cycles per row.

    Each row's first range is rounded to a multiple of lambda / (2 scale) (whole 2 pi cycles) and
    subtracted in float64, so the float32 phase only spans the motion over the observation
    (a few thousand rad at most, float32 error ~1e-4 rad) instead of 4 pi R / lambda.
    """
    period = 0.5 * wavelength / scale  # the range change that turns the phase by 2 pi
    ref = np.round(r[..., :1] / period) * period
    return ((r - ref) * (-scale * 4.0 * np.pi / wavelength)).astype(np.float32)


def _sum_returns(amp: np.ndarray, ph: np.ndarray) -> np.ndarray:
    amp = np.asarray(amp, dtype=np.float32)
    if amp.ndim == 1:
        amp = amp[:, None]
    re = (amp * np.cos(ph)).sum(0, dtype=np.float64)
    im = (amp * np.sin(ph)).sum(0, dtype=np.float64)
    return re + 1j * im


def point_returns(r: np.ndarray, amp: np.ndarray | float, wavelength: float) -> np.ndarray:
    """Sum of point-scatterer returns, sum_k a_k exp(-j 4 pi R_k(t) / lambda).

    r: (K, S) ranges in metres; amp: (K,) or (K, S) amplitudes (sqrt of RCS).
    """
    return _sum_returns(amp, _phase32(r, wavelength))


def segment_returns(r_a: np.ndarray, r_b: np.ndarray, amp: np.ndarray | float, wavelength: float) -> np.ndarray:
    """Returns of thin straight segments from end A to end B (line integral of point returns).

    With R linear along the segment, integral_0^1 exp(-j k R(s)) ds =
    exp(-j k R_mid) sinc(k (R_b - R_a) / 2), k = 4 pi / lambda; this is Chen's
    rotor-blade model (V.C. Chen, The Micro-Doppler Effect in Radar, ch. 4),
    which gives the blade "flash" when the segment is perpendicular to the line of sight.
    r_a, r_b: (K, S); amp: (K,) or (K, S), the amplitude of the whole segment.
    """
    k = 4.0 * np.pi / wavelength
    amp = np.asarray(amp, dtype=np.float32)
    if amp.ndim == 1:
        amp = amp[:, None]
    env = np.sinc(((0.5 * k / np.pi) * (r_b - r_a)).astype(np.float32))  # sinc(x) = sin(pi x)/(pi x)
    return _sum_returns(amp * env, _phase32(r_a + r_b, wavelength, scale=0.5))


def upsample(x: np.ndarray, factor: int, n: int) -> np.ndarray:
    """Cubic (4-point Lagrange) interpolation of smooth tracks from a coarse grid to the slow-time grid.

    x: (..., J + 3) values at coarse times t0 + (i - 1) * factor * dt, i = 0 .. J + 2, with
    J = ceil(n / factor); returns (..., n) at t0 + k * dt. Kinematics are computed on the coarse
    grid (a few hundred Hz, far above any body motion) and only phases at the full PRF.
    """
    if factor == 1:
        return x[..., 1 : n + 1]
    j = -(-n // factor)
    mu = (np.arange(factor) / factor)[:, None]  # (D, 1)
    w = np.concatenate([
        -mu * (mu - 1) * (mu - 2) / 6, (mu + 1) * (mu - 1) * (mu - 2) / 2,
        -(mu + 1) * mu * (mu - 2) / 2, (mu + 1) * mu * (mu - 1) / 6,
    ], axis=1)  # (D, 4)
    taps = np.lib.stride_tricks.sliding_window_view(x, 4, axis=-1)[..., :j, :]  # (..., J, 4), no copy
    out = taps @ w.T  # (..., J, D)
    return out.reshape(*x.shape[:-1], j * factor)[..., :n]


def add_noise(sig: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """Add circular complex white Gaussian noise; SNR = mean signal power / noise power per sample."""
    p_sig = float(np.mean(np.abs(sig) ** 2))
    p_noise = p_sig / (10.0 ** (snr_db / 10.0))
    noise = rng.standard_normal((2, sig.shape[-1])) * np.sqrt(p_noise / 2.0)
    return sig + noise[0] + 1j * noise[1]


def frame_starts(n_samples: int, win_len: int, n_frames: int) -> np.ndarray:
    """Start index of `n_frames` windows spread evenly over the signal."""
    if win_len > n_samples:
        raise ValueError(f"window ({win_len} samples) longer than the signal ({n_samples})")
    return np.round(np.linspace(0, n_samples - win_len, n_frames)).astype(np.int64)


def window_coverage(n_samples: int, win_len: int, n_frames: int, window: str = "hann") -> np.ndarray:
    """Per slow-time sample, its largest power weight w^2 over all STFT frames (1 = some window's peak): how
    strongly a one-sample event there (a blade flash) can show in the spectrogram at best."""
    w2 = get_window(window, win_len, fftbins=True).astype(np.float64) ** 2
    w2 = w2 / w2.max()
    best = np.zeros(n_samples)
    for s in frame_starts(n_samples, win_len, n_frames):
        np.maximum(best[s : s + win_len], w2, out=best[s : s + win_len])
    return best


def stft_power(
    sig: np.ndarray, prf_hz: float, win_len: int, nfft: int, n_frames: int, window: str = "hann"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Power spectrogram |STFT|^2 of a complex slow-time signal.

    Returns power (F=nfft, T=n_frames) with Doppler ascending (fftshifted),
    doppler_hz (F,) and time_s (T,) at the window centres.
    """
    starts = frame_starts(sig.shape[-1], win_len, n_frames)
    idx = starts[:, None] + np.arange(win_len)[None, :]
    w = get_window(window, win_len, fftbins=True).astype(np.float64)
    frames = sig[idx] * w  # (T, win)
    spec = np.fft.fft(frames, n=nfft, axis=-1)
    power = (spec.real**2 + spec.imag**2).T  # (F, T)
    power = np.fft.fftshift(power, axes=0)
    doppler = np.fft.fftshift(np.fft.fftfreq(nfft, d=1.0 / prf_hz))
    time = (starts + 0.5 * win_len) / prf_hz
    return power, doppler, time


def resample_axis(x: np.ndarray, axis_values: np.ndarray, n: int, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Bring one axis of a power image to n points: block means for integer factors, else linear."""
    m = x.shape[axis]
    if m == n:
        return x, axis_values
    if m % n == 0:
        f = m // n
        xs = np.moveaxis(x, axis, 0)
        xs = xs.reshape(n, f, *xs.shape[1:]).mean(1)
        return np.moveaxis(xs, 0, axis), axis_values.reshape(n, f).mean(1)
    new_axis = np.linspace(axis_values[0], axis_values[-1], n)
    pos = np.interp(new_axis, axis_values, np.arange(m, dtype=np.float64))
    lo = np.clip(np.floor(pos).astype(int), 0, m - 2)
    frac = pos - lo
    xs = np.moveaxis(x, axis, 0)
    shape = (-1,) + (1,) * (xs.ndim - 1)
    out = xs[lo] * (1 - frac).reshape(shape) + xs[lo + 1] * frac.reshape(shape)
    return np.moveaxis(out, 0, axis), new_axis


def to_unit_db(power: np.ndarray, dynamic_range_db: float) -> np.ndarray:
    """Power -> dB -> [0, 1]: 1 at the image's peak, 0 at `dynamic_range_db` below it."""
    db = 10.0 * np.log10(power + 1e-30)
    peak = db.max()
    return np.clip((db - (peak - dynamic_range_db)) / dynamic_range_db, 0.0, 1.0).astype(np.float32)
