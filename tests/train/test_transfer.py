"""Issue 36 part 3, transfer: `train-ae --init` and `train-ldm --init` start a generator from a trained one (e.g.
pretrained on simulated walkers, fine-tuned on measured windows); another architecture, image size or latent shape
is one line and exit 2, writing nothing."""

from __future__ import annotations

import dataclasses
import json

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from mdcli.artifacts import Spectrograms, load_model, read_header, open_artifact, sha256_file
from mdcli.cli import app
from mdcli.train.checkpoint import checkpoint_path
from mdcli.train.logs import log_path
from tests.conftest import TINY

AE = ["train-ae", "--config", str(TINY / "train-ae.yaml"), "--arch", "vqvae", "--perceptual", "none", "-q"]
LDM = ["train-ldm", "--config", str(TINY / "train-ldm.yaml"), "-q"]


def _run(args):
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    return res


def _refused(args, *words):
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output and res.output.strip().count("\n") == 0, res.output
    for w in words:
        assert w in res.output, res.output


@pytest.fixture(scope="module")
def pre(tiny_data, tmp_path_factory):
    """A pretrained autoencoder and LDM (the 'simulated' generator), and 'measured' data: the same windows under
    other class names but one (walker), plus a 16x16 copy and latents of another shape."""
    d = tmp_path_factory.mktemp("transfer")
    p = {k: d / f"{k}.h5" for k in ("ae", "lat", "ldm", "meas", "meas_lat", "small", "ae2", "lat2")}
    _run([*AE, "--data", str(tiny_data), "-o", str(p["ae"])])
    _run(["encode", "--ae", str(p["ae"]), "--data", str(tiny_data), "-o", str(p["lat"]), "-q"])
    _run([*LDM, "--latents", str(p["lat"]), "-o", str(p["ldm"])])
    meas = Spectrograms.load(tiny_data)
    meas.class_names = ["walker", "person_a", "person_b", "person_c", "person_d"]
    meas.save(p["meas"], "measured\n", 0)
    _run(["encode", "--ae", str(p["ae"]), "--data", str(p["meas"]), "-o", str(p["meas_lat"]), "-q"])
    small = dataclasses.replace(meas, spectrograms=np.ascontiguousarray(meas.spectrograms[:, ::2, ::2]),
                                doppler_hz=meas.doppler_hz[::2], time_s=meas.time_s[::2])
    small.save(p["small"], "small\n", 0)
    _run([*AE, "--data", str(p["meas"]), "--steps", "2", "--set", "model.latent_channels=2", "-o", str(p["ae2"])])
    _run(["encode", "--ae", str(p["ae2"]), "--data", str(p["meas"]), "-o", str(p["lat2"]), "-q"])
    return p


def _first_loss(path, key):
    return json.loads(log_path(path).read_text().splitlines()[0])[key]


def test_ae_init_starts_from_the_pretrained_weights_and_is_in_the_lineage(pre, tmp_path):
    from mdcli.config import load_config
    from mdcli.models.load import build_autoencoder
    from mdcli.stages import TrainAEConfig
    from mdcli.train.transfer import load_autoencoder_init

    cfg = load_config(TrainAEConfig, TINY / "train-ae.yaml", None, {"arch": "vqvae", "loss.perceptual": "none"})
    ae = build_autoencoder(cfg)
    load_autoencoder_init(pre["ae"], cfg, (32, 32), ae)  # what train_autoencoder loads at step 0
    init = load_model(pre["ae"], "autoencoder")[2]
    state = ae.state_dict()
    assert state.keys() == init.keys() and all(np.array_equal(state[k].numpy(), init[k]) for k in init)
    # on the measured data, the first step's reconstruction error is well below a fresh autoencoder's
    ft, scratch = tmp_path / "ft.h5", tmp_path / "scratch.h5"
    for out, extra in ((ft, ["--init", str(pre["ae"])]), (scratch, [])):
        _run([*AE, "--data", str(pre["meas"]), "--steps", "2", "--set", "train.log_every=1", "-o", str(out), *extra])
    assert _first_loss(ft, "rec") < 0.8 * _first_loss(scratch, "rec")
    with open_artifact(ft) as f:
        parents = read_header(f)["parents"]
        assert f.attrs["init"] == str(pre["ae"])
    assert [p["path"] for p in parents] == [str(pre["meas"]), str(pre["ae"])]
    assert parents[-1]["sha256"] == sha256_file(pre["ae"])
    with h5py.File(scratch) as f:
        assert f.attrs["init"] == ""


def test_ldm_init_keeps_same_named_classes_and_starts_new_ones_as_the_null_class(pre, tmp_path):
    from mdcli.config import load_config
    from mdcli.stages import TrainLDMConfig
    from mdcli.train.ldm import load_latents
    from mdcli.train.transfer import ldm_init

    cfg = load_config(TrainLDMConfig, TINY / "train-ldm.yaml", None, {})
    lat = load_latents(pre["meas_lat"])
    lat.reader.close()
    w = ldm_init(pre["ldm"], cfg, lat.attrs, lat.shape[1:], lat.class_names)
    src = load_model(pre["ldm"], "ldm")[2]
    emb, old = w["class_emb.weight"], src["class_emb.weight"]
    assert emb.shape == old.shape  # 5 classes + null, as before
    assert np.array_equal(emb[0], old[0])  # walker: same name, its own row
    assert all(np.array_equal(emb[i], old[-1]) for i in range(1, 6))  # person_*: the null row; the null row kept
    assert all(np.array_equal(w[k], src[k]) for k in src if k != "class_emb.weight")
    # the first step's denoising loss is below a fresh UNet's (same seed: same batch, noise levels and noise)
    ft, scratch = tmp_path / "ft.h5", tmp_path / "scratch.h5"
    for out, extra in ((ft, ["--init", str(pre["ldm"])]), (scratch, [])):
        _run([*LDM, "--latents", str(pre["meas_lat"]), "--steps", "2", "--set", "train.log_every=1", "-o", str(out), *extra])
    assert _first_loss(ft, "loss") < 0.9 * _first_loss(scratch, "loss")
    with open_artifact(ft) as f:
        parents = read_header(f)["parents"]
        assert f.attrs["init"] == str(pre["ldm"])
        assert json.loads(f.attrs["class_names"]) == lat.class_names
        assert json.loads(f.attrs["channel_std"]) == lat.std.tolist()  # the new latents' own standardisation
    assert [p["sha256"] for p in parents] == [sha256_file(pre["meas_lat"]), sha256_file(pre["ldm"])]


def test_init_from_another_architecture_image_size_or_latent_shape_is_one_line(pre, tmp_path):
    bad = tmp_path / "bad.h5"
    ae, ldm, meas = ["--init", str(pre["ae"]), "-o", str(bad)], ["--init", str(pre["ldm"]), "-o", str(bad)], str(pre["meas"])
    _refused([*AE, "--data", meas, *ae, "--arch", "vae"], "a vqvae autoencoder", "--arch vqvae")
    _refused([*AE, "--data", str(pre["small"]), *ae], "32x32 images", "16x16")
    _refused([*AE, "--data", meas, *ae, "--set", "model.latent_channels=2"], "latents are 4x8x8", "2x8x8")
    _refused([*AE, "--data", meas, *ae, "--set", "model.channels=16"], "model.channels 8 vs 16")
    _refused([*AE, "--data", meas, *ae, "--set", "model.time_factor=1"], "latents are 4x8x8", "4x8x32", "model.time_factor 0 vs 1")
    _refused([*AE, "--data", meas, *ae, "--set", "vq.codebook_size=16"], "vq.codebook_size 32 vs 16")
    _refused([*AE, "--data", meas, "--init", str(pre["ldm"]), "-o", str(bad)], "expected autoencoder")
    _refused([*LDM, "--latents", str(pre["lat2"]), *ldm], "latents 4x8x8", "2x8x8")
    _refused([*LDM, "--latents", str(pre["meas_lat"]), *ldm, "--set", "unet.channels=8"], "unet.channels 16 vs 8")
    _refused([*LDM, "--latents", str(pre["meas_lat"]), *ldm, "--set", "diffusion.prediction=eps"], "diffusion.prediction")
    _refused([*LDM, "--latents", str(pre["meas_lat"]), *ldm, "--set", "kinematics=[period]"],
             "conditioned on kinematics []", "['period']")
    _refused([*LDM, "--latents", str(pre["meas_lat"]), "--init", str(pre["ae"]), "-o", str(bad)], "expected ldm")
    _refused([*LDM, "--latents", str(pre["meas_lat"]), "--init", str(tmp_path / "missing.h5"), "-o", str(bad)], "not found")
    assert not bad.exists() and not checkpoint_path(bad).exists()


@pytest.mark.parametrize("stage", ["ae", "ldm"])
def test_resume_with_init_is_exact_and_needs_the_same_init(pre, tmp_path, stage):
    """--resume continues from OUTPUT.ckpt (its weights replace the init's): bit-exact with the uninterrupted run.
    The init is a parent, so resuming without it, or from another file, is refused."""
    args = ([*AE, "--data", str(pre["meas"]), "--init", str(pre["ae"])] if stage == "ae"
            else [*LDM, "--latents", str(pre["meas_lat"]), "--init", str(pre["ldm"])])
    full, split = tmp_path / "full.h5", tmp_path / "split.h5"
    _run([*args, "--steps", "6", "-o", str(full)])
    _run([*args, "--steps", "6", "--stop-after", "3", "-o", str(split)])
    no_init = [a for a in args if a not in ("--init", str(pre[stage]))]
    _refused([*no_init, "--steps", "6", "--resume", "-o", str(split)], "other inputs")
    _run([*args, "--steps", "6", "--resume", "-o", str(split)])
    kind = "autoencoder" if stage == "ae" else "ldm"
    a, b = load_model(full, kind)[2], load_model(split, kind)[2]
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    init = load_model(pre[stage], kind)[2]
    assert any(not np.array_equal(a[k], init[k]) for k in a if a[k].dtype.kind == "f")  # and it trained
