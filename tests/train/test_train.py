"""Training stages end to end on the tiny config: losses fall, resume is exact, artifacts chain."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch

from mdcli.artifacts import load_model, sha256_file
from mdcli.cli import app
from mdcli.train.checkpoint import checkpoint_path
from mdcli.train.logs import log_path
from tests.conftest import TINY


@pytest.fixture(scope="module")
def clf(tiny_data, tmp_path_factory):
    from typer.testing import CliRunner

    out = tmp_path_factory.mktemp("clf") / "clf.h5"
    res = CliRunner().invoke(app, ["train-classifier", "--config", str(TINY / "train-classifier.yaml"),
                                   "--data", str(tiny_data), "-o", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    return out


def _train_ae(runner, data, clf, out, arch, *extra):
    args = ["train-ae", "--config", str(TINY / "train-ae.yaml"), "--data", str(data), "--arch", arch,
            "--classifier", str(clf), "-o", str(out), "--quiet", *extra]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    return res


def _weights(path):
    return load_model(path, "autoencoder")[2]


def test_classifier_artifact(clf, tiny_data):
    header, attrs, weights = load_model(clf, "classifier")
    assert attrs["class_names"] == ["walker", "drone", "helicopter", "bird", "vehicle"]
    assert 0.0 <= attrs["val_accuracy"] <= 1.0 and len(attrs["val_indices"]) > 0
    assert header["parents"][0]["sha256"] == sha256_file(tiny_data)
    assert any(k.startswith("head.") for k in weights)


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["vae", "vqvae", "vqgan"])
def test_each_arch_trains_and_its_loss_falls(runner, tiny_data, clf, tmp_path, arch):
    out = tmp_path / f"{arch}.h5"
    _train_ae(runner, tiny_data, clf, out, arch, "--steps", "40", "--set", "train.log_every=1")
    records = [json.loads(line) for line in log_path(out).read_text().splitlines()]
    rec = [r["rec"] for r in records if "rec" in r]
    assert len(rec) == 40
    assert np.mean(rec[-3:]) < 0.85 * np.mean(rec[:3]), rec
    header, attrs, _ = load_model(out, "autoencoder")
    assert attrs["arch"] == arch and attrs["latent_shape"] == [4, 8, 8]
    assert {"psnr", "ssim", "l1", "perceptual"} <= set(attrs["metrics"])
    assert [p["path"] for p in header["parents"]] == [str(tiny_data), str(clf)]
    assert not checkpoint_path(out).exists()  # the finished run cleans its checkpoint
    if arch != "vae":
        assert 0 < attrs["metrics"]["codebook_usage"] <= 1 and attrs["metrics"]["perplexity"] >= 1
        assert any("epoch_codebook_usage" in h for h in attrs["history"])  # usage over whole epochs


def test_resume_is_exact(runner, tiny_data, clf, tmp_path):
    """Training 2n steps equals training n, stopping, and resuming n (vqgan: D pre-training and G term inside)."""
    full, split = tmp_path / "full.h5", tmp_path / "split.h5"
    _train_ae(runner, tiny_data, clf, full, "vqgan", "--steps", "16")
    res = _train_ae(runner, tiny_data, clf, split, "vqgan", "--steps", "16", "--stop-after", "8")
    assert "stopped after 8 steps" in res.output and checkpoint_path(split).exists() and not split.exists()
    with open(log_path(split), "a") as f:  # what a run killed after its checkpoint leaves: later records, a torn line
        f.write(json.dumps({"step": 12, "rec": 0.5}) + "\n" + '{"step": 13, "re')
    _train_ae(runner, tiny_data, clf, split, "vqgan", "--steps", "16", "--resume")
    a, b = _weights(full), _weights(split)
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k]), k
    steps = lambda p: [json.loads(line)["step"] for line in log_path(p).read_text().splitlines()]  # noqa: E731
    assert steps(split) == steps(full)  # the resumed log is the uninterrupted one's, step for step


def test_ctrl_c_mid_step_checkpoints_at_the_step_boundary(tiny_data, clf, tmp_path):
    """SIGINT arriving inside a step (here: after the optimiser steps, in the progress callback) takes effect
    once the step is complete, and the checkpoint then written resumes to exactly the uninterrupted run
    (vqgan with a weight EMA: the generator, discriminator, both optimisers and the average). Before, the
    interrupt raised at once and the checkpoint labelled the updated weights with the step before, so the
    resumed run applied that step twice."""
    import os
    import signal

    from mdcli.config import load_config
    from mdcli.stages import TrainAEConfig
    from mdcli.train.ae import train_autoencoder

    cfg = load_config(TrainAEConfig, TINY / "train-ae.yaml", None, {
        "arch": "vqgan", "loss.classifier": str(clf), "train.steps": 16, "train.ema_decay": 0.9})
    full, cut = tmp_path / "full.h5", tmp_path / "cut.h5"
    train_autoencoder(cfg, tiny_data, full)
    steps = []

    def interrupt_in_step_8(n=1, completed=None):
        steps.append(n)
        if len(steps) == 8:
            os.kill(os.getpid(), signal.SIGINT)

    # Python's own Ctrl-C handler, whatever the suite inherited: a shell starts background jobs with SIGINT
    # ignored, and then Python keeps SIG_IGN (a fresh-clone CI run in the background failed here on that)
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            train_autoencoder(cfg, tiny_data, cut, progress=interrupt_in_step_8)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler is put back
    finally:
        signal.signal(signal.SIGINT, inherited)
    assert not cut.exists() and checkpoint_path(cut).exists()
    with h5py.File(checkpoint_path(cut)) as f:
        assert int(f.attrs["step"]) == 8
    train_autoencoder(cfg, tiny_data, cut, resume=True)
    a, b = _weights(full), _weights(cut)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_resume_refuses_another_config(runner, tiny_data, clf, tmp_path):
    out = tmp_path / "x.h5"
    _train_ae(runner, tiny_data, clf, out, "vqvae", "--steps", "6", "--stop-after", "3")
    res = runner.invoke(app, ["train-ae", "--config", str(TINY / "train-ae.yaml"), "--data", str(tiny_data),
                              "--arch", "vqvae", "--classifier", str(clf), "-o", str(out), "--resume",
                              "--set", "train.lr=0.5", "--quiet"])
    assert res.exit_code == 2 and "different config (train.lr: 0.001 then, 0.5 now)" in res.output, res.output


def test_config_difference_is_structural():
    """A resume may raise train.steps and nothing else: order and number spelling do not matter, a key present in one
    config only does, and so does a key named steps elsewhere; ignored keys (inputs compared by content) do not."""
    from mdcli.train.checkpoint import _first_difference

    saved = "seed: 0\ntrain:\n  steps: 10\n  lr: 0.001\nfit:\n  steps: 5\nloss:\n  classifier: a/clf.h5\n"
    assert _first_difference(saved, "train:\n  lr: 1.0e-3\n  steps: 99\nseed: 0\nfit:\n  steps: 5\nloss:\n  classifier: a/clf.h5\n") is None
    assert _first_difference(saved, saved.replace("fit:\n  steps: 5", "fit:\n  steps: 6")) == "fit.steps: 5 then, 6 now"
    assert _first_difference(saved, saved + "extra: 1\n") == "extra: (absent) then, 1 now"
    moved = saved.replace("a/clf.h5", "b/clf.h5")
    assert _first_difference(saved, moved) == "loss.classifier: a/clf.h5 then, b/clf.h5 now"
    assert _first_difference(saved, moved, ("loss.classifier",)) is None


def test_resume_refuses_other_inputs_but_not_a_moved_copy(runner, tiny_data, clf, tmp_path):
    """--resume continues only on the files the checkpoint started from (by content hash): otherwise the
    artifact's lineage would name data its weights were only partly trained on. A moved copy is the same input."""
    import shutil

    out = tmp_path / "x.h5"
    _train_ae(runner, tiny_data, clf, out, "vqvae", "--steps", "6", "--stop-after", "3")
    other = tmp_path / "other.h5"
    shutil.copy(tiny_data, other)
    with h5py.File(other, "a") as f:
        f["spectrograms"][0] = 1.0 - f["spectrograms"][0]
    res = runner.invoke(app, ["train-ae", "--config", str(TINY / "train-ae.yaml"), "--data", str(other), "--arch",
                              "vqvae", "--classifier", str(clf), "-o", str(out), "--steps", "6", "--resume", "--quiet"])
    assert res.exit_code == 2 and "trained on other inputs" in res.output and str(other) in res.output
    assert not out.exists() and checkpoint_path(out).exists()
    moved = tmp_path / "moved" / "data.h5"
    moved.parent.mkdir()
    shutil.copy(tiny_data, moved)
    moved_clf = tmp_path / "moved" / "clf.h5"
    shutil.copy(clf, moved_clf)  # the domain loss's classifier, too, is an input compared by content, not path
    _train_ae(runner, moved, moved_clf, out, "vqvae", "--steps", "6", "--resume")
    with h5py.File(out) as f:
        assert [p["path"] for p in json.loads(f.attrs["parents"])] == [str(moved), str(moved_clf)]
    _train_ae(runner, tiny_data, clf, out, "vqvae", "--steps", "6", "--stop-after", "3")
    other_clf = tmp_path / "other_clf.h5"
    shutil.copy(clf, other_clf)
    with h5py.File(other_clf, "a") as f:
        f.attrs["seed"] = 12345  # another file's content
    res = runner.invoke(app, ["train-ae", "--config", str(TINY / "train-ae.yaml"), "--data", str(tiny_data), "--arch",
                              "vqvae", "--classifier", str(other_clf), "-o", str(out), "--steps", "6", "--resume", "-q"])
    assert res.exit_code == 2 and "trained on other inputs" in res.output and str(other_clf) in res.output


def test_nan_loss_stops_with_a_clear_message(runner, tiny_data, clf, tmp_path):
    out = tmp_path / "nan.h5"
    res = runner.invoke(app, ["train-ae", "--config", str(TINY / "train-ae.yaml"), "--data", str(tiny_data),
                              "--arch", "vae", "--classifier", str(clf), "-o", str(out), "--quiet",
                              "--set", "loss.recon_weight=1e300"])  # finite, but the loss overflows to inf
    assert res.exit_code == 2 and "diverged" in res.output and "Traceback" not in res.output
    assert not out.exists()
    res = runner.invoke(app, ["train-ae", "--config", str(TINY / "train-ae.yaml"), "--data", str(tiny_data),
                              "--arch", "vae", "--classifier", str(clf), "-o", str(out), "--quiet",
                              "--set", "loss.recon_weight=.nan"])  # a NaN option is refused before training starts
    assert res.exit_code == 2 and "loss.recon_weight: expected a finite number" in res.output and not out.exists()


def test_encode_shapes_statistics_and_lineage(runner, tiny_data, clf, tmp_path):
    for arch in ("vae", "vqvae"):
        ae = tmp_path / f"{arch}.h5"
        _train_ae(runner, tiny_data, clf, ae, arch, "--steps", "4")
        lat = tmp_path / f"lat_{arch}.h5"
        res = runner.invoke(app, ["encode", "--ae", str(ae), "--data", str(tiny_data), "-o", str(lat), "--batch-size", "7", "-q"])
        assert res.exit_code == 0, res.output
        with h5py.File(lat) as f:
            z = f["latents"][()]
            assert f.attrs["kind"] == "latents" and z.shape == (40, 4, 8, 8)
            assert np.allclose(f.attrs["channel_mean"], z.mean((0, 2, 3)), atol=1e-5)
            assert np.allclose(f.attrs["channel_std"], z.std((0, 2, 3)), atol=1e-4)
            assert ("indices" in f) == (arch == "vqvae") and ("logvar" in f) == (arch == "vae")
            assert list(f["labels"][()]) == list(np.repeat(np.arange(5), 8))
            parents = json.loads(f.attrs["parents"])
            assert [p["sha256"] for p in parents] == [sha256_file(ae), sha256_file(tiny_data)]
        if arch == "vqvae":  # decode(latent) quantises: stored indices are the codes it uses
            from mdcli.models.load import load_autoencoder

            model, _, _ = load_autoencoder(ae)
            with torch.no_grad():
                q = model.quantizer(torch.from_numpy(z[:3]))
            with h5py.File(lat) as f:
                assert np.array_equal(q.indices.numpy(), f["indices"][:3])


def test_wrong_kind_is_refused(runner, tiny_data, clf, tmp_path):
    res = runner.invoke(app, ["encode", "--ae", str(tiny_data), "--data", str(tiny_data), "-o", str(tmp_path / "l.h5")])
    assert res.exit_code == 2 and "expected autoencoder" in res.output
    res = runner.invoke(app, ["train-ae", "--data", str(clf), "--perceptual", "none", "-o", str(tmp_path / "a.h5")])
    assert res.exit_code == 2 and "expected spectrograms" in res.output


def test_domain_perceptual_needs_a_classifier(runner, tiny_data, tmp_path):
    res = runner.invoke(app, ["train-ae", "--data", str(tiny_data), "-o", str(tmp_path / "a.h5")])
    assert res.exit_code == 2 and "train-classifier" in res.output


def test_plot_reconstructions(runner, tiny_data, clf, tmp_path):
    ae = tmp_path / "ae.h5"
    _train_ae(runner, tiny_data, clf, ae, "vqvae", "--steps", "3")
    png = tmp_path / "recon.png"
    res = runner.invoke(app, ["plot", str(tiny_data), "--ae", str(ae), "-o", str(png), "--per-class", "2"])
    assert res.exit_code == 0, res.output
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_resumed_run_moves_the_progress_bar_to_its_checkpoint(tiny_data, tmp_path):
    """The bar of a resumed run starts at the checkpoint's step; only the steps it runs count as work."""
    from mdcli.config import load_config
    from mdcli.stages import TrainClassifierConfig
    from mdcli.train.classifier import train_classifier

    cfg = load_config(TrainClassifierConfig, TINY / "train-classifier.yaml", None, {"train.steps": 10})
    out, calls = tmp_path / "c.h5", []
    assert train_classifier(cfg, tiny_data, out, stop_after=6) is None
    train_classifier(cfg, tiny_data, out, resume=True, progress=lambda n=1, completed=None: calls.append((n, completed)))
    assert calls[0] == (0, 6) and calls[1:] == [(1, None)] * 4 and out.exists()


def test_ema_of_weights_is_exact_and_is_what_the_artifact_holds(runner, tiny_data, clf, tmp_path):
    """train.ema_decay: parameters follow the bias-corrected average (the initial weights get no share),
    buffers are copied, and the saved autoencoder is that average (after one step: the raw weights)."""
    from mdcli.train.ema import EMA

    net = torch.nn.BatchNorm1d(3)
    ema = EMA(net, 0.9)
    for step, v in enumerate((2.0, 5.0)):
        with torch.no_grad():
            net.weight.fill_(v)
            net.running_mean.fill_(v)
        ema.update(net, step)
        if step == 0:
            assert torch.equal(ema.model.weight, torch.full((3,), 2.0))  # no share of the init
    assert torch.allclose(ema.model.weight, torch.full((3,), (0.9 * 0.1 * 2.0 + 0.1 * 5.0) / (1 - 0.9**2)))
    assert torch.equal(ema.model.running_mean, torch.full((3,), 5.0))

    saved = {}
    for decay, steps in (("0", "1"), ("0.9", "1"), ("0", "4"), ("0.9", "4")):
        out = tmp_path / f"ae_{decay}_{steps}.h5"
        _train_ae(runner, tiny_data, clf, out, "vqvae", "--steps", steps, "--set", f"train.ema_decay={decay}")
        saved[decay, steps] = _weights(out)
    same = lambda a, b: all(np.array_equal(a[k], b[k]) for k in a)  # noqa: E731
    assert same(saved["0.9", "1"], saved["0", "1"])  # one update of the average is the raw weights
    assert not same(saved["0.9", "4"], saved["0", "4"])  # four are not: the artifact holds the average
    bad = runner.invoke(app, ["train-ae", "--config", str(TINY / "train-ae.yaml"), "--data", str(tiny_data),
                              "--classifier", str(clf), "-o", str(tmp_path / "x.h5"), "--set", "train.ema_decay=1"])
    assert bad.exit_code == 2 and "train.ema_decay" in bad.output and "Traceback" not in bad.output
    assert not (tmp_path / "x.h5").exists()


@pytest.mark.slow
def test_bf16_precision_trains_on_a_cpu_and_is_recorded(runner, tiny_data, clf, tmp_path):
    """train.precision=bf16 autocasts on a CPU too: a different run from fp32 (auto on a CPU), recorded
    in the artifact's config; an unknown value is a one-line error naming the option."""
    import yaml

    runs = {}
    for precision in ("auto", "bf16"):
        out = tmp_path / f"ae_{precision}.h5"
        _train_ae(runner, tiny_data, clf, out, "vqgan", "--steps", "12", "--set", f"train.precision={precision}",
                  "--set", "disc.start=6", "--set", "disc.pretrain_steps=3")
        header, attrs, weights = load_model(out, "autoencoder")
        assert yaml.safe_load(header["config"])["train"]["precision"] == precision
        assert np.isfinite(attrs["metrics"]["psnr"]) and attrs["metrics"]["codebook_usage"] > 0
        runs[precision] = weights
    assert any(not np.array_equal(runs["auto"][k], runs["bf16"][k]) for k in runs["auto"])
    res = runner.invoke(app, ["train-ae", "--config", str(TINY / "train-ae.yaml"), "--data", str(tiny_data),
                              "--classifier", str(clf), "-o", str(tmp_path / "x.h5"), "--set", "train.precision=fp16"])
    assert res.exit_code == 2 and "train.precision" in res.output and "fp16" in res.output
    assert "Traceback" not in res.output and not (tmp_path / "x.h5").exists()


def test_temporal_spectrum_term_trains_and_is_logged(runner, tiny_data, clf, tmp_path):
    """loss.temporal_weight > 0 adds the temporal-spectrum term: logged per step as `temporal`, part of the
    run (other weights than without it); a negative weight is a one-line error naming the option."""
    runs = {}
    for w in ("0", "0.5"):
        out = tmp_path / f"ae_{w}.h5"
        _train_ae(runner, tiny_data, clf, out, "vqvae", "--steps", "3", "--set", "train.log_every=1",
                  "--set", f"loss.temporal_weight={w}")
        records = [json.loads(line) for line in log_path(out).read_text().splitlines() if '"rec"' in line]
        assert len(records) == 3 and all(("temporal" in r) == (w != "0") for r in records)
        runs[w] = _weights(out)
    assert all(r["temporal"] > 0 for r in records)
    assert any(not np.array_equal(runs["0"][k], runs["0.5"][k]) for k in runs["0"])
    res = runner.invoke(app, ["train-ae", "--config", str(TINY / "train-ae.yaml"), "--data", str(tiny_data),
                              "--classifier", str(clf), "-o", str(tmp_path / "x.h5"), "--set", "loss.temporal_weight=-1"])
    assert res.exit_code == 2 and "loss.temporal_weight" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "x.h5").exists()


def test_envelope_term_trains_and_is_logged(runner, tiny_data, clf, tmp_path):
    """loss.envelope_weight > 0 adds the envelope term (and loss.profile_weight the profile term): logged per step as
    `envelope` (`profile`), other weights than without them; a negative weight or a level outside (0, 1) is a
    one-line error naming the option, nothing written."""
    out = tmp_path / "ae_env.h5"
    _train_ae(runner, tiny_data, clf, out, "vqvae", "--steps", "3", "--set", "train.log_every=1",
              "--set", "loss.envelope_weight=0.5", "--set", "loss.profile_weight=1")
    records = [json.loads(line) for line in log_path(out).read_text().splitlines() if '"rec"' in line]
    assert len(records) == 3 and all(r["envelope"] > 0 and r["profile"] > 0 and "temporal" not in r for r in records)
    plain = tmp_path / "ae_plain.h5"
    _train_ae(runner, tiny_data, clf, plain, "vqvae", "--steps", "3")
    a, b = _weights(out), _weights(plain)
    assert any(not np.array_equal(a[k], b[k]) for k in a)
    for bad, key in (("loss.envelope_weight=-1", "loss.envelope_weight"), ("loss.envelope_level=1.5", "loss.envelope_level"),
                     ("loss.profile_weight=-1", "loss.profile_weight")):
        res = runner.invoke(app, ["train-ae", "--config", str(TINY / "train-ae.yaml"), "--data", str(tiny_data),
                                  "--classifier", str(clf), "-o", str(tmp_path / "x.h5"), "--set", bad])
        assert res.exit_code == 2 and key in res.output and "Traceback" not in res.output, res.output
        assert res.output.strip().count("\n") == 0 and not (tmp_path / "x.h5").exists()


def test_resume_of_a_finished_run_leaves_its_output_alone(runner, tiny_data, clf, tmp_path):
    """A job loop resubmitting with --resume after the run finished (its checkpoint removed) ends at once, exit 0,
    the output's bytes unchanged; before, it trained again from step 0 and replaced the output. Another config
    (here more steps) or other inputs still start afresh, as without a checkpoint."""
    out = tmp_path / "x.h5"
    _train_ae(runner, tiny_data, clf, out, "vqvae", "--steps", "4")
    assert not checkpoint_path(out).exists()
    before = out.read_bytes()
    res = _train_ae(runner, tiny_data, clf, out, "vqvae", "--steps", "4", "--resume")
    assert "already trained with this config and these inputs" in " ".join(res.output.split()), res.output
    assert out.read_bytes() == before
    _train_ae(runner, tiny_data, clf, out, "vqvae", "--steps", "5", "--resume")
    with h5py.File(out) as f:
        assert "steps: 5" in f.attrs["config"]
    data = tmp_path / "data.h5"  # the same path, other content: trained again
    data.write_bytes(tiny_data.read_bytes())
    _train_ae(runner, data, clf, out, "vqvae", "--steps", "5")
    with h5py.File(data, "a") as f:
        f["spectrograms"][0] = 1.0 - f["spectrograms"][0]
    before = out.read_bytes()
    res = _train_ae(runner, data, clf, out, "vqvae", "--steps", "5", "--resume")
    assert "already trained" not in res.output and out.read_bytes() != before


def test_classifier_ema_is_the_average_of_its_steps_and_resumes_exactly(tiny_data, tmp_path):
    """train-classifier honours train.ema_decay (it was read and ignored before): the artifact holds the
    bias-corrected average of the weights after every step, computed here from the raw weights of runs stopped
    after each step, and a run stopped and resumed saves the same average as an uninterrupted one."""
    from mdcli.config import load_config
    from mdcli.stages import TrainClassifierConfig
    from mdcli.train.classifier import train_classifier

    def cfg(decay):
        return load_config(TrainClassifierConfig, TINY / "train-classifier.yaml", None,
                           {"train.steps": 3, "train.ema_decay": decay, "train.checkpoint_every": 1})

    def weights(path):
        return {k: torch.from_numpy(np.asarray(v)) for k, v in load_model(path, "classifier")[2].items()}

    raw = []  # the raw weights after steps 1, 2, 3: runs of 1, 2, 3 steps without the average
    for n in (1, 2, 3):
        c = cfg(0.0)
        c.train.steps = n
        train_classifier(c, tiny_data, tmp_path / f"raw{n}.h5")
        raw.append(weights(tmp_path / f"raw{n}.h5"))
    d = 0.5
    train_classifier(cfg(d), tiny_data, tmp_path / "ema.h5")
    ema = weights(tmp_path / "ema.h5")
    norm = sum(d ** (2 - i) * (1 - d) for i in range(3))
    for k in ema:
        expected = sum(d ** (2 - i) * (1 - d) * raw[i][k].double() for i in range(3)) / norm
        assert torch.allclose(ema[k].double(), expected, atol=1e-6), k
    assert any(not torch.equal(ema[k], raw[2][k]) for k in ema)  # not the last weights

    assert train_classifier(cfg(d), tiny_data, tmp_path / "resumed.h5", stop_after=2) is None
    train_classifier(cfg(d), tiny_data, tmp_path / "resumed.h5", resume=True)
    resumed = weights(tmp_path / "resumed.h5")
    assert all(torch.equal(resumed[k], ema[k]) for k in ema)
