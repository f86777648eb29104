"""The whole chain on the tiny configs: simulate -> classifier -> ae -> encode -> ldm -> sample."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from mdcli.artifacts import Spectrograms, load_model, sha256_file
from mdcli.cli import app
from tests.conftest import TINY

pytestmark = pytest.mark.slow  # the module's chain trains a classifier, an autoencoder and an LDM


def _ok(runner, args):
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    return res


@pytest.fixture(scope="module")
def chain(tiny_data, tmp_path_factory):
    runner = CliRunner()
    d = tmp_path_factory.mktemp("chain")
    clf, ae, lat, ldm = d / "clf.h5", d / "ae.h5", d / "lat.h5", d / "ldm.h5"
    _ok(runner, ["train-classifier", "--config", str(TINY / "train-classifier.yaml"), "--data", str(tiny_data), "-o", str(clf), "-q"])
    _ok(runner, ["train-ae", "--config", str(TINY / "train-ae.yaml"), "--data", str(tiny_data), "--arch", "vqvae",
                 "--classifier", str(clf), "-o", str(ae), "--steps", "10", "-q"])
    _ok(runner, ["encode", "--ae", str(ae), "--data", str(tiny_data), "-o", str(lat), "-q"])
    _ok(runner, ["train-ldm", "--config", str(TINY / "train-ldm.yaml"), "--latents", str(lat), "-o", str(ldm), "-q"])
    return {"dir": d, "data": tiny_data, "clf": clf, "ae": ae, "lat": lat, "ldm": ldm}


def test_ldm_artifact_and_lineage(chain):
    header, attrs, weights = load_model(chain["ldm"], "ldm")
    assert header["parents"][0]["sha256"] == sha256_file(chain["lat"])
    assert attrs["ae_parent"]["sha256"] == sha256_file(chain["ae"])  # lineage reaches the autoencoder
    assert attrs["latent_shape"] == [4, 8, 8] and attrs["n_classes"] == 5
    assert any(k.startswith("val_loss_t") for k in attrs["metrics"])
    assert len(attrs["doppler_hz"]) == 32 and attrs["class_names"][0] == "walker"


@pytest.mark.parametrize("sampler,extra", [("dpmpp-2m", []), ("ddim", ["--eta", "0.5"]), ("ddpm", []), ("dpmpp-2m-sde", [])])
def test_sample_contract_and_determinism(chain, sampler, extra):
    runner = CliRunner()
    out1, out2 = chain["dir"] / f"s1_{sampler}.h5", chain["dir"] / f"s2_{sampler}.h5"
    png = chain["dir"] / f"p_{sampler}.png"
    base = ["sample", "--config", str(TINY / "sample.yaml"), "--ldm", str(chain["ldm"]), "--sampler", sampler,
            "--steps", "8", "--seed", "3", "-q", *extra]
    _ok(runner, [*base, "-o", str(out1), "--preview", str(png)])
    _ok(runner, [*base, "-o", str(out2)])
    a, b = Spectrograms.load(out1), Spectrograms.load(out2)
    assert np.array_equal(a.spectrograms, b.spectrograms)  # same seed, same samples
    real = Spectrograms.load(chain["data"])
    assert a.source == "generated" and a.class_names == real.class_names
    assert a.spectrograms.shape == (20, 32, 32) and list(a.labels) == list(np.repeat(np.arange(5), 4))
    assert a.spectrograms.min() >= 0 and np.allclose(a.spectrograms.reshape(20, -1).max(1), 1.0)
    assert np.array_equal(a.doppler_hz, real.doppler_hz) and np.array_equal(a.time_s, real.time_s)
    assert a.prf_hz == real.prf_hz and a.carrier_hz == real.carrier_hz
    with h5py.File(out1) as f:
        parents = json.loads(f.attrs["parents"])
        assert [p["sha256"] for p in parents] == [sha256_file(chain["ldm"]), sha256_file(chain["ae"])]
        assert "sampler: " + sampler in f.attrs["config"]
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_sample_other_seed_and_classes(chain):
    runner = CliRunner()
    out = chain["dir"] / "sub.h5"
    _ok(runner, ["sample", "--ldm", str(chain["ldm"]), "-o", str(out), "--classes", "drone,bird", "-n", "3", "--steps", "5", "-q"])
    s = Spectrograms.load(out)
    assert sorted(set(s.labels.tolist())) == [1, 3] and len(s) == 6
    res = runner.invoke(app, ["sample", "--ldm", str(chain["ldm"]), "-o", str(out), "--classes", "ufo"])
    assert res.exit_code == 2 and "ufo" in res.output and "walker" in res.output


def test_sample_finds_ae_by_lineage_or_asks_for_it(chain, tmp_path):
    runner = CliRunner()
    moved = tmp_path / "ae_moved.h5"
    shutil.move(chain["ae"], moved)
    try:
        res = runner.invoke(app, ["sample", "--ldm", str(chain["ldm"]), "-o", str(tmp_path / "s.h5"), "-n", "1", "--steps", "3"])
        assert res.exit_code == 2 and "--ae" in res.output and not (tmp_path / "s.h5").exists()
        _ok(runner, ["sample", "--ldm", str(chain["ldm"]), "--ae", str(moved), "-o", str(tmp_path / "s.h5"), "-n", "1", "--steps", "3", "-q"])
    finally:
        shutil.move(moved, chain["ae"])


def test_ldm_resume_is_exact(chain, tmp_path):
    runner = CliRunner()
    full, split = tmp_path / "full.h5", tmp_path / "split.h5"
    base = ["train-ldm", "--config", str(TINY / "train-ldm.yaml"), "--latents", str(chain["lat"]), "--steps", "12", "-q",
            "--set", "diffusion.prediction=eps", "--set", "diffusion.schedule=cosine"]
    _ok(runner, [*base, "-o", str(full)])
    _ok(runner, [*base, "-o", str(split), "--stop-after", "5"])
    _ok(runner, [*base, "-o", str(split), "--resume"])
    a, b = load_model(full, "ldm")[2], load_model(split, "ldm")[2]
    for k in a:
        assert np.array_equal(a[k], b[k]), k


def test_ldm_bf16_precision_on_a_cpu_resumes_exactly(chain, tmp_path, monkeypatch):
    """train.precision=bf16 on a CPU: another run than fp32, recorded in the artifact, still exactly resumable.
    bf16-native is the bf16 run where the CPU has bf16 instructions and the fp32 run where it has not."""
    runner = CliRunner()
    base = ["train-ldm", "--config", str(TINY / "train-ldm.yaml"), "--latents", str(chain["lat"]), "--steps", "10", "-q"]
    fp32, full, split = tmp_path / "fp32.h5", tmp_path / "full.h5", tmp_path / "split.h5"
    _ok(runner, [*base, "-o", str(fp32)])
    bf16 = [*base, "--set", "train.precision=bf16"]
    _ok(runner, [*bf16, "-o", str(full)])
    _ok(runner, [*bf16, "-o", str(split), "--stop-after", "4"])
    _ok(runner, [*bf16, "-o", str(split), "--resume"])
    header, attrs, a = load_model(full, "ldm")
    assert yaml.safe_load(header["config"])["train"]["precision"] == "bf16"
    assert all(np.isfinite(v) for v in attrs["metrics"].values())
    b, c = load_model(split, "ldm")[2], load_model(fp32, "ldm")[2]
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert any(not np.array_equal(a[k], c[k]) for k in a)
    assert attrs["precision_used"] == "bf16" and load_model(fp32, "ldm")[1]["precision_used"] == "fp32"
    from mdcli.train import precision

    for native, same_as in ((True, a), (False, c)):
        monkeypatch.setattr(precision, "native_bf16", lambda device, native=native: native)
        out = tmp_path / f"native_{native}.h5"
        _ok(runner, [*base, "--set", "train.precision=bf16-native", "-o", str(out)])
        _, attrs_n, n = load_model(out, "ldm")
        assert attrs_n["precision_used"] == ("bf16" if native else "fp32")
        assert all(np.array_equal(n[k], same_as[k]) for k in n)


def test_diagnose_codebook_is_batch_size_independent(chain, tmp_path):
    runner = CliRunner()
    outs = []
    for bs in ("3", "64"):
        res = _ok(runner, ["diagnose", "codebook", "--ae", str(chain["ae"]), "--data", str(chain["data"]), "--batch-size", bs, "--json"])
        outs.append(json.loads(res.output))
    assert outs[0] == outs[1]
    r = outs[0]
    assert r["n_images"] == 40 and r["n_codes_drawn"] == 40 * 8 * 8 and r["codebook_size"] == 32
    assert 0 < r["codebook_usage"] <= 1 and r["dead_codes"] == round(32 * (1 - r["codebook_usage"]))
    assert 0 < r["top10pct_mass"] <= 1 and set(r["per_class"]) == {"walker", "drone", "helicopter", "bird", "vehicle"}
    res = _ok(runner, ["diagnose", "codebook", "--latents", str(chain["lat"]), "--json", "--plot", str(tmp_path / "figs")])
    from_latents = json.loads(res.output)
    assert from_latents["perplexity"] == pytest.approx(r["perplexity"])  # stored indices = re-encoded ones
    assert (tmp_path / "figs" / "codebook_usage.png").exists()
    # the latents' autoencoder is the one they were encoded with: another file under its name, or --data beside
    # --latents, is one line
    own = tmp_path / "own"
    own.mkdir()
    (own / "ae.h5").write_bytes(chain["ae"].read_bytes())
    _ok(runner, ["encode", "--ae", str(own / "ae.h5"), "--data", str(chain["data"]), "-o", str(own / "lat.h5"), "-q"])
    with h5py.File(own / "ae.h5", "a") as f:
        f.attrs["created_utc"] = "2000-01-01T00:00:00Z"
    for extra, msg in (([], "has changed since the latents were encoded"), (["--data", str(chain["data"])], "not both")):
        res = runner.invoke(app, ["diagnose", "codebook", "--latents", str(own / "lat.h5"), "--json", *extra])
        assert res.exit_code == 2 and msg in res.output and "Traceback" not in res.output, res.output


def test_diagnose_recon(chain, tmp_path):
    runner = CliRunner()
    res = _ok(runner, ["diagnose", "recon", "--ae", str(chain["ae"]), "--data", str(chain["data"]), "--classifier", str(chain["clf"]),
                       "--json", "--plot", str(tmp_path)])
    r = json.loads(res.output)
    assert set(r["overall"]) == {"psnr", "ssim", "l1", "lsd_db", "perceptual", "fmd"} and r["n"] == 40
    # reconstruction FMD: the classifier's features of decode(encode(x)) against those of x, recomputed here
    from mdcli.data.batches import from_model, load_images
    from mdcli.diagnose.stats import feature_frechet
    from mdcli.models.load import load_autoencoder, load_classifier

    ae, judge = load_autoencoder(chain["ae"])[0], load_classifier(chain["clf"])[0]
    x = load_images(chain["data"])[0]
    with torch.no_grad():
        rec = from_model(ae.decode(ae.encode(x).latent)) * 2 - 1
        f_x, f_rec = judge.embed(x).double().numpy(), judge.embed(rec).double().numpy()
    assert r["overall"]["fmd"] == pytest.approx(feature_frechet(f_x, f_rec), rel=1e-4) and r["overall"]["fmd"] > 0
    assert all("fmd" in v for v in r["per_class"].values())
    # the [0, 1] scale spans dynamic_range_db: the log-spectral distance is RMS error x 50 dB
    assert r["overall"]["lsd_db"] > 0 and r["overall"]["psnr"] > 0
    assert np.mean([v["psnr"] for v in r["per_class"].values()]) == pytest.approx(r["overall"]["psnr"], rel=1e-6)
    assert (tmp_path / "recon_per_class.png").exists()
    res = runner.invoke(app, ["diagnose", "codebook", "--ae", str(chain["ae"])])
    assert res.exit_code == 2 and "--latents" in res.output


def test_sample_and_plot_refuse_what_would_destroy_or_mislead(chain, tmp_path):
    """The autoencoder found through the lineage is an input too; an autoencoder of another image size is refused
    by `sample --ae` and `plot --ae` as by `encode`; a sample count that cannot fit in memory is refused up front."""
    runner = CliRunner()
    ae_bytes = chain["ae"].read_bytes()
    res = runner.invoke(app, ["sample", "--ldm", str(chain["ldm"]), "-o", str(chain["ae"]), "-n", "1", "--steps", "2", "-q"])
    assert res.exit_code == 2 and "is an 'autoencoder' artifact" in res.output, res.output  # another kind: refused
    res = runner.invoke(app, ["sample", "--ldm", str(chain["ldm"]), "-o", str(chain["ae"]), "-n", "1", "--steps", "2", "-q",
                              "--force"])  # and even with --force: it is the LDM's own autoencoder
    assert res.exit_code == 2 and "never writes over its own inputs" in res.output, res.output
    assert chain["ae"].read_bytes() == ae_bytes
    other = tmp_path / "ae_other_size.h5"
    other.write_bytes(ae_bytes)
    with h5py.File(other, "a") as f:
        f.attrs["image_shape"] = json.dumps([64, 64])
    res = runner.invoke(app, ["sample", "--ldm", str(chain["ldm"]), "--ae", str(other), "-o", str(tmp_path / "s.h5"),
                              "-n", "1", "--steps", "2", "-q"])
    assert res.exit_code == 2 and "64x64 images" in res.output and not (tmp_path / "s.h5").exists(), res.output
    res = runner.invoke(app, ["plot", str(chain["data"]), "--ae", str(other), "-o", str(tmp_path / "g.png")])
    assert res.exit_code == 2 and "trained on 64x64 images" in res.output and not (tmp_path / "g.png").exists(), res.output
    res = runner.invoke(app, ["sample", "--ldm", str(chain["ldm"]), "-n", "1000000000000", "-o", str(tmp_path / "s.h5")])
    assert res.exit_code == 2 and "of memory" in res.output and len(res.output.strip().splitlines()) == 1, res.output
