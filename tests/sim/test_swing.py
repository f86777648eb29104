"""The swing's timing (`walker.swing_skew`) and the statistic that sees it (`kinematics.envelope_lean`)."""

from __future__ import annotations

import numpy as np
import pytest

from mdcli.kinematics import envelope_lean
from mdcli.sim import walker
from mdcli.sim.config import SimulateConfig, config_text
from mdcli.sim.dataset import simulate_dataset
from mdcli.sim.like import image_statistics

HEIGHT, SPEED, N = 1.75, 1.2, 1000


def _toe_forward_speed(skew: float) -> tuple[np.ndarray, np.ndarray, float]:
    rv = walker.relative_velocity(SPEED, HEIGHT)
    style = {"swing_skew": skew} if skew else None
    j = walker.joints_body_frame(HEIGHT, rv, np.arange(N) / N, style)
    x = j[:, walker.R_TOE, 0]
    return j, (np.roll(x, -1) - np.roll(x, 1)) * N / 2, walker.support_duration(rv)


def test_swing_skew_moves_the_swinging_foots_peak_speed_later_and_keeps_the_stance():
    """Skew 0.6: the right toe's peak forward speed (body frame) comes later in the swing than Boulic's, the swing
    ends faster than it starts, and the stance (heel strike to toe-off) is the same joint positions as before."""
    j0, v0, ds = _toe_forward_speed(0.0)
    j6, v6, _ = _toe_forward_speed(0.6)
    swing = np.arange(N) / N >= ds
    idx = np.flatnonzero(swing)
    peak0, peak6 = idx[np.argmax(v0[swing])] / N, idx[np.argmax(v6[swing])] / N
    u0, u6 = (peak0 - ds) / (1 - ds), (peak6 - ds) / (1 - ds)
    assert u6 > u0 + 0.08, (u0, u6)
    assert v6[swing].max() > v0[swing].max()  # the same distance in a shorter late swing: faster
    right = [walker.R_HIP, walker.R_KNEE, walker.R_ANK, walker.R_TOE]
    assert np.allclose(j6[~swing][:, right], j0[~swing][:, right])  # the right leg's stance untouched
    assert not np.allclose(j6[swing][:, right], j0[swing][:, right])
    t = walker.swing_time(np.array([0.0, ds, (1 + ds) / 2, 0.999999]), ds, 0.6)
    assert t[0] == 0.0 and t[1] == pytest.approx(ds) and t[3] == pytest.approx(1.0, abs=1e-5)
    assert t[2] < (1 + ds) / 2  # mid-swing: behind Boulic's clock


def test_envelope_lean_reads_rise_against_fall():
    """Sawtooth spikes rising over 10 columns and falling over 2 (every 16 columns, as the gait data's steps): after
    the 3-column smoothing, between the 10 % crossings, they rise over 9 and fall over 4, log2(9 / 4); the same
    reversed in time: the negative; symmetric spikes: 0; a flat envelope: NaN (no spike, not a spurious lean); a
    plateau and a wiggle on the slow side do not cut its rise short."""
    w, height = 64, 64
    saw = np.zeros(w)
    for start in range(2, 50, 16):
        saw[start:start + 11] = np.arange(11) * 2.4  # up over 10 columns
        saw[start + 11] = 8.0  # down over 2
    sym = np.zeros(w)
    for start in range(2, 50, 16):
        sym[start:start + 9] = [0, 6, 12, 18, 24, 18, 12, 6, 0]
    lean = envelope_lean(np.stack([saw + 10, saw[::-1] + 10, sym + 10, np.full(w, 10.0)]), height)
    assert lean[0] == pytest.approx(np.log2(9 / 4)) and lean[1] == pytest.approx(-lean[0]) and lean[2] == pytest.approx(0.0), lean
    assert np.isnan(lean[3])
    bumpy = saw.copy()
    for start in range(2, 50, 16):
        bumpy[start + 3:start + 5] = bumpy[start + 3]  # a plateau on the way up
        bumpy[start + 7] -= 1.0  # and a wiggle
    assert envelope_lean(bumpy[None] + 10, height)[0] == pytest.approx(lean[0], abs=0.2)


def test_a_skewed_walker_leans_in_its_spectrogram():
    """The statistic on simulated spectrograms: walkers as the gait data's fit renders them (77 GHz, 3 s, a few
    metres in a 28-degree beam, stance foot locked, on a treadmill) with swing_skew 0.6 lean further towards a slow
    rise than the same walkers with Boulic's swing (median +0.08 against -0.26 here); the skew is checked and leaves
    the stored config of skew 0 as it was."""
    def lean(skew: float) -> float:
        cfg = SimulateConfig(seed=5, n_per_class=24, targets=["walker"])
        cfg.radar.carrier_hz, cfg.radar.prf_hz, cfg.radar.duration_s, cfg.radar.beam_elevation_deg = 77e9, 6000.0, 3.0, 28.0
        cfg.walker.speed_mps, cfg.scene.receding_fraction, cfg.scene.aspect_deg = [1.1, 1.3], 0.0, [-10.0, 10.0]
        cfg.scene.range_m = [3.0, 6.0]
        cfg.walker.swing_skew, cfg.walker.foot_lock, cfg.walker.treadmill = skew, True, True
        cfg.processing.image_size = [64, 64]
        cfg.validate()
        return float(np.nanmedian(image_statistics(simulate_dataset(cfg)[0].spectrograms)["lean"]))

    assert lean(0.6) > lean(0.0) + 0.2, (lean(0.0), lean(0.6))
    cfg = SimulateConfig()
    assert "swing_skew" not in config_text(cfg)
    cfg.walker.swing_skew = 0.95
    from mdcli.errors import ConfigError

    with pytest.raises(ConfigError, match="walker.swing_skew"):
        cfg.validate()


def test_a_walker_on_a_treadmill_stays_at_its_range_and_its_torso_at_0_hz():
    """walker.treadmill: the torso line sits at 0 Hz instead of the walking speed's Doppler, the stored radial
    speed is ~0, and at a few metres in a narrow elevation beam the window keeps its brightness where a walker
    nearing the radar changes it over the window (the time trend the gait data lack)."""
    from mdcli.diagnose.domain import time_course

    def run(treadmill: bool):
        cfg = SimulateConfig(seed=2, n_per_class=12, targets=["walker"])
        cfg.radar.carrier_hz, cfg.radar.prf_hz, cfg.radar.duration_s, cfg.radar.beam_elevation_deg = 77e9, 6000.0, 3.0, 28.0
        cfg.walker.speed_mps, cfg.walker.foot_lock, cfg.walker.treadmill = [1.1, 1.3], True, treadmill
        cfg.scene.range_m, cfg.scene.aspect_deg, cfg.scene.receding_fraction = [3.0, 4.0], [-5.0, 5.0], 0.0
        cfg.processing.image_size = [64, 64]
        cfg.validate()
        return simulate_dataset(cfg)[0]

    ground, belt = run(False), run(True)
    v_torso = lambda d: np.median(d.doppler_hz[np.argmax(d.spectrograms, axis=1)])  # noqa: E731
    bulk = 2 * 1.2 / (299792458.0 / 77e9)  # the walking speed's Doppler, about 616 Hz
    assert abs(v_torso(belt)) < 0.1 * bulk and abs(v_torso(ground) - bulk) < 0.15 * bulk, (v_torso(belt), v_torso(ground))
    assert np.all(np.abs(belt.params["radial_speed_mps"]) < 0.05) and np.all(ground.params["radial_speed_mps"] > 0.9)
    assert abs(time_course(belt.spectrograms)["slope"]) < 0.05 < abs(time_course(ground.spectrograms)["slope"])


def test_the_treadmill_belt_is_a_line_at_minus_the_walking_speed():
    """walker.belt_rcs: the belt's top run alone returns its RCS (isotropic beam; averaged over 40 belts, as one
    belt's patches add up to a speckle draw) as one Doppler line at minus the walking speed (the run recedes from a
    radar the walker faces; the line's width is the patches' few degrees of elevation); on the walker's spectrogram
    it brightens the rows at -v, not those of the torso."""
    from mdcli.sim.scene import draw_scene
    from mdcli.sim.signal import point_returns

    prf, dur, lam, v = 2000.0, 2.0, 299792458.0 / 77e9, 1.2
    t = np.arange(int(prf * dur)) / prf
    rng = np.random.default_rng(0)
    cfg = SimulateConfig()
    cfg.scene.range_m, cfg.scene.aspect_deg, cfg.scene.receding_fraction = [4.0, 4.0], [0.0, 0.0], 0.0
    scene = draw_scene(cfg.scene, t, 1.0, lam, rng)
    p = {"speed_mps": v, "belt_rcs": 0.01}
    powers = []
    for _ in range(40):
        r, a = walker.belt_ranges(p, scene, rng)
        sig = point_returns(scene.up(r), scene.up(a), lam)
        powers.append(np.mean(np.abs(sig) ** 2))
    assert np.mean(powers) == pytest.approx(0.01, rel=0.2), np.mean(powers)
    spec = np.abs(np.fft.fftshift(np.fft.fft(sig * np.hanning(len(sig))))) ** 2
    f = np.fft.fftshift(np.fft.fftfreq(len(sig), 1 / prf))
    peak = f[spec.argmax()]
    assert -2 * v / lam * 1.0 - 5 < peak < -2 * v / lam * np.cos(np.radians(20)), peak  # -v, a little less off-axis
    share = spec[np.abs(f - peak) < 40].sum() / spec.sum()
    assert share > 0.8, share
    # under a walker drifting 0.4 m/s over the deck the belt carries the stance foot at drift - v
    r, a = walker.belt_ranges({**p, "drift_mps": 0.4}, scene, rng)
    sig = point_returns(scene.up(r), scene.up(a), lam)
    spec = np.abs(np.fft.fftshift(np.fft.fft(sig * np.hanning(len(sig))))) ** 2
    assert abs(f[spec.argmax()] + 2 * (v - 0.4) / lam) < 0.06 * 2 * (v - 0.4) / lam, f[spec.argmax()]

    def rows(belt: float) -> np.ndarray:
        c = SimulateConfig(seed=4, n_per_class=4, targets=["walker"])
        c.radar.carrier_hz, c.radar.prf_hz, c.radar.duration_s = 77e9, 4000.0, 2.0
        c.walker.speed_mps, c.walker.foot_lock, c.walker.treadmill, c.walker.belt_rcs = [v, v], True, True, belt
        c.scene.range_m, c.scene.aspect_deg, c.scene.receding_fraction = [4.0, 4.0], [0.0, 0.0], 0.0
        c.processing.image_size = [64, 32]
        c.validate()
        d = simulate_dataset(c)[0]
        return d.doppler_hz, d.spectrograms.mean((0, 2))

    hz, none = rows(0.0)
    _, belt = rows(0.05)
    at_belt, at_torso = np.argmin(np.abs(hz + 2 * v / lam)), np.argmin(np.abs(hz))
    assert belt[at_belt] > none[at_belt] + 0.1 and abs(belt[at_torso] - none[at_torso]) < 0.02, (belt - none).round(2)


def test_a_belt_needs_a_treadmill_and_a_sane_rcs(tmp_path):
    from mdcli.errors import ConfigError
    from mdcli.sim.like import validate_like

    cfg = SimulateConfig()
    assert "belt_rcs" not in config_text(cfg)  # the default (no belt) leaves stored configs as they were
    cfg.walker.belt_rcs = 0.01
    with pytest.raises(ConfigError, match="walker.belt_rcs.*treadmill"):
        cfg.validate()
    cfg.walker.treadmill, cfg.walker.belt_rcs = True, 2.0
    with pytest.raises(ConfigError, match="walker.belt_rcs"):
        cfg.validate()
    cfg.walker.treadmill, cfg.walker.belt_rcs = False, 0.0
    (tmp_path / "m.h5").write_bytes(b"")
    cfg.like.file, cfg.like.fit = str(tmp_path / "m.h5"), ["belt_rcs"]
    with pytest.raises(ConfigError, match="like.fit: belt_rcs needs walker.treadmill"):
        validate_like(cfg)


def test_a_drift_over_the_treadmill_moves_the_torso_line_off_0_hz():
    """walker.treadmill_drift_mps: each walk's speed over the deck, drawn from the range; the torso line sits at that
    speed's Doppler and /params radial_speed_mps is the drift (the gait data's torso row moves ~2 rows between
    windows, where the treadmill walkers' stayed on one row). [0, 0] draws nothing: the run is as without it."""
    def run(drift: list[float], n: int = 8):
        cfg = SimulateConfig(seed=3, n_per_class=n, targets=["walker"])
        cfg.radar.carrier_hz, cfg.radar.prf_hz, cfg.radar.duration_s = 77e9, 4000.0, 2.0
        cfg.walker.speed_mps, cfg.walker.foot_lock, cfg.walker.treadmill = [1.1, 1.3], True, True
        cfg.walker.treadmill_drift_mps = drift
        cfg.scene.range_m, cfg.scene.aspect_deg, cfg.scene.receding_fraction = [4.0, 4.0], [0.0, 0.0], 0.0
        cfg.processing.image_size = [128, 32]
        cfg.validate()
        return simulate_dataset(cfg)[0]

    lam = 299792458.0 / 77e9
    plain, fixed = run([0.0, 0.0]), run([0.3, 0.3])
    torso = lambda d: np.median(d.doppler_hz[np.argmax(d.spectrograms, axis=1)], axis=1)  # noqa: E731
    assert np.all(np.abs(torso(plain)) < 40) and np.all(np.abs(torso(fixed) - 2 * 0.3 / lam) < 60), (torso(plain), torso(fixed))
    assert np.allclose(fixed.params["radial_speed_mps"], 0.3, atol=0.03)
    drawn = run([-0.3, 0.3], n=16)
    v_r = drawn.params["radial_speed_mps"]
    assert v_r.min() < -0.1 and v_r.max() > 0.1 and np.all(np.abs(v_r) < 0.33), v_r
    # the drift's own stream: the walks' other draws are the plain run's
    assert np.array_equal(drawn.params["snr_db"][:8], plain.params["snr_db"])
    cfg = SimulateConfig()
    cfg.walker.treadmill_drift_mps = [0.1, 0.2]
    from mdcli.errors import ConfigError

    with pytest.raises(ConfigError, match="treadmill_drift_mps.*treadmill=true"):
        cfg.validate()
    cfg.walker.treadmill, cfg.walker.treadmill_drift_mps = True, [0.0, 2.0]
    with pytest.raises(ConfigError, match="treadmill_drift_mps"):
        cfg.validate()
