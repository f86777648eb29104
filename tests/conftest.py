from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mdcli.sim.scene import Scene
from mdcli.sim.signal import C

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "tiny"
CARRIER_HZ = 24e9
WAVELENGTH = C / CARRIER_HZ


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def make_scene(prf: float, duration: float, aspect_deg: float = 0.0, range_m: float = 60.0, radar_height: float = 1.0) -> Scene:
    """A hand-placed scene: target starts `range_m` down the x axis, heading at `aspect_deg` off the LOS."""
    t = np.arange(int(round(prf * duration))) / prf
    a = np.deg2rad(aspect_deg)
    return Scene(
        t=t, radar_pos=np.array([0.0, 0.0, radar_height]), wavelength=WAVELENGTH,
        start=np.array([range_m, 0.0, 0.0]), heading=np.array([-np.cos(a), np.sin(a), 0.0]),
        aspect_deg=aspect_deg, factor=max(1, int(prf // 500)),
    )


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """The tiny simulated dataset, written once through the CLI."""
    from mdcli.cli import app

    out = tmp_path_factory.mktemp("tiny") / "tiny.h5"
    res = CliRunner().invoke(app, ["simulate", "--config", str(TINY / "simulate.yaml"), "-o", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    return out
