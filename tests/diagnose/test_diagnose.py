"""diagnose latent / collapse / diffusability / generation: formulas, constructed failures, CLI contract."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from mdcli.artifacts import Spectrograms
from mdcli.cli import app
from mdcli.data.batches import load_images
from mdcli.data.splits import split_indices
from mdcli.diagnose import stats
from mdcli.diagnose.constructed import ForcedSigmaVAE, PermutedVQ, collapse_codebook
from mdcli.diagnose.latent import CollapseThresholds, LatentConfig, collapse_label, encode_all, latent_report, vae_metrics
from mdcli.metrics import codebook_stats
from mdcli.models.load import load_autoencoder
from mdcli.train.classifier import FitConfig, classic_augment
from tests.conftest import TINY


def _ok(runner, args):
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    return res


# -- formulas against hand-computed values ---------------------------------------------------------
def test_perplexity_of_known_histogram():
    s = codebook_stats(np.array([2, 1, 1, 0]))
    h = -(0.5 * np.log(0.5) + 2 * 0.25 * np.log(0.25))
    assert s["perplexity"] == pytest.approx(np.exp(h))
    assert s["perplexity_ratio"] == pytest.approx(np.exp(h) / 4)
    assert s["codebook_usage"] == pytest.approx(0.75)


def test_seed_spread_is_the_sample_std():
    """Spread over seeds is the sample std (ddof 1): at two seeds the population std is half the range, sqrt(2)
    too small; one seed has no spread and prints none."""
    mean, sd = stats.seed_spread([0.9, 0.8])
    assert mean == pytest.approx(0.85) and sd == pytest.approx(0.1 / np.sqrt(2))
    assert stats.seed_spread([0.7]) == (0.7, None)
    assert stats.fmt_spread([0.9, 0.8], ".3f", ".3f") == "0.850 ± 0.071" and stats.fmt_spread([0.7], ".3f") == "0.700"


def test_frechet_distance_closed_form():
    # 1-D: (m1 - m2)^2 + (s1 - s2)^2
    assert stats.frechet_distance([1.0], [[4.0]], [3.0], [[1.0]]) == pytest.approx(4.0 + 1.0)
    # diagonal covariances: the sum over dimensions
    c1, c2 = np.diag([1.0, 9.0]), np.diag([4.0, 1.0])
    assert stats.frechet_distance([0, 0], c1, [1, 1], c2) == pytest.approx(2 + (1 - 2) ** 2 + (3 - 1) ** 2)
    # same Gaussian, full covariance: zero
    a = np.array([[2.0, 0.5], [0.5, 1.0]])
    assert stats.frechet_distance([1, 2], a, [1, 2], a) == pytest.approx(0.0, abs=1e-9)


def test_prdc_on_small_point_sets():
    real = np.array([[0.0], [1.0], [2.0], [3.0]])
    fake = np.array([[0.5], [10.0]])
    r = stats.prdc(real, fake, k=1)
    # radii of real = 1; fake 0.5 sits in the balls of reals 0 and 1, fake 10 in none
    assert r == {"precision": 0.5, "recall": 1.0, "density": 1.0, "coverage": 0.5}


def test_kid_separates_shifted_features():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(200, 8)), rng.normal(size=(200, 8))
    same, _ = stats.kid(a, b, 10, 100)
    shifted, _ = stats.kid(a, b + 1.0, 10, 100)
    assert abs(same) < 0.02 and shifted > 0.1


def test_active_units_on_constructed_encoder():
    gen = torch.Generator().manual_seed(0)
    mu = torch.zeros(500, 3, 2, 2)
    mu[:, 0] = torch.randn(500, 2, 2, generator=gen)  # informative: Cov_x E[z|x] = 1
    mu[:, 1] = 0.05 * torch.randn(500, 2, 2, generator=gen)  # variance 0.0025 < 0.01: inactive
    mu[:, 2] = 3.0  # constant: inactive
    v = vae_metrics(mu, torch.zeros_like(mu), LatentConfig())
    assert v["active_units"] == 4 and v["latent_dims"] == 12
    assert v["kl_per_channel"][2] == pytest.approx(4.5)  # 0.5 * mu^2 with sigma = 1


def test_mutual_information_limits():
    n = 64
    same = stats.gaussian_mutual_information(torch.zeros(n, 8), torch.zeros(n, 8))
    apart = stats.gaussian_mutual_information(torch.arange(n).float()[:, None].repeat(1, 8), torch.full((n, 8), -10.0))
    assert abs(same) < 1e-9 and apart == pytest.approx(np.log(n), rel=1e-6)


def test_neighbour_code_mi():
    checker = (np.indices((8, 8)).sum(0) % 2)[None].repeat(50, 0)  # neighbours always differ: MI = H = log 2
    r = stats.neighbour_code_mi(checker, 2)
    assert r["neighbour_mi"] == pytest.approx(np.log(2)) and r["neighbour_mi_ratio"] > 0.95
    iid = np.random.default_rng(0).integers(0, 4, (200, 8, 8))
    assert abs(stats.neighbour_code_mi(iid, 4)["neighbour_mi_ratio"]) < 0.01


def test_dct_high_frequency_share():
    checker = (np.indices((16, 16)).sum(0) % 2 * 2.0 - 1)[None, None].repeat(3, 0)
    # DCT-II of (-1)^n is not a single basis vector, but nearly all its power is in the top bands
    assert stats.high_frequency_share(stats.radial_dct_power(checker)) > 0.99
    ramp = np.linspace(0, 1, 16)[None, None, None, :].repeat(16, 2).repeat(3, 0)
    ramp = ramp + np.random.default_rng(0).normal(0, 1e-3, ramp.shape)
    assert stats.high_frequency_share(stats.radial_dct_power(ramp)) < 0.01


def test_blocked_split_keeps_test_windows_away():
    labels = np.repeat([0, 1], 30)
    seq = np.concatenate([np.arange(30), np.arange(100, 130)])
    tr, te = split_indices(labels, 0.2, 5, "blocked", seq, gap=3)
    for c in (0, 1):
        t = np.sort(seq[te][labels[te] == c])
        assert len(t) == 6 and np.all(np.diff(t) == 1)  # one contiguous block per class
        train_c = seq[tr][labels[tr] == c]
        assert np.abs(train_c[:, None] - t[None]).min() >= 3
    assert not set(tr) & set(te)
    # gap 0: the neighbours of the test block may train, the test block itself never
    for seed in range(4):
        tr0, te0 = split_indices(labels, 0.2, seed, "blocked", seq, gap=0)
        assert not set(tr0) & set(te0) and len(tr0) + len(te0) == len(labels)
    rtr, rte = split_indices(labels, 0.2, 5, "random")
    assert len(rte) == 12 and len(rtr) == 48


def test_classic_augment_is_a_roll_without_crop_and_noise():
    x = torch.arange(2 * 4 * 6, dtype=torch.float32).view(2, 1, 4, 6)
    cfg = FitConfig(noise_std=0.0, crop_min=1.0)
    y = classic_augment(x, torch.Generator().manual_seed(0), cfg)
    for i in range(2):
        assert any(torch.allclose(y[i], torch.roll(x[i], s, dims=-1), atol=1e-4) for s in range(6))


# -- constructed failure cases: the labels and which metric catches them -------------------------
@pytest.fixture(scope="module")
def trained(tiny_data, tmp_path_factory):
    runner = CliRunner()
    d = tmp_path_factory.mktemp("diag")
    out = {"dir": d, "data": tiny_data}
    for arch in ("vqvae", "vae"):
        out[arch] = d / f"{arch}.h5"
        _ok(runner, ["train-ae", "--config", str(TINY / "train-ae.yaml"), "--data", str(tiny_data), "--arch", arch,
                     "--perceptual", "none", "--steps", "60", "-o", str(out[arch]), "-q"])
    return out


def _report(model, data):
    x, y, _ = load_images(data)
    r = latent_report(model, x, y, LatentConfig(interp_pairs=10))
    return r, collapse_label(r, CollapseThresholds())[0]


@pytest.mark.slow
def test_collapse_labels_on_constructed_vq_cases(trained):
    vq, _, _ = load_autoencoder(trained["vqvae"])
    x, _, _ = load_images(trained["data"])
    idx = encode_all(vq, x, 64)["indices"]
    healthy, lab_h = _report(vq, trained["data"])
    assert lab_h == "healthy", healthy["vq"]
    counts = torch.bincount(idx.flatten(), minlength=vq.quantizer.cfg.codebook_size)
    few, lab_c = _report(collapse_codebook(vq, 2, counts), trained["data"])
    assert lab_c == "codebook collapse" and few["vq"]["top10pct_mass"] > 0.8
    hw = tuple(idx.shape[1:])
    perm, lab_p = _report(PermutedVQ(vq, hw, seed=1), trained["data"])
    pos, lab_q = _report(PermutedVQ(vq, hw, per_position=True, seed=1), trained["data"])
    assert lab_p == "posterior collapse" and lab_q == "posterior collapse"
    # reconstruction and usage unchanged by the relabelling ...
    assert perm["equivariance"]["recon_psnr"] == pytest.approx(healthy["equivariance"]["recon_psnr"], abs=1e-3)
    assert perm["vq"]["perplexity"] == pytest.approx(healthy["vq"]["perplexity"])
    # ... a global relabelling leaves index statistics alone: only the geometric metric catches it
    assert perm["vq"]["neighbour_mi_ratio"] == pytest.approx(healthy["vq"]["neighbour_mi_ratio"])
    assert perm["vq"]["damage_ratio"] > 0.5 > healthy["vq"]["damage_ratio"]
    assert perm["interpolation"]["path_length_ratio"] > healthy["interpolation"]["path_length_ratio"]
    assert perm["spectrum"]["latent_high_freq_share"] > healthy["spectrum"]["latent_high_freq_share"]
    # a different relabelling per position also scrambles the code maps' neighbour structure (what is
    # left is position information); the damage ratio is what labels it
    assert pos["vq"]["neighbour_mi_ratio"] < 0.5 * healthy["vq"]["neighbour_mi_ratio"]
    assert pos["vq"]["damage_ratio"] > 0.5
    assert pos["spectrum"]["latent_high_freq_share"] > healthy["spectrum"]["latent_high_freq_share"]


@pytest.mark.slow
def test_collapse_labels_on_constructed_vae_cases(trained):
    vae, _, _ = load_autoencoder(trained["vae"])
    healthy, lab_h = _report(vae, trained["data"])
    forced, lab_f = _report(ForcedSigmaVAE(vae, -20.0), trained["data"])
    assert lab_h == "healthy" and lab_f == "variance collapse"
    assert forced["vae"]["variance_collapse_index"] < 1e-3 < healthy["vae"]["variance_collapse_index"]
    assert forced["vae"]["mutual_information"] == pytest.approx(forced["vae"]["mutual_information_bound"], rel=1e-3)


# -- the CLI ---------------------------------------------------------------------------------------
@pytest.mark.slow
def test_diagnose_latent_and_collapse_cli(trained):
    runner = CliRunner()
    res = _ok(runner, ["diagnose", "latent", "--ae", str(trained["vqvae"]), "--data", str(trained["data"]), "--json",
                       "--plot", str(trained["dir"] / "figs")])
    r = json.loads(res.stdout)
    assert {"channels", "spectrum", "equivariance", "robustness_psnr", "probe", "vq"} <= set(r)
    assert (trained["dir"] / "figs" / "latent_spectrum_robustness.png").stat().st_size > 1000
    res = _ok(runner, ["diagnose", "collapse", "--ae", str(trained["vae"]), "--data", str(trained["data"]),
                       "--set", "variance_index_max=1e9", "--json"])
    c = json.loads(res.stdout)
    assert c["label"] == "variance collapse" and c["evidence"][0]["fired"]  # the threshold is the user's to set
    res = _ok(runner, ["diagnose", "collapse", "--ae", str(trained["vqvae"]), "--data", str(trained["data"])])
    assert "healthy" in res.stdout and "damage_ratio" in res.stdout
    bad = runner.invoke(app, ["diagnose", "collapse", "--ae", str(trained["vae"]), "--data", str(trained["data"]),
                              "--set", "no_such=1"])
    assert bad.exit_code == 2 and "no_such" in bad.output


@pytest.fixture(scope="module")
def chain(trained):
    """A split, a perceptual classifier and an independent judge, and a tiny generator trained on the split's
    training part: what `diagnose generation` scores."""
    runner = CliRunner()
    d, data = trained["dir"], trained["data"]
    _ok(runner, ["split", str(data), "--train-out", str(d / "train.h5"), "--test-out", str(d / "test.h5"),
                 "--test-fraction", "0.3", "--split", "blocked", "--gap", "0"])
    clf, judge = d / "clf.h5", d / "judge.h5"
    for path, seed in ((clf, "0"), (judge, "1")):
        _ok(runner, ["train-classifier", "--config", str(TINY / "train-classifier.yaml"), "--data", str(d / "train.h5"),
                     "--seed", seed, "-o", str(path), "-q"])
    ae, lat, ldm, smp = d / "g_ae.h5", d / "g_lat.h5", d / "g_ldm.h5", d / "g_samples.h5"
    _ok(runner, ["train-ae", "--config", str(TINY / "train-ae.yaml"), "--data", str(d / "train.h5"), "--arch", "vqvae",
                 "--classifier", str(clf), "--steps", "10", "-o", str(ae), "-q"])
    _ok(runner, ["encode", "--ae", str(ae), "--data", str(d / "train.h5"), "-o", str(lat), "-q"])
    _ok(runner, ["train-ldm", "--config", str(TINY / "train-ldm.yaml"), "--latents", str(lat), "-o", str(ldm), "-q"])
    _ok(runner, ["sample", "--config", str(TINY / "sample.yaml"), "--ldm", str(ldm), "-o", str(smp), "-q"])
    base = ["diagnose", "generation", "--samples", str(smp), "--real", str(d / "test.h5"),
            "--set", "seeds=[0]", "--set", "few=[3]", "--set", "fit.steps=5", "--set", "kid_subset_size=10"]
    return {"d": d, "data": data, "clf": clf, "judge": judge, "ae": ae, "lat": lat, "ldm": ldm, "smp": smp, "base": base}


@pytest.mark.slow
def test_generation_diffusability_and_split_cli(chain):
    runner = CliRunner()
    d, data, clf, judge, ae, lat, smp, base = (chain[k] for k in ("d", "data", "clf", "judge", "ae", "lat", "smp", "base"))
    refused = runner.invoke(app, [*base, "--classifier", str(clf)])
    assert refused.exit_code == 2 and "--allow-same-judge" in refused.output and "Traceback" not in refused.output
    # nothing that trains may have seen the held-out images: a judge trained on the unsplit file, or
    # --train pointing at it, is refused by name (exact image overlap), and nothing is written
    leaky = d / "leaky_judge.h5"
    _ok(runner, ["train-classifier", "--config", str(TINY / "train-classifier.yaml"), "--data", str(data),
                 "--seed", "1", "--steps", "2", "-o", str(leaky), "-q"])
    n_test = len(Spectrograms.load(d / "test.h5").labels)
    for extra, name in ((["--classifier", str(leaky)], f"--classifier {leaky}"),
                        (["--classifier", str(judge), "--train", str(data)], f"--train {data}")):
        out = d / "leak_plots"
        res = runner.invoke(app, [*base, *extra, "--plot", str(out)])
        assert res.exit_code == 2 and name in res.output and "Traceback" not in res.output, res.output
        assert f"holds {n_test} of the {n_test} held-out images" in res.output and not out.exists()
    res = _ok(runner, [*base, "--classifier", str(judge), "--json"])
    g = json.loads(res.stdout)
    for key in ("fmd", "kid", "precision", "recall", "density", "coverage", "judge_accuracy_generated", "memorisation", "tstr"):
        assert key in g, key
    assert g["fmd"] > 0 and 0 <= g["precision"] <= 1 and g["train_data"] == str(d / "train.h5")
    kg = g["kinematics"]  # limb envelopes and periods per class, generated vs real (mdcli/diagnose/kinematics.py)
    assert kg["units"]["bandwidth"] == "Hz" and "walker" in kg["per_class"]
    assert {"median_real", "median_generated", "wasserstein", "inside_real_range"} <= set(kg["per_class"]["walker"]["bandwidth"])
    # the training part read the same way (found through the lineage), the reference for the generated figures
    from mdcli.kinematics import features_of

    tr = Spectrograms.load(d / "train.h5")
    k_tr, walkers = features_of(tr), tr.labels == tr.class_names.index("walker")
    assert kg["per_class"]["walker"]["bandwidth"]["train"]["n"] == np.isfinite(k_tr.bandwidth[walkers]).sum() > 0
    assert kg["per_class"]["walker"]["period_share"]["train"] == pytest.approx(k_tr.has_period[walkers].mean())
    assert set(g["augmentation"]["3"]) >= {"real", "real+classic", "real+generated", "gain_generated"}
    assert g["augmentation"]["3"]["real"]["std"] is None and g["tstr"]["tstr"]["std"] is None  # one seed: no spread
    # --baseline-cache: the generator-free fits (all real; few real, alone and with classic augmentation) are
    # reused across runs on the same data, and the report is the same as without the cache
    cache = d / "baselines"
    cache.mkdir()
    first = json.loads(_ok(runner, [*base, "--classifier", str(judge), "--baseline-cache", str(cache), "--json"]).stdout)
    assert first["baseline_fits_reused"] == 0 and len(list(cache.glob("*.json"))) == 3
    again = json.loads(_ok(runner, [*base, "--classifier", str(judge), "--baseline-cache", str(cache), "--json"]).stdout)
    assert again["baseline_fits_reused"] == 3
    assert {k: v for k, v in again.items() if k != "baseline_fits_reused"} == \
        {k: v for k, v in g.items() if k != "baseline_fits_reused"}
    other = json.loads(_ok(runner, [*base, "--set", "fit.steps=6", "--classifier", str(judge), "--baseline-cache", str(cache),
                                    "--json"]).stdout)
    assert other["baseline_fits_reused"] == 0 and len(list(cache.glob("*.json"))) == 6  # another fit budget: fit anew
    missing = runner.invoke(app, [*base, "--classifier", str(judge), "--baseline-cache", str(d / "nope")])
    assert missing.exit_code == 2 and "--baseline-cache" in missing.output and "Traceback" not in missing.output
    # jobs=2: the fits run in two worker processes with half the torch threads each, and give exactly the
    # accuracies of in-process fits at that thread count (each fit is seeded and self-contained)
    threads, t = torch.get_num_threads(), max(1, torch.get_num_threads() // 2)
    par = json.loads(_ok(runner, [*base, "--set", "jobs=2", "--classifier", str(judge), "--json"]).stdout)
    assert par["fits"] == {"jobs": 2, "threads": t, "device": "cpu"}
    torch.set_num_threads(t)
    try:
        seq = json.loads(_ok(runner, [*base, "--classifier", str(judge), "--json"]).stdout)
    finally:
        torch.set_num_threads(threads)
    assert seq["fits"] == {"jobs": 1, "threads": t, "device": "cpu"}
    assert (par["tstr"], par["augmentation"]) == (seq["tstr"], seq["augmentation"])
    bad = runner.invoke(app, [*base, "--set", "jobs=0", "--classifier", str(judge)])
    assert bad.exit_code == 2 and "jobs" in bad.output and "Traceback" not in bad.output
    few_k = runner.invoke(app, [*base, "--set", "k=1000", "--classifier", str(judge)])
    assert few_k.exit_code == 2 and "need more than k = 1000" in few_k.output and "Traceback" not in few_k.output
    res = _ok(runner, ["diagnose", "diffusability", "--latents", str(lat), "--set", "ldm.train.steps=20",
                       "--set", "n_per_class=3", "--set", "sample_steps=4", "--json", "-q"])
    f = json.loads(res.stdout)
    assert set(f["denoising"]) == {"50", "150", "300", "500", "700", "900"}
    assert all(v["x0_mse"] >= 0 for v in f["denoising"].values()) and f["budget_steps"] == 20

    # `mdcli report` on a run folder laid out as examples/pipeline.sh writes it
    import shutil

    run = d / "run"
    run.mkdir()
    for src, name in ((d / "train.h5", "train.h5"), (d / "test.h5", "test.h5"), (smp, "samples.h5"), (ae, "ae.h5")):
        shutil.copy(src, run / name)
    (run / "generation.json").write_text(json.dumps(g))
    for name, args in (("recon", ["recon", "--ae", str(ae), "--data", str(d / "test.h5"), "--classifier", str(judge)]),
                       ("codebook", ["codebook", "--ae", str(ae), "--data", str(d / "test.h5")])):
        (run / f"{name}.json").write_text(_ok(runner, ["diagnose", *args, "--json"]).stdout)
    _ok(runner, ["plot", str(d / "test.h5"), "--ae", str(ae), "--per-class", "1", "-o", str(run / "reconstructions.png")])
    _ok(runner, ["report", str(run)])
    text = (run / "REPORT.md").read_text()
    assert "![reconstructions](reconstructions.png)" in text
    assert "## Kinematic fidelity" in text and "| walker | bandwidth | Hz |" in text
    assert set(json.loads((run / "recon.json").read_text())["kinematics"]["per_class"]["walker"]) >= {
        "envelope_error_bins", "period_error", "period_agreement"}
    recon = json.loads((run / "recon.json").read_text())
    assert f"| recon FMD (judge features) | {recon['overall']['fmd']:.4g} |" in text
    assert f"| FMD (judge features) | {g['fmd']:.4g} |" in text
    assert f"| fresh classifier fits ran as | 1 process(es) x {g['fits']['threads']} thread(s), cpu |" in text
    assert f"| TSTR accuracy (test) | {g['tstr']['tstr']['mean']:.3f} (1 seed) |" in text  # no ± 0 from one seed
    cb = json.loads((run / "codebook.json").read_text())
    assert f"| codebook usage (share of codes used, test) | {cb['codebook_usage']:.1%} |" in text
    for c, v in g["per_class"].items():  # the per-class generation table a user reads first
        assert f"| {c} | {v['fmd']:.3g} | {v['judge_accuracy']:.3f} |" in text
    assert (run / "real_vs_generated.png").read_bytes()[:4] == b"\x89PNG"
    assert not run.joinpath("collapse.json").exists() and "## Collapse check" not in text  # absent parts are left out
    bare = d / "bare"  # a run folder without diagnostics: the report says what it reads instead of an empty table
    bare.mkdir()
    for name in ("train.h5", "test.h5", "samples.h5", "ae.h5"):
        shutil.copy(run / name, bare / name)
    (bare / "ae.metrics.jsonl").write_text('{"step": 1, "rec": 0.5}\n{"step": 2, "re')  # a kill mid-line, not resumed
    res = _ok(runner, ["report", str(bare)])
    assert "no diagnostics in" in res.output and "recon.json" in res.output
    assert "no diagnostics in" in (bare / "REPORT.md").read_text() and (bare / "losses.png").exists()
    (bare / "REPORT.md").write_text("my own notes\n")  # a REPORT.md mdcli did not write needs --force
    bad = runner.invoke(app, ["report", str(bare)])
    assert bad.exit_code == 2 and "is not a report mdcli wrote" in bad.output and "--force" in bad.output
    assert (bare / "REPORT.md").read_text() == "my own notes\n"
    _ok(runner, ["report", str(bare), "--force"])
    (bare / "ae.h5").unlink()  # every input is checked before the first figure is drawn
    (bare / "real_vs_generated.png").unlink()
    bad = runner.invoke(app, ["report", str(bare)])
    assert bad.exit_code == 2 and "no ae.h5" in bad.output and not (bare / "real_vs_generated.png").exists()
    bad = runner.invoke(app, ["report", str(d / "nope")])
    assert bad.exit_code == 2 and "not a folder" in bad.output and "Traceback" not in bad.output


@pytest.mark.slow
def test_generation_checks_the_whole_lineage_and_the_few_shot_data(chain):
    """Every training set in the samples' (or latents') lineage must be disjoint from --real; the augmentation
    report says when the generator saw more real images than the few-shot arms, and `mdcli subset` makes the
    set to train one on."""
    runner = CliRunner()
    d, data, clf, judge, ae, lat, base = (chain[k] for k in ("d", "data", "clf", "judge", "ae", "lat", "base"))
    n_test = len(Spectrograms.load(d / "test.h5").labels)
    # an autoencoder that saw the held-out images (trained on the unsplit file) is refused too, though the
    # diffusion model's own data is clean: the whole lineage of the samples is checked, not one file
    ae2, lat2, ldm2, smp2 = d / "g2_ae.h5", d / "g2_lat.h5", d / "g2_ldm.h5", d / "g2_samples.h5"
    _ok(runner, ["train-ae", "--config", str(TINY / "train-ae.yaml"), "--data", str(data), "--arch", "vqvae",
                 "--perceptual", "none", "--steps", "2", "-o", str(ae2), "-q"])
    _ok(runner, ["encode", "--ae", str(ae2), "--data", str(d / "train.h5"), "-o", str(lat2), "-q"])
    _ok(runner, ["train-ldm", "--config", str(TINY / "train-ldm.yaml"), "--latents", str(lat2), "--steps", "2", "-o", str(ldm2), "-q"])
    _ok(runner, ["sample", "--config", str(TINY / "sample.yaml"), "--ldm", str(ldm2), "-o", str(smp2), "-q"])
    gen_args = ["--real", str(d / "test.h5"), "--classifier", str(judge), "--set", "tstr=false", "--set", "kid_subset_size=10", "--json"]
    res = runner.invoke(app, ["diagnose", "generation", "--samples", str(smp2), *gen_args])
    assert res.exit_code == 2 and f"its training data {data}: holds {n_test} of the {n_test}" in res.output, res.output
    # the training data is the diffusion model's (samples -> ldm -> latents -> spectrograms), not the first
    # spectrograms file in the lineage: here the autoencoder was trained on all of train.h5, the LDM on a part
    part = d / "part.h5"
    _ok(runner, ["split", str(d / "train.h5"), "--train-out", str(part), "--test-out", str(d / "rest.h5"), "--test-fraction", "0.3"])
    lat3, ldm3, smp3 = d / "g3_lat.h5", d / "g3_ldm.h5", d / "g3_samples.h5"
    _ok(runner, ["encode", "--ae", str(ae), "--data", str(part), "-o", str(lat3), "-q"])
    _ok(runner, ["train-ldm", "--config", str(TINY / "train-ldm.yaml"), "--latents", str(lat3), "--steps", "2", "-o", str(ldm3), "-q"])
    _ok(runner, ["sample", "--config", str(TINY / "sample.yaml"), "--ldm", str(ldm3), "-o", str(smp3), "-q"])
    g2 = json.loads(_ok(runner, ["diagnose", "generation", "--samples", str(smp3), *gen_args]).stdout)
    assert g2["train_data"] == str(part) and g2["memorisation"]["median_nn_real"] > 0
    # diagnose diffusability holds its judge to the same rules, before the probe trains: the perceptual
    # classifier of the latents' autoencoder cannot judge them
    res = runner.invoke(app, ["diagnose", "diffusability", "--latents", str(lat), "--classifier", str(clf), "--real",
                              str(d / "test.h5"), "-q"])
    assert res.exit_code == 2 and f"--classifier {clf}: this classifier is in the lineage of {lat}" in res.output
    g = json.loads(_ok(runner, [*base, "--classifier", str(judge), "--json"]).stdout)
    # the generator learned from every training image, the few-shot arms get 3 per class: said, with the way out
    from mdcli.diagnose.generation import augmentation_caveat, few_per_class

    counts = Spectrograms.load(d / "train.h5").class_counts()
    assert g["generator_data"] == {"path": str(d / "train.h5"), "per_class": counts} and max(counts.values()) > 3
    assert g["augmentation"]["3"]["generator_saw_more"] is True
    assert "more than the 3 per class" in augmentation_caveat(g) and "mdcli subset" in augmentation_caveat(g)
    assert augmentation_caveat({"augmentation": {"3": {"generator_saw_more": False}}}) is None
    # `mdcli subset` writes exactly the few-shot draw of that seed, to train a generator on it alone
    few3 = d / "few3.h5"
    _ok(runner, ["subset", str(d / "train.h5"), "--per-class", "3", "--seed", "1", "-o", str(few3)])
    sub, full = Spectrograms.load(few3), Spectrograms.load(d / "train.h5")
    assert set(sub.class_counts().values()) == {3}
    assert np.array_equal(sub.spectrograms, full.spectrograms[few_per_class(full.labels, 3, 1)])
    too_many = runner.invoke(app, ["subset", str(d / "train.h5"), "--per-class", "99", "-o", str(d / "few99.h5")])
    assert too_many.exit_code == 2 and "--per-class 99" in too_many.output and not (d / "few99.h5").exists()
    no_aug = d / "no_aug_plots"  # few: [] (the demo's setting): no empty augmentation figure
    _ok(runner, [*base, "--classifier", str(judge), "--set", "few=[]", "--set", "tstr=false", "--plot", str(no_aug)])
    assert not (no_aug / "augmentation.png").exists()
