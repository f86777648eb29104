"""An LDM conditioned on kinematic features (`train-ldm --set 'kinematics=[...]'`): what `encode` stores, what the
model keeps of its training part, what `sample` asks each sample for and what `augment` gives each source."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from mdcli import kinematics as kin
from mdcli.artifacts import Spectrograms, read_tables
from mdcli.cli import app
from tests.conftest import TINY
from tests.test_docs import check

pytestmark = pytest.mark.slow  # a tiny autoencoder, latents and two LDMs (~15 s)

KIN = "kinematics=[period,strength,bandwidth]"


def _ok(args):
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    return res


@pytest.fixture(scope="module")
def chain(tiny_data, tmp_path_factory):
    d = tmp_path_factory.mktemp("kin")
    ae, lat, ldm = d / "ae.h5", d / "lat.h5", d / "ldm.h5"
    _ok(["train-ae", "--config", str(TINY / "train-ae.yaml"), "--data", str(tiny_data), "--arch", "vqvae",
         "--perceptual", "none", "-o", str(ae), "--steps", "5", "-q"])
    _ok(["encode", "--ae", str(ae), "--data", str(tiny_data), "-o", str(lat), "-q"])
    _ok(["train-ldm", "--config", str(TINY / "train-ldm.yaml"), "--latents", str(lat), "--set", KIN,
         "--steps", "10", "-o", str(ldm), "-q"])
    return {"dir": d, "data": tiny_data, "ae": ae, "lat": lat, "ldm": ldm}


def test_encode_stores_each_images_features_and_the_model_its_training_parts(chain):
    data = Spectrograms.load(chain["data"])
    with h5py.File(chain["lat"]) as f:
        stored = f["kinematics"][()]
        assert [c.decode() if isinstance(c, bytes) else c for c in f["kinematics"].attrs["columns"]] == list(kin.RAW_CONDITION)
    np.testing.assert_array_equal(stored, kin.raw_condition(data.spectrograms, data.dynamic_range_db))
    assert np.isfinite(stored[:, 2]).all()  # every tiny image has an envelope
    tables = read_tables(chain["ldm"], "ldm")
    rows, labels = tables["kinematics"], tables["kinematics_labels"]
    assert 0.7 * len(data) <= len(rows) < len(data)  # the training part, without the validation fraction
    classes_of: dict[bytes, set] = {}
    for r, y in zip(stored, data.labels):
        classes_of.setdefault(r.tobytes(), set()).add(int(y))
    for r, y in zip(rows, labels):  # each row is one training image's, with its class
        assert int(y) in classes_of[r.tobytes()]
    for path in (chain["lat"], chain["ldm"]):  # what is written is what docs/artifacts.md lists
        check(path, ("/kinematics",) if path == chain["lat"] else ("/tables/kinematics", "/tables/kinematics_labels"))


def test_sample_asks_each_sample_for_a_training_image_of_its_class(chain, tmp_path):
    out, again = tmp_path / "s.h5", tmp_path / "s2.h5"
    for o in (out, again):
        _ok(["sample", "--ldm", str(chain["ldm"]), "-o", str(o), "--n-per-class", "6", "--steps", "4", "-q"])
    s, s2 = Spectrograms.load(out), Spectrograms.load(again)
    check(out, tuple(f"/params/target_{c}" for c in kin.RAW_CONDITION))
    np.testing.assert_array_equal(s.spectrograms, s2.spectrograms)
    tables = read_tables(chain["ldm"], "ldm")
    targets = np.stack([s.params[f"target_{c}"] for c in kin.RAW_CONDITION], 1).astype(np.float32)
    np.testing.assert_array_equal(targets, np.stack([s2.params[f"target_{c}"] for c in kin.RAW_CONDITION], 1))
    for t, y in zip(targets, s.labels):
        own = tables["kinematics"][tables["kinematics_labels"] == y]
        assert any(np.array_equal(t, r, equal_nan=True) for r in own), (t, y)
    assert len({t.tobytes() for t in targets}) > len(s.class_names)  # drawn, not one row per class
    other = tmp_path / "s3.h5"
    _ok(["sample", "--ldm", str(chain["ldm"]), "-o", str(other), "--n-per-class", "6", "--steps", "4", "--seed", "1", "-q"])
    assert not np.array_equal(Spectrograms.load(other).params["target_period_columns"], s.params["target_period_columns"],
                              equal_nan=True)


def test_augment_varies_each_source_under_its_own_features(chain, tmp_path, monkeypatch):
    import mdcli.augment as augment

    seen = []
    real = augment.guided_eps

    def spy(model, schedule, prediction, y, null, scale, cond=None):
        seen.append(cond.cpu().numpy())
        return real(model, schedule, prediction, y, null, scale, cond)

    monkeypatch.setattr(augment, "guided_eps", spy)
    cfg = augment.AugmentConfig(per_image=1, strength="0.5", sampler="dpmpp-2m", steps=4, seed=0, classes=["walker"])
    setup = augment.check_inputs(cfg, chain["ldm"], chain["data"])
    _, src, _, _ = augment.generate(cfg, setup)
    data = Spectrograms.load(chain["data"])
    expected = kin.condition_vector(kin.raw_condition(data.spectrograms[src], data.dynamic_range_db),
                                    ["period", "strength", "bandwidth"], data.spectrograms.shape[1:])
    np.testing.assert_array_equal(np.concatenate(seen), expected)


def test_latents_without_features_or_an_unknown_feature_are_one_line(chain, tmp_path):
    old = tmp_path / "old.h5"
    shutil.copy(chain["lat"], old)
    with h5py.File(old, "a") as f:
        del f["kinematics"]
    out = tmp_path / "ldm.h5"
    for extra, words in (([str(old), "--set", KIN], ["holds no kinematic features", "run `mdcli encode` again"]),
                         ([str(chain["lat"]), "--set", "kinematics=[speed]"], ["kinematics: unknown 'speed'", "period"]),
                         ([str(chain["lat"]), "--set", "kinematics=[period,period]"], ["each feature once"])):
        res = CliRunner().invoke(app, ["train-ldm", "--config", str(TINY / "train-ldm.yaml"), "--latents", *extra,
                                       "--steps", "2", "-o", str(out), "-q"])
        assert res.exit_code == 2, res.output
        assert "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1, res.output
        assert all(w in res.output for w in words), res.output
        assert not out.exists()


def test_a_class_without_kinematics_or_a_damaged_table_is_one_line_before_sampling(chain, tmp_path):
    tables = read_tables(chain["ldm"], "ldm")
    keep = tables["kinematics_labels"] != 0  # the model never saw a walker's features
    cases = (({"kinematics": tables["kinematics"][keep], "kinematics_labels": tables["kinematics_labels"][keep]},
              ["class 'walker'", "saw no training image of it"]),
             ({"kinematics": tables["kinematics"], "kinematics_labels": tables["kinematics_labels"][:-1]},
              ["damaged 'ldm' artifact", "kinematics with M labels"]))
    for i, (table, words) in enumerate(cases):
        ldm = tmp_path / f"ldm{i}.h5"
        shutil.copy(chain["ldm"], ldm)
        with h5py.File(ldm, "a") as f:
            del f["tables"]
            for k, v in table.items():
                f.create_dataset(f"tables/{k}", data=v)
        out = tmp_path / f"s{i}.h5"
        res = CliRunner().invoke(app, ["sample", "--ldm", str(ldm), "-o", str(out), "--n-per-class", "2", "--steps", "2",
                                       "--ae", str(chain["ae"]), "-q"])
        assert res.exit_code == 2, res.output
        assert "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1, res.output
        assert all(w in res.output for w in words), res.output
        assert not out.exists()
