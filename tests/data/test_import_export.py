"""Real inputs in, results out: colour-map inversion on measured gait images, round trips, bad inputs."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from mdcli.artifacts import Spectrograms
from mdcli.cli import app
from mdcli.data.importing import matlab_jet, recording_order, sequence_key
from mdcli.data.splits import split_indices
from mdcli.errors import MdcliError
from tests.conftest import ROOT

GAIT = ROOT.parent / "shared" / "data" / "gait"


def _ok(args):
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    return res


def _err(args, *fragments):
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    for f in fragments:
        assert f in res.output, res.output
    return res


@pytest.fixture
def gait_sample(tmp_path):
    """A handful of the measured gait JPEGs (3 per person), copied to a temp folder."""
    if not GAIT.is_dir():
        pytest.skip("../shared/data/gait is not present")
    out = tmp_path / "gait"
    for person in ("ID_1", "ID_2", "ID_3"):
        (out / person).mkdir(parents=True)
        for n in (3, 12, 7):
            src = next(GAIT.glob(f"{person}/*_Doppler{n}.jpg"))
            shutil.copy(src, out / person / src.name)
    return out


def test_sequence_key():
    assert sequence_key("ID1_case1_1_Doppler17.jpg") == 17 and sequence_key("walk.png") == -1


def test_recording_order_when_file_numbers_do_not_give_one():
    """Distinct last numbers are kept (the gait sample's window starts); tied ones (no digits, a take
    number last, two recordings numbered alike) become the rank in natural name order, so the blocked
    split still trains on the class and never interleaves two recordings."""
    names = ["a/p_Doppler3.jpg", "a/p_Doppler12.jpg", "a/p_Doppler7.jpg"]
    assert list(recording_order(names, np.zeros(3, int))) == [3, 12, 7]
    names = [f"b/rec{r}_img{i}.png" for i in range(1, 7) for r in (10, 2)]  # sorted as the import sorts them
    seq = recording_order(names, np.zeros(len(names), int))
    # natural order: rec2_img1..6 at 0..5, then rec10_img1..6 at 6..11
    assert [int(seq[names.index(f"b/rec2_img{i}.png")]) for i in range(1, 7)] == list(range(6))
    assert [int(seq[names.index(f"b/rec10_img{i}.png")]) for i in range(1, 7)] == list(range(6, 12))
    labels = np.zeros(20, int)
    tied = recording_order([f"c/walk_take2_{x}.png" for x in "abcdefghijklmnopqrst"], labels)
    assert sorted(tied) == list(range(20))
    tr, te = split_indices(labels, 0.2, 0, "blocked", tied, gap=3)
    assert len(te) == 4 and len(tr) > 0 and not set(tr) & set(te)
    # where no training window can be kept, the split says so instead of training on nothing
    with pytest.raises(MdcliError, match="class 0 keeps no training windows"):
        split_indices(labels, 0.2, 0, "blocked", np.full(20, -1), gap=3)


def test_16_bit_greyscale_png_keeps_its_depth(tmp_path):
    from PIL import Image

    src = tmp_path / "grey" / "a"
    src.mkdir(parents=True)
    ramp = np.tile(np.linspace(0, 65535, 32).round().astype(np.uint16)[:, None], (1, 16))
    Image.fromarray(ramp).save(src / "r_1.png")  # mode I;16
    assert Image.open(src / "r_1.png").mode.startswith("I")
    out = tmp_path / "grey.h5"
    _ok(["import", str(tmp_path / "grey"), "-o", str(out), "-q"])
    img = Spectrograms.load(out).spectrograms[0]
    # a ramp from 0 to 1 (rows flipped: row 0 is the top); saturated to 1 everywhere before
    assert np.allclose(img[:, 0], np.linspace(1, 0, 32), atol=1e-4)


def test_import_measured_gait_images(gait_sample, tmp_path):
    out = tmp_path / "gait.h5"
    res = _ok(["import", str(gait_sample), "--colormap", "jet", "-o", str(out)])
    assert "mean colour distance" in res.output
    d = Spectrograms.load(out)
    assert d.source == "imported" and d.class_names == ["ID_1", "ID_2", "ID_3"]
    assert d.spectrograms.shape == (9, 256, 256) and not d.axes_calibrated
    assert list(d.sequence) == [3, 7, 12] * 3  # ordered by the number in the name
    assert [s.rsplit("Doppler", 1)[1] for s in d.source_files[:3]] == ["3.jpg", "7.jpg", "12.jpg"]
    assert d.transform["mean_colour_distance"] < 0.08 and d.transform["flipped_rows"]
    assert np.allclose(d.spectrograms.reshape(9, -1).max(1), 1.0)
    # Dark-blue background -> near 0; torso line in the lower half (limb spikes reach upward).
    assert np.median(d.spectrograms[:, -20:, :]) < 0.1
    profile = d.spectrograms.mean((0, 2))
    assert 40 < int(profile.argmax()) < 128
    _ok(["plot", str(out), "-o", str(tmp_path / "g.png")])


def test_matlab_jet_is_matlabs_table():
    """MATLAB's jet(64) rows as MATLAB prints them; jet(256) starts at blue 33/64 (matplotlib's: 0.5)."""
    j64 = matlab_jet(64)
    assert np.allclose(j64[:2], [[0, 0, 0.5625], [0, 0, 0.625]]) and np.allclose(j64[-1], [0.5, 0, 0])
    assert np.allclose(j64[8], [0, 0.0625, 1]) and np.allclose(j64[24], [0.0625, 1, 0.9375])
    assert np.allclose(j64[40], [1, 0.9375, 0]) and np.allclose(j64[31:33], [[0.5, 1, 0.5], [0.5625, 1, 0.4375]])
    j256 = matlab_jet(256)
    assert j256.shape == (256, 3) and np.allclose(j256[0], [0, 0, 33 / 64]) and np.allclose(j256[-1], [0.5, 0, 0])
    assert ((j256 >= 0) & (j256 <= 1)).all() and len(np.unique(j256, axis=0)) == 256


def test_measured_images_drawn_with_matlabs_jet(gait_sample, tmp_path):
    """The gait JPEGs' background is MATLAB jet(256)'s first colour (0, 0, 131.5): inverted with matplotlib's jet it
    comes back at 1/255, with matlab-jet at 0, and matlab-jet is the closer map."""
    out = {}
    for cmap in ("jet", "matlab-jet"):
        out[cmap] = tmp_path / f"{cmap}.h5"
        _ok(["import", str(gait_sample), "--colormap", cmap, "-o", str(out[cmap]), "-q"])
    a, b = Spectrograms.load(out["jet"]), Spectrograms.load(out["matlab-jet"])
    mode = lambda x: np.bincount(np.round(x.ravel() * 255).astype(int)).argmax()  # noqa: E731
    assert mode(a.spectrograms) == 1 and mode(b.spectrograms) == 0
    assert (b.spectrograms == 0).mean() > 0.3 > (a.spectrograms == 0).mean()
    assert b.transform["mean_colour_distance"] < a.transform["mean_colour_distance"]
    assert b.transform["colormap"] == "matlab-jet"


def test_wrong_or_missing_colormap_is_refused(gait_sample, tmp_path):
    out = tmp_path / "bad.h5"
    _err(["import", str(gait_sample), "--colormap", "viridis", "-o", str(out)], "Doppler3.jpg", "colour map looks wrong")
    _err(["import", str(gait_sample), "-o", str(out)], "colour image", "--colormap")
    _err(["import", str(gait_sample), "--colormap", "parula", "-o", str(out)], "--colormap-file")
    assert not out.exists()


@pytest.mark.parametrize("fmt", ["npz", "mat"])
def test_export_import_round_trip_exact(tiny_data, tmp_path, fmt):
    f = tmp_path / f"x.{fmt}"
    _ok(["export", str(tiny_data), "--format", fmt, "-o", str(f)])
    back = tmp_path / "back.h5"
    _ok(["import", str(f), "-o", str(back), "-q"])
    a, b = Spectrograms.load(tiny_data), Spectrograms.load(back)
    assert np.array_equal(a.spectrograms, b.spectrograms) and np.array_equal(a.labels, b.labels)
    assert a.class_names == b.class_names and np.allclose(a.doppler_hz, b.doppler_hz) and b.axes_calibrated


@pytest.mark.parametrize("cmap,tol", [("gray", 0.5 / 255 + 1e-6), ("jet", 0.02), ("matlab-jet", 0.02)])
def test_png_round_trip(tiny_data, tmp_path, cmap, tol):
    folder = tmp_path / "png"
    _ok(["export", str(tiny_data), "--format", "png", "--colormap", cmap, "-o", str(folder)])
    back = tmp_path / "back.h5"
    args = ["import", str(folder), "-o", str(back), "-q"] + (["--colormap", cmap] if cmap != "gray" else [])
    _ok(args)
    a, b = Spectrograms.load(tiny_data), Spectrograms.load(back)
    for name in a.class_names:  # folders come back in alphabetical class order
        xa = a.spectrograms[a.labels == a.class_names.index(name)]
        xb = b.spectrograms[b.labels == b.class_names.index(name)]
        err = np.abs(xa - xb)
        assert (err.max() if cmap == "gray" else err.mean()) <= tol, (name, err.max(), err.mean())


def test_arrays_in_db_with_axes(tmp_path):
    src = tmp_path / "arr"
    for c in ("a", "b"):
        (src / c).mkdir(parents=True)
        for i in range(2):
            db = np.full((16, 20), -80.0)
            db[5 + i, :] = 0.0
            np.save(src / c / f"rec_{i}.npy", db)
    out = tmp_path / "arr.h5"
    _ok(["import", str(src), "--input-scale", "db", "--dynamic-range-db", "40", "--doppler-range", "-500,500",
         "--duration", "2", "-o", str(out), "-q"])
    d = Spectrograms.load(out)
    assert d.axes_calibrated and d.doppler_hz[0] == -500 and d.time_s[-1] == pytest.approx(1.95)
    assert d.spectrograms[0, 5].min() == 1.0 and d.spectrograms[0, 0].max() == 0.0  # -80 dB is below the 40 dB floor


def test_iq_import_matches_simulate(tmp_path):
    sim = tmp_path / "sim.h5"
    _ok(["simulate", "--targets", "walker", "--n", "2", "--save-iq", "-o", str(sim), "-q"])
    with h5py.File(sim) as f:
        iq = f["iq"][()]
    (tmp_path / "iq" / "walker").mkdir(parents=True)
    for i, s in enumerate(iq):
        np.save(tmp_path / "iq" / "walker" / f"r{i}.npy", s)
    out = tmp_path / "iq.h5"
    _ok(["import", str(tmp_path / "iq"), "--iq-rate", "4000", "-o", str(out), "-q"])
    a, b = Spectrograms.load(sim), Spectrograms.load(out)
    assert b.axes_calibrated and np.allclose(a.doppler_hz, b.doppler_hz) and np.allclose(a.time_s, b.time_s)
    assert np.abs(a.spectrograms - b.spectrograms).max() < 1e-4  # same STFT pipeline (IQ stored as complex64)


def test_bad_inputs(tmp_path):
    src = tmp_path / "bad"
    (src / "a").mkdir(parents=True)
    np.save(src / "a" / "nan.npy", np.full((8, 8), np.nan))
    _err(["import", str(src), "-o", str(tmp_path / "o.h5")], "nan.npy", "NaN")
    (src / "a" / "nan.npy").unlink()
    np.save(src / "a" / "obj.npy", np.array([{"x": 1}], dtype=object), allow_pickle=True)
    _err(["import", str(src), "-o", str(tmp_path / "o.h5")], "obj.npy", "pickled")
    (src / "a" / "obj.npy").unlink()
    (src / "a" / "text.npy").write_text("just text")
    _err(["import", str(src), "-o", str(tmp_path / "o.h5")], "text.npy", "not a plain numpy array file")
    (src / "a" / "text.npy").unlink()
    np.save(src / "a" / "one.npy", np.zeros((8, 8)))
    np.save(src / "a" / "two.npy", np.zeros((8, 10)))
    _err(["import", str(src), "-o", str(tmp_path / "o.h5")], "mixed shapes", "--image-size")
    _ok(["import", str(src), "--image-size", "8,8", "-o", str(tmp_path / "ok.h5"), "-q"])
    (src / "b").mkdir()
    _err(["import", str(src), "-o", str(tmp_path / "o.h5")], "class 'b'")
    (src / "b").rmdir()
    from scipy.io import savemat

    savemat(src / "a" / "m.mat", {"spec": np.zeros((8, 8))})
    _err(["import", str(src), "--image-size", "8,8", "--variable", "nope", "-o", str(tmp_path / "o.h5")], "m.mat", "'nope'")
    (src / "a" / "bad.png").write_bytes(b"not a png")
    _err(["import", str(src), "--image-size", "8,8", "--variable", "spec", "-o", str(tmp_path / "o.h5")], "bad.png", "unreadable")
    assert not (tmp_path / "o.h5").exists()


def test_chain_runs_on_imported_uncalibrated_data(gait_sample, tmp_path):
    """Every later stage works with imported data whose axes are unknown."""
    from tests.conftest import TINY

    data = tmp_path / "g.h5"
    _ok(["import", str(gait_sample), "--colormap", "jet", "--image-size", "32,32", "-o", str(data), "-q"])
    ae, lat, ldm, smp = (tmp_path / n for n in ("ae.h5", "lat.h5", "ldm.h5", "s.h5"))
    _ok(["train-ae", "--config", str(TINY / "train-ae.yaml"), "--data", str(data), "--arch", "vae",
         "--perceptual", "none", "--steps", "3", "--set", "train.batch_size=4", "-o", str(ae), "-q"])
    _ok(["encode", "--ae", str(ae), "--data", str(data), "-o", str(lat), "-q"])
    _ok(["train-ldm", "--config", str(TINY / "train-ldm.yaml"), "--latents", str(lat), "--steps", "3",
         "--set", "train.batch_size=4", "-o", str(ldm), "-q"])
    _ok(["sample", "--ldm", str(ldm), "-o", str(smp), "-n", "2", "--steps", "3", "-q", "--preview", str(tmp_path / "p.png")])
    s = Spectrograms.load(smp)
    assert s.class_names == ["ID_1", "ID_2", "ID_3"] and not s.axes_calibrated and len(s) == 6


def test_csv_labels_and_matlab_v73(tmp_path):
    """A CSV maps files to labels; MATLAB v7.3 (HDF5, column-major) arrays come back [Doppler, time]."""
    rng = np.random.default_rng(0)
    arrays = {f"f{i}.mat": rng.random((12, 20)) for i in range(3)}
    for name, arr in arrays.items():
        with h5py.File(tmp_path / name, "w") as f:
            f["spec"] = arr.T  # MATLAB stores column-major: h5py sees the transpose
    (tmp_path / "labels.csv").write_text("file,label\nf0.mat,slow\nf1.mat,fast\nf2.mat,slow\n")
    out = tmp_path / "csv.h5"
    _ok(["import", str(tmp_path), "--csv", str(tmp_path / "labels.csv"), "--variable", "spec", "-o", str(out), "-q"])
    d = Spectrograms.load(out)
    assert d.class_names == ["fast", "slow"] and list(d.labels) == [1, 0, 1]
    expected = arrays["f1.mat"] + (1 - arrays["f1.mat"].max())  # unit scale, re-referenced to the peak
    assert np.allclose(d.spectrograms[1], np.clip(expected, 0, 1), atol=1e-6)


def test_json_outputs_are_strict_on_uncalibrated_imports(tiny_data, tmp_path):
    """A unit-scale import has no dB range and no radar axes: `--json` gives null there, never NaN, which
    is not JSON (jq 1.6 and JSON.parse reject it). The report shows the undefined distance as a dash."""
    import json

    from mdcli.diagnose.report import _lsd
    from tests.conftest import TINY

    def strict(text):
        return json.loads(text, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c} in {text}"))

    folder, data, ae = tmp_path / "png", tmp_path / "u.h5", tmp_path / "ae.h5"
    _ok(["export", str(tiny_data), "--format", "png", "-o", str(folder)])
    _ok(["import", str(folder), "-o", str(data), "-q"])
    _ok(["train-ae", "--config", str(TINY / "train-ae.yaml"), "--data", str(data), "--arch", "vae", "--perceptual", "none",
         "--steps", "2", "--set", "train.batch_size=4", "-o", str(ae), "-q"])
    info = strict(_ok(["info", str(data), "--json"]).output)
    assert info["attrs"]["dynamic_range_db"] is None and info["attrs"]["carrier_hz"] is None, info
    r = strict(_ok(["diagnose", "recon", "--ae", str(ae), "--data", str(data), "--json"]).output)
    assert r["overall"]["lsd_db"] is None and r["overall"]["psnr"] > 0
    assert len(r["per_class"]) == 5 and all(v["lsd_db"] is None for v in r["per_class"].values())
    assert _lsd(r["overall"]) == "–" and _lsd({"lsd_db": float("nan")}) == "–" and _lsd({"lsd_db": 4.234}) == "4.23"
