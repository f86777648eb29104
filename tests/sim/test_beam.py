"""The antenna's elevation pattern (`radar.beam_elevation_deg`, issue 36): a close radar sees the feet off boresight."""

from __future__ import annotations

import numpy as np
import pytest

from mdcli.sim import walker
from mdcli.sim.config import SimulateConfig, config_text
from mdcli.sim.dataset import simulate_dataset
from tests.conftest import TINY, make_scene

WALK = {"height_m": 1.8, "speed_mps": 1.2, "phase0": 0.3}


def _scene(beam: float, range_m: float):
    sc = make_scene(4000.0, 0.5, range_m=range_m, radar_height=1.0)
    sc.beam_deg = beam
    return sc


def test_the_pattern_is_half_amplitude_at_half_the_beamwidth():
    """One-way half-power beamwidth w: one-way power exp(-4 ln 2 (e / w)^2), so the two-way amplitude is 1 on
    boresight, 1/2 at e = w / 2 above or below it, and does not depend on azimuth."""
    sc = _scene(30.0, 10.0)
    d = 10.0
    pts = np.array([[d, 0.0, 1.0], [d, 0.0, 1.0 + d * np.tan(np.radians(15))], [d, 0.0, 1.0 - d * np.tan(np.radians(15))],
                    [0.0, d, 1.0], [d / 2, d / 2, 1.0 + d / np.sqrt(2) * np.tan(np.radians(30))]])
    np.testing.assert_allclose(sc.beam(pts), [1.0, 0.5, 0.5, 1.0, 0.5**4], rtol=1e-12)
    assert _scene(0.0, 10.0).beam(pts) == 1.0  # 0 = isotropic


@pytest.mark.parametrize("k", [1, 8])
def test_a_close_radar_at_torso_height_dims_the_feet_not_the_torso(k):
    """Radar 1 m up, 3 m from a walker, 28 deg beam: the toes on the floor (18 deg below boresight) keep about 0.3 of
    their amplitude, the torso (0.9-1.4 m up, level with the antenna) over 0.9 of its power; at 60 m the toes keep
    over 0.9 of their amplitude."""
    body = walker.distributed_body(k, np.random.default_rng(0)) if k > 1 else None
    ratios, torso_power = {}, {}
    torso = slice(walker.TORSO_SEGMENT * k, (walker.TORSO_SEGMENT + 1) * k)
    for rng_m in (3.0, 60.0):
        _, a0 = walker.walker_ranges(WALK, _scene(0.0, rng_m), body)
        _, a1 = walker.walker_ranges(WALK, _scene(28.0, rng_m), body)
        ratios[rng_m] = a1[:, 0] / a0[:, 0]  # at the window's start
        torso_power[rng_m] = np.sum(a1[torso, 0] ** 2) / np.sum(a0[torso, 0] ** 2)
    toes = slice(-2, None)
    assert np.all(ratios[3.0][toes] < 0.4) and np.all(ratios[3.0][toes] > 0.2), ratios[3.0][toes]
    assert 0.9 < torso_power[3.0] < 1.0, torso_power
    assert np.all(ratios[60.0][toes] > 0.9), ratios[60.0][toes]


def test_beam_is_a_radar_option_recorded_only_when_set():
    cfg = SimulateConfig(seed=2, n_per_class=2, targets=["walker"])
    cfg.processing.image_size = [32, 32]
    cfg.scene.range_m = [3.0, 4.0]
    base, _ = simulate_dataset(cfg)
    assert "beam_elevation_deg" not in config_text(cfg)
    cfg.radar.beam_elevation_deg = 28.0
    beamed, _ = simulate_dataset(cfg)
    assert "beam_elevation_deg: 28.0" in config_text(cfg)
    np.testing.assert_array_equal(base.params["speed_mps"], beamed.params["speed_mps"])
    assert not np.array_equal(base.spectrograms, beamed.spectrograms)


@pytest.mark.parametrize("value", ["-1", "200"])
def test_bad_beamwidth_is_a_one_line_error(tmp_path, runner, value):
    from mdcli.cli import app

    res = runner.invoke(app, ["simulate", "--config", str(TINY / "simulate.yaml"), "--set",
                              f"radar.beam_elevation_deg={value}", "-o", str(tmp_path / "x.h5")])
    assert res.exit_code == 2, res.output
    assert "radar.beam_elevation_deg" in res.output and len(res.output.strip().splitlines()) == 1, res.output
    assert not (tmp_path / "x.h5").exists()
