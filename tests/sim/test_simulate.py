"""Dataset-level guarantees of `simulate`: determinism, labels, axes, parameters, aliasing report."""

from __future__ import annotations

import numpy as np
import pytest

from mdcli.config import load_config
from mdcli.sim.config import TARGETS, SimulateConfig  # noqa: F401
from mdcli.sim.dataset import PARAM_NAMES, simulate_dataset
from tests.conftest import TINY


def _cfg(*overrides):
    return load_config(SimulateConfig, TINY / "simulate.yaml", list(overrides))


def test_same_seed_same_bytes_whatever_the_workers():
    a, _ = simulate_dataset(_cfg("n_per_class=5", "workers=1"))
    b, _ = simulate_dataset(_cfg("n_per_class=5", "workers=2"))
    assert a.spectrograms.tobytes() == b.spectrograms.tobytes()
    for name in PARAM_NAMES:
        assert np.array_equal(a.params[name], b.params[name], equal_nan=True)


def test_samples_do_not_depend_on_which_other_targets_run():
    both, _ = simulate_dataset(_cfg("n_per_class=3", "targets=walker,bird"))
    bird, _ = simulate_dataset(_cfg("n_per_class=3", "targets=bird"))
    assert np.array_equal(both.spectrograms[both.labels == 1], bird.spectrograms)


def test_different_seeds_differ():
    a, _ = simulate_dataset(_cfg("n_per_class=2", "seed=1"))
    b, _ = simulate_dataset(_cfg("n_per_class=2", "seed=2"))
    assert not np.array_equal(a.spectrograms, b.spectrograms)


def test_dataset_contract():
    cfg = _cfg("n_per_class=4", "save_iq=true")
    data, report = simulate_dataset(cfg)
    n = 4 * len(TARGETS)
    h, w = cfg.processing.image_size
    assert data.spectrograms.shape == (n, h, w) and data.spectrograms.dtype == np.float32
    assert data.spectrograms.min() >= 0.0 and data.spectrograms.max() == 1.0
    assert np.allclose(data.spectrograms.reshape(n, -1).max(1), 1.0)  # each sample's peak is 1
    assert data.class_names == list(TARGETS) and data.class_counts() == {t: 4 for t in TARGETS}
    assert np.all(np.diff(data.doppler_hz) > 0) and np.all(np.diff(data.time_s) > 0)
    assert data.doppler_hz[0] >= -cfg.radar.prf_hz / 2 and data.doppler_hz[-1] <= cfg.radar.prf_hz / 2
    assert 0 < data.time_s[0] and data.time_s[-1] < cfg.radar.duration_s
    assert data.iq.shape == (n, int(cfg.radar.prf_hz * cfg.radar.duration_s)) and data.iq_rate_hz == cfg.radar.prf_hz
    p = data.params
    for name in ("radial_speed_mps", "speed_mps", "aspect_deg", "snr_db"):
        assert np.isfinite(p[name]).all(), name
    walker = data.labels == 0
    assert np.isfinite(p["height_m"][walker]).all() and np.isnan(p["height_m"][~walker]).all()
    drone = data.labels == TARGETS.index("drone")
    assert np.isin(p["n_rotors"][drone], cfg.drone.n_rotors).all()
    assert np.isin(p["n_blades"][drone], cfg.drone.n_blades).all()
    bird = data.labels == TARGETS.index("bird")
    assert ((p["flap_hz"][bird] >= 2) & (p["flap_hz"][bird] <= 10)).all()
    # Bulk radial speed follows the sampled speed and aspect (ground geometry, small elevation).
    ok = walker
    expected = p["speed_mps"][ok] * np.cos(np.deg2rad(p["aspect_deg"][ok]))
    assert np.allclose(p["radial_speed_mps"][ok], expected, atol=0.15)
    assert report["helicopter"]["aliased"] == 4  # 200 m/s blade tips always exceed a 1 kHz Nyquist


def test_walker_image_peak_sits_near_bulk_doppler():
    """The spectrogram's strongest line of a walker is near 2 v_r / lambda (torso and legs)."""
    cfg = _cfg("n_per_class=6", "targets=walker", "scene.snr_db=[40, 40]",
               "radar.prf_hz=4000", "radar.duration_s=2.0", "processing.win_len=128", "processing.nfft=128",
               "processing.image_size=[128, 64]")
    data, _ = simulate_dataset(cfg)
    lam = 299_792_458.0 / cfg.radar.carrier_hz
    for img, vr in zip(data.spectrograms, data.params["radial_speed_mps"]):
        peak = data.doppler_hz[img.mean(1).argmax()]
        assert peak == pytest.approx(2 * vr / lam, abs=0.25 * abs(2 * vr / lam) + 2 * (data.doppler_hz[1] - data.doppler_hz[0]))


def test_shards_merge_to_the_single_run_byte_for_byte(tmp_path, runner):
    import h5py

    from mdcli.cli import app
    from tests.conftest import TINY

    base = ["simulate", "--config", str(TINY / "simulate.yaml"), "--n", "5", "--targets", "walker,drone,bird", "-q"]
    whole = tmp_path / "whole.h5"
    assert runner.invoke(app, [*base, "-o", str(whole)]).exit_code == 0
    shards = []
    for i in (2, 0, 1):  # any order
        out = tmp_path / f"s{i}.h5"
        res = runner.invoke(app, [*base, "--shard", f"{i}/3", "-o", str(out)])
        assert res.exit_code == 0, res.output
        shards.append(out)
    merged = tmp_path / "merged.h5"
    res = runner.invoke(app, ["merge", *map(str, shards), "-o", str(merged)])
    assert res.exit_code == 0, res.output
    with h5py.File(whole) as a, h5py.File(merged) as b:
        names = []
        a.visit(lambda n: names.append(n) if isinstance(a[n], h5py.Dataset) else None)
        assert names and set(names) == {n for n in names if n in b}
        for n in names:
            assert a[n][()].tobytes() == b[n][()].tobytes(), n
        skip = {"created_utc", "parents"}  # when it ran, and its inputs (the shards)
        assert {k: str(v) for k, v in a.attrs.items() if k not in skip} == {k: str(v) for k, v in b.attrs.items() if k not in skip}
    bad = runner.invoke(app, ["merge", str(shards[0]), str(shards[1]), "-o", str(tmp_path / "x.h5")])
    assert bad.exit_code == 2 and "missing" in bad.output and not (tmp_path / "x.h5").exists()
    import shutil

    old = tmp_path / "s0-older.h5"  # as an mdcli before /params/phase0 wrote it: the same config text
    shutil.copy(shards[1], old)
    with h5py.File(old, "r+") as f:
        del f["params/phase0"]
    bad = runner.invoke(app, ["merge", str(shards[0]), str(shards[2]), str(old), "-o", str(tmp_path / "z.h5")])
    assert bad.exit_code == 2 and "/params columns differ" in bad.output and not (tmp_path / "z.h5").exists(), bad.output
    bad = runner.invoke(app, [*base, "--shard", "3/3", "-o", str(tmp_path / "y.h5")])
    assert bad.exit_code == 2 and "--shard" in bad.output
    # a shard holding no sample of a class (contiguous shards often do) prints its summary, not a KeyError
    res = runner.invoke(app, ["simulate", "--config", str(TINY / "simulate.yaml"), "--n", "2", "--targets", "walker,bird",
                              "--shard", "0/2", "-o", str(tmp_path / "walkers.h5")])
    assert res.exit_code == 0 and res.exception is None, res.output
    assert "bird" in res.output and "walker" in res.output


def test_simulate_warns_when_stft_windows_leave_samples_out(tmp_path, runner):
    """The tiny config's 32 columns of 64-sample windows over 3000 samples (hop 95 > window) leave most samples
    weak in every frame: `simulate` says so and names the fix; 4 frames per column (hop 23) cover them."""
    from mdcli.cli import app
    from tests.conftest import TINY

    base = ["simulate", "--config", str(TINY / "simulate.yaml"), "--n", "1", "--targets", "walker"]
    res = runner.invoke(app, [*base, "-o", str(tmp_path / "a.h5")])
    assert res.exit_code == 0 and "weigh under -6 dB" in res.output and "processing.time_oversample" in res.output
    res = runner.invoke(app, [*base, "--set", "processing.time_oversample=4", "-o", str(tmp_path / "b.h5")])
    assert res.exit_code == 0 and "weigh under" not in res.output, res.output
    import h5py

    with h5py.File(tmp_path / "b.h5") as f:
        assert f["spectrograms"].shape == (1, 32, 32)


def test_window_warning_under_like_uses_the_like_window():
    """--like renders with like.window_s at the fitted PRF, not processing.win_len: 0.064 s at 3806 Hz is 244
    samples, and 64 Blackman frames over 3 s leave 45 % of the slow time under -6 dB (two frames per column: 1 %)."""
    from mdcli.sim.checks import simulation_warnings

    cfg = SimulateConfig(targets=["walker"])
    cfg.like.file = "measured.h5"
    cfg.radar.prf_hz, cfg.radar.duration_s = 3806.0, 3.0
    cfg.processing.window, cfg.processing.image_size = "blackman", [64, 64]
    (w,) = simulation_warnings(cfg, {})
    assert "45%" in w and "of 244 samples over 11418" in w, w
    cfg.processing.time_oversample = 2
    assert simulation_warnings(cfg, {}) == []
