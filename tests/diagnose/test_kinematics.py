"""Kinematic features (mdcli/kinematics.py) and their comparisons (mdcli/diagnose/kinematics.py) against the simulator's /params truth and constructed cases."""

from __future__ import annotations

import numpy as np
import pytest

from mdcli import kinematics as kin
from mdcli.diagnose import kinematics as dkin
from mdcli.sim.config import SimulateConfig
from mdcli.sim.dataset import simulate_signal, spectrogram_image
from mdcli.sim.walker import cycle_duration

# 3 s at 2 kHz, 64 Doppler bins x 128 columns (23 ms): wing beats of up to 10 Hz are 4+ columns, and a walker at
# half the usual gait rate (a 2.1 s cycle, 1.05 s steps) still shows two steps within the T/2 lag limit.
DURATION = 3.0


def _cfg(**walker) -> SimulateConfig:
    cfg = SimulateConfig()
    cfg.radar.prf_hz, cfg.radar.duration_s = 2000.0, DURATION
    cfg.processing.win_len = cfg.processing.nfft = 64
    cfg.processing.image_size = [64, 128]
    for k, v in walker.items():
        setattr(cfg.walker, k, v)
    return cfg


def _simulate(cfg: SimulateConfig, target: str, n: int, start: int = 0):
    images, params = [], []
    for i in range(start, start + n):
        sig, p = simulate_signal(cfg, target, i)
        img, doppler, time = spectrogram_image(sig, cfg)
        images.append(img)
        params.append(p)
    return np.stack(images), doppler, time, params


@pytest.fixture(scope="module")
def walkers():
    return _simulate(_cfg(), "walker", 8)


def test_walker_period_is_one_step_half_the_gait_cycle(walkers):
    """The limb envelope repeats once per step (each leg's swing): the period is gait_cycle_s / 2."""
    images, doppler, time, params = walkers
    k = kin.features(images, doppler, time)
    truth = np.array([p["gait_cycle_s"] for p in params]) / 2
    assert k.units["period"] == "s" and k.units["bandwidth"] == "Hz"
    rel = np.abs(k.period - truth) / truth  # NaN (no period) fails every comparison below
    assert np.median(rel) < 0.03 and np.mean(rel < 0.05) >= 0.85, (k.period, truth)
    assert np.all(k.period_strength[rel < 0.05] > kin.MIN_STRENGTH)
    # the limbs spread the Doppler far beyond the torso line: hundreds of Hz, a good share of the power
    assert np.all(k.bandwidth > 200) and np.median(k.outside_share) > 0.1


def test_slow_walker_at_half_the_gait_rate_is_found_too():
    """The lag search is wide (3 columns to T/2), not a window around a usual gait: rv ~ 0.4 walkers have a 2.1 s
    gait cycle, twice the usual one (~1.1 s at 1.4 m/s)."""
    images, doppler, time, params = _simulate(_cfg(speed_mps=[0.34, 0.36], height_m=[1.7, 1.8]), "walker", 3)
    k = kin.features(images, doppler, time)
    truth = np.array([p["gait_cycle_s"] for p in params]) / 2
    assert np.all(truth > 0.95)
    np.testing.assert_allclose(k.period, truth, rtol=0.05)


def test_walker_at_a_slower_cadence_steps_slower_at_the_same_speed():
    """walker.cadence_scale 0.8: each cycle lasts 1.25x Boulic's at that speed, /params stores the simulated cycle,
    and the spectrogram's step period is half of it."""
    images, doppler, time, params = _simulate(_cfg(speed_mps=[1.2, 1.3], cadence_scale=[0.8, 0.8]), "walker", 3)
    for p in params:
        assert p["cadence_scale"] == 0.8
        np.testing.assert_allclose(p["gait_cycle_s"], 1.25 * cycle_duration(p["relative_velocity"]), rtol=1e-12)
    k = kin.features(images, doppler, time)
    np.testing.assert_allclose(k.period, np.array([p["gait_cycle_s"] for p in params]) / 2, rtol=0.05)


def test_bird_period_is_the_wing_beat():
    """1 / flap_hz. Birds are harder than walkers: a small bird's wings swing a fraction of a bin, and the
    segment model makes each wing flash for one column, so some have no period and a few land on a multiple
    (over 30 birds: 70 % within 5 %, 20 % none, 10 % at twice the period)."""
    images, doppler, time, params = _simulate(_cfg(), "bird", 12)
    k = kin.features(images, doppler, time)
    truth = 1.0 / np.array([p["flap_hz"] for p in params])
    rel = np.abs(k.period - truth) / truth
    assert np.mean(rel < 0.05) >= 0.6 and np.mean(rel[k.has_period] < 0.05) >= 0.75, (k.period, truth)


def test_no_period_in_noise_or_a_constant_doppler_line():
    rng = np.random.default_rng(0)
    noise = np.clip(0.3 + 0.05 * rng.standard_normal((4, 64, 128)), 0, 1).astype(np.float32)
    k = kin.features(noise)
    assert np.all(np.isnan(k.period)) and np.all(np.isnan(k.bandwidth))  # nothing 20 dB above the floor
    line = noise.copy()
    line[:, 40] = 1.0
    line[:, 39] = 0.8
    line[:, 41] = 0.75
    k = kin.features(line)
    assert np.all(np.isnan(k.period)) and np.all(k.bandwidth < 4) and np.all(k.outside_share == 0)
    # a constant line with a small wobble of a tenth of a bin: still no period (the swing is below 0.3 bins)
    wob = noise.copy()
    wob[:, 40] = 1.0
    wob[:, 41] = 0.8 + 0.05 * np.sin(2 * np.pi * np.arange(128) / 10)
    assert np.all(np.isnan(kin.features(wob).period))


def test_uncalibrated_axes_give_bins_and_columns(walkers):
    images, doppler, time, _ = walkers
    cal = kin.features(images[:2], doppler, time)
    unc = kin.features(images[:2], np.linspace(0, 1, len(doppler)), np.linspace(0, 1, len(time)), calibrated=False)
    assert unc.units == {**cal.units, "doppler": "bins", "time": "columns", "bandwidth": "bins", "period": "columns",
                         "torso": "bins"}
    dt, df = np.diff(time).mean(), np.diff(doppler).mean()  # the mean spacing (frame starts are rounded)
    np.testing.assert_allclose(unc.period * dt, cal.period, rtol=1e-9)
    np.testing.assert_allclose(unc.bandwidth * df, cal.bandwidth, rtol=1e-9)


def test_envelope_error_sees_a_doppler_blur(walkers):
    from scipy.ndimage import gaussian_filter1d

    images, doppler, time, params = walkers
    labels = np.zeros(len(images), int)
    real = kin.features(images, doppler, time)
    same = dkin.recon_kinematics(real, kin.features(images.copy(), doppler, time), labels, ["walker"])
    blurred = gaussian_filter1d(images, 2.0, axis=1)  # along Doppler: the limb traces smear outward
    blur = dkin.recon_kinematics(real, kin.features(blurred, doppler, time), labels, ["walker"])
    assert same["overall"]["envelope_error_bins"] == 0 and same["overall"]["period_error"] == 0
    assert same["overall"]["period_agreement"] == 1
    assert blur["per_class"]["walker"]["envelope_error_bins"] > 1.0


def test_twice_the_cadence_is_a_fifty_percent_period_error():
    """The same walkers observed for 6 s squeezed into the 3 s axes: twice the cadence, half the period."""
    cfg = _cfg()
    images, doppler, time, _ = _simulate(cfg, "walker", 6)
    cfg.radar.duration_s = 2 * DURATION
    fast, *_ = _simulate(cfg, "walker", 6)
    labels = np.zeros(6, int)
    r = dkin.recon_kinematics(kin.features(images, doppler, time), kin.features(fast, doppler, time), labels, ["walker"])
    assert r["per_class"]["walker"]["period_error"] == pytest.approx(0.5, abs=0.08)


def test_generation_comparison_and_the_filter_helper(walkers):
    images, doppler, time, _ = walkers
    rng = np.random.default_rng(1)
    real = kin.features(images, doppler, time)
    flat = np.clip(0.05 + 0.02 * rng.standard_normal(images.shape), 0, 1).astype(np.float32)
    flat[:, 30:34] = 0.9  # a thick torso band and no limbs
    fake = kin.features(flat, doppler, time)
    labels = np.zeros(len(images), int)
    g = dkin.generation_kinematics(real, labels, fake, labels, ["walker"])["per_class"]["walker"]
    assert {k: g["period_share"][k] for k in ("real", "generated")} == {"real": 1.0, "generated": 0.0}
    assert g["bandwidth"]["median_generated"] < g["bandwidth"]["median_real"] and g["bandwidth"]["wasserstein"] > 200
    assert g["period"]["median_generated"] is None and g["period"]["wasserstein"] is None  # no period: null
    self_cmp = dkin.generation_kinematics(real, labels, real, labels, ["walker"])["per_class"]["walker"]
    assert self_cmp["bandwidth"]["wasserstein"] == 0 and self_cmp["bandwidth"]["inside_real_range"] == 1
    assert self_cmp["bandwidth"]["spread_ratio"] == pytest.approx(1.0)
    # a generator that draws only the typical value: inside the real range, yet none of its spread
    typical = dkin.compare_distributions(real.bandwidth, np.full(len(images), np.median(real.bandwidth)))
    assert typical["inside_real_range"] == 1 and typical["spread_ratio"] == 0
    few = real.bandwidth[: dkin.MIN_SPREAD_N - 1]  # too few values for a spread: null, not noise
    assert dkin.compare_distributions(real.bandwidth, few)["spread_ratio"] is None
    assert dkin.median_interval(few) is None
    # the generated side's own sampling noise: a bootstrap interval of its median, a Wilson interval of its share
    values = np.random.default_rng(3).normal(10.0, 2.0, 400)
    lo, hi = dkin.median_interval(values)
    assert lo < np.median(values) < hi and 0.1 < hi - lo < 0.6  # ~ 2 x 1.96 x 1.25 x 2 / sqrt(400)
    assert dkin.median_interval(values, seed=1) != [lo, hi] and dkin.median_interval(values) == [lo, hi]  # seeded
    small = dkin.median_interval(values[:40])
    assert small[1] - small[0] > hi - lo  # fewer samples, a wider interval
    assert dkin.share_interval(33, 40) == pytest.approx([0.681, 0.913], abs=0.002)  # Wilson, 33 of 40
    assert dkin.share_interval(0, 40)[0] == 0 and dkin.share_interval(40, 40)[1] == 1 and dkin.share_interval(0, 0) is None
    assert g["period_share"]["generated_ci"] == pytest.approx(dkin.share_interval(0, len(images)))
    # the training part as the reference: read exactly like the generated set, absent without training data
    assert "train" not in g["bandwidth"] and "train" not in g["period_share"]
    ref = dkin.generation_kinematics(real, labels, fake, labels, ["walker"], real, labels)["per_class"]["walker"]
    assert ref["bandwidth"]["train"]["median"] == ref["bandwidth"]["median_real"]
    assert ref["bandwidth"]["train"]["spread_ratio"] == pytest.approx(1.0) and ref["bandwidth"]["train"]["wasserstein"] == 0
    assert {k: ref["period_share"][k] for k in ("real", "generated", "train")} == {"real": 1.0, "generated": 0.0, "train": 1.0}
    assert ref["bandwidth"]["median_generated"] == g["bandwidth"]["median_generated"]  # the generated figures unchanged
    slow = dkin.generation_kinematics(real, labels, fake, labels, ["walker"], fake, labels)["per_class"]["walker"]
    assert slow["period_share"]["train"] == 0.0 and slow["bandwidth"]["train"]["median"] == g["bandwidth"]["median_generated"]
    ranges = kin.class_ranges(real, labels, 1)
    assert kin.within_ranges(real, labels, ranges, margin=0.0).all()
    assert not kin.within_ranges(fake, labels, ranges).any()  # no steps: what the kinematic filter is for
    assert not kin.within_ranges(real, np.full(len(images), 3), ranges).any()  # a class without real ranges


def test_report_lines_and_strict_json(walkers):
    import json

    from mdcli.jsonio import strict_json

    images, doppler, time, _ = walkers
    k = kin.features(images, doppler, time)
    noise = kin.features(np.zeros_like(images[:2]), doppler, time)
    labels = np.array([0] * 4 + [1] * 4)
    rec = dkin.recon_kinematics(k, k, labels, ["walker", "other"])
    gen = dkin.generation_kinematics(k, labels, noise, np.zeros(2, int), ["walker", "other"])
    text = json.dumps(strict_json({"r": rec, "g": gen}), allow_nan=False)  # NaN -> null
    assert '"median_generated": null' in text
    lines = dkin.report_lines({"kinematics": rec}, {"kinematics": gen})
    assert lines[0].startswith("## Kinematic fidelity")
    assert any(line.startswith("| walker | bandwidth | Hz |") for line in lines)
    assert all(row[5] == row[9] == "–" for row in dkin.generation_rows(gen))  # no training reference: no train column
    with_train = dkin.generation_rows(dkin.generation_kinematics(k, labels, noise, np.zeros(2, int), ["walker", "other"], k, labels))
    assert [row[5] for row in with_train if row[1] == "has period (share)"] == ["1.00"]
    assert len(with_train[0]) == len(dkin.GENERATION_HEADER)
    self_rows = dkin.generation_rows(dkin.generation_kinematics(k, labels, k, labels, ["walker", "other"]))
    cell = [row[4] for row in self_rows if row[1] == "has period (share)"][0]  # the generated share and its interval
    assert cell.startswith("1.00 [") and cell.endswith(", 1.00]")
    assert dkin.report_lines({}, None) == []


def test_condition_vector_puts_each_feature_in_the_unit_interval():
    raw = np.array([[8.0, 0.5, 16.0],  # a period of 8 columns, strength 0.5, 16 bins wide
                    [np.nan, np.nan, np.nan],  # no period, no envelope
                    [32.0, -2.0, 80.0]])  # clipped: strength below -1, bandwidth above the height
    v = kin.condition_vector(raw, ["period", "strength", "bandwidth"], (64, 64))
    assert v.shape == (3, kin.condition_width(["period", "strength", "bandwidth"])) == (3, 4)
    np.testing.assert_allclose(v[0], [1.0, 0.5, 0.75, 0.25])  # log2(8) / log2(64) = 0.5
    np.testing.assert_allclose(v[1], [0.0, 0.0, 0.0, 0.0])
    np.testing.assert_allclose(v[2], [1.0, 5 / 6, 0.0, 1.0])
    np.testing.assert_allclose(kin.condition_vector(raw, ["bandwidth", "period"], (32, 64))[0], [0.5, 1.0, 0.5])
    with pytest.raises(ValueError, match="unknown kinematic condition 'speed'"):
        kin.condition_vector(raw, ["speed"], (64, 64))


def test_raw_condition_is_the_features_in_bins_and_columns(walkers):
    x, doppler, time, params = walkers
    raw = kin.raw_condition(x, 50.0)
    k = kin.features(x, calibrated=False, dynamic_range_db=50.0)
    np.testing.assert_array_equal(raw, np.stack([k.period, k.period_strength, k.bandwidth], 1).astype(np.float32))
    finite = np.isfinite(raw[:, 0])
    assert finite.sum() >= len(x) // 2
    dt = float(np.mean(np.diff(time)))
    steps = np.array([p["gait_cycle_s"] / 2 for p in params])  # the walker's step, in columns below
    np.testing.assert_allclose(raw[finite, 0], steps[finite] / dt, rtol=0.1)


def test_features_are_fast():
    import time as _time

    x = np.random.default_rng(0).random((600, 64, 64), dtype=np.float32)
    t0 = _time.perf_counter()
    whole = kin.features(x, np.arange(64.0), np.arange(64.0))
    assert _time.perf_counter() - t0 < 5.0  # ~0.3 s on one core: thousands of images are a few seconds
    part = kin.features(x[550:], np.arange(64.0), np.arange(64.0))  # the chunks (512 images) change nothing
    for f in ("upper_bins", "bandwidth", "period_strength", "outside_share", "torso"):
        np.testing.assert_array_equal(getattr(whole, f)[550:], getattr(part, f))
