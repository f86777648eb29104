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


def cli_ok(runner: CliRunner, args: list[str]):
    """Run mdcli with `args`; it must exit 0 (the output in the message when it does not)."""
    from mdcli.cli import app

    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    return res


def cli_refused(runner: CliRunner, args: list[str], *words: str):
    """Run mdcli with `args`; it must refuse in one line (exit 2, no traceback) holding each of `words`."""
    from mdcli.cli import app

    res = runner.invoke(app, args)
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output and res.output.strip().count("\n") == 0, res.output
    for w in words:
        assert w in res.output, res.output
    return res


def make_scene(prf: float, duration: float, aspect_deg: float = 0.0, range_m: float = 60.0, radar_height: float = 1.0) -> Scene:
    """A hand-placed scene: target starts `range_m` down the x axis, heading at `aspect_deg` off the LOS."""
    t = np.arange(int(round(prf * duration))) / prf
    a = np.deg2rad(aspect_deg)
    return Scene(
        t=t, radar_pos=np.array([0.0, 0.0, radar_height]), wavelength=WAVELENGTH,
        start=np.array([range_m, 0.0, 0.0]), heading=np.array([-np.cos(a), np.sin(a), 0.0]),
        aspect_deg=aspect_deg, factor=max(1, int(prf // 500)),
    )


def limb_envelope_period(sig: np.ndarray, prf: float, n_frames: int, near: float, lo: float = 0.7, hi: float = 1.3) -> float:
    """Period (s) of a walker spectrogram's upper limb envelope, searched within lo..hi times `near` (+-30%).

    The envelope is the highest Doppler within 30 dB of the peak in each frame; its
    autocorrelation peak is refined by a parabola through the three samples around it.
    """
    from mdcli.sim.signal import stft_power

    power, f, t = stft_power(sig, prf, 128, 512, n_frames)
    db = 10 * np.log10(power + 1e-30)
    envelope = np.array([f[db[:, k] > db.max() - 30].max() for k in range(db.shape[1])])
    e = envelope - envelope.mean()
    ac = np.correlate(e, e, "full")[len(e) - 1 :]
    dt = t[1] - t[0]
    lags = np.arange(len(ac)) * dt
    window = np.flatnonzero((lags > lo * near) & (lags < hi * near))
    i = window[ac[window].argmax()]
    y0, y1, y2 = ac[i - 1 : i + 2]
    return float((i + 0.5 * (y0 - y2) / (y0 - 2 * y1 + y2)) * dt)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """The tiny simulated dataset, written once through the CLI."""
    from mdcli.cli import app

    out = tmp_path_factory.mktemp("tiny") / "tiny.h5"
    res = CliRunner().invoke(app, ["simulate", "--config", str(TINY / "simulate.yaml"), "-o", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    return out
