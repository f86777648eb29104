"""`simulate --like` (fit of unknown axes and noise to a measured set) and `diagnose domain` (two-sample gap)."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from mdcli.artifacts import Spectrograms
from mdcli.cli import app
from mdcli.sim.config import SimulateConfig
from mdcli.sim.dataset import simulate_dataset


def _cfg(prf: float, snr: float, seed: int, n: int) -> SimulateConfig:
    cfg = SimulateConfig(seed=seed, n_per_class=n, targets=["walker"])
    cfg.radar.prf_hz = prf
    cfg.radar.duration_s = 2.0
    cfg.scene.snr_db = [snr - 2.5, snr + 2.5]
    cfg.scene.receding_fraction = 0.0
    cfg.processing.image_size = [32, 32]
    cfg.processing.dynamic_range_db = 60.0
    cfg.like.points_per_segment = 0  # the midpoint body on both sides (the 'measured' images are rendered without resolve)
    return cfg


def _measured(path, prf: float, snr: float, n: int = 24, speed_mps: list[float] | None = None,
              doppler_zero: float = 0.5) -> None:
    """'Measured' images: simulated --like-rendered walkers with a known PRF (Doppler span) and SNR, stored as an
    uncalibrated import would be (axes 0..1, no colour map)."""
    cfg = _cfg(prf, snr, seed=99, n=n)
    if speed_mps:
        cfg.walker.speed_mps = speed_mps
    cfg.like.file = "unused"  # the --like renderer, without resolving a file
    cfg.like.doppler_zero = doppler_zero
    cfg.like.colormap = "none"
    data, _ = simulate_dataset(cfg)
    Spectrograms(spectrograms=data.spectrograms, labels=data.labels, class_names=["person"],
                 doppler_hz=np.linspace(0, 1, 32), time_s=np.linspace(0, 1, 32), carrier_hz=float("nan"),
                 prf_hz=float("nan"), dynamic_range_db=float("nan"), source="imported", axes_calibrated=False,
                 transform={"image_size": [32, 32], "original_shapes": [[32, 32]], "colormap": None}).save(path, "{}", 0)


def test_fit_recovers_a_known_doppler_span_and_noise_level(tmp_path):
    from mdcli.sim.like import prepare

    meas = tmp_path / "meas.h5"
    _measured(meas, prf=3000.0, snr=20.0)
    cfg = _cfg(6000.0, 32.0, seed=0, n=4)  # start far off: twice the span, 12 dB too clean
    cfg.like.file = str(meas)
    cfg.like.fit = ["prf_hz", "snr_db"]
    cfg.like.snr_width_db = 5.0
    cfg.like.fit_n = 10
    cfg.like.fit_steps = 40
    cfg.validate()
    report = prepare(cfg)
    v = report["values"]
    assert abs(v["prf_hz"] / 3000.0 - 1) < 0.12, v
    assert abs(v["snr_db"] - 20.0) < 2.0, v
    assert report["distance"] < report["distance_start"]
    assert cfg.radar.prf_hz == pytest.approx(v["prf_hz"]) and cfg.scene.snr_db == pytest.approx([v["snr_db"] - 2.5, v["snr_db"] + 2.5])


def test_fit_recovers_a_known_walking_speed(tmp_path):
    """like.fit speed_mps: the walkers' speed range [v - width/2, v + width/2] is fitted to the measured cadence and
    Doppler extent (the default range, 0.6-2.0 m/s, makes 3-7 steps where people on one recording make ~4)."""
    from mdcli.sim.like import prepare

    meas = tmp_path / "meas.h5"
    _measured(meas, prf=3000.0, snr=25.0, speed_mps=[0.75, 0.85])
    cfg = _cfg(3000.0, 25.0, seed=0, n=4)
    cfg.walker.speed_mps = [1.5, 1.7]
    cfg.like.file = str(meas)
    cfg.like.fit, cfg.like.speed_width_mps, cfg.like.fit_n, cfg.like.fit_steps = ["speed_mps"], 0.1, 10, 30
    cfg.validate()
    report = prepare(cfg)
    assert report["values"]["speed_mps"] == pytest.approx(0.8, abs=0.15), report["values"]
    assert cfg.walker.speed_mps == pytest.approx([report["values"]["speed_mps"] - 0.05, report["values"]["speed_mps"] + 0.05])
    assert cfg.identity.speed_mps == pytest.approx(cfg.walker.speed_mps)  # --identities walk at the fitted cadence
    assert report["distance"] < report["distance_start"]


def test_fit_recovers_the_walking_direction(tmp_path):
    """like.fit receding_fraction: the 'measured' walkers all come towards the radar; a fit started at the default
    half-and-half mixture must find that."""
    from mdcli.sim.like import prepare

    meas = tmp_path / "meas.h5"
    _measured(meas, prf=1500.0, snr=25.0, doppler_zero=0.25)  # 0 Hz a quarter up: room for the limbs above
    cfg = _cfg(1500.0, 25.0, seed=0, n=4)
    cfg.scene.receding_fraction = 0.5
    cfg.like.doppler_zero = 0.25
    cfg.like.file = str(meas)
    cfg.like.fit, cfg.like.fit_n, cfg.like.fit_steps = ["receding_fraction"], 10, 10
    cfg.validate()
    report = prepare(cfg)
    assert report["values"]["receding_fraction"] < 0.2, report["values"]
    assert cfg.scene.receding_fraction == pytest.approx(report["values"]["receding_fraction"])
    assert report["distance"] < report["distance_start"]


def _phase_gap(a: float, b: float, period: float) -> float:
    d = (a - b) % period
    return min(d, period - d)


def test_fit_recovers_the_gait_phase_every_window_starts_at(tmp_path):
    """like.fit start_phase: 'measured' windows all start at one gait phase (0.3 of the cycle, as a set cut at a
    gait event); a fit started from windows at any phase must find it through the mean time profile. The midpoint
    body's legs are alike, so a phase half a cycle away (the other leg's heel strike) is the same answer."""
    from mdcli.sim.like import like_statistics, prepare

    meas = tmp_path / "meas.h5"
    cfg_m = _cfg(3000.0, 25.0, seed=99, n=24)
    cfg_m.walker.speed_mps, cfg_m.walker.start_phase = [0.75, 0.85], [0.25, 0.35]
    cfg_m.like.file, cfg_m.like.colormap = "unused", "none"
    data, _ = simulate_dataset(cfg_m)
    assert np.all(np.abs(data.params["phase0"] - 0.3) <= 0.05 + 1e-9)  # what was drawn is what is stored
    Spectrograms(spectrograms=data.spectrograms, labels=data.labels, class_names=["person"],
                 doppler_hz=np.linspace(0, 1, 32), time_s=np.linspace(0, 1, 32), carrier_hz=float("nan"),
                 prf_hz=float("nan"), dynamic_range_db=float("nan"), source="imported", axes_calibrated=False,
                 transform={"image_size": [32, 32], "original_shapes": [[32, 32]], "colormap": None}).save(meas, "{}", 0)
    cfg = _cfg(3000.0, 25.0, seed=0, n=4)
    cfg.walker.speed_mps = [0.75, 0.85]
    assert cfg.walker.start_phase == [0.0, 1.0]  # any phase: a flat time profile
    cfg.like.file = str(meas)
    cfg.like.fit, cfg.like.fit_n, cfg.like.fit_steps = ["start_phase"], 32, 10
    cfg.validate()
    report = prepare(cfg)
    phase = report["values"]["start_phase"]
    assert _phase_gap(phase, 0.3, 0.5) < 0.07, report["values"]
    assert cfg.walker.start_phase == pytest.approx([phase - 0.05, phase + 0.05])
    assert report["distance_parts"]["time_profile"] < 0.5 * report["distance_start_parts"]["time_profile"], report
    # the statistic itself: windows at any phase give a flat mean time profile, windows at one phase the rhythm
    locked = np.asarray(like_statistics(data.spectrograms)["time_profile"])
    cfg_m.walker.start_phase = [0.0, 1.0]
    free = np.asarray(like_statistics(simulate_dataset(cfg_m)[0].spectrograms)["time_profile"])
    assert locked.std() > 2 * free.std(), (locked.std(), free.std())


def test_start_phase_is_drawn_from_its_range_and_checked():
    """walker.start_phase [0.9, 1.1] wraps around the right heel strike; a range wider than a cycle is refused."""
    from mdcli.errors import ConfigError

    cfg = SimulateConfig(seed=3, n_per_class=12, targets=["walker"])
    cfg.processing.image_size = [32, 32]
    cfg.walker.start_phase = [0.9, 1.1]
    cfg.validate()
    phase = simulate_dataset(cfg)[0].params["phase0"]
    assert np.all((phase >= 0.9 - 1e-9) | (phase <= 0.1 + 1e-9)) and np.all((phase >= 0) & (phase < 1)), phase
    assert (phase > 0.5).any() and (phase < 0.5).any()  # both sides of the wrap are drawn
    cfg.walker.start_phase = [0.0, 1.5]
    with pytest.raises(ConfigError, match="walker.start_phase"):
        cfg.validate()


def test_fit_refines_every_direction_the_grids_leave_close(monkeypatch):
    """A landscape where the half-and-half mixture leads the grids (1.00 everywhere) but walkers all coming reach
    0.5 at 1.4 m/s, between the grid speeds (1.1 at the start's 1.3 m/s, 2.9 at 1.2 and 1.6): Nelder-Mead from both
    directions' grid bests finds the coming walkers; a direction far behind (all going, 3.0) is not refined."""
    from types import SimpleNamespace

    from mdcli.sim import like

    def landscape(v: dict) -> float:
        r, s = v["receding_fraction"], v["speed_mps"]
        return {0.0: 0.5 + 60 * (s - 1.4) ** 2, 0.5: 1.0, 1.0: 3.0}[r]

    visited = []
    monkeypatch.setattr(like, "_fit_images", lambda c: c)
    monkeypatch.setattr(like, "like_statistics", lambda c: like.current(c))
    monkeypatch.setattr(like, "distance", lambda sim, meas: (visited.append(dict(sim)) or landscape(sim), {}))
    monkeypatch.setattr(like, "validate_like", lambda c: None)  # no measured file behind this fit
    cfg = _cfg(2000.0, 25.0, seed=0, n=4)
    cfg.like.file = "unused"
    cfg.scene.receding_fraction = 0.5
    cfg.like.fit, cfg.like.fit_steps = ["speed_mps", "receding_fraction"], 30
    report = like.fit_like(cfg, SimpleNamespace(stats=None))
    assert report["fitted"]["receding_fraction"] == 0.0, report
    assert report["fitted"]["speed_mps"] == pytest.approx(1.4, abs=0.03) and report["distance"] < 0.52, report
    going = [v for v in visited if v["receding_fraction"] == 1.0]
    assert len(going) == 1 + 5  # the direction's start and its speed grid (3 aspects are not fitted), no refinement


def test_asymmetry_statistic_tells_which_way_the_limbs_reach():
    """like_statistics' asymmetry: limbs reaching up from the torso line give > 0, the same images flipped upside
    down < 0 by the same amount (the statistic that keeps a half-and-half mixture from passing for coming walkers)."""
    from mdcli.sim.like import like_statistics

    rng = np.random.default_rng(0)
    x = rng.uniform(0.0, 0.05, (6, 32, 32)).astype(np.float32)
    x[:, 10, :] = 1.0  # torso line
    for t in range(32):
        x[:, 11 : 11 + int(12 * abs(np.sin(np.pi * t / 8))), t] = 0.6  # limb swings, up to 12 rows above it
    x[:, 7:10, :] = 0.6  # a little below it
    up, down = like_statistics(x)["mean"]["asymmetry"], like_statistics(x[:, ::-1, :].copy())["mean"]["asymmetry"]
    assert up > 0.1 and down == pytest.approx(-up, abs=0.02), (up, down)


def test_objective_sees_texture_and_spread():
    """The texture statistic falls when the images are smoothed; the objective's spread part is 0 for the same
    statistics and grows when one set varies more than the other (the same means)."""
    from scipy.ndimage import gaussian_filter

    from mdcli.sim.like import distance, like_statistics

    rng = np.random.default_rng(0)
    x = rng.random((16, 32, 32)).astype(np.float32) * np.linspace(0.2, 1, 32)[:, None]
    sharp, smooth = like_statistics(x), like_statistics(gaussian_filter(x, (0, 1, 1)))
    for s in ("texture_t", "texture_f"):
        assert smooth["mean"][s] < 0.5 * sharp["mean"][s]
    assert distance(sharp, sharp)[1]["spread"] == 0.0
    wide = {**sharp, "sd": {k: 3 * v for k, v in sharp["sd"].items()}}
    assert distance(wide, sharp)[1]["spread"] > 0.0 and distance(wide, sharp)[1]["kinematics"] == distance(sharp, sharp)[1]["kinematics"]


def test_colour_round_trip_keeps_the_image():
    from mdcli.sim.like import colour_round_trip

    rng = np.random.default_rng(0)
    img = np.clip(rng.random((32, 32)).astype(np.float32) * 0.2 + np.linspace(0, 1, 32)[:, None], 0, 1)
    img = np.clip(img + 1 - img.max(), 0, 1)
    out = colour_round_trip(img, "jet", 90, [64, 64])
    assert out.shape == img.shape and out.max() == pytest.approx(1.0)
    assert np.abs(out - img).mean() < 0.05


def test_simulate_like_cli_stores_fit_and_lineage(tmp_path, runner):
    meas = tmp_path / "meas.h5"
    _measured(meas, prf=3000.0, snr=8.0, n=8)
    out = tmp_path / "sim.h5"
    r = runner.invoke(app, ["simulate", "--targets", "walker", "--n", "6", "--like", str(meas), "-o", str(out), "-q",
                            "--set", "radar.duration_s=2", "--set", "like.fit=[prf_hz]", "--set", "like.fit_n=4",
                            "--set", "like.fit_steps=3", "--set", "like.jpeg_quality=80"])
    assert r.exit_code == 0, r.output
    data = Spectrograms.load(out)
    assert data.spectrograms.shape == (6, 32, 32)  # the measured image size
    with h5py.File(out) as f:
        fit = json.loads(f.attrs["like_fit"])
        assert str(meas) in f.attrs["parents"] if isinstance(f.attrs["parents"], str) else True
        assert "like:" in f.attrs["config"]
    assert set(fit) >= {"fitted", "values", "distance", "distance_start", "statistics"}
    assert data.prf_hz == pytest.approx(fit["values"]["prf_hz"])


def test_like_sets_the_distributed_body(tmp_path):
    """--like renders the walker with like.points_per_segment scatterers per segment; walker.points_per_segment of
    another value is a one-line error, the same value or 0 (keep the walker's) is not."""
    from mdcli.errors import ConfigError
    from mdcli.sim.like import resolve

    meas = tmp_path / "meas.h5"
    _measured(meas, prf=3000.0, snr=20.0, n=4)
    cfg = SimulateConfig(targets=["walker"])
    cfg.like.file = str(meas)
    cfg.validate()
    resolve(cfg)
    assert cfg.walker.points_per_segment == cfg.like.points_per_segment == 16
    cfg.validate()  # the resolved config (as a like file stores it) is valid again
    cfg.walker.points_per_segment = 4
    with pytest.raises(ConfigError, match="disagree"):
        cfg.validate()
    cfg.like.points_per_segment = 0
    cfg.validate()
    resolve(cfg)
    assert cfg.walker.points_per_segment == 4


def test_simulate_like_refuses_bad_input_without_output(tmp_path, runner):
    out = tmp_path / "sim.h5"
    r = runner.invoke(app, ["simulate", "--targets", "walker", "--n", "2", "--like", str(tmp_path / "nope.h5"), "-o", str(out)])
    assert r.exit_code == 2 and "not found" in r.output and not out.exists()
    meas = tmp_path / "meas.h5"
    _measured(meas, prf=3000.0, snr=8.0, n=4)
    r = runner.invoke(app, ["simulate", "--targets", "walker", "--n", "2", "--like", str(meas), "-o", str(out),
                            "--set", "like.fit=[speed]"])
    assert r.exit_code == 2 and "like.fit" in r.output and not out.exists()


def test_diagnose_domain_separates_different_sets_and_not_equal_ones(tmp_path, runner):
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    rng = np.random.default_rng(0)
    n = 32
    x = rng.random((n, 16, 16)).astype(np.float32) * 0.5
    y = x.copy()
    y[:, 6:10] += 0.5  # a bright band: trivially told apart
    for path, imgs in ((a, x), (b, y)):
        Spectrograms(spectrograms=imgs, labels=np.zeros(n, np.int64), class_names=["c"], doppler_hz=np.arange(16.0),
                     time_s=np.arange(16.0), carrier_hz=1.0, prf_hz=1.0, dynamic_range_db=50.0,
                     source="simulated").save(path, "{}", 0)
    r = runner.invoke(app, ["diagnose", "domain", "--a", str(a), "--b", str(b), "--steps", "40", "--json",
                            "--plot", str(tmp_path / "figs")])
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)
    assert rep["overall"]["two_sample_accuracy"] > 0.9
    assert "c" in rep["per_class"] and rep["per_class"]["c"]["ci95_low"] <= rep["per_class"]["c"]["two_sample_accuracy"]
    assert (tmp_path / "figs" / "domain_examples.png").is_file()
    assert rep["overall"]["ci95_low"] <= rep["overall"]["two_sample_accuracy"] <= rep["overall"]["ci95_high"]
    small = tmp_path / "s.h5"
    Spectrograms(spectrograms=x[:, :8], labels=np.zeros(n, np.int64), class_names=["c"], doppler_hz=np.arange(8.0),
                 time_s=np.arange(16.0), carrier_hz=1.0, prf_hz=1.0, dynamic_range_db=50.0, source="simulated").save(small, "{}", 0)
    r = runner.invoke(app, ["diagnose", "domain", "--a", str(a), "--b", str(small)])
    assert r.exit_code == 2 and "same size" in r.output


def test_like_rendering_does_not_depend_on_workers():
    cfg = _cfg(3000.0, 20.0, seed=3, n=6)
    cfg.like.file = "unused"  # the renderer alone (no fit)
    cfg.like.colormap, cfg.like.jpeg_quality, cfg.like.render_size = "jet", 90, [64, 64]
    cfg.like.speckle, cfg.like.doppler_spread_px, cfg.like.looks, cfg.like.doppler_zero = 0.5, 1.0, 2, 0.3
    one, _ = simulate_dataset(cfg)
    cfg.workers = 2
    two, _ = simulate_dataset(cfg)
    assert np.array_equal(one.spectrograms, two.spectrograms)
    assert one.spectrograms.shape == (6, 32, 32) and one.doppler_hz[0] < 0 < one.doppler_hz[-1]
    zero_row = np.searchsorted(one.doppler_hz, 0.0)
    assert abs(zero_row / 32 - 0.3) <= 1 / 32  # 0 Hz sits at the requested row


def test_time_course_tells_windows_cut_at_one_phase_and_a_trend(tmp_path, runner):
    """time_course: windows of one rhythm all starting at the same phase keep it in the set's mean (coherence near
    1); the same windows at random phases cancel it (about 1 / sqrt(N)); a brightening over the window is its slope,
    and the per-image time_trend statistic names it."""
    from mdcli.diagnose.domain import time_course

    rng = np.random.default_rng(0)
    n, t = 64, np.arange(32)
    def rhythm(phases):
        cols = 0.3 + 0.2 * np.sin(2 * np.pi * (t[None] / 8 + phases[:, None]))
        return np.repeat(cols[:, None, :], 16, axis=1).astype(np.float32) + 0.01 * rng.random((n, 16, 32), np.float32)
    locked, free = rhythm(np.zeros(n)), rhythm(rng.random(n))
    c_locked, c_free = time_course(locked)["coherence"], time_course(free)["coherence"]
    assert c_locked > 0.95 and c_free < 3 / np.sqrt(n), (c_locked, c_free)
    ramp = np.repeat(np.linspace(0.2, 0.4, 32)[None, None], 16, axis=1) + 0.01 * rng.random((n, 16, 32))
    assert time_course(ramp)["slope"] == pytest.approx((0.375 - 0.225) / 0.3, abs=0.02)
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    for path, imgs in ((a, ramp.astype(np.float32)), (b, np.full((n, 16, 32), 0.3, np.float32) + 0.01 * rng.random((n, 16, 32), np.float32))):
        Spectrograms(spectrograms=imgs, labels=np.zeros(n, np.int64), class_names=["c"], doppler_hz=np.arange(16.0),
                     time_s=np.arange(32.0), carrier_hz=1.0, prf_hz=1.0, dynamic_range_db=50.0,
                     source="simulated").save(path, "{}", 0)
    r = runner.invoke(app, ["diagnose", "domain", "--a", str(a), "--b", str(b), "--steps", "20", "--json"])
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)
    trend = next(x for x in rep["statistics"] if x["statistic"] == "time_trend")
    assert trend["accuracy"] == 1.0 and trend["median_a"] > 0.4 and abs(trend["median_b"]) < 0.05, trend
    tc = rep["time_course"]
    assert tc["a"]["slope"] > 0.4 and abs(tc["b"]["slope"]) < 0.05 and tc["gap"] > 0.1, tc


def test_diagnose_domain_finds_the_scale_and_the_statistic_that_give_a_set_away(tmp_path, runner):
    """A fine checkerboard (zero mean over every 2 x 2 block) is seen at scale 1 and gone at 2, and texture is
    the statistic that names it; a band moved down is seen at every scale and named by the band energies."""
    rng = np.random.default_rng(1)
    n = 48
    x = (0.3 + 0.05 * rng.random((n, 16, 16))).astype(np.float32)
    checker = np.indices((16, 16)).sum(0) % 2 * 2 - 1.0
    y = (x + 0.2 * checker).astype(np.float32)
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    for path, imgs in ((a, x), (b, y)):
        Spectrograms(spectrograms=imgs, labels=np.zeros(n, np.int64), class_names=["c"], doppler_hz=np.arange(16.0),
                     time_s=np.arange(16.0), carrier_hz=1.0, prf_hz=1.0, dynamic_range_db=50.0,
                     source="simulated").save(path, "{}", 0)
    r = runner.invoke(app, ["diagnose", "domain", "--a", str(a), "--b", str(b), "--steps", "60", "--json",
                            "--set", "scales=[1,2]"])
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)
    acc = {s["factor"]: s["two_sample_accuracy"] for s in rep["by_scale"]}
    assert acc[1] > 0.9 and acc[2] < 0.75, acc
    top = rep["statistics"][0]["accuracy"]
    texture = max(r["accuracy"] for r in rep["statistics"] if r["statistic"].startswith("texture"))
    assert texture > 0.9 and texture == top, rep["statistics"][:4]
    assert rep["statistics_combined"]["accuracy"] > 0.9
    r = runner.invoke(app, ["diagnose", "domain", "--a", str(a), "--b", str(b), "--set", "scales=[1,3]"])
    assert r.exit_code == 2 and "scales [3]" in r.output and "16x16" in r.output


def test_best_threshold_and_statistics_of_a_moved_band():
    from mdcli.diagnose.domain import best_threshold, statistic_gaps

    t, b_above = best_threshold(np.array([1.0, 2.0, 3.0]), np.array([5.0, 6.0]))
    assert 3.0 < t < 5.0 and b_above
    t, b_above = best_threshold(np.array([5.0, 6.0]), np.array([1.0, 2.0]))
    assert 2.0 < t < 5.0 and not b_above
    rng = np.random.default_rng(2)
    x = 0.02 * rng.random((60, 16, 16)).astype(np.float32)
    y = x.copy()
    x[:, 2:4] += 0.8  # a bright line at rows 2-3 (A) or 12-13 (B)
    y[:, 12:14] += 0.8
    rows, together = statistic_gaps(x[:40], y[:40], x[40:], y[40:], bands=8)
    by = {r["statistic"]: r for r in rows}
    assert by["band_2of8"]["accuracy"] == 1.0 and by["band_7of8"]["accuracy"] == 1.0
    assert by["band_2of8"]["median_a"] > 0.5 > by["band_2of8"]["median_b"]
    assert by["torso"]["accuracy"] == 1.0 and together["accuracy"] == 1.0
    assert by["intensity_mean"]["accuracy"] < 0.75  # the same energy, only moved


def test_statistic_gaps_take_no_period_as_a_value():
    """NaN (no period) is its own value below every finite one: a set whose images have no period is told from one
    whose images have one by that alone."""
    from mdcli.diagnose.domain import _finite

    a, b = _finite([np.array([np.nan, 1.0, np.inf]), np.array([-np.inf, 2.0])])
    assert a[0] < b[0] < 1.0 < 2.0 < a[2] and np.isfinite(a).all() and np.isfinite(b).all()


def test_colour_round_trip_in_matlabs_jet_keeps_the_floor_and_the_ramp():
    """`--like` on a file imported with --colormap matlab-jet colours, JPEGs and inverts with MATLAB's jet(256):
    a clipped floor stays at 0 and a ramp comes back within a few levels, as `import` reads the measured files."""
    from mdcli.sim.like import colour_round_trip

    img = np.zeros((32, 32), np.float32)
    img[8:24] = np.linspace(0.05, 1.0, 32, dtype=np.float32)[None]  # rows 0-7 and 24-31: the clipped floor
    out = colour_round_trip(img, "matlab-jet", 90, [64, 64])
    assert out.shape == img.shape
    assert np.abs(out[8:24] - img[8:24]).mean() < 0.02
    assert np.median(out[:6]) == 0.0 and np.median(out[26:]) == 0.0
