"""The stance-foot lock (`walker.foot_lock`, issue 36): a supporting foot stands still on the ground."""

from __future__ import annotations

import numpy as np
import pytest

from mdcli.sim import walker
from mdcli.sim.config import SimulateConfig, config_text
from mdcli.sim.dataset import simulate_dataset
from mdcli.sim.signal import point_returns, stft_power
from tests.conftest import WAVELENGTH, make_scene

HEIGHT = 1.75
N = 1000  # phases per cycle


def _ground_velocity(speed: float, lock: bool, cadence: float = 1.0) -> tuple[np.ndarray, np.ndarray, float]:
    """Body-frame joints over one cycle (N, 17, 3), their ground velocities along the walk (N, 17), the support share."""
    rv = walker.relative_velocity(speed, HEIGHT)
    j = walker.joints_body_frame(HEIGHT, rv, np.arange(N) / N, foot_lock=lock, cadence=cadence)
    vx = (np.roll(j[..., 0], -1, 0) - np.roll(j[..., 0], 1, 0)) * N / (2 * walker.cycle_duration(rv) / cadence) + speed
    return j, vx, walker.support_duration(rv)


@pytest.mark.parametrize("speed", [0.7, 1.2, 1.6])
def test_the_supporting_foot_stands_still(speed):
    """From the landing (Boulic's heel strike is at phase 0 of the right leg, but the heel moves on forwards until
    about 0.1) to toe-off (Boulic's D_s) the foot point on the ground (the heel until the toe is the lower, each
    against its lowest height) moves along it at under 0.05 m/s for 95 % of the time (the rest: the toe swinging
    down onto the ground), where Boulic's angles alone slide it backwards at 0.35 m/s or more."""
    _, free_vx, _ = _ground_velocity(speed, False)
    landing = np.argmax(free_vx[:, walker.R_ANK] <= 0.0) / N
    assert 0.05 < landing < 0.15, landing
    for lock in (False, True):
        j, vx, ds = _ground_velocity(speed, lock)
        za, zt = j[:, walker.R_ANK, 2], j[:, walker.R_TOE, 2]
        heel = (za - za.min()) <= (zt - zt.min())
        contact = np.where(heel, vx[:, walker.R_ANK], vx[:, walker.R_TOE])
        ph = np.arange(N) / N
        stance = contact[(ph > landing + 0.01) & (ph < ds - 0.03)]  # off the landing and toe-off instants
        if not lock:
            assert stance.min() < -0.35, stance.min()
        else:
            assert np.quantile(np.abs(stance), 0.95) < 0.05, np.quantile(np.abs(stance), 0.95)
            assert np.median(np.abs(stance)) < 0.015, np.median(np.abs(stance))


def _stance_speed(speed: float, cadence: float) -> np.ndarray:
    j, vx, ds = _ground_velocity(speed, True, cadence)
    za, zt = j[:, walker.R_ANK, 2], j[:, walker.R_TOE, 2]
    contact = np.where((za - za.min()) <= (zt - zt.min()), vx[:, walker.R_ANK], vx[:, walker.R_TOE])
    ph = np.arange(N) / N
    return np.abs(contact[(ph > 0.16) & (ph < ds - 0.03)])


@pytest.mark.parametrize("cadence", [0.8, 1.25])
def test_the_supporting_foot_stands_still_at_another_cadence(cadence):
    """walker.cadence_scale: at the same speed a slower cadence is a longer stride; the lock's offsets follow the
    cycle that is simulated, so the stance foot still stands still (the lock tabulated for Boulic's cycle would let it
    slide at about (1 - cadence) x the speed)."""
    stance = _stance_speed(1.0, cadence)
    assert np.median(stance) < 0.015 and np.quantile(stance, 0.9) < 0.05, np.quantile(stance, [0.5, 0.9])


@pytest.mark.parametrize("speed,cadence", [(1.0, 1.6), (0.7, 0.8), (0.7, 2.0)])
def test_the_supporting_foot_stays_nearly_still_towards_the_ends_of_the_range(speed, cadence):
    """Cadences far from Boulic's: the foot creeps a little more (at most 0.06 m/s in the worst tenth of the
    stance), still an order below the unlocked slide (0.35 m/s or more)."""
    stance = _stance_speed(speed, cadence)
    assert np.median(stance) < 0.025 and np.quantile(stance, 0.9) < 0.06, np.quantile(stance, [0.5, 0.9])


def test_a_stride_beyond_the_legs_reach_slides():
    """The documented limit: 1.6 m/s at cadence 0.8 asks a 1.75 m walker for a 2.2 m stride; the leg cannot reach
    the locked foot, so it slides (median over 0.2 m/s), where at cadence 1 it stands still."""
    assert np.median(_stance_speed(1.6, 0.8)) > 0.2 and np.median(_stance_speed(1.6, 1.0)) < 0.025


@pytest.mark.parametrize("speed", [0.7, 1.6])
def test_the_lock_keeps_the_leg_lengths_and_the_body(speed):
    """Two-bone IK: thigh, shank and foot keep their lengths at every phase; the hips, the trunk, the arms and the
    head move as without the lock; over a cycle each foot still advances one stride (the walk is periodic)."""
    free, _, _ = _ground_velocity(speed, False)
    j, vx, _ = _ground_velocity(speed, True)
    for a, b in ((walker.L_HIP, walker.L_KNEE), (walker.L_KNEE, walker.L_ANK), (walker.L_ANK, walker.L_TOE),
                 (walker.R_HIP, walker.R_KNEE), (walker.R_KNEE, walker.R_ANK), (walker.R_ANK, walker.R_TOE)):
        np.testing.assert_allclose(np.linalg.norm(j[:, a] - j[:, b], axis=-1),
                                   np.linalg.norm(free[:, a] - free[:, b], axis=-1), rtol=1e-9, atol=1e-12)
    still = [walker.BASE, walker.NECK, walker.HEAD, walker.L_SHO, walker.R_SHO, walker.L_ELB, walker.R_ELB,
             walker.L_HAND, walker.R_HAND, walker.L_HIP, walker.R_HIP]
    np.testing.assert_array_equal(j[:, still], free[:, still])
    assert not np.allclose(j[:, walker.R_ANK], free[:, walker.R_ANK], atol=0.02)  # the foot did move
    # the knee bends forward (no snap through the straight leg): its ground speed stays within the swing's range
    assert vx[:, walker.R_KNEE].min() > 0.0 and vx[:, walker.R_KNEE].max() < 2.5 * speed


def _below_zero_share(lock: bool, speed: float) -> float:
    """Share of an approaching walker's spectrogram power at radial velocities below -0.15 m/s (moving away)."""
    prf = 4000.0
    sc = make_scene(prf, 4.0, range_m=20.0)
    r, amp = walker.walker_ranges({"height_m": HEIGHT, "speed_mps": speed, "phase0": 0.1, "foot_lock": lock}, sc)
    power, f, _ = stft_power(point_returns(sc.up(r), sc.up(amp), WAVELENGTH), prf, 128, 1024, 200)
    return float(power[f * WAVELENGTH / 2 < -0.15].sum() / power.sum())


@pytest.mark.parametrize("speed", [0.7, 1.2])
def test_the_spectrogram_loses_the_sliding_feet_tail(speed):
    """Nothing of a walker coming towards the radar moves away from it but a sliding foot: the lock removes the
    power the sliding feet put under 0 Hz (at least 3x less)."""
    free, locked = _below_zero_share(False, speed), _below_zero_share(True, speed)
    assert locked < free / 3, (free, locked)


def test_foot_lock_is_a_config_switch_recorded_only_when_on():
    cfg = SimulateConfig(seed=5, n_per_class=3, targets=["walker"])
    cfg.processing.image_size = [32, 32]
    base, _ = simulate_dataset(cfg)
    assert "foot_lock" not in config_text(cfg)
    cfg.walker.foot_lock = True
    locked, _ = simulate_dataset(cfg)
    assert "foot_lock: true" in config_text(cfg)
    for name in ("speed_mps", "height_m", "aspect_deg", "snr_db"):
        np.testing.assert_array_equal(base.params[name], locked.params[name])
    assert not np.array_equal(base.spectrograms, locked.spectrograms)


def test_rough_segments_scatter_by_area_and_keep_the_swinging_leg_bright():
    """walker.diffuse: the torso broadside keeps its specular RCS (pi c^2); a thigh seen 30 deg off broadside keeps
    about a ninth of its broadside RCS as a smooth spheroid but nearly all of it as a rough one (the side shows 0.87
of its area, the end cap adds 0.13); over a walk the swinging
    thigh's RCS then varies by under 2x where the smooth one flashes (over 5x)."""
    a, c = walker.SEG_RADIUS[walker.TORSO_SEGMENT], 0.5 * walker.L_TORSO * HEIGHT
    g = np.pi * c / (4 * a)
    np.testing.assert_allclose(walker.diffuse_rcs(a, c, np.array(0.0), g), walker.ellipsoid_rcs(a, c, np.array(0.0)))
    at, ct = 0.07, 0.5 * walker.L_THIGH * HEIGHT
    off = np.cos(np.deg2rad(60.0))  # 30 deg off broadside: 60 deg from the segment's axis
    spec = walker.ellipsoid_rcs(at, ct, off) / walker.ellipsoid_rcs(at, ct, 0.0)
    diff = walker.diffuse_rcs(at, ct, off, g) / walker.diffuse_rcs(at, ct, 0.0, g)
    assert spec < 0.15 and 0.95 < diff < 1.0, (spec, diff)
    sc = make_scene(4000.0, 2.0, range_m=10.0)
    thigh = [i for i, s in enumerate(walker.SEGMENTS) if s[:2] == (walker.R_HIP, walker.R_KNEE)][0]
    swing = {}
    for w in (0.0, 1.0):
        _, amp = walker.walker_ranges({"height_m": HEIGHT, "speed_mps": 1.2, "phase0": 0.0, "diffuse": w}, sc)
        rcs = amp[thigh] ** 2
        swing[w] = rcs.max() / rcs.min()
    assert swing[0.0] > 5 and swing[1.0] < 2, swing


@pytest.mark.parametrize("key, bad, message, good", [
    ("diffuse", 1.5, "walker.diffuse: a share from 0", 0.5),
    ("leg_rcs", 0.0, "walker.leg_rcs: the legs' RCS relative to Chen's", 3.0),
])
def test_scattering_parameters_are_checked_and_recorded_only_when_set(key, bad, message, good):
    cfg = SimulateConfig(seed=5, n_per_class=1, targets=["walker"])
    assert key not in config_text(cfg) and "cadence_scale" not in config_text(cfg)
    setattr(cfg.walker, key, bad)
    with pytest.raises(Exception, match=message):
        cfg.validate()
    setattr(cfg.walker, key, good)
    cfg.validate()
    assert f"{key}: {good}" in config_text(cfg)


def test_leg_rcs_scales_the_legs_and_toes_only_and_moves_power_above_the_torso_line():
    """walker.leg_rcs g: the thighs', shanks', feet's and toes' amplitudes times sqrt(g), every other segment as it
    was; in the spectrogram of a walker coming towards the radar more of the power lies above the torso's Doppler
    (the swinging leg outruns the body), and the share grows with g."""
    sc = make_scene(4000.0, 2.0, range_m=10.0)
    base = {"height_m": HEIGHT, "speed_mps": 1.2, "phase0": 0.1}
    r1, a1 = walker.walker_ranges(base, sc)
    r4, a4 = walker.walker_ranges({**base, "leg_rcs": 4.0}, sc)
    np.testing.assert_array_equal(r1, r4)
    legs = list(walker.LEG_SEGMENTS) + [16, 17]  # the leg segments, then the two toe tips
    others = [i for i in range(18) if i not in legs]
    np.testing.assert_allclose(a4[legs], 2.0 * a1[legs])
    np.testing.assert_array_equal(a4[others], a1[others])
    prf = 4000.0
    share = {}
    for g in (1.0, 4.0):
        r, amp = walker.walker_ranges({**base, "leg_rcs": g}, sc)
        power, f, _ = stft_power(point_returns(sc.up(r), sc.up(amp), WAVELENGTH), prf, 128, 512, 100)
        v = f * WAVELENGTH / 2  # radial speed of each Doppler bin; the walker comes towards the radar at about 1.2 m/s
        share[g] = float(power[v > 1.2 * 1.6].sum() / power.sum())
    assert share[4.0] > 1.5 * share[1.0], share
