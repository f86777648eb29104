"""The motion-capture walker: the CMU recording drives the same segment/radar model."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from mdcli.artifacts import Spectrograms
from mdcli.cli import app
from mdcli.sim import mocap
from mdcli.sim.signal import point_returns, stft_power
from tests.conftest import CARRIER_HZ, ROOT, WAVELENGTH, limb_envelope_period, make_scene

C = 299_792_458.0
MOCAP = ROOT.parent / "shared" / "data" / "mocap"


@pytest.fixture(scope="module")
def joints():
    if not (MOCAP / "35_01.amc").exists():
        pytest.skip("../shared/data/mocap is not present")
    return mocap.load_motion(str(MOCAP / "35_01.amc"), str(MOCAP / "35.asf"))


def test_recording_is_a_plausible_walk(joints):
    stats = mocap.recording_stats(joints)
    assert joints.shape == (358, len(mocap.JOINTS), 3)
    assert 1.5 < stats["height_m"] < 1.9  # ASF length 0.45: 1/0.45 inch per unit
    assert 1.0 < stats["speed_mps"] < 1.6 and 0.8 < stats["gait_cycle_s"] < 1.3
    head = joints[:, mocap.JOINTS.index("head"), 2]
    assert head.min() > 1.4  # z is up and the feet are on the floor


def _torso_and_body(joints, duration, aspect=0.0):
    sc = make_scene(4000.0, duration, aspect_deg=aspect, range_m=80.0, radar_height=1.0)
    r, amp = mocap.mocap_ranges(joints, sc, start_frame=0.0)
    return sc, sc.up(r), sc.up(amp)


@pytest.mark.parametrize("aspect", [0.0, 180.0])
def test_mocap_torso_ridge_follows_root_speed(joints, aspect):
    duration = 2.8
    sc, r, amp = _torso_and_body(joints, duration, aspect)
    root = joints[:, mocap.JOINTS.index("root"), :2]
    n = int(round(duration * mocap.FPS))
    v = np.linalg.norm(root[n] - root[0]) / (n / mocap.FPS)  # from the recording's root trajectory
    torso = point_returns(r[[mocap.TORSO_SEGMENT]], amp[[mocap.TORSO_SEGMENT]], WAVELENGTH)
    power, f, _ = stft_power(torso, 4000.0, 512, 8192, 300)
    ridge = f[power.argmax(0)].mean()
    assert ridge == pytest.approx(np.cos(np.deg2rad(aspect)) * 2 * v * CARRIER_HZ / C, rel=0.03)


def test_mocap_gait_period_matches_foot_contacts(joints):
    sc, r, amp = _torso_and_body(joints, 2.9)
    cycle = mocap.recording_stats(joints)["gait_cycle_s"]
    measured = limb_envelope_period(point_returns(r, amp, WAVELENGTH), 4000.0, 1000, near=cycle)
    assert measured == pytest.approx(cycle, rel=0.05)


def test_simulate_mocap_target(joints, tmp_path):
    out = tmp_path / "mc.h5"
    res = CliRunner().invoke(app, ["simulate", "--targets", "walker,mocap", "--n", "3", "--mocap", str(MOCAP / "35_01.amc"),
                                   "--skeleton", str(MOCAP / "35.asf"), "-o", str(out), "-q"])
    assert res.exit_code == 0, res.output
    d = Spectrograms.load(out)
    m = d.labels == 1
    assert d.class_names == ["walker", "mocap"] and m.sum() == 3
    expected = d.params["speed_mps"][m] * np.cos(np.deg2rad(d.params["aspect_deg"][m]))
    assert np.allclose(d.params["radial_speed_mps"][m], expected, atol=0.2)
    res = CliRunner().invoke(app, ["simulate", "--targets", "mocap", "-o", str(tmp_path / "x.h5")])
    assert res.exit_code == 2 and "--mocap" in res.output
