"""`diagnose separability`: between / within class spread of the kinematic features (issue 36)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from mdcli.artifacts import Spectrograms
from mdcli.cli import app
from mdcli.config import load_config
from mdcli.diagnose.separability import feature_values, spread
from mdcli.sim.config import SimulateConfig
from mdcli.sim.dataset import simulate_dataset
from tests.conftest import TINY

FIXED_SCENE = ["scene.aspect_deg=[0, 0]", "scene.receding_fraction=0", "scene.range_m=[15, 15]", "scene.snr_db=[40, 40]"]


def test_spread_by_hand():
    """Class means 2 and 6 (sd 2), each class's own sd 1: ratio 2; runs of 2 along the recording: means 2 and 6 in
    class 0, 5 and 5 in class 1 (drift (2 + 0) / 2 = 1); a NaN is left out, a feature defined in one class only is None."""
    values = np.array([1.0, 3.0, 5.0, 7.0, np.nan])
    labels = np.array([0, 0, 1, 1, 1])
    s = spread(values, labels)
    assert (s["between"], s["within"], s["ratio"], s["drift"]) == (2.0, 1.0, 2.0, None)
    values = np.array([1.0, 3.0, 5.0, 7.0, 4.0, 6.0, 6.0, 4.0])
    labels = np.repeat([0, 1], 4)
    order = np.array([0, 1, 2, 3, 7, 6, 5, 4])  # class 1 recorded backwards: its runs are (4, 6) and (6, 4)
    assert spread(values, labels, order, run=2)["drift"] == pytest.approx(1.0)
    assert spread(np.array([1.0, 2.0, np.nan, np.nan]), np.array([0, 0, 1, 1]))["ratio"] is None


def test_a_shared_cycle_takes_the_cadence_out_of_what_tells_people_apart():
    """Boulic's virtual people differ first in cadence; with identity.cycle_s they no longer do (as the measured gait
    people), while speed and body still separate them."""
    ratios = {}
    for extra in ([], ["identity.cycle_s=1.2"]):
        cfg = load_config(SimulateConfig, TINY / "simulate.yaml",
                          ["targets=walker", "radar.prf_hz=3000", "identities=8", "n_per_class=4", *FIXED_SCENE, *extra])
        data, _ = simulate_dataset(cfg)
        ratios[bool(extra)] = {k: spread(v, data.labels)["ratio"] for k, (v, _) in feature_values(data).items()}
    assert ratios[False]["step period"] > 2.5 and ratios[True]["step period"] < 1.0, ratios
    assert ratios[True]["torso line"] > 1.0 and ratios[True]["bandwidth"] > 1.0, ratios


def test_cli_tables_side_by_side_and_one_line_errors(tiny_data, tmp_path):
    runner = CliRunner()
    data = Spectrograms.load(tiny_data)
    ordered = tmp_path / "ordered.h5"
    dataclasses.replace(data, sequence=np.arange(len(data), dtype=np.int64)).save(ordered, "test\n", 0)
    res = runner.invoke(app, ["diagnose", "separability", "--data", str(tiny_data), "--data", str(ordered), "--run", "4",
                              "--json"])
    assert res.exit_code == 0, res.output
    files = json.loads(res.stdout)["files"]
    assert [f["recording_order"] for f in files] == [False, True] and files[1]["run"] == 4
    assert files[0]["features"]["step period"]["unit"] == "s" and files[0]["features"]["upper envelope"]["unit"] == "bins"
    assert files[0]["features"]["torso line"]["drift"] is None and files[1]["features"]["torso line"]["drift"] is not None
    for name, f in files[0]["features"].items():  # the same images: the same spread, whatever the order
        assert f["ratio"] == pytest.approx(files[1]["features"][name]["ratio"]), name
    table = runner.invoke(app, ["diagnose", "separability", "--data", str(ordered)])
    assert table.exit_code == 0 and "torso line" in table.output and "drift" in table.output
    one = tmp_path / "one.h5"
    data.select(np.flatnonzero(data.labels == 0)).save(one, "test\n", 0)
    for args, msg in ((["--data", str(one)], "one class only"), (["--data", str(tiny_data), "--run", "1"], "--run 1"),
                      (["--data", str(tmp_path / "nope.h5")], "nope.h5")):
        res = runner.invoke(app, ["diagnose", "separability", *args])
        assert res.exit_code == 2 and msg in res.output and "Traceback" not in res.output, res.output
        assert len(res.output.strip().splitlines()) == 1, res.output
