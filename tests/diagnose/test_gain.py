"""diagnose gain: the paired few-shot protocol, its controls (more real data helps, shuffled labels do not), the
subsets `mdcli subset` writes, and one-line refusals of bad input; train-classifier's --extra / --init options."""

from __future__ import annotations

import json
from dataclasses import asdict, replace

import h5py
import numpy as np
import pytest
import torch

from mdcli.artifacts import Spectrograms, atomic_h5, parent_record, write_header
from mdcli.diagnose import gain
from mdcli.diagnose.gain import Data, few_shot_indices, paired_gain, parse_arm, plan, run_task
from mdcli.errors import ConfigError
from mdcli.models.classifier import SpectrogramClassifier
from mdcli.stages import ExtraOptions
from mdcli.train.classifier import ExtraSet, FitConfig
from tests.conftest import TINY, cli_ok as _run, cli_refused as _refused

N = 20
SEEDS = 4
# a fit small enough for a test, and a task where 20 windows per class are clearly too few: position-dependent
# class templates under strong noise (the template estimate from 20 windows is noisy, from 120 much less)
FIT = ["--set", "fit.net.channels=[8,16]", "--set", "fit.batch_size=16", "--set", "fit.warmup_steps=5",
       "--set", "fit.steps=100", "--set", "fit.lr=0.003"]


def _synthetic(n_per_class: int, seed: int, k: int = 4, size: int = 16, amp: float = 0.045,
               sequence: bool = False) -> Spectrograms:
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(0)  # the class templates: the same for every set
    tm = np.stack([gaussian_filter(t, 1.5) for t in rng.normal(size=(k, size, size))])
    tm /= tm.std(axis=(1, 2), keepdims=True)
    r = np.random.default_rng(seed)
    labels = np.repeat(np.arange(k), n_per_class)
    x = np.clip(0.5 + amp * tm[labels] + 0.2 * r.normal(size=(len(labels), size, size)), 0, 1).astype(np.float32)
    return Spectrograms(x, labels, [f"c{i}" for i in range(k)], np.linspace(-1, 1, size), np.linspace(0, 1, size),
                        24e9, 1000.0, 40.0, "simulated",
                        sequence=np.tile(np.arange(n_per_class), k) if sequence else None)


@pytest.fixture(scope="module")
def gain_data(tmp_path_factory):
    """train (120 per class), test (50 per class), and per seed: the windows the N-per-class subset left out
    (the positive control: more real data), and the same with shuffled labels."""
    d = tmp_path_factory.mktemp("gain")
    train = _synthetic(120, 1)
    train.save(d / "train.h5", "synthetic: train\n", 1)
    _synthetic(50, 2).save(d / "test.h5", "synthetic: test\n", 2)
    for s in range(SEEDS):
        rest = train.select(np.setdiff1d(np.arange(len(train)), few_shot_indices(train.labels, N, s, None)))
        rest.save(d / f"rest_{N}_{s}.h5", "rest\n", s, [parent_record(d / "train.h5")])
        rest.labels = np.random.default_rng(s).permutation(rest.labels)
        rest.save(d / f"shuf_{N}_{s}.h5", "shuffled\n", s)
    return d



@pytest.mark.slow
def test_positive_control_gains_shuffled_labels_do_not_and_the_design_is_paired(runner, gain_data, tmp_path):
    d = gain_data
    args = ["diagnose", "gain", "--train", str(d / "train.h5"), "--test", str(d / "test.h5"), "--per-class", str(N),
            "--seeds", str(SEEDS), "--jobs", "2", "--json", "-q", "--plot", str(tmp_path / "figs"),
            "--arm", f"more=append:{d}/rest_{{n}}_{{seed}}.h5,ratio=3", "--arm", f"shuf=append:{d}/shuf_{{n}}_{{seed}}.h5", *FIT]
    r = json.loads(_run(runner, args).stdout)
    rows = r["results"][str(N)]
    assert list(rows) == ["real", "classic", "more", "shuf"]
    assert {"train", "test", "classes", "split", "per_class", "seeds", "fit", "fits", "arms", "results", "figures"} <= set(r)
    assert r["split"] == "random" and r["fits"]["jobs"] == 2 and r["fits"]["threads"] == 1
    more, shuf = rows["more"]["gain"], rows["shuf"]["gain"]
    # more real data: a gain whose whole interval is above 0
    assert more["verdict"] == "gain" and more["ci95"][0] > 0, more
    assert rows["more"]["accuracy"]["mean"] > rows["real"]["accuracy"]["mean"] + 0.05
    # shuffled labels: never a gain
    assert shuf["verdict"] != "gain" and shuf["mean"] <= 0, shuf
    assert rows["real"]["gain"] is None and more["seeds"] == SEEDS and 0 <= more["wins"] <= SEEDS
    # the reference (a logistic regression on the Doppler profile, no CNN) on the same subsets: the templates
    # differ in where along Doppler their power lies, so it is well above chance (0.25)
    ref = r["reference"]["results"][str(N)]
    assert len(ref["values"]) == SEEDS and ref["mean"] > 0.5, ref
    # the reference per arm: the left-out real windows look like their class and teach it; shuffled labels neither
    more_ref, shuf_ref = r["reference"]["arms"]["more"][str(N)], r["reference"]["arms"]["shuf"][str(N)]
    assert more_ref["recognised"]["mean"] > 0.5 and more_ref["alone"]["mean"] > 0.5, more_ref
    assert shuf_ref["recognised"]["mean"] < 0.4 and shuf_ref["alone"]["mean"] < 0.4, shuf_ref
    assert more_ref["added"]["mean"] > shuf_ref["added"]["mean"] and len(more_ref["added"]["values"]) == SEEDS
    assert more_ref["gain"]["seeds"] == SEEDS and more_ref["gain"]["mean"] > shuf_ref["gain"]["mean"]
    # paired: every arm of a seed trains on the same real subset from the same initial weights; seeds differ
    for arm in rows.values():
        assert arm["subsets"] == rows["real"]["subsets"] and arm["inits"] == rows["real"]["inits"]
    assert len(set(rows["real"]["subsets"])) == SEEDS and len(set(rows["real"]["inits"])) == SEEDS
    assert (tmp_path / "figs" / "gain.png").stat().st_size > 0
    # the worker processes give the numbers a fit in this process gives (one thread each): any --jobs, same numbers
    torch.set_num_threads(1)
    p = plan(d / "train.h5", d / "test.h5", [parse_arm(f"more=append:{d}/rest_{{n}}_{{seed}}.h5,ratio=3")], [N], [1])
    task = next(t for t in p.tasks if t["arm"] == "more")
    fit = FitConfig(steps=100, batch_size=16, warmup_steps=5, lr=0.003)
    fit.net.channels = [8, 16]
    one = run_task(task, Data(d / "train.h5", d / "test.h5"), fit, "random", 128)
    assert one["accuracy"] == rows["more"]["accuracy"]["values"][1] and one["init"] == rows["more"]["inits"][1]


def _fake_generator_chain(folder, data_path, ae_data=None):
    """samples.h5 <- ldm.h5 <- latents.h5 <- data_path (and <- autoencoder.h5 <- ae_data when given): the lineage
    `sample` writes (no real models: headers only)."""
    prev, extra = data_path, []
    if ae_data is not None:
        with atomic_h5(folder / "autoencoder.h5") as f:
            write_header(f, "autoencoder", "fake: true\n", 0, [parent_record(ae_data)])
        extra = [parent_record(folder / "autoencoder.h5")]
    for kind in ("latents", "ldm"):
        with atomic_h5(folder / f"{kind}.h5") as f:
            write_header(f, kind, "fake: true\n", 0, [parent_record(prev)] + (extra if kind == "latents" else []))
        prev = folder / f"{kind}.h5"
    s = Spectrograms.load(data_path).select(np.arange(8))
    s.spectrograms = np.flip(s.spectrograms, 2).copy()  # not byte-identical to anything real
    s.source = "generated"
    s.save(folder / "samples.h5", "fake samples\n", 0, [parent_record(prev)])
    return folder / "samples.h5"


def test_generator_that_saw_more_is_marked_and_one_seed_is_no_measurable_gain(runner, gain_data, tmp_path):
    d = gain_data
    samples = _fake_generator_chain(tmp_path, d / "train.h5")
    common = ["diagnose", "gain", "--train", str(d / "train.h5"), "--test", str(d / "test.h5"), "--per-class", "3",
              "--seeds", "1", "-q", "--set", "fit.steps=2", "--set", "fit.net.channels=[4]"]
    base = [*common, "--arm", f"gen=append:{samples}"]
    r = json.loads(_run(runner, [*base, "--json"]).stdout)
    gen = r["results"]["3"]["gen"]
    assert gen["generator_saw"] == 120 and gen["generator_saw_more"] is True
    assert gen["gain"]["verdict"] == "no measurable gain" and gen["gain"]["ci95"] is None
    out = _run(runner, [*base, "--md-out", str(tmp_path / "gain.md")]).stdout
    assert "generator saw 120 > 3" in out and "no measurable" in out
    # the Markdown report: headed by the command that reproduces it, the same rows, the optimistic arm starred
    md = (tmp_path / "gain.md").read_text()
    assert md.startswith("<!-- mdcli diagnose gain -->") and f"--arm gen=append:{samples}" in md and "--seeds 1" in md
    assert "| 3 | gen* | append |" in md and "| 3 | real | real |" in md and "generator saw 120 > 3 real windows" in md
    assert "reference, a logistic regression on each window's Doppler profile" in md and "N = 3: " in md
    assert "The reference per arm" in md and "| N | arm | recognised | alone | added |" in md and "| 3 | gen | " in md
    assert set(r["reference"]["arms"]["gen"]["3"]) == {"recognised", "alone", "added", "gain"}
    # a second run replaces its own report; a file of another kind is refused without --force
    _run(runner, [*base, "--md-out", str(tmp_path / "gain.md")])
    (tmp_path / "notes.md").write_text("my notes\n")
    _refused(runner, [*base, "--md-out", str(tmp_path / "notes.md")], "--md-out")
    assert (tmp_path / "notes.md").read_text() == "my notes\n"
    # the honest setting: one generator per subset, trained on exactly the windows `mdcli subset` writes for (N, seed)
    for seed in (0, 1):
        g = tmp_path / f"gen_3_{seed}"
        g.mkdir()
        _run(runner, ["subset", str(d / "train.h5"), "--per-class", "3", "--seed", str(seed), "-o", str(g / "few.h5")])
        _fake_generator_chain(g, g / "few.h5")
    honest = [*common[:9], "2", *common[10:]]
    r = json.loads(_run(runner, [*honest, "--json", "--arm", f"gen=append:{tmp_path}/gen_{{n}}_{{seed}}/samples.h5"]).stdout)
    gen = r["results"]["3"]["gen"]
    assert (gen["generator_saw"], gen["generator_saw_more"], gen["generator_saw_outside_subset"]) == (3, False, 0)
    assert (gen["autoencoder_saw"], gen["autoencoder_saw_more"]) == (None, False)  # no autoencoder in this lineage
    # the diffusion model on the subset alone but the autoencoder on the whole training part: starred for its decoder
    for seed in (0, 1):
        g = tmp_path / f"half_3_{seed}"
        g.mkdir()
        _run(runner, ["subset", str(d / "train.h5"), "--per-class", "3", "--seed", str(seed), "-o", str(g / "few.h5")])
        _fake_generator_chain(g, g / "few.h5", ae_data=d / "train.h5")
    half = [*honest, "--arm", f"gen=append:{tmp_path}/half_{{n}}_{{seed}}/samples.h5"]
    gen = json.loads(_run(runner, [*half, "--json"]).stdout)["results"]["3"]["gen"]
    assert (gen["generator_saw"], gen["generator_saw_more"]) == (3, False)
    assert (gen["autoencoder_saw"], gen["autoencoder_saw_more"]) == (120, True)
    assert "gen* " in _run(runner, half).stdout.replace("│", " ")
    assert "autoencoder was trained on 120 > 3" in _run(runner, half).stdout.replace("\n", " ")
    # seed 0's generator scored with seed 1's subset: it saw windows the real arm of seed 1 never had
    r = json.loads(_run(runner, [*honest, "--json", "--arm", f"gen=append:{tmp_path}/gen_3_0/samples.h5"]).stdout)
    assert r["results"]["3"]["gen"]["generator_saw_outside_subset"] > 0
    # a generator whose training data holds test windows is refused (its lineage is checked, not only the file)
    leak = tmp_path / "leak"
    leak.mkdir()
    both = Spectrograms.load(d / "train.h5")
    test = Spectrograms.load(d / "test.h5")
    both.spectrograms = np.concatenate([both.spectrograms, test.spectrograms[:3]])
    both.labels = np.concatenate([both.labels, test.labels[:3]])
    both.save(leak / "all.h5", "all\n", 0)
    leaky = _fake_generator_chain(leak, leak / "all.h5")
    _refused(runner, [*common, "--arm", f"gen=append:{leaky}"], "held-out")


def test_round_trip_through_an_autoencoder_alone_is_starred_for_what_it_saw(runner, gain_data, tmp_path):
    """`augment --strength 0 --ae` writes a file whose only model parent is the autoencoder: the arm is starred
    when that autoencoder was trained on more than the subset, not when it saw the subset alone."""
    d = gain_data
    rows = {}
    for name, ae_data in (("wide", d / "train.h5"), ("own", None)):
        g = tmp_path / f"{name}_3_0"
        g.mkdir()
        _run(runner, ["subset", str(d / "train.h5"), "--per-class", "3", "--seed", "0", "-o", str(g / "few.h5")])
        with atomic_h5(g / "ae.h5") as f:
            write_header(f, "autoencoder", "fake: true\n", 0, [parent_record(ae_data or g / "few.h5")])
        s = Spectrograms.load(g / "few.h5")
        s.spectrograms = np.flip(s.spectrograms, 2).copy()
        s.source = "generated"
        s.save(g / "rec.h5", "fake round trip\n", 0, [parent_record(g / "ae.h5"), parent_record(g / "few.h5")])
        r = json.loads(_run(runner, ["diagnose", "gain", "--train", str(d / "train.h5"), "--test", str(d / "test.h5"),
                                     "--per-class", "3", "--seeds", "1", "-q", "--set", "fit.steps=2", "--set",
                                     "fit.net.channels=[4]", "--json", "--arm", f"rec=append:{g}/rec.h5"]).stdout)
        rows[name] = r["results"]["3"]["rec"]
    assert (rows["wide"]["autoencoder_saw"], rows["wide"]["autoencoder_saw_more"]) == (120, True)
    assert (rows["own"]["autoencoder_saw"], rows["own"]["autoencoder_saw_more"]) == (3, False)
    assert rows["wide"]["generator_saw"] is None  # no diffusion model in this lineage


def test_bad_input_is_one_line_and_writes_nothing(runner, gain_data, tmp_path):
    d = gain_data
    base = ["diagnose", "gain", "--train", str(d / "train.h5"), "--test", str(d / "test.h5"), "--per-class", "5",
            "--seeds", "2", "--plot", str(tmp_path / "figs")]
    _refused(runner, [*base, "--arm", f"x=blend:{d}/test.h5", "--json-out", str(tmp_path / "out" / "gain.json")],
             "unknown mode 'blend'")
    _refused(runner, [*base, "--json-out", str(tmp_path)], "is a folder")
    _refused(runner, [*base, "--arm", f"x=append:{d}/rest_20_0.h5,weight=1.5"], "weight")
    _refused(runner, [*base, "--arm", f"x=append:{d}/rest_20_0.h5,finetune=head"], "no option of mode append")
    _refused(runner, [*base, "--arm", f"real=append:{d}/rest_20_0.h5"], "baseline")
    _refused(runner, [*base, "--arm", f"x=append:{d}/missing_{{n}}.h5"], "missing_5.h5", "not found")
    _refused(runner, [*base[:6], "--per-class", "121", *base[8:]], "--per-class 121")
    _refused(runner, [*base[:6], "--per-class", "a,b", *base[8:]], "--per-class")
    _refused(runner, [*base, "--set", "fit.net.doppler_bins=-1"], "fit.net.doppler_bins")
    other = _synthetic(10, 3)
    other.class_names = ["c0", "c1", "c2", "zz"]
    other.save(tmp_path / "other.h5", "other\n", 0)
    _refused(runner, [*base, "--arm", f"x=append:{tmp_path}/other.h5"], "'zz'")
    _synthetic(10, 3, size=8).save(tmp_path / "small.h5", "small\n", 0)
    _refused(runner, [*base, "--arm", f"x=pretrain:{tmp_path}/small.h5"], "images are")
    # a test set that overlaps the training windows
    train = Spectrograms.load(d / "train.h5")
    train.select(np.arange(0, len(train), 7)).save(tmp_path / "overlap.h5", "overlap\n", 0)
    _refused(runner, [*base[:4], "--test", str(tmp_path / "overlap.h5"), *base[6:]], "held-out")
    assert not (tmp_path / "figs").exists() and not (tmp_path / "out").exists()


def test_first_seed_replicates_on_later_seeds_with_the_same_numbers(runner, gain_data, tmp_path):
    """--first-seed S --seeds K runs seeds S..S+K-1: seed 2 alone gives the numbers it has inside seeds 0..2, and the
    Markdown report's command names --first-seed so it reproduces them."""
    d = gain_data
    base = ["diagnose", "gain", "--train", str(d / "train.h5"), "--test", str(d / "test.h5"), "--per-class", "5",
            "--json", "--set", "fit.net.channels=[4]", "--set", "fit.steps=6", "--set", "fit.batch_size=8",
            "--arm", f"p=pretrain:{d}/rest_20_{{seed}}.h5,steps=4"]
    full = json.loads(_run(runner, [*base, "--seeds", "3"]).stdout)
    one = json.loads(_run(runner, [*base, "--seeds", "1", "--first-seed", "2", "--md-out", str(tmp_path / "g.md")]).stdout)
    assert one["seeds"] == [2] and full["seeds"] == [0, 1, 2]
    for arm in ("real", "classic", "p"):
        assert one["results"]["5"][arm]["accuracy"]["values"] == full["results"]["5"][arm]["accuracy"]["values"][2:]
        assert one["results"]["5"][arm]["subsets"] == full["results"]["5"][arm]["subsets"][2:]
    assert "--seeds 1 --first-seed 2" in (tmp_path / "g.md").read_text()


def test_paired_gain_interval_and_verdict():
    g = paired_gain([0.1, 0.2, 0.3])  # mean 0.2, sd 0.1, t(0.975, 2) = 4.303: half width 0.2484
    assert g["mean"] == pytest.approx(0.2) and g["ci95"] == pytest.approx([0.2 - 0.24843, 0.2 + 0.24843], abs=1e-4)
    assert g["verdict"] == "no measurable gain" and g["wins"] == 3 and g["seeds"] == 3
    assert paired_gain([0.10, 0.11, 0.12])["verdict"] == "gain"
    assert paired_gain([-0.10, -0.11, -0.12])["verdict"] == "loss"
    one = paired_gain([0.5])
    assert one["ci95"] is None and one["verdict"] == "no measurable gain"


def test_blocked_subsets_are_contiguous_runs_and_subset_writes_them(runner, tmp_path):
    data = _synthetic(30, 5, sequence=True)
    order = np.random.default_rng(0).permutation(len(data))  # file order is not recording order
    data = data.select(order)
    data.save(tmp_path / "seq.h5", "seq\n", 0)
    idx = few_shot_indices(data.labels, 6, 2, data.sequence)
    for c in range(4):
        pos = np.sort(data.sequence[idx][data.labels[idx] == c])
        assert len(pos) == 6 and np.all(np.diff(pos) == 1)  # a contiguous run in recording order
    assert not np.array_equal(idx, few_shot_indices(data.labels, 6, 3, data.sequence))
    _run(runner, ["subset", str(tmp_path / "seq.h5"), "--per-class", "6", "--seed", "2", "-o", str(tmp_path / "sub.h5")])
    assert np.array_equal(Spectrograms.load(tmp_path / "sub.h5").spectrograms, data.spectrograms[idx])
    rnd = few_shot_indices(data.labels, 6, 2, data.sequence, "random")
    _run(runner, ["subset", str(tmp_path / "seq.h5"), "--per-class", "6", "--seed", "2", "--split", "random",
                  "-o", str(tmp_path / "rnd.h5")])
    assert np.array_equal(Spectrograms.load(tmp_path / "rnd.h5").spectrograms, data.spectrograms[rnd])
    # --rest: the windows not kept, in file order (an unlabelled pool for classify -o)
    _run(runner, ["subset", str(tmp_path / "seq.h5"), "--per-class", "6", "--seed", "2", "-o", str(tmp_path / "sub.h5"),
                  "--rest", str(tmp_path / "rest.h5"), "--force"])
    others = np.setdiff1d(np.arange(len(data)), idx)
    rest = Spectrograms.load(tmp_path / "rest.h5")
    assert len(rest) == len(data) - 24 and np.array_equal(rest.spectrograms, data.spectrograms[others])
    assert np.array_equal(rest.sequence, data.sequence[others])
    _refused(runner, ["subset", str(tmp_path / "seq.h5"), "--per-class", "30", "-o", str(tmp_path / "all.h5"),
                      "--rest", str(tmp_path / "none.h5")], "--rest", "nothing is left")
    assert not (tmp_path / "all.h5").exists() and not (tmp_path / "none.h5").exists()
    # measured windows overlap in time: a test window at a training window's recording position is refused even
    # when its bytes differ (another import), and one a step away is reported
    from mdcli.data.splits import split_indices

    tr, te = split_indices(data.labels, 0.3, 0, "random", data.sequence)
    data.select(tr).save(tmp_path / "tr.h5", "tr\n", 0)
    near = data.select(te)
    near.save(tmp_path / "te.h5", "te\n", 0)
    same = data.select(tr[:5])
    same.spectrograms = np.flip(same.spectrograms, 1).copy()
    same.save(tmp_path / "same.h5", "same\n", 0)
    base = ["diagnose", "gain", "--train", str(tmp_path / "tr.h5"), "--per-class", "3", "--seeds", "1",
            "--set", "fit.steps=1", "--set", "fit.net.channels=[4]", "-q"]
    _refused(runner, [*base, "--test", str(tmp_path / "same.h5")], "same recording position")
    out = _run(runner, [*base, "--test", str(tmp_path / "te.h5")]).stdout
    assert "recording step(s) from a training window" in " ".join(out.split())


def test_extra_set_mixes_by_ratio_prob_and_weight():
    x, y = torch.arange(6.0).view(6, 1, 1, 1), torch.tensor([0, 0, 0, 1, 1, 1])
    xe, ye = 100 + torch.arange(4.0).view(4, 1, 1, 1), torch.tensor([0, 0, 1, 1])
    xb, yb, w = ExtraSet(xe, ye, ExtraOptions(weight=0.25, ratio=0.5, prob=1.0), 0).mix(x, y, 3, 6)
    assert len(xb) == 9 and torch.all(xb >= 100)  # every real image swapped, 3 extra images appended
    assert torch.equal(yb[:6], y) and torch.equal(w, torch.full((9,), 0.25))
    for img, label in zip(xb.flatten(), yb):  # a swapped image is one of its class's extra images
        assert int(ye[int(img) - 100]) == int(label)
    xb2, _, w2 = ExtraSet(xe, ye, ExtraOptions(weight=0.5, ratio=1.0, prob=0.0), 0).mix(x, y, 3, 6)
    assert torch.equal(xb2[:6], x) and torch.equal(w2[:6], torch.ones(6)) and torch.all(w2[6:] == 0.5)
    with pytest.raises(Exception, match="weight"):
        ExtraOptions(weight=2.0).validate()


def test_train_classifier_extra_and_init(runner, tiny_data, tmp_path):
    from mdcli.artifacts import read_header, open_artifact
    from mdcli.models.load import load_classifier

    cfg = ["--config", str(TINY / "train-classifier.yaml"), "--steps", "6", "-q"]
    _run(runner, ["train-classifier", *cfg, "--data", str(tiny_data), "-o", str(tmp_path / "base.h5")])
    _run(runner, ["train-classifier", *cfg, "--data", str(tiny_data), "--extra", str(tiny_data), "--extra-weight", "0.5",
                  "--extra-ratio", "0.5", "--extra-prob", "0.2", "-o", str(tmp_path / "aug.h5")])
    with open_artifact(tmp_path / "aug.h5") as f:
        h = read_header(f)
    assert "weight: 0.5" in h["config"] and len(h["parents"]) == 2
    # pretrain on other classes, fine-tune the head alone: a fresh head, the body as pretrained
    other = Spectrograms.load(tiny_data)
    other.class_names = [f"sim_{c}" for c in other.class_names[:-1]] + ["extra"]
    other.save(tmp_path / "other.h5", "other\n", 0)
    _run(runner, ["train-classifier", *cfg, "--data", str(tmp_path / "other.h5"), "-o", str(tmp_path / "pre.h5")])
    _run(runner, ["train-classifier", *cfg, "--data", str(tiny_data), "--init", str(tmp_path / "pre.h5"),
                  "--finetune", "head", "-o", str(tmp_path / "ft.h5")])
    pre, _ = load_classifier(tmp_path / "pre.h5")
    ft, attrs = load_classifier(tmp_path / "ft.h5")
    assert list(attrs["class_names"]) == Spectrograms.load(tiny_data).class_names
    assert torch.equal(pre.stem.weight, ft.stem.weight) and not torch.equal(pre.head.weight, ft.head.weight)
    # the Doppler-binned head (net.doppler_bins) is stored in the config and rebuilt on load
    _run(runner, ["train-classifier", *cfg, "--data", str(tiny_data), "--set", "net.doppler_bins=4",
                  "-o", str(tmp_path / "binned.h5")])
    binned, _ = load_classifier(tmp_path / "binned.h5")
    assert binned.head.in_features == 4 * 32 and binned.embed(torch.zeros(2, 1, 32, 32)).shape == (2, 4 * 32)
    # bad input: one line, exit 2, nothing written
    bad = tmp_path / "bad.h5"
    _refused(runner, ["train-classifier", *cfg, "--data", str(tiny_data), "--extra", str(tiny_data),
                      "--extra-weight", "1.5", "-o", str(bad)], "weight")
    _refused(runner, ["train-classifier", *cfg, "--data", str(tiny_data), "--extra-weight", "0.5", "-o", str(bad)], "--extra")
    _refused(runner, ["train-classifier", *cfg, "--data", str(tiny_data), "--extra", str(tmp_path / "other.h5"), "-o", str(bad)],
             "sim_")
    _synthetic(5, 0, size=8).save(tmp_path / "small.h5", "small\n", 0)
    _refused(runner, ["train-classifier", *cfg, "--data", str(tiny_data), "--extra", str(tmp_path / "small.h5"), "-o", str(bad)],
             "images are")
    _refused(runner, ["train-classifier", *cfg, "--data", str(tiny_data), "--init", str(tmp_path / "pre.h5"),
                      "--finetune", "some", "-o", str(bad)], "finetune")
    _refused(runner, ["train-classifier", *cfg, "--data", str(tiny_data), "--set", "net.doppler_bins=65", "-o", str(bad)],
             "net.doppler_bins")
    assert not bad.exists()
    with h5py.File(tmp_path / "ft.h5") as f:
        assert f.attrs["init"] == str(tmp_path / "pre.h5")


def test_every_mode_runs_and_pretrain_takes_other_classes(runner, gain_data, tmp_path):
    """pretrain on a set with other classes (a fresh head for the real ones), mixed-then-real, only, append with
    prob: each runs from the same initial body as real (tiny budget: this checks the plumbing, not the numbers)."""
    d = gain_data
    other = _synthetic(6, 7)  # as many classes as the real data, other names: pretrained, then a fresh head
    other.class_names = ["walker", "drone", "bird", "vehicle"]
    other.save(tmp_path / "sim.h5", "sim\n", 0)
    arms = [f"sim=pretrain:{tmp_path}/sim.h5,finetune=head", f"mix=mixed-then-real:{d}/rest_20_0.h5,weight=0.5",
            f"cas=only:{d}/rest_20_0.h5", f"swap=append:{d}/rest_20_0.h5,prob=0.5,ratio=0"]
    r = json.loads(_run(runner, ["diagnose", "gain", "--train", str(d / "train.h5"), "--test", str(d / "test.h5"),
                                 "--per-class", "3", "--seeds", "1", "--json", "-q", "--set", "fit.steps=2",
                                 "--set", "fit.net.channels=[4]", *[a for arm in arms for a in ("--arm", arm)]]).stdout)
    rows = r["results"]["3"]
    assert list(rows) == ["real", "classic", "sim", "mix", "cas", "swap"]
    assert {k: v["mode"] for k, v in r["arms"].items()}["sim"] == "pretrain"
    assert r["arms"]["sim"]["options"] == {"finetune": "head"} and r["arms"]["mix"]["options"]["weight"] == 0.5
    assert all(v["inits"] == rows["real"]["inits"] for v in rows.values())
    assert all(0 <= v["accuracy"]["mean"] <= 1 for v in rows.values())
    # the reference per arm: none for the set of other classes, the three checks for every other arm
    assert r["reference"]["arms"]["sim"] is None
    assert all(set(r["reference"]["arms"][a]["3"]) == {"recognised", "alone", "added", "gain"} for a in ("mix", "cas", "swap"))


def test_files_joined_with_plus_are_one_extra_set(runner, gain_data, tmp_path):
    """FILE+FILE: the files' images in one set, each file's labels in the real data's class order; what the
    generators behind any of them saw stars the arm; a joined file with classes the real data lacks is refused."""
    d = gain_data
    a = Spectrograms.load(d / "rest_20_0.h5").select(np.arange(0, 400, 40))
    b = _synthetic(3, 9)
    b.class_names = ["c3", "c2", "c1", "c0"]  # the real classes in another order
    a.save(tmp_path / "a.h5", "a\n", 0)
    b.save(tmp_path / "b.h5", "b\n", 0)
    joined = f"{tmp_path}/a.h5+{tmp_path}/b.h5"
    x, y, own = Data(d / "train.h5", d / "test.h5").extra(joined)
    assert own is None and len(x) == len(a) + len(b) == len(y)
    assert y[: len(a)].tolist() == a.labels.tolist() and y[len(a):].tolist() == (3 - b.labels).tolist()
    arm = parse_arm(f"j=pretrain:{tmp_path}/a.h5 + {tmp_path}/b.h5,finetune=head")
    assert arm.paths(3, 0) == [tmp_path / "a.h5", tmp_path / "b.h5"] and arm.path(3, 0) == joined
    # one half from a generator whose decoder saw the whole training part: the joined arm is starred for it
    g = tmp_path / "gen"
    g.mkdir()
    _run(runner, ["subset", str(d / "train.h5"), "--per-class", "3", "--seed", "0", "-o", str(g / "few.h5")])
    samples = _fake_generator_chain(g, g / "few.h5", ae_data=d / "train.h5")
    base = ["diagnose", "gain", "--train", str(d / "train.h5"), "--test", str(d / "test.h5"), "--per-class", "3",
            "--seeds", "1", "-q", "--set", "fit.steps=2", "--set", "fit.net.channels=[4]"]
    r = json.loads(_run(runner, [*base, "--json", "--arm", f"j=pretrain:{tmp_path}/a.h5+{samples}"]).stdout)
    row = r["results"]["3"]["j"]
    assert (row["generator_saw"], row["autoencoder_saw"], row["autoencoder_saw_more"]) == (3, 120, True)
    assert r["arms"]["j"]["file"] == f"{tmp_path}/a.h5+{samples}" and 0 <= row["accuracy"]["mean"] <= 1
    # one file may bring its own classes to pretraining (a fresh head after it), a joined one may not
    other = _synthetic(6, 7)
    other.class_names = ["walker", "drone", "bird", "vehicle"]
    other.save(tmp_path / "sim.h5", "sim\n", 0)
    _run(runner, [*base, "--arm", f"sim=pretrain:{tmp_path}/sim.h5"])
    _refused(runner, [*base, "--arm", f"j=pretrain:{tmp_path}/a.h5+{tmp_path}/sim.h5"], "'walker'", "joined with +")
    _refused(runner, [*base, "--arm", f"j=pretrain:{tmp_path}/a.h5+"], "empty file name")


def test_init_arm_starts_every_seed_from_one_classifier(runner, gain_data, tmp_path):
    """init:CLASSIFIER.h5 starts every seed's fit from the file's weights (a fresh head for other classes), then
    fine-tunes on the N real windows; a classifier trained on --train windows stars the row; a file that is no
    classifier, of another image size, joined with + without a start for each, with a pretrain-only option, or
    trained on --test windows is refused in one line."""
    from mdcli.models.load import load_classifier

    d = gain_data
    other = _synthetic(6, 7)  # other class names: the init arm gets a fresh head for the real ones
    other.class_names = ["walker", "drone", "bird", "vehicle"]
    other.save(tmp_path / "sim.h5", "sim\n", 0)
    cfg = ["--config", str(TINY / "train-classifier.yaml"), "--steps", "3", "-q", "--set", "net.channels=[4,8]"]
    for data, out in (("sim.h5", "pre.h5"), (d / "train.h5", "real.h5"), (d / "test.h5", "leak.h5")):
        _run(runner, ["train-classifier", *cfg, "--data", str(tmp_path / data), "-o", str(tmp_path / out)])
    pre, _ = load_classifier(tmp_path / "pre.h5")
    body = [v.numpy() for k, v in pre.state_dict().items() if not k.startswith("head.")]
    data, fit = Data(d / "train.h5", d / "test.h5"), FitConfig(net=FitConfig().net, steps=2, batch_size=4)
    arm = parse_arm(f"i=init:{tmp_path}/pre.h5,finetune=head")
    assert arm.options() == {"finetune": "head"}
    got = [run_task(arm.task(3, s), data, fit, "random", 64) for s in (0, 1)]
    real = [run_task(parse_arm(f"p=pretrain:{tmp_path}/sim.h5,steps=1").task(3, s), data, fit, "random", 64) for s in (0, 1)]
    from mdcli.diagnose.gain import _digest

    assert got[0]["init"] == got[1]["init"] == _digest(*body)  # one start for every seed: the file's body
    assert real[0]["init"] != got[0]["init"] and got[0]["subset"] == real[0]["subset"]
    base = ["diagnose", "gain", "--train", str(d / "train.h5"), "--test", str(d / "test.h5"), "--per-class", "3",
            "--seeds", "2", "-q", "--set", "fit.steps=2", "--set", "fit.net.channels=[4]"]
    r = json.loads(_run(runner, [*base, "--json", "--arm", f"i=init:{tmp_path}/pre.h5",
                                 "--arm", f"own=init:{tmp_path}/real.h5,lr=0.0003"]).stdout)
    rows = r["results"]["3"]
    assert r["arms"]["i"] == {"mode": "init", "file": f"{tmp_path}/pre.h5", "options": {"finetune": "all"}}
    assert (rows["i"]["classifier_saw"], rows["i"]["classifier_saw_more"]) == (0, False)
    assert (rows["own"]["classifier_saw"], rows["own"]["classifier_saw_more"]) == (120, True)  # trained on --train
    assert r["reference"]["arms"]["i"] is None and rows["i"]["gain"]["seeds"] == 2
    # the starts frozen: each init arm's body and real's random start, read out linearly on the subset
    frozen = r["reference"]["frozen"]
    assert list(frozen) == ["real", "i", "own"] and "gain" not in frozen["real"]["3"]
    assert frozen["i"]["3"]["gain"]["values"] == pytest.approx(
        [a - b for a, b in zip(frozen["i"]["3"]["accuracy"]["values"], frozen["real"]["3"]["accuracy"]["values"])])
    from mdcli.diagnose import stats
    from mdcli.diagnose.gain import frozen_starts
    from mdcli.diagnose.generation import embed

    by_hand = replace(fit, net=replace(fit.net, channels=[4]))
    got = frozen_starts(data, by_hand, [parse_arm(f"i=init:{tmp_path}/pre.h5")], [3], [1], "auto")
    sel = few_shot_indices(data.y.numpy(), 3, 1, data.sequence, "auto")
    for name, model in (("real", None), ("i", pre)):
        if model is None:
            torch.manual_seed(1)
            model = SpectrogramClassifier(by_hand.net, 4)
        f, ft = embed(model.eval(), data.x, 64)[0], embed(model, data.x_test, 64)[0]
        want = stats.linear_probe_accuracy(f[sel], data.y.numpy()[sel], ft, data.y_test, weight_decay=1e-2, seed=1)
        assert got[name]["3"]["accuracy"]["values"] == [want]
        rest = np.setdiff1d(np.arange(len(data.y)), sel)  # no /sequence: every training window outside the subset
        want = stats.linear_probe_accuracy(f[sel], data.y.numpy()[sel], f[rest], data.y.numpy()[rest],
                                           weight_decay=1e-2, seed=1)
        assert got[name]["3"]["accuracy_train"]["values"] == [want]
    # with a recording order, the training windows that test a frozen start keep 3 steps from the subset
    y = np.array([0] * 10 + [1] * 10)
    seq = np.tile(np.arange(10), 2)
    mask = gain._away_from(np.array([4, 15]), y, seq)
    assert np.flatnonzero(mask).tolist() == [0, 1, 7, 8, 9, 10, 11, 12, 18, 19]
    assert gain._away_from(np.array([4, 15]), y, None).sum() == 18
    assert frozen_starts(data, fit, [parse_arm(f"p=pretrain:{tmp_path}/sim.h5")], [3], [0], "auto") is None
    out = _run(runner, [*base, "--arm", f"own=init:{tmp_path}/real.h5", "--md-out", str(tmp_path / "g.md")]).stdout
    assert "own*" in out and "the classifier it starts from was trained on 120 > 3" in out
    md = (tmp_path / "g.md").read_text()
    assert "(an init arm: its classifier's weights, the same for every seed)" in md and "The starts frozen" in md
    _synthetic(5, 0, size=8).save(tmp_path / "small.h5", "small\n", 0)
    _run(runner, ["train-classifier", *cfg, "--data", str(tmp_path / "small.h5"), "--set", "net.channels=[4]",
                  "-o", str(tmp_path / "small_clf.h5")])
    _refused(runner, [*base, "--arm", f"i=init:{tmp_path}/sim.h5"], "is a spectrograms artifact", "train-classifier")
    # the same file as another arm's extra set: checked as a classifier all the same
    _refused(runner, [*base, "--arm", f"a=append:{d}/rest_20_0.h5", "--arm", f"i=init:{d}/rest_20_0.h5"],
             "is a spectrograms artifact")
    _refused(runner, [*base, "--arm", f"i=init:{tmp_path}/small_clf.h5"], "trained on images (8, 8)")
    _refused(runner, [*base, "--arm", f"i=init:{tmp_path}/pre.h5+{tmp_path}/real.h5"], "joins 2 classifiers",
             "--starts must be a multiple of 2")
    _refused(runner, [*base, "--arm", f"i=init:{tmp_path}/pre.h5,steps=5"], "no option of mode init")
    _refused(runner, [*base, "--arm", f"i=init:{tmp_path}/leak.h5"], "the classifier", "test.h5")
    _refused(runner, [*base, "--arm", f"i=init:{tmp_path}/none.h5"], "file not found")


def test_pretrain_steps_set_the_pretraining_budget_alone(gain_data, monkeypatch):
    """pretrain:FILE,steps=S trains S steps on the extra set, then the fit's steps on the N real windows; without
    it both stages take the fit's steps; a bad value or the option on another mode is a one-line error."""
    import mdcli.diagnose.gain as gain

    d, calls = gain_data, []
    real_fit = gain.fit_classifier

    def spy(x, y, k, cfg, seed, **kw):
        calls.append((len(x), cfg.steps))
        return real_fit(x, y, k, cfg, seed, **kw)

    monkeypatch.setattr(gain, "fit_classifier", spy)
    data = Data(d / "train.h5", d / "test.h5")
    fit = FitConfig(steps=3, batch_size=8)
    fit.net.channels = [4]
    for text, want in ((f"p=pretrain:{d}/rest_20_0.h5,steps=7", 7), (f"p=pretrain:{d}/rest_20_0.h5", 3)):
        arm = parse_arm(text)
        calls.clear()
        run_task(arm.task(3, 0), data, fit, "random", 64)
        assert calls == [(len(data.extra(arm.path(3, 0))[0]), want), (3 * 4, 3)]
    assert parse_arm(f"p=pretrain:{d}/a.h5,steps=600").options() == {"finetune": "all", "steps": 600}
    assert parse_arm(f"p=pretrain:{d}/a.h5").options() == {"finetune": "all"}
    for bad in ("steps=0", "steps=1.5", "steps=many"):
        with pytest.raises(ConfigError, match="steps must be a whole number"):
            parse_arm(f"p=pretrain:{d}/a.h5,{bad}")
    with pytest.raises(ConfigError, match="no option of mode append"):
        parse_arm(f"p=append:{d}/a.h5,steps=5")


def test_a_kept_pretraining_gives_the_same_numbers_and_fine_tuning_options_act(gain_data, monkeypatch, tmp_path):
    """run_spec pretrains once per (file, steps, seed) and reuses it for every N and fine-tuning of that seed
    (also on a file of other classes, with a fresh head after it): the same accuracies as each task on its own;
    lr / augment change the fine-tuning alone (its learning rate, the classic augmentation of the real windows);
    worker_chunks keeps a shared pretraining in one worker."""
    import mdcli.diagnose.gain as gain

    d = gain_data
    other = _synthetic(6, 7)
    other.class_names = ["walker", "drone", "bird", "vehicle"]
    other.save(tmp_path / "sim.h5", "sim\n", 0)
    data = Data(d / "train.h5", d / "test.h5")
    fit = FitConfig(steps=4, batch_size=8, warmup_steps=1)
    fit.net.channels = [4]
    arms = [parse_arm(f"p=pretrain:{d}/rest_20_0.h5,steps=6"), parse_arm(f"q=pretrain:{d}/rest_20_0.h5,steps=6,lr=0.01"),
            parse_arm(f"r=pretrain:{d}/rest_20_0.h5,steps=6,augment=classic")]
    tasks = [a.task(n, s) for s in (0, 1) for n in (3, 5) for a in arms]
    sim = [parse_arm(f"o=pretrain:{tmp_path}/sim.h5,steps=5").task(n, 0) for n in (3, 5)]
    alone_sim = [run_task(t, data, fit, "random", 64) for t in sim]
    spec_sim = {"train": str(d / "train.h5"), "test": str(d / "test.h5"), "split": "random", "fit": asdict(fit),
                "batch_size": 64, "tasks": sim}
    assert gain.run_spec(spec_sim) == alone_sim  # pretrained on its own classes, kept, a fresh head each time
    alone = [run_task(t, data, fit, "random", 64) for t in tasks]
    calls = []
    real_fit = gain.fit_classifier

    def spy(x, y, k, cfg, seed, **kw):
        calls.append((cfg.steps, cfg.lr, kw.get("augment", False)))
        return real_fit(x, y, k, cfg, seed, **kw)

    monkeypatch.setattr(gain, "fit_classifier", spy)
    spec = {"train": str(d / "train.h5"), "test": str(d / "test.h5"), "split": "random", "fit": asdict(fit),
            "batch_size": 64, "tasks": tasks}
    kept = gain.run_spec(spec)
    assert kept == alone  # accuracies, F1, subset and init digests, byte for byte
    assert [c for c in calls if c[0] == 6] == [(6, fit.lr, False)] * 2  # one pretraining per seed, not 12
    tunes = [c for c in calls if c[0] == 4]
    assert tunes == [(4, fit.lr, False), (4, 0.01, False), (4, fit.lr, True)] * 4

    assert arms[1].options() == {"finetune": "all", "steps": 6, "lr": 0.01}
    assert arms[2].options() == {"finetune": "all", "steps": 6, "augment": "classic"}
    for bad, msg in (("lr=0", "lr must be a learning rate"), ("lr=fast", "lr must be a learning rate"),
                     ("augment=mixup", "augment must be none or classic"), ("finetune=body", "finetune must be all or head")):
        with pytest.raises(ConfigError, match=msg):
            parse_arm(f"p=pretrain:{d}/a.h5,{bad}")
    with pytest.raises(ConfigError, match="no option of mode append"):
        parse_arm(f"p=append:{d}/a.h5,lr=0.01")

    both = [gain.Arm("real", "real").task(n, s) for s in (0, 1) for n in (3, 5)] + tasks
    chunks = gain.worker_chunks(both, 2, fit.steps)
    assert sorted(i for c in chunks for i in c) == list(range(len(both)))
    for s in (0, 1):  # each seed's pretraining in one worker only
        owners = {j for j, c in enumerate(chunks) for i in c if both[i]["mode"] == "pretrain" and both[i]["seed"] == s}
        assert len(owners) == 1
    assert all(c == sorted(c) for c in chunks)
    plain, same = (parse_arm(f"{a}=pretrain:{d}/rest_20_0.h5{o}").task(3, 0) for a, o in (("u", ""), ("v", ",steps=4")))
    assert gain.pretrain_key(plain, fit.steps) == gain.pretrain_key(same, fit.steps)  # no steps = fit.steps: one pretraining
    assert gain.pretrain_key(plain, 5) != gain.pretrain_key(same, 5)


def test_profile_features_ignore_when_and_keep_where_along_doppler():
    """The reference's features: a circular shift in time changes none of them (means, spreads and spectrum
    magnitudes), a shift along Doppler changes them; (N, 2 F + bands x freqs)."""
    from mdcli.diagnose.gain import profile_features

    x = np.random.default_rng(0).random((3, 32, 64))
    f = profile_features(x)
    assert f.shape == (3, 2 * 32 + 8 * 16)
    np.testing.assert_allclose(profile_features(np.roll(x, 17, axis=2)), f, atol=1e-12)
    assert np.abs(profile_features(np.roll(x, 4, axis=1)) - f).max() > 0.1


def test_an_arm_file_is_an_input_no_report_may_replace(runner, gain_data, tmp_path):
    """--json-out / --md-out naming an arm's file are refused even with --force (only a file of another kind
    needs --force; an input is never written), before any fit; the file keeps its bytes."""
    extra = tmp_path / "extra.h5"
    extra.write_bytes((gain_data / f"rest_{N}_0.h5").read_bytes())
    before = extra.read_bytes()
    for opt in ("--json-out", "--md-out"):
        _refused(runner, ["diagnose", "gain", "--train", str(gain_data / "train.h5"), "--test", str(gain_data / "test.h5"),
                          "--per-class", str(N), "--seeds", "1", "--arm", f"g=append:{extra}", opt, str(extra), "--force", "-q"],
                 f"{opt} {extra} is the input --arm g ({extra})")
    assert extra.read_bytes() == before


def test_each_arm_is_also_read_on_the_other_training_windows(runner, gain_data, tmp_path):
    """Every fine-tuned classifier is scored on the training windows outside its subset too (no held-out window:
    a way to choose among arms): the number is the fitted model's accuracy there, computed here by hand for
    `real`, the gain there is paired over real, and the Markdown report has the table."""
    from mdcli.diagnose.generation import embed
    from mdcli.train.classifier import fit_classifier

    d = gain_data
    data, fit = Data(d / "train.h5", d / "test.h5"), FitConfig(net=replace(FitConfig().net, channels=[4]), steps=3,
                                                                batch_size=4)
    got = run_task(gain.Arm("real", "real").task(3, 1), data, fit, "auto", 64)
    sel = few_shot_indices(data.y.numpy(), 3, 1, data.sequence, "auto")
    model = fit_classifier(data.x[sel], data.y[sel], 4, fit, 1)
    rest = np.setdiff1d(np.arange(len(data.y)), sel)  # no /sequence: every training window outside the subset
    want = float((embed(model, data.x[rest], 64)[1] == data.y.numpy()[rest]).mean())
    assert got["accuracy_train"] == pytest.approx(want) and 0 < want < 1
    base = ["diagnose", "gain", "--train", str(d / "train.h5"), "--test", str(d / "test.h5"), "--per-class", "3",
            "--seeds", "2", "-q", "--set", "fit.steps=2", "--set", "fit.net.channels=[4]"]
    r = json.loads(_run(runner, [*base, "--json"]).stdout)["results"]["3"]
    assert r["real"]["gain_train"] is None and len(r["real"]["accuracy_train"]["values"]) == 2
    assert r["classic"]["gain_train"]["values"] == pytest.approx(
        [a - b for a, b in zip(r["classic"]["accuracy_train"]["values"], r["real"]["accuracy_train"]["values"])])
    _run(runner, [*base, "--md-out", str(tmp_path / "g.md")])
    assert "read on the other training windows" in (tmp_path / "g.md").read_text()


def test_best_of_k_starts_keeps_the_fit_most_accurate_on_the_other_training_windows(runner, gain_data, tmp_path):
    """--starts K: every arm fits K times per (N, seed), start j from seed + 100 j (an init arm joining M classifiers:
    file j mod M from seed + 100 (j // M)), and keeps the start most accurate on the other training windows; start 0
    is the single-start fit exactly, the table scores the kept fits, the JSON keeps every start; a K that leaves
    a joined classifier without its start, or nothing outside the subset to choose by, is a one-line error."""
    d = gain_data
    cfg = ["--config", str(TINY / "train-classifier.yaml"), "--steps", "3", "-q", "--set", "net.channels=[4]"]
    for seed in (0, 1):
        _run(runner, ["train-classifier", *cfg, "--data", str(d / "rest_20_0.h5"), "--seed", str(seed),
                      "-o", str(tmp_path / f"pre{seed}.h5")])
    arm = parse_arm(f"i=init:{tmp_path}/pre0.h5+{tmp_path}/pre1.h5")
    assert [(t["file"], t["fit_seed"]) for t in (arm.task(3, 5, j) for j in range(4))] == [
        (f"{tmp_path}/pre0.h5", 5), (f"{tmp_path}/pre1.h5", 5), (f"{tmp_path}/pre0.h5", 105), (f"{tmp_path}/pre1.h5", 105)]
    assert [gain.Arm("real", "real").task(3, 5, j)["fit_seed"] for j in range(3)] == [5, 105, 205]
    base = ["diagnose", "gain", "--train", str(d / "train.h5"), "--test", str(d / "test.h5"), "--per-class", "3",
            "--seeds", "2", "-q", "--set", "fit.steps=4", "--set", "fit.net.channels=[4]"]
    one = json.loads(_run(runner, [*base, "--json"]).stdout)
    r = json.loads(_run(runner, [*base, "--json", "--starts", "2", "--arm", arm_text(tmp_path)]).stdout)
    assert r["starts"] == 2 and r["fits"]["count"] == 2 * 2 * 3  # seeds x starts x arms
    rows = r["results"]["3"]
    for name in ("real", "classic", "i"):
        k = rows[name]["starts"]
        assert len(k["accuracy"]) == 2 and all(len(a) == 2 for a in k["accuracy"])
        for seed_i, chosen in enumerate(k["chosen"]):
            assert chosen == int(np.argmax(k["accuracy_train"][seed_i]))  # no held-out number decides
            assert rows[name]["accuracy"]["values"][seed_i] == k["accuracy"][seed_i][chosen]
            assert rows[name]["accuracy_train"]["values"][seed_i] == k["accuracy_train"][seed_i][chosen]
        first = [a[0] for a in rows["real"]["starts"]["accuracy"]]
        assert k["gain_over_real_first_start"]["values"] == pytest.approx(
            [a - b for a, b in zip(rows[name]["accuracy"]["values"], first)])
    for name in ("real", "classic"):  # start 0: the single-start run's fit, bit for bit
        assert [a[0] for a in rows[name]["starts"]["accuracy"]] == one["results"]["3"][name]["accuracy"]["values"]
    assert rows["i"]["gain"]["values"] == pytest.approx(
        [a - b for a, b in zip(rows["i"]["accuracy"]["values"], rows["real"]["accuracy"]["values"])])
    assert list(r["reference"]["frozen"]) == ["real", "i#0", "i#1"]  # each joined classifier's start, frozen
    assert "starts" not in one["results"]["3"]["real"]
    _run(runner, [*base, "--starts", "2", "--md-out", str(tmp_path / "g.md")])
    md = (tmp_path / "g.md").read_text()
    assert "--starts 2" in md and "keeps the one with the highest accuracy on the other training windows" in md
    # --choose-on V: the choice reads V other windows per class only (here, no /sequence: V drawn per class)
    v = json.loads(_run(runner, [*base, "--json", "--starts", "2", "--choose-on", "5"]).stdout)
    assert v["choose_on"] == 5 and r["choose_on"] is None
    for name in ("real", "classic"):
        k = v["results"]["3"][name]["starts"]
        assert k["accuracy"] == rows[name]["starts"]["accuracy"]  # the same fits, another choice
        assert k["chosen"] == [int(np.argmax(a)) for a in k["accuracy_choice"]]
        assert all(round(a * 20) == a * 20 for f in k["accuracy_choice"] for a in f)  # 4 classes x 5 windows
    # --keep ensemble: every start kept, the arm predicts with the mean of their class probabilities
    e = json.loads(_run(runner, [*base, "--json", "--starts", "2", "--keep", "ensemble"]).stdout)
    assert e["keep"] == "ensemble" and e["results"]["3"]["real"]["starts"]["chosen"] == [None, None]
    for name in ("real", "classic"):  # the same fits; the best-of run's JSON carries the ensemble's numbers too
        assert e["results"]["3"][name]["starts"]["accuracy"] == rows[name]["starts"]["accuracy"]
        assert e["results"]["3"][name]["accuracy"] == rows[name]["starts"]["ensemble"]["accuracy"]
    from mdcli.config import load_config

    fit = load_config(gain.GainConfig, None, ["fit.steps=4", "fit.net.channels=[4]"]).fit
    data = Data(d / "train.h5", d / "test.h5")
    fits = [run_task(gain.Arm("real", "real").task(3, 1, j), data, fit, "auto", 128) for j in (0, 1)]
    mean = (np.array(fits[0]["proba"]) + np.array(fits[1]["proba"])) / 2
    assert np.allclose(mean.sum(1), 1) and (np.array(fits[0]["proba"]).argmax(1) == data.y_test).mean() == fits[0]["accuracy"]
    by_hand = float((mean.argmax(1) == data.y_test).mean())
    assert e["results"]["3"]["real"]["accuracy"]["values"][1] == by_hand
    assert gain.ensemble(fits, data, 3, 1, "auto")["accuracy"] == by_hand
    _run(runner, [*base, "--starts", "2", "--keep", "ensemble", "--md-out", str(tmp_path / "e.md")])
    md = (tmp_path / "e.md").read_text()
    assert "--keep ensemble" in md and "predicts with the mean of their class probabilities" in md
    _refused(runner, [*base, "--keep", "ensemble"], "--keep ensemble", "--starts K > 1")
    _refused(runner, [*base, "--starts", "2", "--keep", "ensemble", "--choose-on", "5"], "no --choose-on")
    _refused(runner, [*base, "--starts", "2", "--keep", "median"], "--keep median", "best or ensemble")
    _refused(runner, [*base, "--choose-on", "5"], "--choose-on 5", "only with --starts")
    _refused(runner, [*base[:8], "--seeds", "101", *base[10:], "--starts", "2"], "seeds spanning 100", "share weights")
    _refused(runner, [*base, "--starts", "2", "--arm", f"i#0=init:{tmp_path}/pre0.h5"], "'#'", "ARM#j")
    _refused(runner, [*base, "--starts", "2", "--choose-on", "200"], "--choose-on 200", "class c0 has 117")
    _refused(runner, [*base, "--starts", "3", "--arm", arm_text(tmp_path)], "--arm i", "multiple of 2, got 3")
    _refused(runner, [*base[:6], "--per-class", "120", *base[8:], "--starts", "2"], "--starts 2", "N = 120",
             "no --train window lies outside")


def test_the_windows_that_choose_among_starts_are_the_subsets_nearest_neighbours():
    """--choose-on V: per class the V other training windows nearest the subset in recording order (at least 3
    steps from it), ties to the earlier; without a recording order V seeded random ones outside the subset."""
    y = np.array([0] * 10 + [1] * 10)
    seq = np.tile(np.arange(10), 2)
    sel = np.array([4, 15])
    assert np.flatnonzero(gain.choice_windows(sel, y, seq, 2, 0)).tolist() == [1, 7, 12, 18]
    assert np.flatnonzero(gain.choice_windows(sel, y, seq, 3, 0)).tolist() == [0, 1, 7, 11, 12, 18]
    free = gain.choice_windows(sel, y, None, 4, 0)
    assert not free[sel].any() and np.bincount(y[free]).tolist() == [4, 4]
    assert (free == gain.choice_windows(sel, y, None, 4, 0)).all()
    assert not (free == gain.choice_windows(sel, y, None, 4, 1)).all()


def arm_text(folder) -> str:
    return f"i=init:{folder}/pre0.h5+{folder}/pre1.h5"


def test_reports_on_disjoint_seeds_pool_into_the_report_of_all_seeds(runner, gain_data, tmp_path):
    """diagnose gain-pool: runs on seeds 0-1 and 2 pool into the report of one run on seeds 0-2, number for number
    (every start, the ensembles, the frozen starts, the reference); reports of another comparison, overlapping
    seeds, a part no seed enters that differs, or a file that is no gain report are one-line refusals."""
    d = gain_data
    cfg = ["--config", str(TINY / "train-classifier.yaml"), "--steps", "3", "-q", "--set", "net.channels=[4]"]
    for seed in (0, 1):
        _run(runner, ["train-classifier", *cfg, "--data", str(d / "rest_20_0.h5"), "--seed", str(seed),
                      "-o", str(tmp_path / f"pre{seed}.h5")])
    base = ["diagnose", "gain", "--train", str(d / "train.h5"), "--test", str(d / "test.h5"), "--per-class", "3",
            "-q", "--set", "fit.steps=4", "--set", "fit.net.channels=[4]", "--starts", "2", "--keep", "ensemble",
            "--arm", arm_text(tmp_path)]
    _run(runner, [*base, "--seeds", "3", "--json-out", str(tmp_path / "all.json")])
    _run(runner, [*base, "--seeds", "2", "--json-out", str(tmp_path / "a.json")])
    _run(runner, [*base, "--seeds", "1", "--first-seed", "2", "--json-out", str(tmp_path / "b.json")])
    pool = ["diagnose", "gain-pool", str(tmp_path / "a.json"), str(tmp_path / "b.json")]
    _run(runner, [*pool, "--json-out", str(tmp_path / "p.json"), "--md-out", str(tmp_path / "p.md")])
    pooled, full = json.loads((tmp_path / "p.json").read_text()), json.loads((tmp_path / "all.json").read_text())
    assert [p["seeds"] for p in pooled.pop("pooled_from")] == [[0, 1], [2]]
    assert pooled == full  # the gains, intervals, verdicts, every start's numbers, the reference and frozen starts
    assert len(full["results"]["3"]["i"]["starts"]["accuracy"]) == 3 and full["reference"]["frozen"]
    md = (tmp_path / "p.md").read_text()
    assert md.startswith(gain.MARKDOWN_MARK) and "mdcli diagnose gain-pool" in md and "seeds 0, 1, 2" in md
    assert f"{tmp_path / 'b.json'} (seeds 2)" in md
    assert "| 3 | i* | init |" in md and "i\\* at N = 3: the classifier it starts from" in md  # the star survives
    _refused(runner, [*pool[:2], str(tmp_path / "a.json")], "needs two or more")
    _refused(runner, [*pool[:2], str(tmp_path / "a.json"), str(tmp_path / "all.json")], "seed 0 is also in")
    _run(runner, [*base[:6], "--per-class", "4", *base[8:], "--seeds", "1", "--first-seed", "5",
                  "--json-out", str(tmp_path / "n4.json")])
    _refused(runner, [*pool[:3], str(tmp_path / "n4.json")], "n4.json", "per_class differs")
    other = json.loads((tmp_path / "b.json").read_text())
    other["reference"]["method"] = "another reference"
    (tmp_path / "odd.json").write_text(json.dumps(other))
    _refused(runner, [*pool[:3], str(tmp_path / "odd.json")], "odd.json", "reference.method differs")
    (tmp_path / "x.json").write_text('{"seeds": [7]}')
    _refused(runner, [*pool[:3], str(tmp_path / "x.json")], "x.json", "not a diagnose gain report")
    _refused(runner, [*pool, "--json-out", str(tmp_path / "a.json")], "--json-out")  # an input is never replaced
    assert json.loads((tmp_path / "a.json").read_text())["seeds"] == [0, 1]
