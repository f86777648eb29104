from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from mdcli import __version__
from mdcli.artifacts import SCHEMA_VERSIONS, Spectrograms, describe, open_artifact, parent_record
from mdcli.errors import ArtifactError


def _data(n=6, with_iq=False):
    rng = np.random.default_rng(0)
    return Spectrograms(
        spectrograms=rng.random((n, 8, 10), dtype=np.float32), labels=np.arange(n) % 2,
        class_names=["walker", "drone"], doppler_hz=np.linspace(-100, 100, 8), time_s=np.linspace(0, 1, 10),
        carrier_hz=24e9, prf_hz=200.0, dynamic_range_db=50.0, source="simulated",
        params={"speed_mps": rng.random(n)},
        iq=(rng.standard_normal((n, 32)) + 1j).astype(np.complex64) if with_iq else None,
        iq_rate_hz=200.0 if with_iq else None,
    )


def test_round_trip_and_header(tmp_path):
    parent = tmp_path / "p.h5"
    _data().save(parent, "a: 1\n", seed=1)
    path = tmp_path / "d.h5"
    d = _data(with_iq=True)
    d.save(path, "seed: 3\n", seed=3, parents=[parent_record(parent)])
    back = Spectrograms.load(path, with_iq=True)
    assert np.array_equal(back.spectrograms, d.spectrograms) and np.array_equal(back.labels, d.labels)
    assert back.class_names == ["walker", "drone"] and back.source == "simulated"
    assert np.array_equal(back.iq, d.iq) and back.iq_rate_hz == 200.0
    assert np.allclose(back.params["speed_mps"], d.params["speed_mps"])
    with h5py.File(path) as f:
        assert f.attrs["kind"] == "spectrograms" and f.attrs["schema_version"] == SCHEMA_VERSIONS["spectrograms"]
        assert f.attrs["mdcli_version"] == __version__ and f.attrs["seed"] == 3
        assert f.attrs["config"] == "seed: 3\n" and f.attrs["created_utc"].endswith("Z")
        parents = json.loads(f.attrs["parents"])
        assert parents[0]["path"].endswith("p.h5") and len(parents[0]["sha256"]) == 64
        assert f["spectrograms"].chunks == (1, 8, 10)  # one chunk per sample
        assert f["iq"].dtype == np.complex64
    info = describe(path)
    assert info["classes"] == {"walker": 3, "drone": 3} and info["datasets"]["spectrograms"]["shape"] == [6, 8, 10]


def test_failed_write_leaves_nothing(tmp_path):
    path = tmp_path / "d.h5"
    bad = _data()
    bad.params = {"x": object()}  # cannot be stored
    with pytest.raises(TypeError):
        bad.save(path, "", 0)
    assert list(tmp_path.iterdir()) == []


def test_failed_overwrite_keeps_old_file(tmp_path):
    path = tmp_path / "d.h5"
    _data().save(path, "", 0)
    before = path.read_bytes()
    bad = _data()
    bad.params = {"x": object()}
    with pytest.raises(TypeError):
        bad.save(path, "", 0)
    assert path.read_bytes() == before and len(list(tmp_path.iterdir())) == 1


def test_bad_files_give_clear_errors(tmp_path):
    with pytest.raises(ArtifactError, match="file not found"):
        Spectrograms.load(tmp_path / "missing.h5")
    txt = tmp_path / "x.h5"
    txt.write_text("hello")
    with pytest.raises(ArtifactError, match="not an HDF5 file"):
        Spectrograms.load(txt)
    good = tmp_path / "good.h5"
    _data().save(good, "", 0)
    trunc = tmp_path / "trunc.h5"
    trunc.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ArtifactError):
        Spectrograms.load(trunc)
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as f:
        f["x"] = 1
    with pytest.raises(ArtifactError, match="not an mdcli artifact"):
        Spectrograms.load(plain)
    newer = tmp_path / "newer.h5"
    _data().save(newer, "", 0)
    with h5py.File(newer, "a") as f:
        f.attrs["schema_version"] = 99
    with pytest.raises(ArtifactError, match="newer than this mdcli"):
        Spectrograms.load(newer)


def test_wrong_kind(tmp_path):
    path = tmp_path / "d.h5"
    _data().save(path, "", 0)
    with pytest.raises(ArtifactError, match="is a 'spectrograms' artifact, expected autoencoder"):
        with open_artifact(path, "autoencoder"):
            pass


@pytest.mark.parametrize("arch", ["vae", "vqvae"])
def test_latents_round_trip(tmp_path, arch):
    """mdcli/latents.py: what LatentsWriter writes in batches, load_latents reads back standardised per channel with
    the spectrograms' contract; read_indices gives a VQ model's codes and refuses a VAE's latents in one line."""
    from mdcli.errors import MdcliError
    from mdcli.latents import LatentsWriter, load_latents, read_indices

    src_path, ae_path = tmp_path / "d.h5", tmp_path / "ae.h5"
    _data().save(src_path, "{}", seed=0)
    ae_path.write_bytes(b"stand-in autoencoder")
    rng = np.random.default_rng(1)
    z = (3.0 + 2.0 * rng.standard_normal((6, 2, 4, 5))).astype(np.float32)
    codes = rng.integers(0, 8, (6, 4, 5))
    with open_artifact(src_path, "spectrograms") as src, \
            LatentsWriter(tmp_path / "lat.h5", ae_path, src_path, "batch_size: 4\n", 6, [2, 4, 5], arch) as out:
        for i in (0, 4):  # two batches: 4 + 2 rows
            vq = arch == "vqvae"
            out.write(z[i : i + 4], codes[i : i + 4] if vq else None, None if vq else np.zeros_like(z[i : i + 4]))
        stats = out.finish(src)
    assert np.allclose(stats["channel_mean"], z.mean((0, 2, 3)), atol=1e-5)
    lat = load_latents(tmp_path / "lat.h5")
    assert lat.shape == (6, 2, 4, 5) and lat.class_names == ["walker", "drone"] and list(lat.labels) == [0, 1] * 3
    assert lat.attrs["image_shape"] == [8, 10] and lat.attrs["prf_hz"] == 200.0 and lat.attrs["arch"] == arch
    assert lat.attrs["ae_parent"]["path"] == str(ae_path)
    zs = lat.get(np.arange(6)).numpy()
    assert np.allclose(zs.mean((0, 2, 3)), 0, atol=1e-4) and np.allclose(zs.std((0, 2, 3)), 1, atol=1e-3)
    lat.reader.close()
    if arch == "vqvae":
        idx, labels, names, ae = read_indices(tmp_path / "lat.h5")
        assert np.array_equal(idx, codes) and names == ["walker", "drone"] and Path(ae["path"]) == ae_path
    else:
        with pytest.raises(MdcliError, match="holds no code indices"):
            read_indices(tmp_path / "lat.h5")


def test_a_parent_recorded_from_another_folder_is_found_beside_its_child(tmp_path, monkeypatch):
    """A lineage path relative to the folder a command ran in (runs/x/a.h5) is gone when a later command runs
    elsewhere; the file of that name beside the child is taken if, and only if, its content hash is the recorded
    one (parent_of for the lineage walks, find_autoencoder for `sample`)."""
    from mdcli.artifacts import locate_parent, parent_of
    from mdcli.errors import MdcliError
    from mdcli.sample import find_autoencoder

    run = tmp_path / "runs" / "x"
    run.mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    _data().save(Path("runs/x/a.h5"), "{}", 0)
    child = run / "b.h5"
    _data(4).save(child, "{}", 0, parents=[parent_record("runs/x/a.h5")])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert not Path("runs/x/a.h5").exists()
    assert parent_of(child, "spectrograms") == run / "a.h5"
    rec = {"path": "runs/x/a.h5", "sha256": parent_record(run / "a.h5")["sha256"]}
    assert find_autoencoder({"ae_parent": rec}, None, run / "ldm.h5") == run / "a.h5"
    # another file of that name beside the child is not the parent
    _data(3).save(run / "a.h5", "{}", 0)
    assert locate_parent(rec, child) == Path("runs/x/a.h5") and parent_of(child, "spectrograms") is None
    with pytest.raises(MdcliError, match="is missing; pass --ae"):
        find_autoencoder({"ae_parent": rec}, None, run / "ldm.h5")
