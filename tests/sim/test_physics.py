"""Physics pinned to textbook values (V.C. Chen, The Micro-Doppler Effect in Radar)."""

from __future__ import annotations

import numpy as np
import pytest

from mdcli.sim import rotor, walker
from mdcli.sim.signal import point_returns, stft_power
from mdcli.sim.vehicle import wheel_points
from tests.conftest import CARRIER_HZ, WAVELENGTH, limb_envelope_period, make_scene

C = 299_792_458.0


def _walker(height, speed, aspect=0.0, duration=8.0, prf=4000.0):
    sc = make_scene(prf, duration, aspect_deg=aspect, range_m=80.0, radar_height=1.0)
    p = {"height_m": height, "speed_mps": speed, "phase0": 0.0}
    r, amp = walker.walker_ranges(p, sc)
    return sc, sc.up(r), sc.up(amp)


@pytest.mark.parametrize("speed,height", [(1.4, 1.8), (0.9, 1.6), (2.0, 1.9)])
def test_walker_torso_ridge_at_two_v_fc_over_c(speed, height):
    sc, r, amp = _walker(height, speed)
    torso = point_returns(r[[walker.TORSO_SEGMENT]], amp[[walker.TORSO_SEGMENT]], WAVELENGTH)
    power, f, _ = stft_power(torso, 4000.0, 512, 8192, 400)
    ridge = f[power.argmax(0)].mean()
    expected = 2 * speed * CARRIER_HZ / C
    assert ridge == pytest.approx(expected, rel=0.02)


@pytest.mark.parametrize("speed,height", [(1.4, 1.8), (0.8, 1.7), (2.2, 1.85)])
def test_gait_cycle_is_1_346_over_sqrt_rv(speed, height):
    sc, r, amp = _walker(height, speed, duration=10.0)
    sig = point_returns(r, amp, WAVELENGTH)
    cycle = walker.cycle_duration(walker.relative_velocity(speed, height))
    assert cycle == pytest.approx(1.346 / np.sqrt(speed / (0.491 * height)))
    assert limb_envelope_period(sig, 4000.0, 2000, near=cycle) == pytest.approx(cycle, rel=0.03)


def test_walker_translates_at_v_not_rv():
    """Public ports advance 1.346 sqrt(rv) per cycle (rv m/s); the body must move at v m/s."""
    sc, r, _ = _walker(1.8, 1.4, duration=4.0)
    torso = r[walker.TORSO_SEGMENT]
    closing = (torso[0] - torso[-1]) / (sc.t[-1] - sc.t[0])
    assert closing == pytest.approx(1.4, rel=0.01)


def test_walker_limbs_swing_faster_than_torso():
    sc, r, _ = _walker(1.8, 1.4)
    speed = np.abs(np.diff(r, axis=1)).max(1) / (sc.t[1] - sc.t[0])
    foot = speed[-2:].max()
    assert 3.0 * 1.4 < foot < 6.0 * 1.4  # toe peaks at ~4.4 v in the Boulic model
    assert speed[walker.TORSO_SEGMENT] < 1.5 * 1.4


def _blade_spectrum_edge(rpm, length, altitude, n_blades, range_m=50.0):
    omega = 2 * np.pi * rpm / 60
    beta = np.arctan2(altitude, range_m)
    f_max = 2 * omega * length * np.cos(beta) / WAVELENGTH
    prf = 16 * f_max  # far from aliasing
    sc = make_scene(prf, 0.1 if rpm > 1000 else 0.5, range_m=range_m, radar_height=0.0)
    hub = sc.track(0.0, altitude)[None]
    sig, f_param = rotor.blade_returns(sc, hub, sc.heading, sc.lateral, [rpm], n_blades, length, 1.0, [0.3])
    return sc, sig, f_param, f_max, prf


@pytest.mark.parametrize("rpm,length,altitude,n_blades", [(3000, 0.15, 20, 2), (2000, 0.25, 10, 3), (400, 6.0, 40, 4)])
def test_rotor_max_doppler_is_2_omega_L_cos_beta_over_lambda(rpm, length, altitude, n_blades):
    sc, sig, f_param, f_max, prf = _blade_spectrum_edge(rpm, length, altitude, n_blades)
    assert f_param == pytest.approx(f_max, rel=0.005)
    power, f, _ = stft_power(sig, prf, 512, 8192, 1000)
    peak_db = 10 * np.log10(power.max(1))
    support = f[peak_db >= peak_db.max() - 10]  # -10 dB extent of the time-max spectrum
    assert support.max() == pytest.approx(f_max, rel=0.02)
    assert -support.min() == pytest.approx(f_max, rel=0.02)


@pytest.mark.parametrize("n_blades", [2, 3, 4, 5])
def test_blade_flash_period(n_blades):
    rpm = 3000.0
    sc, sig, _, f_max, prf = _blade_spectrum_edge(rpm, 0.15, 20, n_blades)
    hop = 3
    power, f, t = stft_power(sig, prf, 64, 2048, (len(sig) - 64) // hop + 1)
    assert np.allclose(np.diff(t), hop / prf)  # evenly spaced frames
    flash = power[np.abs(f) > 0.3 * f_max].sum(0)  # broadband energy: high only at flashes
    flash = flash - flash.mean()
    n = 1 << 16
    spec = np.abs(np.fft.rfft(flash * np.hanning(len(flash)), n=n))
    freq = np.fft.rfftfreq(n, t[1] - t[0])
    spec[freq < 20] = 0
    f_rot = rpm / 60
    expected = n_blades * f_rot if n_blades % 2 == 0 else 2 * n_blades * f_rot
    assert freq[spec.argmax()] == pytest.approx(expected, rel=0.02)


def test_wheel_top_moves_at_2v_and_contact_point_is_still():
    sc = make_scene(4000.0, 2.0, range_m=60.0, radar_height=0.5)
    v, radius = 4.0, 0.3
    centre = sc.track(v, radius)[None]
    pts = wheel_points(sc, centre, radius, v, 64, np.random.default_rng(0))[0]  # (64, Jc, 3)
    dt = (sc.t[1] - sc.t[0]) * sc.factor
    speed = np.linalg.norm(np.diff(pts, axis=1), axis=-1) / dt
    assert speed.max() == pytest.approx(2 * v, rel=0.01)
    assert speed.min() < 0.01 * v
    top = pts[..., 2].argmax(axis=0)  # the highest rim point at each time moves at ~2v
    top_speed = speed[top[:-1], np.arange(speed.shape[1])]
    assert np.median(top_speed) == pytest.approx(2 * v, rel=0.01)


def test_vehicle_doppler_spans_zero_to_2v():
    from mdcli.sim.vehicle import vehicle_signal

    v = 4.0
    sc = make_scene(4000.0, 2.0, range_m=200.0, radar_height=0.5)
    p = {"speed_mps": v, "wheel_radius_m": 0.3, "wheelbase_m": 2.7, "rim_points": 8}
    _, fmax, v_r = vehicle_signal(p, sc, np.random.default_rng(1))
    assert v_r == pytest.approx(v, rel=0.01)
    assert fmax == pytest.approx(2 * (2 * v) / WAVELENGTH, rel=0.02)


@pytest.mark.parametrize("aspect,sign", [(0.0, 1), (30.0, 1), (180.0, -1), (150.0, -1)])
def test_approaching_targets_give_positive_doppler(aspect, sign):
    sc, r, amp = _walker(1.75, 1.3, aspect=aspect, duration=3.0)
    sig = point_returns(r, amp, WAVELENGTH)
    power, f, _ = stft_power(sig, 4000.0, 256, 1024, 100)
    centroid = (power * f[:, None]).sum() / power.sum()
    assert np.sign(centroid) == sign
    assert centroid == pytest.approx(2 * 1.3 * np.cos(np.deg2rad(aspect)) / WAVELENGTH, rel=0.25)


# --- Checks that fail on the errors an independent review found (issue 36, part 4) ---


def test_walker_limb_edge_is_the_toe_at_chens_3_8_to_4_7_torso_doppler():
    """Chen's reference walker reaches 3.8-4.7x the torso Doppler at the limb edge (v = 0.9-2 m/s): the toe tip.
    Foot segments radiating from their midpoints alone reach only 3.5-4.2x."""
    ratios = []
    for speed, height in [(0.9, 1.6), (1.4, 1.8), (2.0, 1.9)]:
        sc = make_scene(4000.0, 6.0, range_m=80.0, radar_height=1.0)
        r, _ = walker.walker_ranges({"height_m": height, "speed_mps": speed, "phase0": 0.0}, sc)
        closing = -np.diff(r, axis=1) / ((sc.t[1] - sc.t[0]) * sc.factor)  # (scatterers, Jc - 1)
        assert closing.max(1).argmax() in (16, 17)  # the edge is a toe
        ratios.append(closing.max() / closing[walker.TORSO_SEGMENT].mean())
    assert 3.8 <= min(ratios) and max(ratios) <= 4.7, ratios


@pytest.mark.parametrize("speed,height", [(1.4, 1.8), (0.8, 1.7), (2.2, 1.85)])
def test_one_foot_repeats_once_per_gait_cycle(speed, height):
    """Both feet together repeat every step (half a cycle), so a walker at half its gait rate still shows the
    nominal cycle in the whole-body envelope; one foot alone repeats once per cycle, searched over 0.4-2.5 cycles."""
    sc, r, amp = _walker(height, speed, duration=10.0)
    right_foot = [walker.SEGMENTS.index((walker.R_ANK, walker.R_TOE, 0.05)), 16 + walker.TOES.index(walker.R_TOE)]
    sig = point_returns(r[right_foot], amp[right_foot], WAVELENGTH)
    cycle = walker.cycle_duration(walker.relative_velocity(speed, height))
    assert limb_envelope_period(sig, 4000.0, 2000, near=cycle, lo=0.4, hi=2.5) == pytest.approx(cycle, rel=0.03)


@pytest.mark.parametrize("flap_hz,seed", [(3.0, 0), (8.0, 1)])
def test_bird_wingbeat_at_flap_hz(flap_hz, seed):
    """The Doppler centroid swings positive on the downstroke and negative on the upstroke: once per wingbeat.
    (The spectrum's edges flash twice per beat, when the wings pass the horizontal, so they are not used.)"""
    from mdcli.sim.bird import bird_signal

    sc = make_scene(4000.0, 3.0, range_m=20.0, radar_height=0.0)
    p = {"flap_hz": flap_hz, "speed_mps": 3.0, "flap_amplitude_deg": 40.0, "altitude_m": 3.0, "wingspan_m": 0.6}
    sig, _, _ = bird_signal(p, sc, np.random.default_rng(seed))
    power, f, t = stft_power(sig, 4000.0, 128, 512, 1000)
    centroid = (power * f[:, None]).sum(0) / power.sum(0)
    c = (centroid - centroid.mean()) * np.hanning(len(centroid))
    n = 1 << 15
    spec = np.abs(np.fft.rfft(c, n))
    freq = np.fft.rfftfreq(n, t[1] - t[0])
    spec[freq < 0.5] = 0
    assert freq[spec.argmax()] == pytest.approx(flap_hz, rel=0.03)


@pytest.mark.parametrize("v", [2.0, 4.0])
def test_vehicle_spectrum_body_line_and_wheels_from_zero_to_twice_it(v):
    """Measured on the signal: the strongest line is the body at f_b = 2 v / lambda; the rolling rims fill
    0 .. 2 f_b (the contact point is still, the top moves at 2v) and nothing lies beyond."""
    from mdcli.sim.vehicle import vehicle_signal

    sc = make_scene(4000.0, 2.0, range_m=200.0, radar_height=0.5)
    p = {"speed_mps": v, "wheel_radius_m": 0.3, "wheelbase_m": 2.7, "rim_points": 8}
    sig, _, _ = vehicle_signal(p, sc, np.random.default_rng(1))
    power, f, _ = stft_power(sig, 4000.0, 512, 4096, 60)
    mean = power.mean(1)
    db = 10 * np.log10(mean / mean.max())
    fb = 2 * v / WAVELENGTH
    assert f[mean.argmax()] == pytest.approx(fb, rel=0.005)
    support = f[db > -40]
    assert support.max() == pytest.approx(2 * fb, rel=0.03)
    assert abs(support.min()) < 0.05 * fb
    band = lambda a, b: db[(f > a * fb) & (f < b * fb)].mean()  # noqa: E731
    assert band(0.1, 0.9) > -50 and band(1.1, 1.9) > -50  # the rims fill both sides of the body line
    assert band(2.15, 3.0) < -70 and band(-1.0, -0.15) < -70


@pytest.mark.parametrize("carrier_hz", [24.0e9, 10.0e9])
def test_simulate_output_doppler_axis_matches_the_carrier(carrier_hz):
    """Through `simulate`'s whole path (config -> signal -> STFT -> image -> axes): a vehicle's body line sits at
    2 v_r f_c / c within 1.5 % + 1 bin, and the file's carrier is the configured one."""
    from mdcli.config import load_config
    from mdcli.sim.config import SimulateConfig
    from mdcli.sim.dataset import simulate_dataset
    from tests.conftest import TINY

    cfg = load_config(SimulateConfig, TINY / "simulate.yaml", [
        "n_per_class=3", "targets=vehicle", f"radar.carrier_hz={carrier_hz}", "radar.prf_hz=4000", "radar.duration_s=1.0",
        "processing.win_len=512", "processing.nfft=1024", "processing.image_size=[1024, 8]", "scene.snr_db=[40, 40]",
        "scene.range_m=[40, 60]",
    ])
    data, _ = simulate_dataset(cfg)
    assert data.carrier_hz == carrier_hz
    bin_hz = data.doppler_hz[1] - data.doppler_hz[0]
    for img, vr in zip(data.spectrograms, data.params["radial_speed_mps"]):
        expected = 2 * vr * carrier_hz / C
        peak = data.doppler_hz[img.mean(1).argmax()]
        assert peak == pytest.approx(expected, abs=0.015 * abs(expected) + bin_hz)


def test_drone_stores_the_rpm_it_simulated():
    """Each rotor spins a few per cent off the drawn rpm; /params holds what was simulated. With one rotor the
    blade tips' Doppler 2 Omega L cos(beta) / lambda must follow the stored rpm (0.5 %), on every seed."""
    from mdcli.sim.rotor import drone_signal

    altitude, range_m, length = 5.0, 60.0, 0.12
    beta = np.arctan2(altitude - 0.0, range_m)
    for seed in range(6):
        sc = make_scene(64000.0, 0.05, range_m=range_m, radar_height=0.0)
        p = {"n_rotors": 1, "n_blades": 2, "blade_length_m": length, "rpm": 5000.0, "speed_mps": 0.0,
             "altitude_m": altitude, "blade_rcs_rel": 0.5}
        _, fmax, _ = drone_signal(p, sc, np.random.default_rng(seed))
        assert p["rpm_min"] == p["rpm"] == p["rpm_max"]
        stored = 2 * (2 * np.pi * p["rpm"] / 60) * length * np.cos(beta) / WAVELENGTH
        assert fmax == pytest.approx(stored, rel=0.005), seed
    p = {"n_rotors": 4, "n_blades": 2, "blade_length_m": length, "rpm": 5000.0, "speed_mps": 0.0,
         "altitude_m": altitude, "blade_rcs_rel": 0.5}
    drone_signal(p, sc, np.random.default_rng(0))
    assert p["rpm_min"] < p["rpm"] < p["rpm_max"]
