"""Signal chain: tones land at the right Doppler, interpolation is exact where it must be, images are normalised."""

from __future__ import annotations

import numpy as np
import pytest

from mdcli.sim.signal import (
    add_noise, point_returns, resample_axis, segment_returns, stft_power, to_unit_db, upsample,
)

LAM = 0.0125


def test_closing_point_gives_positive_doppler_tone():
    prf, v = 4000.0, 3.0
    t = np.arange(8000) / prf
    r = (100.0 - v * t)[None]  # closing at 3 m/s
    sig = point_returns(r, [1.0], LAM)
    power, f, _ = stft_power(sig, prf, 256, 4096, 20)
    assert f[power.mean(1).argmax()] == pytest.approx(2 * v / LAM, abs=prf / 4096)


def test_point_returns_float32_phase_is_accurate_at_long_range():
    t = np.arange(4000) / 4000.0
    r = (5000.0 + 0.7 * np.sin(2 * np.pi * t))[None]
    exact = np.exp(-1j * 4 * np.pi * r[0] / LAM)
    assert np.abs(point_returns(r, [1.0], LAM) - exact).max() < 1e-3


def test_segment_returns_match_dense_point_integration():
    rng = np.random.default_rng(0)
    r_a = 50 + rng.uniform(-0.1, 0.1, (3, 50))
    r_b = r_a + rng.uniform(-0.05, 0.05, (3, 50))
    s = np.linspace(0, 1, 4001)
    dense = np.trapezoid(np.exp(-1j * 4 * np.pi / LAM * (r_a[..., None] + s * (r_b - r_a)[..., None])), s, axis=-1).sum(0)
    assert np.allclose(segment_returns(r_a, r_b, np.ones(3), LAM), dense, atol=1e-4)


@pytest.mark.parametrize("factor", [1, 4, 8])
def test_upsample_is_exact_for_cubics(factor):
    n = 1000
    j = -(-n // factor)
    tc = (np.arange(j + 3) - 1) * factor
    poly = lambda x: 0.3 + 0.01 * x - 2e-5 * x**2 + 1e-8 * x**3  # noqa: E731
    out = upsample(poly(tc.astype(float))[None], factor, n)
    assert out.shape == (1, n)
    assert np.allclose(out[0], poly(np.arange(n, dtype=float)), atol=1e-9)


def test_noise_power_matches_snr():
    sig = np.exp(1j * np.linspace(0, 100, 200_000))
    noisy = add_noise(sig, 10.0, np.random.default_rng(0))
    assert np.mean(np.abs(noisy - sig) ** 2) == pytest.approx(0.1, rel=0.02)


def test_unit_db_maps_peak_to_one_and_floor_to_zero():
    power = np.array([[1.0, 1e-3], [1e-5, 1e-9]])
    img = to_unit_db(power, 50.0)
    assert img.dtype == np.float32
    assert img[0, 0] == 1.0 and img[1, 1] == 0.0
    assert img[0, 1] == pytest.approx(1 - 30 / 50)
    assert img[1, 0] == pytest.approx(0.0)


def test_resample_axis_block_mean_and_axis():
    x = np.arange(8.0)[:, None] * np.ones((1, 3))
    out, ax = resample_axis(x, np.arange(8.0), 4, axis=0)
    assert out.shape == (4, 3)
    assert np.allclose(out[:, 0], [0.5, 2.5, 4.5, 6.5]) and np.allclose(ax, [0.5, 2.5, 4.5, 6.5])
    out, ax = resample_axis(x, np.arange(8.0), 5, axis=0)
    assert out.shape == (5, 3) and np.allclose(out[:, 1], ax)


def test_time_oversample_keeps_a_flash_between_windows():
    """At 64 columns of 8000 samples one 128-sample Hann frame per column leaves ~half the samples under -6 dB
    in every window (hop 125), and a one-sample flash between two windows all but vanishes. Two frames per
    column, block-averaged back to 64 in power, see every sample at >= -6 dB in some frame: the flash keeps
    at least 1/8 of its full-window energy (w^2 >= 1/4 in one of the two frames averaged)."""
    from mdcli.sim.config import SimulateConfig
    from mdcli.sim.dataset import spectrogram_image
    from mdcli.sim.signal import window_coverage

    n, win, nfft = 8000, 128, 128
    one, two = window_coverage(n, win, 64), window_coverage(n, win, 128)
    assert 0.40 < (one < 0.25).mean() < 0.55 and (two < 0.25).mean() < 0.02  # the rest: the first/last samples
    assert two[win // 2 : -win // 2].min() >= 0.25 and one[win // 2 : -win // 2].min() < 1e-4
    gap = int(np.argmin(one[1000:2000])) + 1000  # a sample between two windows
    sig = np.zeros(n, complex)
    sig[gap] = 1.0  # the flash: one sample, white across Doppler
    energy = {}
    for k in (1, 2):
        power, _, time = stft_power(sig, 4000.0, win, nfft, 64 * k)
        power, time = resample_axis(power, time, 64, axis=1)
        energy[k] = power.sum(0).max()  # the flash's column: sum over Doppler = nfft * w^2 at the flash
    assert energy[1] < 0.01 * nfft * 1e-2 and energy[2] >= nfft / 8
    cfg = SimulateConfig()
    cfg.processing.image_size, cfg.processing.time_oversample = [64, 64], 2
    cfg.validate()
    image, doppler, time = spectrogram_image(sig + 1e-3, cfg)
    assert image.shape == (64, 64) and len(time) == 64 and np.all(np.diff(time) > 0)
    cfg.processing.time_oversample = 0
    with pytest.raises(Exception, match="time_oversample"):
        cfg.validate()
