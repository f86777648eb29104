"""classify: a classifier or an ensemble (the mean of class probabilities) labels spectrograms and is scored on
the file's own labels by class name; train-classifier's train.val_fraction 0 trains on every window."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mdcli.artifacts import Spectrograms
from mdcli.data.batches import model_images
from mdcli.models.classifier import class_logits, softmax
from mdcli.models.load import load_classifier
from tests.conftest import TINY, cli_ok as _ok, cli_refused as _refused


def _set(n_per_class: int, seed: int, names=("a", "b", "c"), size: int = 16) -> Spectrograms:
    """Three classes told apart by where a bright Doppler row lies, under noise."""
    r = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(names)), n_per_class)
    x = 0.3 + 0.1 * r.normal(size=(len(labels), size, size))
    for i, c in enumerate(labels):
        x[i, 3 + 4 * c] += 0.4
    return Spectrograms(np.clip(x, 0, 1).astype(np.float32), labels, list(names), np.linspace(-1, 1, size),
                        np.linspace(0, 1, size), 24e9, 1000.0, 40.0, "simulated")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("classify")
    _set(12, 0).save(d / "train.h5", "train\n", 0)
    _set(10, 1).save(d / "test.h5", "test\n", 1)
    from typer.testing import CliRunner

    runner = CliRunner()
    cfg = ["train-classifier", "--config", str(TINY / "train-classifier.yaml"), "--steps", "25", "-q",
           "--set", "net.channels=[8]", "--data", str(d / "train.h5")]
    for seed in (0, 1):
        _ok(runner, [*cfg, "--seed", str(seed), "-o", str(d / f"clf{seed}.h5")])
    return d


def _by_hand(path, data_path):
    model, attrs = load_classifier(path)
    data = Spectrograms.load(data_path)
    return softmax(class_logits(model, model_images(data), 7)), data.labels


def test_one_classifier_and_an_ensemble_label_and_score_by_class_name(runner, trained, tmp_path):
    d = trained
    one = [json.loads(_ok(runner, ["classify", "--data", str(d / "test.h5"), "--classifier", str(d / f"clf{s}.h5"),
                                   "--json"]).stdout) for s in (0, 1)]
    for s, r in enumerate(one):
        p, y = _by_hand(d / f"clf{s}.h5", d / "test.h5")
        assert np.allclose(r["probabilities"], p) and np.allclose(np.sum(r["probabilities"], 1), 1)
        assert r["scored"]["accuracy"] == float((p.argmax(1) == y).mean()) and r["count"] == 30
        assert np.sum(r["scored"]["confusion"]) == 30 and sum(r["predicted_counts"].values()) == 30
        assert r["scored"]["members"] == [r["scored"]["accuracy"]]
    both = ["classify", "--data", str(d / "test.h5"), "--classifier", str(d / "clf0.h5"), "--classifier",
            str(d / "clf1.h5")]
    _ok(runner, [*both, "--json-out", str(tmp_path / "e.json")])
    e = json.loads((tmp_path / "e.json").read_text())
    mean = (np.array(one[0]["probabilities"]) + np.array(one[1]["probabilities"])) / 2
    assert np.allclose(e["probabilities"], mean)
    y = Spectrograms.load(d / "test.h5").labels
    assert e["scored"]["accuracy"] == float((mean.argmax(1) == y).mean())
    assert e["scored"]["members"] == [r["scored"]["accuracy"] for r in one]
    assert [c["path"] for c in e["classifiers"]] == [str(d / "clf0.h5"), str(d / "clf1.h5")]
    text = _ok(runner, both).stdout
    assert "rows true class" in text and "each classifier alone" in text
    # the same windows with the classes listed in another order: scored by name, the same numbers
    t = Spectrograms.load(d / "test.h5")
    t.class_names, t.labels = ["c", "b", "a"], 2 - t.labels
    t.save(tmp_path / "reordered.h5", "reordered\n", 1)
    r = json.loads(_ok(runner, [*both[:2], str(tmp_path / "reordered.h5"), *both[3:], "--json"]).stdout)
    assert r["scored"]["accuracy"] == e["scored"]["accuracy"] and r["predicted"] == e["predicted"]
    # windows of classes the classifiers do not know: labelled, not scored
    _set(4, 3, names=("a", "b", "q")).save(tmp_path / "other.h5", "other\n", 3)
    r = json.loads(_ok(runner, [*both[:2], str(tmp_path / "other.h5"), *both[3:], "--json"]).stdout)
    assert r["count"] == 12 and "class 'q'" in r["scored"]["reason"]
    assert "not scored" in _ok(runner, [*both[:2], str(tmp_path / "other.h5"), *both[3:]]).stdout


def test_members_of_another_class_set_or_image_size_are_one_line_errors(runner, trained, tmp_path):
    d = trained
    cfg = ["train-classifier", "--config", str(TINY / "train-classifier.yaml"), "--steps", "2", "-q",
           "--set", "net.channels=[8]"]
    _set(12, 0, names=("a", "b", "z")).save(tmp_path / "abz.h5", "abz\n", 0)
    _ok(runner, [*cfg, "--data", str(tmp_path / "abz.h5"), "-o", str(tmp_path / "abz_clf.h5")])
    _set(12, 0, size=24).save(tmp_path / "big.h5", "big\n", 0)
    _ok(runner, [*cfg, "--data", str(tmp_path / "big.h5"), "-o", str(tmp_path / "big_clf.h5")])
    base = ["classify", "--data", str(d / "test.h5"), "--classifier", str(d / "clf0.h5")]
    _refused(runner, [*base, "--classifier", str(tmp_path / "abz_clf.h5")], "abz_clf.h5", "differ from")
    _refused(runner, [*base[:4], str(tmp_path / "big_clf.h5")], "big_clf.h5", "trained on images (24, 24)", "(16, 16)")
    _refused(runner, [*base, "--classifier", str(d / "clf0.h5")], "the same file twice")
    _refused(runner, base[:3], "--classifier", "give one classifier")
    _refused(runner, [*base[:4], str(d / "test.h5")], "--classifier")
    _refused(runner, [*base, "--json-out", str(d / "clf0.h5")], "--json-out")
    assert load_classifier(d / "clf0.h5")[1]["n_classes"] == 3  # the input survived


def test_train_classifier_with_val_fraction_0_trains_on_every_window(runner, trained, tmp_path):
    d = trained
    res = _ok(runner, ["train-classifier", "--config", str(TINY / "train-classifier.yaml"), "--steps", "4",
                       "--set", "net.channels=[8]", "--set", "train.val_fraction=0", "--data", str(d / "train.h5"),
                       "-o", str(tmp_path / "all.h5")])
    assert "no validation (train.val_fraction 0)" in res.stdout
    _, attrs = load_classifier(tmp_path / "all.h5")
    assert list(attrs["val_indices"]) == [] and np.isnan(attrs["val_accuracy"])
    last = json.loads((tmp_path / "all.metrics.jsonl").read_text().splitlines()[-1])
    assert last["step"] == 4 and "val_accuracy" not in last and last["train_accuracy"] >= 0
    info = json.loads(_ok(runner, ["info", str(tmp_path / "all.h5"), "--json"]).stdout)
    assert info["attrs"]["val_accuracy"] is None  # strict JSON: no validation reads null, not NaN
    _refused(runner, ["train-classifier", "--config", str(TINY / "train-classifier.yaml"), "--set",
                      "train.val_fraction=1", "--data", str(d / "train.h5"), "-o", str(tmp_path / "x.h5")],
             "train.val_fraction", "[0, 1)")
    assert not (tmp_path / "x.h5").exists()
    torch.manual_seed(0)  # leave the global stream as a test found it


def test_output_writes_the_windows_labelled_with_the_prediction_and_min_confidence_keeps_the_sure_ones(
        runner, trained, tmp_path):
    d = trained
    both = ["classify", "--data", str(d / "test.h5"), "--classifier", str(d / "clf0.h5"), "--classifier",
            str(d / "clf1.h5")]
    report = json.loads(_ok(runner, [*both, "--json", "-o", str(tmp_path / "lab.h5")]).stdout)
    src, lab = Spectrograms.load(d / "test.h5"), Spectrograms.load(tmp_path / "lab.h5")
    probs = np.array(report["probabilities"])
    assert lab.class_names == report["classes"] and len(lab) == 30 and report["kept"] == 30
    assert [lab.class_names[i] for i in lab.labels] == report["predicted"]  # the label is the ensemble's class
    assert np.array_equal(lab.spectrograms, src.spectrograms) and np.array_equal(lab.params["label_before"], src.labels)
    assert np.allclose(lab.params["confidence"], probs.max(1))
    assert np.allclose(np.stack([lab.params[f"probability_{c}"] for c in lab.class_names], 1), probs)
    info = json.loads(_ok(runner, ["info", str(tmp_path / "lab.h5"), "--json"]).stdout)
    assert [p["path"] for p in info["parents"]] == [str(d / "test.h5"), str(d / "clf0.h5"), str(d / "clf1.h5")]
    # a threshold keeps the windows whose predicted class reaches it, and measures how often those are right
    t = float(np.median(probs.max(1)))
    r = json.loads(_ok(runner, [*both, "--json", "-o", str(tmp_path / "sure.h5"), "--min-confidence", str(t),
                                "--force"]).stdout)
    sure, keep = Spectrograms.load(tmp_path / "sure.h5"), probs.max(1) >= t
    assert len(sure) == r["kept"] == r["scored"]["kept"]["count"] == int(keep.sum()) < 30
    assert np.array_equal(sure.spectrograms, src.spectrograms[keep])
    assert r["scored"]["kept"]["accuracy"] == float((probs.argmax(1)[keep] == src.labels[keep]).mean())
    assert "windows labelled" in _ok(runner, [*both, "-o", str(tmp_path / "sure.h5"), "--min-confidence", str(t),
                                              "--force"]).stdout
    # pseudo-labelled windows train like measured ones
    _ok(runner, ["train-classifier", "--config", str(TINY / "train-classifier.yaml"), "--steps", "3", "-q",
                 "--set", "net.channels=[8]", "--data", str(d / "train.h5"), "--extra", str(tmp_path / "sure.h5"),
                 "-o", str(tmp_path / "self.h5")])
    # refusals: no window reaches the threshold, a threshold outside [0, 1)
    unreachable = (probs.max() + 1) / 2
    _refused(runner, [*both, "-o", str(tmp_path / "none.h5"), "--min-confidence", str(unreachable)],
             "--min-confidence", "no window", "nothing written")
    _refused(runner, [*both, "-o", str(tmp_path / "none.h5"), "--min-confidence", "1"], "--min-confidence", "[0, 1)")
    # without --output the threshold still measures the kept windows' precision (choosing it on labelled windows)
    assert f"at mean probability >= {t}: {int(keep.sum())} windows" in _ok(runner, [*both, "--min-confidence", str(t)]).stdout
    assert not (tmp_path / "none.h5").exists()
    torch.manual_seed(0)  # leave the global stream as a test found it
