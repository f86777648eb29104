"""The distributed-scatterer walker body (`walker.points_per_segment`, issue 36): K points along each segment."""

from __future__ import annotations

import numpy as np
import pytest

from mdcli.sim import walker
from mdcli.sim.config import SimulateConfig, config_text
from mdcli.sim.dataset import simulate_dataset
from mdcli.sim.signal import point_returns, stft_power
from tests.conftest import TINY, WAVELENGTH, make_scene

PRF = 4000.0
WALK = {"height_m": 1.8, "speed_mps": 1.4, "phase0": 0.1}
SHANK = walker.SEGMENTS.index((walker.L_KNEE, walker.L_ANK, 0.06))


def _signal(k: int, seed: int, rows=None, duration: float = 2.0) -> np.ndarray:
    """Noise-free signal of the walker (or of the segment rows given) with K points per segment."""
    sc = make_scene(PRF, duration, range_m=20.0)
    body = walker.distributed_body(k, np.random.default_rng(seed)) if k > 1 else None
    r, amp = walker.walker_ranges(WALK, sc, body)
    if rows is not None:
        r, amp = r[rows], amp[rows]
    return point_returns(sc.up(r), sc.up(amp), WAVELENGTH)


def test_k_points_keep_the_walkers_rcs_power():
    """Each point carries RCS / K with a random phase: the expected power of the sum is the K = 1 body's (time mean of
    |signal|^2, averaged over the random bodies), not K times it (coherent) nor 1 / K of it."""
    p1 = np.mean(np.abs(_signal(1, 0)) ** 2)
    for k in (4, 16):
        pk = np.mean([np.mean(np.abs(_signal(k, seed)) ** 2) for seed in range(48)])
        assert pk / p1 == pytest.approx(1.0, abs=0.2), (k, pk / p1)
    sc = make_scene(PRF, 1.0, range_m=20.0)
    _, a1 = walker.walker_ranges(WALK, sc)
    _, a8 = walker.walker_ranges(WALK, sc, walker.distributed_body(8, np.random.default_rng(0)))
    np.testing.assert_allclose((a8[:-2] ** 2).reshape(16, 8, -1).sum(1), a1[:16] ** 2, rtol=1e-12)  # RCS split


def _occupied(sig: np.ndarray, floor_db: float = 20.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per STFT column: lowest and highest Doppler within floor_db of the column's peak, and the column times."""
    power, f, t = stft_power(sig, PRF, 128, 1024, 120)
    db = 10 * np.log10(power + 1e-30)
    on = db > db.max(0) - floor_db
    lo = np.array([f[c].min() for c in on.T])
    hi = np.array([f[c].max() for c in on.T])
    return lo, hi, t


def test_a_shank_fills_the_doppler_between_its_knee_and_ankle():
    """A point at fraction s of the shank moves at (1 - s) v_knee + s v_ankle: K points fill the band between the two
    joints' radial velocities (the measured 'filled clouds'), and nothing reaches beyond it."""
    sc = make_scene(PRF, 2.0, range_m=20.0)
    jw = walker.walker_joints(WALK, sc)
    dt = (sc.t[1] - sc.t[0]) * sc.factor
    tc = sc.tc
    doppler = {j: np.interp(sc.t, 0.5 * (tc[1:] + tc[:-1]),  # f_D = -2 dR/dt / lambda of each joint
                            -2 * np.diff(np.linalg.norm(sc.radar_pos - jw[:, j], axis=-1)) / dt / WAVELENGTH)
               for j in (walker.L_KNEE, walker.L_ANK)}
    widths = {}
    for k in (1, 4, 16):
        rows = np.arange(SHANK * k, (SHANK + 1) * k)
        lo, hi, t = _occupied(_signal(k, 3, rows))
        # the joints' Doppler over each STFT window (128 samples), widened by the Hann main lobe (2 bins of 31 Hz)
        idx = np.clip(np.round(t * PRF).astype(int)[:, None] + np.arange(-64, 64), 0, len(sc.t) - 1)
        j_lo = np.minimum(doppler[walker.L_KNEE][idx], doppler[walker.L_ANK][idx]).min(1) - 2 * PRF / 128
        j_hi = np.maximum(doppler[walker.L_KNEE][idx], doppler[walker.L_ANK][idx]).max(1) + 2 * PRF / 128
        inside = (lo >= j_lo) & (hi <= j_hi)
        assert inside.mean() >= 0.95, (k, inside.mean())
        # in the swing (knee and ankle apart by over 8 bins at the window centre): the width against that gap
        gap = np.abs(doppler[walker.L_ANK] - doppler[walker.L_KNEE])[np.round(t * PRF).astype(int)]
        swing = gap > 8 * PRF / 128
        assert swing.sum() >= 20
        widths[k] = np.median(((hi - lo) / gap)[swing])
    assert widths[1] < widths[4] < widths[16], widths
    assert widths[1] < 0.4 and widths[16] > 0.7, widths


def test_one_point_per_segment_is_todays_midpoint_body(monkeypatch):
    """K = 1 is the segment-midpoint model: the midpoints and toes of the joints, no body stream drawn, and the
    config text of plain files unchanged (no new key)."""
    sc = make_scene(PRF, 1.0, range_m=20.0)
    jw = walker.walker_joints(WALK, sc)
    mid = 0.5 * (jw[:, walker.SEG_A] + jw[:, walker.SEG_B])
    pts = np.concatenate([mid, jw[:, list(walker.TOES)]], 1)
    r, _ = walker.walker_ranges(WALK, sc)
    np.testing.assert_array_equal(r, np.linalg.norm(sc.radar_pos - pts, axis=-1).T)

    cfg = SimulateConfig(seed=5, n_per_class=3, targets=["walker"])
    cfg.processing.image_size = [32, 32]
    base, _ = simulate_dataset(cfg)
    assert "points_per_segment" not in config_text(cfg)
    monkeypatch.setattr(walker, "distributed_body", lambda *a: pytest.fail("K = 1 must not draw a body"))
    cfg.walker.points_per_segment = 1
    again, _ = simulate_dataset(cfg)
    assert again.spectrograms.tobytes() == base.spectrograms.tobytes()


def test_more_points_change_the_body_only():
    """K > 1 draws its body from a stream of its own: the scene, speed, phase and noise of each sample stay."""
    cfg = SimulateConfig(seed=5, n_per_class=3, targets=["walker"])
    cfg.processing.image_size = [32, 32]
    one, _ = simulate_dataset(cfg)
    cfg.walker.points_per_segment = 8
    many, _ = simulate_dataset(cfg)
    for name in ("speed_mps", "height_m", "aspect_deg", "snr_db", "range_m"):
        np.testing.assert_array_equal(one.params[name], many.params[name])
    np.testing.assert_allclose(one.params["radial_speed_mps"], many.params["radial_speed_mps"], rtol=1e-3)
    assert not np.array_equal(one.spectrograms, many.spectrograms)
    assert "points_per_segment: 8" in config_text(cfg)


def test_range_gate_keeps_the_torso_and_drops_what_lies_beyond_it():
    """walker.range_gate_m: the range bins kept around the torso (the strongest return). The torso keeps its amplitude,
    a scatterer dR from it keeps exp(-(2 dR / w)^4 / 2): -4.3 dB at the gate's edge, under -60 dB one width away."""
    sc = make_scene(PRF, 2.0, range_m=5.0)
    r, amp = walker.walker_ranges(WALK, sc)
    rg, ag = walker.walker_ranges(WALK, sc, gate_m=0.3)
    np.testing.assert_array_equal(r, rg)
    dr = r - r[walker.TORSO_SEGMENT]
    np.testing.assert_allclose(ag, amp * np.exp(-0.5 * (dr / 0.15) ** 4), rtol=1e-12)
    assert np.array_equal(ag[walker.TORSO_SEGMENT], amp[walker.TORSO_SEGMENT])
    toes = slice(16, 18)
    assert np.abs(dr[toes]).max() > 0.3 and (ag[toes] / amp[toes]).min() < 1e-3  # the feet leave the gate mid-stride


@pytest.mark.parametrize("key,value,message", [
    ("points_per_segment", "0", "walker.points_per_segment"), ("points_per_segment", "-2", "walker.points_per_segment"),
    ("points_per_segment", "2.5", "points_per_segment"), ("points_per_segment", "many", "points_per_segment"),
    ("range_gate_m", "-0.1", "walker.range_gate_m")])
def test_bad_body_options_are_a_one_line_error(tmp_path, runner, key, value, message):
    from mdcli.cli import app

    res = runner.invoke(app, ["simulate", "--config", str(TINY / "simulate.yaml"), "--set",
                              f"walker.{key}={value}", "-o", str(tmp_path / "x.h5")])
    assert res.exit_code == 2, res.output
    assert message in res.output and len(res.output.strip().splitlines()) == 1, res.output
    assert not (tmp_path / "x.h5").exists()
