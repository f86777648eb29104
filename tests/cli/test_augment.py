"""`augment` (SDEdit variations of real spectrograms) and the generation filters, on the tiny chain."""

from __future__ import annotations

import dataclasses
import json

import h5py
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from mdcli.artifacts import Spectrograms, sha256_file
from mdcli.cli import app
from tests.conftest import TINY

pytestmark = pytest.mark.slow  # a tiny generator chain per module (~20 s), then sampling and filtering


def _ok(runner, args):
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    return res


@pytest.fixture(scope="module")
def chain(tiny_data, tmp_path_factory):
    """tiny data (with a recording order), a held-out set, a classifier, a VQ-VAE, its latents and an LDM."""
    runner = CliRunner()
    d = tmp_path_factory.mktemp("augment")
    data = Spectrograms.load(tiny_data)
    seq = dataclasses.replace(data, sequence=np.arange(len(data), dtype=np.int64) * 10 + 7)
    seq.save(d / "train.h5", "test: with a sequence\n", 0)
    held = d / "held.h5"
    _ok(runner, ["simulate", "--config", str(TINY / "simulate.yaml"), "--seed", "1", "-o", str(held), "-q"])
    clf, ae, lat, ldm = d / "clf.h5", d / "ae.h5", d / "lat.h5", d / "ldm.h5"
    _ok(runner, ["train-classifier", "--config", str(TINY / "train-classifier.yaml"), "--data", str(tiny_data),
                 "--steps", "120", "-o", str(clf), "-q"])
    _ok(runner, ["train-ae", "--config", str(TINY / "train-ae.yaml"), "--data", str(tiny_data), "--arch", "vqvae",
                 "--classifier", str(clf), "-o", str(ae), "--steps", "10", "-q"])
    _ok(runner, ["encode", "--ae", str(ae), "--data", str(tiny_data), "-o", str(lat), "-q"])
    _ok(runner, ["train-ldm", "--config", str(TINY / "train-ldm.yaml"), "--latents", str(lat), "-o", str(ldm), "-q"])
    return {"dir": d, "data": d / "train.h5", "tiny": tiny_data, "held": held, "clf": clf, "ae": ae, "ldm": ldm}


def _augment(chain, name, *extra):
    out = chain["dir"] / name
    _ok(CliRunner(), ["augment", "--ldm", str(chain["ldm"]), "--data", str(chain["data"]), "-o", str(out),
                      "--steps", "8", "-q", *extra])
    with h5py.File(out) as f:
        extras = {k: f[k][()] for k in ("source_index", "strength")}
        attrs = dict(f.attrs)
    return Spectrograms.load(out), extras, attrs


def test_strength_zero_is_decode_encode(chain):
    from mdcli.augment import peak_referenced
    from mdcli.data.batches import from_model, to_model
    from mdcli.models.load import load_autoencoder

    out, ex, attrs = _augment(chain, "s0.h5", "--per-image", "2", "--strength", "0")
    real = Spectrograms.load(chain["data"])
    assert len(out) == 2 * len(real) and out.source == "generated"
    assert np.array_equal(ex["source_index"], np.repeat(np.arange(len(real)), 2))
    assert np.array_equal(out.labels, real.labels[ex["source_index"]]) and out.class_names == real.class_names
    assert np.array_equal(out.sequence, real.sequence[ex["source_index"]])  # the source's recording position
    assert np.all(ex["strength"] == 0)
    ae, _, _ = load_autoencoder(chain["ae"])
    with torch.no_grad():
        x = to_model(torch.from_numpy(real.spectrograms)[:, None])
        ref = peak_referenced(from_model(ae.decode(ae.encode(x).latent)).float()[:, 0].numpy())
    np.testing.assert_allclose(out.spectrograms[::2], ref, atol=1e-5)
    np.testing.assert_allclose(out.spectrograms[1::2], ref, atol=1e-5)
    parents = json.loads(attrs["parents"])
    assert [p["sha256"] for p in parents] == [sha256_file(chain[k]) for k in ("ldm", "ae", "data")]
    from tests.test_docs import check

    check(chain["dir"] / "s0.h5", ("/source_index", "/strength", "generated_before_filters"))


def test_strength_zero_needs_no_ldm(chain, tmp_path):
    """--strength 0 with --ae alone: the same round trip as through the LDM, its lineage the autoencoder and the
    data only; any other strength without --ldm is a one-line error naming it, nothing written."""
    runner = CliRunner()
    with_ldm, _, _ = _augment(chain, "s0-ldm.h5", "--strength", "0")
    out = tmp_path / "rt.h5"
    _ok(runner, ["augment", "--ae", str(chain["ae"]), "--data", str(chain["data"]), "--strength", "0", "-o", str(out), "-q"])
    rt = Spectrograms.load(out)
    np.testing.assert_array_equal(rt.spectrograms, with_ldm.spectrograms)
    assert np.array_equal(rt.labels, with_ldm.labels)
    with h5py.File(out) as f:
        parents = json.loads(f.attrs["parents"])
        assert np.all(f["strength"][()] == 0)
    assert [p["sha256"] for p in parents] == [sha256_file(chain[k]) for k in ("ae", "data")]
    bad = tmp_path / "bad.h5"
    for extra, msg in [(["--ae", str(chain["ae"]), "--strength", "0.3"], "--ldm: needed for --strength 0.3"),
                       (["--strength", "0"], "--ae")]:
        res = runner.invoke(app, ["augment", "--data", str(chain["data"]), "-o", str(bad), "-q", *extra])
        assert res.exit_code == 2 and msg in res.output, (extra, res.output)
        assert len(res.output.strip().splitlines()) <= 2 and "Traceback" not in res.output and not bad.exists()


def test_condition_carries_windows_of_unseen_classes_and_keeps_their_labels(chain, tmp_path):
    """--condition null denoises with the LDM's unconditional class, so windows of classes the LDM never saw (e.g.
    simulated identities) are carried towards its training data and keep their own labels; a named class gives
    the bytes of own-label variations for images of that class; `own` on unseen classes, an unknown name and a
    condition without an LDM are one-line errors that write nothing."""
    runner = CliRunner()
    data = Spectrograms.load(chain["data"])
    virtual = tmp_path / "virtual.h5"
    dataclasses.replace(data, class_names=[f"id_{c}" for c in data.class_names]).save(virtual, "test: renamed\n", 0)
    out = tmp_path / "carried.h5"
    args = ["augment", "--ldm", str(chain["ldm"]), "--data", str(virtual), "-o", str(out), "--steps", "8", "-q",
            "-k", "2", "--strength", "0.5"]
    res = runner.invoke(app, args)
    assert res.exit_code == 2 and "--condition null" in res.output and not out.exists(), res.output
    _ok(runner, args + ["--condition", "null"])
    got = Spectrograms.load(out)
    assert got.class_names == [f"id_{c}" for c in data.class_names]
    assert np.array_equal(got.labels, np.repeat(data.labels, 2))
    own, _, _ = _augment(chain, "own-k2.h5", "-k", "2", "--strength", "0.5")
    assert np.abs(got.spectrograms - own.spectrograms).mean() > 1e-3  # the null class is not the own label
    named, _, _ = _augment(chain, "named.h5", "-k", "2", "--strength", "0.5", "--classes", "drone", "--condition", "drone")
    mine, _, _ = _augment(chain, "mine.h5", "-k", "2", "--strength", "0.5", "--classes", "drone")
    np.testing.assert_array_equal(named.spectrograms, mine.spectrograms)
    walker, _, _ = _augment(chain, "as-walker.h5", "-k", "2", "--strength", "0.5", "--classes", "drone",
                            "--condition", "walker")
    assert np.array_equal(walker.labels, mine.labels) and not np.array_equal(walker.spectrograms, mine.spectrograms)
    lat, blind = chain["dir"] / "lat.h5", tmp_path / "blind.h5"  # an LDM that never trained its null class
    _ok(runner, ["train-ldm", "--config", str(TINY / "train-ldm.yaml"), "--latents", str(lat), "-o", str(blind),
                 "--steps", "2", "--set", "diffusion.cfg_dropout=0", "-q"])
    bad = tmp_path / "bad.h5"
    for extra, msg in [(["--ldm", str(chain["ldm"]), "--condition", "ufo"], "--condition ufo: not a class of"),
                       (["--ldm", str(blind), "--condition", "null"], "trained with diffusion.cfg_dropout 0"),
                       (["--ae", str(chain["ae"]), "--strength", "0", "--condition", "null"], "--condition null: only an LDM"),
                       (["--ldm", str(blind)], "--cfg-scale 1.5: "),  # guidance needs the null class too
                       (["--ldm", str(blind), "--condition", "drone"], "trained with diffusion.cfg_dropout 0")]:
        res = runner.invoke(app, ["augment", "--data", str(chain["data"]), "-o", str(bad), "-q", *extra])
        assert res.exit_code == 2 and msg in res.output, (extra, res.output)
        assert len(res.output.strip().splitlines()) <= 2 and "Traceback" not in res.output and not bad.exists()
    res = runner.invoke(app, ["sample", "--ldm", str(blind), "-o", str(bad), "-n", "1", "--steps", "2", "-q"])
    assert res.exit_code == 2 and "--cfg-scale 1.5: " in res.output and "use --cfg-scale 1" in res.output, res.output
    assert "Traceback" not in res.output and not bad.exists()
    _ok(runner, ["sample", "--ldm", str(blind), "-o", str(bad), "-n", "1", "--steps", "2", "--cfg-scale", "1", "-q"])
    _ok(runner, ["augment", "--ldm", str(blind), "--data", str(chain["data"]), "-o", str(tmp_path / "unguided.h5"),
                 "--steps", "2", "--cfg-scale", "1", "-q"])


def test_seeded_batch_independent_and_strength_range(chain):
    a, ea, _ = _augment(chain, "r1.h5", "--per-image", "2", "--strength", "0.2:0.7", "--seed", "4",
                        "--sampler", "dpmpp-2m-sde", "--preview", str(chain["dir"] / "grid.png"))
    b, eb, _ = _augment(chain, "r2.h5", "--per-image", "2", "--strength", "0.2:0.7", "--seed", "4",
                        "--sampler", "dpmpp-2m-sde")
    assert np.array_equal(a.spectrograms, b.spectrograms)  # same seed, same bytes
    c, ec, _ = _augment(chain, "r3.h5", "--per-image", "2", "--strength", "0.2:0.7", "--seed", "4",
                        "--sampler", "dpmpp-2m-sde", "--batch-size", "3", "--classes", "drone,bird")
    pos = np.flatnonzero(np.isin(ea["source_index"], ec["source_index"]))
    np.testing.assert_allclose(c.spectrograms, a.spectrograms[pos], atol=1e-4)  # batching and --classes change nothing
    assert np.array_equal(ec["strength"], ea["strength"][pos])
    s = ea["strength"]
    assert s.min() >= 0.1 and s.max() <= 0.8 and len(np.unique(s)) > 1  # drawn per variant, on the sampler's grid
    d, _, _ = _augment(chain, "r4.h5", "--per-image", "2", "--strength", "0.2:0.7", "--seed", "5",
                       "--sampler", "dpmpp-2m-sde")
    assert not np.array_equal(d.spectrograms, a.spectrograms)
    assert (chain["dir"] / "grid.png").read_bytes()[:4] == b"\x89PNG"


def test_strength_one_matches_sample(chain):
    """Strength 1 starts from pure noise, as `sample` does: its latents have sample's statistics and forget their
    source; a weak edit stays with its source."""
    from mdcli.augment import AugmentConfig, check_inputs, generate
    from mdcli.sample import SampleConfig
    from mdcli.sample import generate as sample_generate

    def run(strength, k):
        cfg = AugmentConfig(per_image=k, strength=strength, sampler="dpmpp-2m", steps=8, seed=1)
        return generate(cfg, check_inputs(cfg, chain["ldm"], chain["data"]))

    aug, src, used, z1 = run("1", 3)
    _, _, _, z0 = run("0", 1)  # the sources' own standardised latents
    _, _, used_low, zl = run("0.1", 1)
    smp, _, zs = sample_generate(SampleConfig(n_per_class=24, sampler="dpmpp-2m", steps=8, seed=2), chain["ldm"])
    assert np.all(used == 1) and np.all((used_low > 0) & (used_low < 0.2))
    for c in range(5):
        a, b = z1[aug.labels == c], zs[smp.labels == c]
        assert np.abs(a.mean((0, 2, 3)) - b.mean((0, 2, 3))).max() < 0.25, c
        assert np.abs(a.std((0, 2, 3)) / b.std((0, 2, 3)) - 1).max() < 0.25, c
    dist = lambda u, v: np.sqrt(((u - v) ** 2).mean((1, 2, 3)))  # noqa: E731
    far, near = dist(z1, z0[src]), dist(zl, z0)
    assert np.median(near) < 0.5 * np.median(far), (np.median(near), np.median(far))


def _constructed(chain):
    real, held = Spectrograms.load(chain["data"]), Spectrograms.load(chain["held"])
    copies = real.select(np.arange(len(real)))
    wrong = dataclasses.replace(held, labels=(held.labels + 1) % 5)
    blank = dataclasses.replace(held, spectrograms=np.zeros_like(held.spectrograms))
    return real, held, copies, wrong, blank


@pytest.mark.parametrize("name,bad", [("confidence", "wrong"), ("novelty", "copies"), ("kinematic", "blank")])
def test_each_filter_drops_its_bad_sample_and_keeps_held_out(chain, name, bad):
    from pathlib import Path

    from mdcli import filters

    real, held, copies, wrong, blank = _constructed(chain)
    text = {"confidence": f"confidence:{chain['clf']},min=0.5", "novelty": f"novelty:{chain['clf']}",
            "kinematic": "kinematic"}[name]
    prepared = filters.prepare(filters.parse_filters([text]), Path(chain["data"]), real.class_names, (32, 32))
    kept_held, rep = filters.apply(prepared, held)
    assert len(kept_held) >= 0.8 * len(held), rep  # real held-out images pass
    bad_set = {"wrong": wrong, "copies": copies, "blank": blank}[bad]
    kept_bad, rep = filters.apply(prepared, bad_set)
    assert len(kept_bad) <= 0.1 * len(bad_set), rep
    assert rep[0]["dropped"] == len(bad_set) - len(kept_bad) and rep[0]["reason"]


def test_filters_in_augment_and_sample(chain):
    runner = CliRunner()
    # the tiny chain's 10-step autoencoder draws no gait: the kinematic filter drops every variation, and an
    # empty file is not written
    res = runner.invoke(app, ["augment", "--ldm", str(chain["ldm"]), "--data", str(chain["data"]), "-o",
                              str(chain["dir"] / "none.h5"), "--steps", "8", "-q", "--per-image", "2", "--strength", "0.3",
                              "--filter", "kinematic"])
    assert res.exit_code == 2 and "kept none of the 80 variations" in res.output and "'kinematic'" in res.output, res.output
    assert not (chain["dir"] / "none.h5").exists()
    out, ex, attrs = _augment(chain, "f.h5", "--per-image", "2", "--strength", "0.3",
                              "--filter", f"novelty:{chain['clf']},quantile=0.05", "--filter", f"confidence:{chain['clf']},min=0.2")
    reports = json.loads(attrs["filters"])
    assert [r["filter"] for r in reports] == ["novelty", "confidence"]
    assert reports[0]["checked"] == attrs["generated_before_filters"] == 2 * 40
    assert reports[1]["checked"] == reports[0]["checked"] - reports[0]["dropped"]
    assert 0 < len(out) == reports[1]["checked"] - reports[1]["dropped"] == len(ex["source_index"])
    assert sha256_file(chain["clf"]) in {p["sha256"] for p in json.loads(attrs["parents"])}
    smp = chain["dir"] / "sf.h5"
    res = _ok(runner, ["sample", "--ldm", str(chain["ldm"]), "-o", str(smp), "-n", "4", "--steps", "5",
                       "--filter", f"novelty:{chain['clf']},quantile=0.05"])
    assert "novelty" in res.output and "dropped" in res.output
    with h5py.File(smp) as f:
        rep = json.loads(f.attrs["filters"])
        assert rep[0]["reference"] == str(chain["tiny"])  # the LDM's training data, found through the lineage
        assert f.attrs["generated_before_filters"] == 20 and 0 < len(f["labels"]) == 20 - rep[0]["dropped"]
    from tests.test_docs import check

    check(smp, ("filters",))


def test_bad_input_is_one_line_and_writes_nothing(chain, tmp_path):
    runner = CliRunner()
    out = tmp_path / "bad.h5"
    base = ["augment", "--ldm", str(chain["ldm"]), "--data", str(chain["data"]), "-o", str(out), "-q"]
    small = tmp_path / "small.h5"
    d = Spectrograms.load(chain["data"])
    dataclasses.replace(d, spectrograms=np.ascontiguousarray(d.spectrograms[:, :16]), doppler_hz=d.doppler_hz[:16]).save(
        small, "test\n", 0)
    other = tmp_path / "other_clf.h5"
    other.write_bytes(chain["clf"].read_bytes())
    with h5py.File(other, "a") as f:
        f.attrs["class_names"] = json.dumps(["a", "b", "c", "d", "e"])
    cases = [
        (["--strength", "1.5"], "[0, 1]"),
        (["--strength", "-0.1"], "[0, 1]"),
        (["--strength", "0.6:0.3"], "range"),
        (["--strength", "abc"], "--strength"),
        (["--filter", "sharpness"], "unknown filter"),
        (["--filter", "confidence"], "needs a classifier"),
        (["--filter", "kinematic:margin=x"], "number"),
        (["--filter", f"confidence:{other}"], "classes"),
        (["--classes", "ufo"], "ufo"),
        (["--steps", "5000"], "--steps 5000: must be between 1 and 1000"),
        (["--classes", "bird,drone,bird"], "'bird' is named twice"),
    ]
    for extra, msg in cases:
        res = runner.invoke(app, base + extra)
        assert res.exit_code == 2 and msg in res.output, (extra, res.output)
        assert len(res.output.strip().splitlines()) <= 2 and "Traceback" not in res.output
        assert not out.exists()
    res = runner.invoke(app, ["augment", "--ldm", str(chain["ldm"]), "--data", str(small), "-o", str(out), "-q"])
    assert res.exit_code == 2 and "16x32" in res.output and not out.exists(), res.output
    for extra, msg in ((["--steps", "5000"], "--steps 5000"), (["--classes", "walker,walker"], "'walker' is named twice")):
        res = runner.invoke(app, ["sample", "--ldm", str(chain["ldm"]), "-o", str(out), "-q", *extra])
        assert res.exit_code == 2 and msg in res.output and not out.exists(), res.output
    res = runner.invoke(app, ["sample", "--ldm", str(chain["ldm"]), "-o", str(out), "--filter", "novelty:nope.h5"])
    assert res.exit_code == 2 and "nope.h5" in res.output and not out.exists(), res.output


def test_help_and_gait_config(runner):
    from tests.conftest import ROOT

    res = runner.invoke(app, ["augment", "--help"])
    assert res.exit_code == 0 and "Examples" in res.output and "mdcli augment" in res.output
    res = runner.invoke(app, ["augment", "--config", str(ROOT / "configs" / "gait" / "augment.yaml"), "--dry-run"])
    assert res.exit_code == 0 and "strength: 0.3:0.6" in res.output and "kinematic:margin=0.25" in res.output, res.output
    res = runner.invoke(app, ["augment", "--config", str(ROOT / "configs" / "gait" / "augment.yaml"), "--dry-run",
                              "--filter", "novelty:clf.h5", "--strength", "0.5"])
    assert res.exit_code == 0 and "novelty:clf.h5" in res.output and "kinematic" not in res.output, res.output
