"""Values that used to slip through: exported files that overwrote each other, empty artifacts that crashed the
next command, nonsense axes and radar values on import, and out-of-range training numbers that ended in a
traceback. Each refusal: exit 2, one line naming the option or file, nothing written."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from mdcli.artifacts import Spectrograms
from mdcli.cli import app
from mdcli.errors import MdcliError
from tests.cli.test_safety import refused


def _ok(args):
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    return res


def test_png_export_writes_one_file_per_spectrogram(tiny_data, tmp_path):
    """An .npz import gives every window the same source file: the PNG names must still be unique, the count
    printed must be the files written, and the folder readable as mkdir would make it."""
    npz, back, folder = tmp_path / "x.npz", tmp_path / "back.h5", tmp_path / "png"
    _ok(["export", str(tiny_data), "-o", str(npz)])
    _ok(["import", str(npz), "-o", str(back), "-q"])
    data = Spectrograms.load(back)
    assert len(set(data.source_files)) == 1  # every window from x.npz
    res = _ok(["export", str(back), "--format", "png", "-o", str(folder)])
    files = sorted(folder.rglob("*.png"))
    assert len(files) == len(data) and f"{len(data)} files" in res.output
    umask = os.umask(0)
    os.umask(umask)
    assert (folder.stat().st_mode & 0o777) == (0o777 & ~umask)
    again = tmp_path / "again.h5"
    _ok(["import", str(folder), "-o", str(again), "-q"])
    assert len(Spectrograms.load(again)) == len(data)


def test_export_refuses_unsafe_class_names_and_wrong_extensions(tiny_data, tmp_path):
    d = Spectrograms.load(tiny_data)
    odd = tmp_path / "odd.h5"
    dataclasses.replace(d, class_names=["../escaped", *d.class_names[1:]]).save(odd, "test\n", 0)
    refused(CliRunner().invoke(app, ["export", str(odd), "--format", "png", "-o", str(tmp_path / "out" / "png")]),
            "'../escaped'", "folder name")
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "out" / "png").exists()
    for fmt, name in (("npz", "s.mat"), ("mat", "s.npz"), ("npz", "s.h5")):
        refused(CliRunner().invoke(app, ["export", str(tiny_data), "--format", fmt, "-o", str(tmp_path / name)]),
                f"--format {fmt} writes a .{fmt} file")
        assert not (tmp_path / name).exists()


def test_empty_spectrograms_are_neither_written_nor_read(tiny_data, tmp_path):
    d = Spectrograms.load(tiny_data)
    with pytest.raises(MdcliError, match="no spectrograms to write"):
        d.select(np.array([], dtype=np.int64)).save(tmp_path / "none.h5", "test\n", 0)
    assert not (tmp_path / "none.h5").exists()
    per_class = np.bincount(d.labels).min()
    refused(CliRunner().invoke(app, ["split", str(tiny_data), "--test-fraction", "0.99", "--train-out", str(tmp_path / "a.h5"),
                                     "--test-out", str(tmp_path / "b.h5")]),
            "--split random: class", f"'{d.class_names[0]}'", "keeps no training windows")
    assert per_class > 1 and not (tmp_path / "a.h5").exists() and not (tmp_path / "b.h5").exists()
    empty = tmp_path / "empty.h5"  # as an older mdcli could write it
    shutil.copy(tiny_data, empty)
    with h5py.File(empty, "a") as f:
        for name in ("spectrograms", "labels"):
            shape, dtype = f[name].shape, f[name].dtype
            del f[name]
            f.create_dataset(name, shape=(0, *shape[1:]), dtype=dtype)
    for cmd in (["train-classifier", "--data", str(empty), "-o", str(tmp_path / "c.h5"), "-q"],
                ["plot", str(empty), "-o", str(tmp_path / "p.png")]):
        refused(CliRunner().invoke(app, cmd), str(empty), "holds no spectrograms")
    from mdcli.filters import check_kept

    reports = [{"filter": "confidence", "checked": 10, "dropped": 4}, {"filter": "kinematic", "checked": 6, "dropped": 6}]
    with pytest.raises(MdcliError, match="kept none of the 10 samples .*'kinematic'.*nothing written"):
        check_kept(np.array([], dtype=np.int64), reports, 10, "samples")
    check_kept(np.array([3]), reports[:1], 10, "samples")  # something kept: no error


@pytest.fixture
def arrays(tmp_path):
    src = tmp_path / "arr"
    for c in ("a", "b"):
        (src / c).mkdir(parents=True)
        for i in range(2):
            np.save(src / c / f"rec_{i}.npy", np.random.default_rng(i).random((16, 20)))
    return src


@pytest.mark.parametrize("extra,fragment", [
    (["--duration", "nan", "--doppler-range", "-100,100"], "--duration nan"),
    (["--duration", "-1", "--doppler-range", "-100,100"], "--duration -1"),
    (["--duration", "2", "--doppler-range", "100,-100"], "--doppler-range 100,-100"),
    (["--duration", "2", "--doppler-range", "nan,100"], "--doppler-range nan,100"),
    (["--duration", "2"], "--duration without --doppler-range"),
    (["--doppler-range", "-100,100"], "--doppler-range without --duration"),
    (["--dynamic-range-db", "-5"], "--dynamic-range-db -5"),
    (["--carrier", "-5"], "--carrier -5"),
    (["--image-size", "30000,30000"], "--image-size 30000,30000"),
])
def test_import_refuses_nonsense_axes_and_radar_values(arrays, tmp_path, extra, fragment):
    out = tmp_path / "o.h5"
    refused(CliRunner().invoke(app, ["import", str(arrays), "-o", str(out), "-q", *extra]), fragment)
    assert not out.exists()


def test_import_reads_upper_case_suffixes_and_refuses_options_an_export_ignores(arrays, tiny_data, tmp_path):
    (arrays / "a" / "rec_0.npy").rename(arrays / "a" / "REC_0.NPY")
    out = tmp_path / "upper.h5"
    _ok(["import", str(arrays), "-o", str(out), "-q"])
    assert len(Spectrograms.load(out)) == 4
    npz = tmp_path / "x.npz"
    _ok(["export", str(tiny_data), "-o", str(npz)])
    bad = tmp_path / "bad.h5"
    refused(CliRunner().invoke(app, ["import", str(npz), "--image-size", "16,16", "--carrier", "77e9", "-o", str(bad)]),
            str(npz), "without --image-size, --carrier")
    assert not bad.exists()


@pytest.mark.parametrize("cmd,setting,fragment", [
    ("train-classifier", "train.lr=-1", "train.lr"),
    ("train-classifier", "train.weight_decay=-1", "train.weight_decay"),
    ("train-classifier", "train.warmup_steps=-5", "train.warmup_steps"),
    ("train-classifier", "train.grad_clip=-1", "train.grad_clip"),
    ("train-classifier", "train.schedule=foo", "train.schedule: unknown 'foo'"),
    ("train-classifier", "train.device=gpu", "train.device: unknown 'gpu'"),
    ("train-classifier", "net.dropout=1.5", "net.dropout"),
    ("train-ldm", "train.lr=nan", "train.lr"),
    ("diagnose gain", "fit.lr=-1", "fit.lr"),
    ("diagnose gain", "fit.weight_decay=-1", "fit.weight_decay"),
    ("diagnose gain", "fit.net.dropout=1.5", "fit.net.dropout"),
    ("diagnose generation", "fit.lr=0", "fit.lr"),
])
def test_out_of_range_training_values_are_one_line(tiny_data, tmp_path, cmd, setting, fragment):
    out = tmp_path / "o.h5"
    args = {"train-classifier": ["--data", str(tiny_data), "-o", str(out)],
            "train-ldm": ["--latents", str(tiny_data), "-o", str(out)],
            "diagnose gain": ["--train", str(tiny_data), "--test", str(tiny_data)],
            "diagnose generation": ["--samples", str(tiny_data), "--real", str(tiny_data)]}[cmd]
    refused(CliRunner().invoke(app, [*cmd.split(), *args, "--set", setting, "-q"]), fragment)
    assert not out.exists()


@pytest.mark.parametrize("setting,fragment", [
    ("train.checkpoint_every=0", "train.checkpoint_every"),
    ("train.log_every=0", "train.log_every"),
    ("train.eval_every=-1", "train.eval_every"),
])
def test_zero_intervals_are_one_line(tiny_data, tmp_path, setting, fragment):
    out = tmp_path / "o.h5"
    refused(CliRunner().invoke(app, ["train-classifier", "--data", str(tiny_data), "-o", str(out), "--set", setting, "-q"]),
            fragment)
    assert not out.exists()


def test_resume_with_fewer_steps_than_the_checkpoint_is_refused(tiny_data, tmp_path):
    """The artifact would record train.steps 2 for weights trained 4 steps: refused, the checkpoint kept."""
    from tests.conftest import TINY

    out = tmp_path / "c.h5"
    base = ["train-classifier", "--config", str(TINY / "train-classifier.yaml"), "--data", str(tiny_data), "-o", str(out),
            "-q", "--set", "train.checkpoint_every=2"]
    _ok([*base, "--steps", "10", "--stop-after", "4"])
    ckpt = tmp_path / "c.h5.ckpt"
    assert ckpt.exists() and not out.exists()
    refused(CliRunner().invoke(app, [*base, "--steps", "2", "--resume"]), "--steps 2: below the checkpoint's step 4")
    assert ckpt.exists() and not out.exists()
    _ok([*base, "--steps", "6", "--resume"])
    assert out.exists() and not ckpt.exists()


def test_other_bad_values_are_one_line(tiny_data, tmp_path):
    from mdcli.diagnose.report import _json
    from tests.conftest import TINY

    runner = CliRunner()
    out = tmp_path / "s.h5"
    for setting, fragment in (("radar.duration_s=1e9", "slow-time samples"), ("radar.prf_hz=nan", "radar.prf_hz")):
        refused(runner.invoke(app, ["simulate", "--config", str(TINY / "simulate.yaml"), "-o", str(out), "--set", setting]),
                fragment)
        assert not out.exists()
    refused(runner.invoke(app, ["diagnose", "collapse", "--ae", str(tmp_path / "x.h5"), "--data", str(tiny_data),
                                "--set", "damage_ratio_max=-1"]), "damage_ratio_max")
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: [1\n")
    refused(runner.invoke(app, ["study", "--profile", str(bad), "--dataset", "sim", "--out", str(tmp_path / "o")]),
            "--profile", "not a YAML file")
    bad.write_text("study: {}\n")
    refused(runner.invoke(app, ["study", "--profile", str(bad), "--dataset", "sim", "--out", str(tmp_path / "o")]),
            "needs 'arms'")
    assert not (tmp_path / "o").exists()
    empty = tmp_path / "recon.json"
    empty.write_text("")
    with pytest.raises(MdcliError, match="recon.json: not a diagnose --json report"):
        _json(empty)
    empty.write_text("[1, 2]")
    with pytest.raises(MdcliError, match="expected an object"):
        _json(empty)
    empty.write_text('{"overall": {"psnr": 20.0}, "per_class": {}}')  # an object of the wrong shape: was a KeyError
    with pytest.raises(MdcliError, match=r"recon.json: not a `mdcli diagnose recon --json` report \(no 'overall.ssim'\)"):
        _json(empty)
    other = tmp_path / "generation.json"
    other.write_text(json.dumps({"fmd": 1.0}))
    with pytest.raises(MdcliError, match="diagnose generation --json.*no 'kid'"):
        _json(other)


def test_a_file_of_the_wrong_kind_is_named_by_its_option(tiny_data, tmp_path):
    """--classifier / --init given a file of another kind: the message says which option named it."""
    from tests.conftest import TINY

    runner = CliRunner()
    out = tmp_path / "m.h5"
    base = ["--data", str(tiny_data), "-o", str(out), "--steps", "2", "-q"]
    ae_args = ["train-ae", "--config", str(TINY / "train-ae.yaml"), *base]
    refused(runner.invoke(app, [*ae_args, "--classifier", str(tiny_data)]), f"--classifier {tiny_data}: is a 'spectrograms'",
            "expected classifier")
    refused(runner.invoke(app, ["train-classifier", "--config", str(TINY / "train-classifier.yaml"), *base,
                                "--init", str(tiny_data)]), f"--init {tiny_data}: is a 'spectrograms'")
    refused(runner.invoke(app, [*ae_args, "--perceptual", "none", "--init", str(tiny_data)]), f"--init {tiny_data}: is a 'spectrograms'",
            "expected autoencoder")
    assert not out.exists()


@pytest.mark.parametrize("args,fragment", [
    (["--finetune", "head"], "--init FILE"),
    (["--set", "finetune=head"], "--init FILE"),
    (["--extra-ratio", "0.5"], "--extra FILE"),
    (["--set", "extra.prob=0.3"], "--extra FILE"),
])
def test_classifier_options_without_their_file_are_refused(tiny_data, tmp_path, args, fragment):
    """--finetune without --init and extra.* without --extra would train as if unset: refused, also when given
    with --set (it used to check the flags alone)."""
    from tests.conftest import TINY

    out = tmp_path / "c.h5"
    refused(CliRunner().invoke(app, ["train-classifier", "--config", str(TINY / "train-classifier.yaml"), "--data",
                                     str(tiny_data), "-o", str(out), "--quiet", *args]), fragment)
    assert not out.exists()
