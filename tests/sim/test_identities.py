"""Virtual walkers with identities (`simulate --identities N --per-identity M`, issue 36 part 2)."""

from __future__ import annotations

import numpy as np
import pytest

from mdcli.config import load_config
from mdcli.sim.config import SimulateConfig
from mdcli.sim.dataset import simulate_dataset
from mdcli.sim.identity import IDENTITY_PARAM_NAMES
from tests.conftest import TINY

# One geometry for every window (straight at the radar, same range and SNR): what is left is the person and the walk.
FIXED_SCENE = ["scene.aspect_deg=[0, 0]", "scene.receding_fraction=0", "scene.range_m=[15, 15]", "scene.snr_db=[40, 40]"]


def _cfg(*overrides):
    return load_config(SimulateConfig, TINY / "simulate.yaml", ["targets=walker", "radar.prf_hz=3000", *overrides])


def _spread(x: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(within-identity sd, sd of the identity means)."""
    ids = np.unique(labels)
    within = np.sqrt(np.mean([x[labels == i].var(ddof=1) for i in ids]))
    return float(within), float(np.std([x[labels == i].mean() for i in ids], ddof=1))


def _profile_distances(data) -> tuple[float, float, float]:
    """Time-averaged Doppler profiles: mean distance within / between identities, and 1-NN identity accuracy."""
    prof = data.spectrograms.mean(2)
    d = np.linalg.norm(prof[:, None] - prof[None], axis=-1)
    lab = data.labels
    same, off = lab[:, None] == lab[None], ~np.eye(len(lab), dtype=bool)
    nn = (d + 1e9 * np.eye(len(lab))).argmin(1)
    return float(d[same & off].mean()), float(d[~same].mean()), float((lab[nn] == lab).mean())


def test_identities_differ_more_between_than_within():
    data, _ = simulate_dataset(_cfg("identities=16", "n_per_class=6", *FIXED_SCENE))
    assert data.class_names == [f"id_{i:03d}" for i in range(16)]
    assert np.array_equal(data.labels, np.repeat(np.arange(16), 6))
    p, lab = data.params, data.labels
    for name in IDENTITY_PARAM_NAMES:
        assert np.isfinite(p[name]).all(), name
    for name in ("id_height_m", "id_leg_scale", "id_arm_swing", "id_step_asymmetry", "id_torso_sway", "id_speed_mps"):
        per_person = [p[name][lab == i] for i in range(16)]
        assert all(np.ptp(v) == 0 for v in per_person), name  # a body and style per person ...
        assert len({v[0] for v in per_person}) == 16, name  # ... and each person's own
    assert np.array_equal(p["height_m"], p["id_height_m"])
    for name in ("speed_mps", "gait_cycle_s"):  # walks vary around the person's preference, less than people differ
        within, between = _spread(p[name], lab)
        assert 0 < within and between > 2 * within, (name, within, between)
    within, between, nn = _profile_distances(data)
    assert between > 1.8 * within and nn >= 0.2, (within, between, nn)  # 1-NN by chance: 1/16


def test_identities_differ_by_body_and_style_at_one_speed():
    """All people prefer 1.3 m/s: their spectrograms still tell them apart (height, proportions, style)."""
    data, _ = simulate_dataset(_cfg("identities=16", "n_per_class=6", *FIXED_SCENE,
                                    "identity.speed_mps=[1.3, 1.3]", "identity.speed_sd_mps=[0.05, 0.05]"))
    within, between, nn = _profile_distances(data)
    assert between > 1.1 * within and nn >= 0.15, (within, between, nn)  # chance 1/16


def test_a_shared_gait_cycle_gives_every_person_one_cadence():
    """identity.cycle_s: every window walks that gait cycle whatever its speed and body (the measured gait people
    share one cadence: their step periods differ by under 1 % between people); the people still differ in speed,
    and each window stores the cadence_scale that gives the cycle. The rendered step period is half the cycle."""
    from mdcli.kinematics import features_of

    periods = {}
    for extra in ([], ["identity.cycle_s=1.2"]):
        data, _ = simulate_dataset(_cfg("identities=8", "n_per_class=4", *FIXED_SCENE, *extra))
        k, lab, p = features_of(data), data.labels, data.params
        periods[bool(extra)] = np.array([np.nanmedian(k.period[lab == i]) for i in range(8)])
    np.testing.assert_allclose(p["gait_cycle_s"], 1.2, rtol=1e-9)
    from mdcli.sim.config import config_text

    plain = _cfg("identities=8", "n_per_class=4")
    assert "cycle_s" not in config_text(plain)  # files without it keep the text (and hash) they had before it
    assert "cycle_s: 1.2" in config_text(_cfg("identities=8", "n_per_class=4", "identity.cycle_s=1.2"))
    within, between = _spread(p["speed_mps"], lab)
    assert between > 2 * within and np.ptp(p["cadence_scale"]) > 0.1
    np.testing.assert_allclose(periods[True], 0.6, rtol=0.03)  # a step: half the cycle, for every person
    assert periods[False].std() > 5 * periods[True].std(), periods  # Boulic's cadence differs with speed and body


def test_an_identity_does_not_depend_on_windows_workers_or_other_identities():
    a, _ = simulate_dataset(_cfg("identities=3", "n_per_class=2"))
    b, _ = simulate_dataset(_cfg("identities=4", "n_per_class=3", "workers=2"))
    keep = np.flatnonzero((b.labels < 3) & (b.params["window"] < 2))
    assert b.spectrograms[keep].tobytes() == a.spectrograms.tobytes()
    for name in a.params:
        assert np.array_equal(a.params[name], b.params[name][keep], equal_nan=True), name
    c, _ = simulate_dataset(_cfg("identities=3", "n_per_class=2", "seed=1"))
    assert not np.array_equal(c.params["id_height_m"], a.params["id_height_m"])
    plain, _ = simulate_dataset(_cfg("n_per_class=2"))  # identities draw from streams of their own
    assert not np.isin(plain.params["speed_mps"], a.params["speed_mps"]).any()
    assert "identity" not in plain.params


def test_cli_identities_shard_and_merge_byte_for_byte(tmp_path, runner):
    import h5py

    from mdcli.cli import app

    base = ["simulate", "--config", str(TINY / "simulate.yaml"), "--identities", "3", "--per-identity", "2", "-q"]
    whole = tmp_path / "whole.h5"
    res = runner.invoke(app, [*base, "-o", str(whole)])
    assert res.exit_code == 0, res.output
    shards = []
    for i in (1, 0):
        out = tmp_path / f"s{i}.h5"
        assert runner.invoke(app, [*base, "--shard", f"{i}/2", "-o", str(out)]).exit_code == 0
        shards.append(out)
    merged = tmp_path / "merged.h5"
    assert runner.invoke(app, ["merge", *map(str, shards), "-o", str(merged)]).exit_code == 0
    with h5py.File(whole) as a, h5py.File(merged) as b:
        names = []
        a.visit(lambda n: names.append(n) if isinstance(a[n], h5py.Dataset) else None)
        assert "params/id_arm_swing" in names and "params/identity" in names
        for n in names:
            assert a[n][()].tobytes() == b[n][()].tobytes(), n
        assert "identities: 3" in str(a.attrs["config"])
    from mdcli.artifacts import Spectrograms

    data = Spectrograms.load(merged)
    assert data.class_names == ["id_000", "id_001", "id_002"] and data.class_counts() == {"id_000": 2, "id_001": 2, "id_002": 2}


def test_plain_simulate_config_text_has_no_identity_keys(tmp_path, runner):
    """Files written without --identities keep the config text they had before identities existed."""
    from mdcli.cli import app

    res = runner.invoke(app, ["simulate", "--config", str(TINY / "simulate.yaml"), "--dry-run"])
    assert res.exit_code == 0 and "identit" not in res.output


@pytest.mark.parametrize("args,message", [
    (["--identities", "3", "--targets", "walker,drone"], "--targets walker"),
    (["--identities", "3", "--targets", "mocap", "--mocap", "x.amc", "--skeleton", "x.asf"], None),
    (["--per-identity", "3"], "--identities"),
    (["--identities", "3", "--per-identity", "3", "--n", "4"], "disagree"),
    (["--identities", "-1"], "--identities"),
    (["--identities", "2", "--set", "identity.leg_scale=[1.1, 0.9]"], "identity.leg_scale"),
    (["--identities", "2", "--set", "identity.cycle_s=5"], "identity.cycle_s: 5.0; expected 0"),
    (["--identities", "2", "--set", "identity.cycle_s=0.6"], "times Boulic's cycle"),
    (["--identities", "2", "--set", "identity.cycle_s=1.2", "--set", "identity.cadence_scale=[0.8, 0.8]"],
     "identity.cycle_s: fixes every window's cadence"),
])
def test_identity_option_errors_are_one_line(tmp_path, runner, args, message):
    from mdcli.cli import app

    res = runner.invoke(app, ["simulate", "--config", str(TINY / "simulate.yaml"), *args, "-o", str(tmp_path / "x.h5")])
    assert res.exit_code == 2, res.output
    assert message is None or message in res.output
    assert not (tmp_path / "x.h5").exists()


def test_style_parameters_move_the_body_as_named():
    """arm_swing widens the hands' Doppler, step_asymmetry makes one foot faster than the other, leg_scale
    lengthens the stride (slower cadence at one speed), torso_sway widens the lateral sway."""
    from mdcli.sim import walker
    from tests.conftest import make_scene

    def run(**style):
        sc = make_scene(2000.0, 4.0, range_m=60.0, radar_height=1.0)
        p = {"height_m": 1.75, "speed_mps": 1.3, "phase0": 0.0, **{f"id_{k}": v for k, v in style.items()}}
        r, _ = walker.walker_ranges(p, sc)
        return -np.diff(r, axis=1) / ((sc.t[1] - sc.t[0]) * sc.factor)  # closing speeds (18, Jc - 1)

    hands = [walker.SEGMENTS.index(s) for s in walker.SEGMENTS if s[1] in (walker.L_HAND, walker.R_HAND)]
    assert run(arm_swing=1.5)[hands].max() > run(arm_swing=0.5)[hands].max() + 0.3
    toes = run(step_asymmetry=0.1)[16:].max(1)  # left, right toe
    assert toes[0] > 1.05 * toes[1]
    plain = run()[16:].max(1)
    assert abs(plain[0] - plain[1]) < 0.02 * plain.max()
    assert np.array_equal(run(leg_scale=1.0, arm_scale=1.0, arm_swing=1.0, step_asymmetry=0.0, torso_sway=1.0), run())
    assert walker.relative_velocity(1.3, 1.75, 1.06) < walker.relative_velocity(1.3, 1.75)
    base = walker.trajectories(1.0, np.linspace(0, 1, 101))
    sway = walker.trajectories(1.0, np.linspace(0, 1, 101), {"torso_sway": 2.0})
    assert np.allclose(sway["y"], 2 * base["y"]) and np.allclose(sway["roll"], 2 * base["roll"])


def test_cadence_scale_ranges_are_checked_and_a_single_value_draws_nothing():
    from mdcli.errors import ConfigError
    from mdcli.sim.config import SimulateConfig
    from mdcli.sim.walker import sample_walker

    cfg = SimulateConfig(targets=["walker"])
    cfg.walker.cadence_scale = [0.3, 1.0]
    with pytest.raises(ConfigError, match="walker.cadence_scale: within 0.5 to 2.0"):
        cfg.validate()
    cfg.walker.cadence_scale = [1.2, 0.9]
    with pytest.raises(ConfigError, match=r"walker.cadence_scale: expected \[low, high\]"):
        cfg.validate()
    # the default [1, 1] leaves the random stream as it was: the next draw is the same as without the parameter
    a, b = np.random.default_rng(3), np.random.default_rng(3)
    cfg.walker.cadence_scale = [1.0, 1.0]
    p = sample_walker(cfg.walker, a)
    b.uniform(), b.uniform(), b.uniform()  # height, speed, phase
    assert p["cadence_scale"] == 1.0 and a.uniform() == b.uniform()
    cfg.walker.cadence_scale = [0.8, 1.2]
    assert 0.8 <= sample_walker(cfg.walker, a)["cadence_scale"] <= 1.2


def test_walker_cadence_under_identities_is_refused():
    from mdcli.errors import ConfigError
    from mdcli.sim.config import SimulateConfig

    cfg = SimulateConfig(targets=["walker"], identities=3)
    cfg.walker.cadence_scale = [0.8, 0.8]
    with pytest.raises(ConfigError, match="identity.cadence_scale"):
        cfg.validate()
    cfg.identity.cadence_scale = [0.8, 0.8]  # as the --like fit writes both
    cfg.validate()


@pytest.mark.parametrize("key,value", [("speed_mps", [1.1, 1.3]), ("height_m", [1.6, 1.7])])
def test_walker_body_or_speed_under_identities_is_refused_unless_the_persons_is_set(key, value):
    """A walker range under --identities would be silently unused (each person's comes from identity.*), e.g. a
    --like fit's stored config rendered with --identities: refused, naming the identity key; with the person's
    range set too (the documented recipe) it is accepted."""
    from mdcli.errors import ConfigError
    from mdcli.sim.config import SimulateConfig

    cfg = SimulateConfig(targets=["walker"], identities=3)
    setattr(cfg.walker, key, value)
    with pytest.raises(ConfigError, match=rf"walker.{key}: .* identity.{key}"):
        cfg.validate()
    setattr(cfg.identity, key, [value[0] + 0.01, value[1]])
    cfg.validate()
    cfg.identities = 0  # a plain walker simulation uses walker.* itself
    cfg.identity = type(cfg.identity)()
    cfg.validate()
