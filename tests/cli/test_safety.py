"""What a user can rely on when things go wrong: no command writes over its inputs, a full disk or a read-only
folder is one line with nothing left behind, a damaged or hostile file is one line, nonsense numbers are refused
before any work, and one output has one writer at a time.

Every refusal: exit code 2, exactly one line, no traceback, nothing at -o, the inputs' bytes unchanged.
"""

from __future__ import annotations

import errno
import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import h5py
import numpy as np
import pytest

from mdcli.cli import app
from mdcli.errors import MdcliError
from tests.conftest import TINY


def refused(res, *fragments):
    """Exit 2, one line, no traceback, every fragment in it."""
    text = res.output.strip()
    assert res.exit_code == 2, text
    assert "Traceback" not in text and res.exception is None or isinstance(res.exception, SystemExit), text
    assert len(text.splitlines()) == 1, text
    for frag in fragments:
        assert frag in text, text
    return text


def left_behind(folder: Path) -> list[str]:
    """Hidden temp and lock files in `folder`."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.fixture
def data(tiny_data, tmp_path) -> Path:
    """A private copy of the tiny dataset (tests may try to destroy it)."""
    p = tmp_path / "data.h5"
    p.write_bytes(tiny_data.read_bytes())
    return p


# -- 1. input = output -----------------------------------------------------------------------------------------------

def _commands(d: Path, tmp: Path) -> list[tuple[list[str], Path]]:
    """(command, the input it names as output) for every command that writes. The guard runs before any input is
    read, so any file stands in for a model here."""
    cfg = tmp / "conf.yaml"
    cfg.write_text((TINY / "simulate.yaml").read_text())
    q = ["-q"]
    return [
        (["simulate", "--config", str(cfg), "-o", str(cfg)], cfg),
        (["encode", "--ae", str(d), "--data", str(d), "-o", str(d)], d),
        (["split", str(d), "--train-out", str(d), "--test-out", str(tmp / "te.h5")], d),
        (["subset", str(d), "--per-class", "2", "-o", str(d)], d),
        (["export", str(d), "--format", "npz", "-o", str(d)], d),
        (["train-classifier", "--data", str(d), "-o", str(d), *q], d),
        (["train-ae", "--data", str(d), "-o", str(d), "--perceptual", "none", *q], d),
        (["train-ldm", "--latents", str(d), "-o", str(d), *q], d),
        (["sample", "--ldm", str(d), "-o", str(d), *q], d),
        (["merge", str(d), "-o", str(d)], d),
        (["diagnose", "diffusability", "--latents", str(d), "--keep", str(d), *q], d),
        (["augment", "--ldm", str(d), "--data", str(d), "-o", str(d), *q], d),
        (["diagnose", "gain", "--train", str(d), "--test", str(d), "--json-out", str(d), *q], d),
        (["import", str(tmp / "exp.npz"), "-o", str(tmp / "exp.npz")], tmp / "exp.npz"),
    ]


def test_no_command_writes_over_its_input(runner, data, tmp_path):
    res = runner.invoke(app, ["export", str(data), "--format", "npz", "-o", str(tmp_path / "exp.npz")])
    assert res.exit_code == 0, res.output
    for cmd, victim in _commands(data, tmp_path):
        before = victim.read_bytes()
        refused(runner.invoke(app, cmd), "never writes over its own inputs", str(victim))
        assert victim.read_bytes() == before, cmd
    assert not (tmp_path / "te.h5").exists()
    assert left_behind(tmp_path) == []


def test_links_and_distinct_outputs(runner, data, tmp_path):
    hard, soft = tmp_path / "hard.h5", tmp_path / "soft.png"
    os.link(data, hard)
    soft.symlink_to(data)
    before = data.read_bytes()
    refused(runner.invoke(app, ["subset", str(data), "--per-class", "2", "-o", str(hard)]), "never writes over")
    refused(runner.invoke(app, ["plot", str(data), "-o", str(soft)]), "never writes over")
    out = tmp_path / "both.h5"
    refused(runner.invoke(app, ["split", str(data), "--train-out", str(out), "--test-out", str(out)]),
            "--train-out and --test-out are the same file")
    assert data.read_bytes() == before and not out.exists()


def test_an_existing_file_of_another_kind_needs_force(runner, data, tmp_path):
    notes = tmp_path / "notes.h5"
    notes.write_text("my notes")
    cmd = ["simulate", "--config", str(TINY / "simulate.yaml"), "--targets", "walker", "--n", "2", "-q"]
    refused(runner.invoke(app, [*cmd, "-o", str(notes)]), "--output", "not an mdcli artifact", "--force")
    assert notes.read_text() == "my notes"
    other = tmp_path / "other.h5"  # a spectrograms artifact is not a classifier
    other.write_bytes(data.read_bytes())
    refused(runner.invoke(app, ["train-classifier", "--data", str(data), "-o", str(other), "-q"]),
            "is a 'spectrograms' artifact", "'classifier'")
    assert other.read_bytes() == data.read_bytes()
    res = runner.invoke(app, [*cmd, "-o", str(notes), "--force"])  # replaced on request
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, [*cmd, "-o", str(notes)])  # an artifact of the same kind is replaced as always
    assert res.exit_code == 0, res.output
    with h5py.File(notes) as f:
        assert f.attrs["kind"] == "spectrograms"
    assert left_behind(tmp_path) == []


# -- 2. damaged and crafted artifacts ----------------------------------------------------------------------------------

def _damage(src: Path, dst: Path, fn) -> Path:
    dst.write_bytes(src.read_bytes())
    with h5py.File(dst, "a") as f:
        fn(f)
    return dst


@pytest.mark.parametrize("what, damage, message", [
    ("parents", lambda f: f.attrs.__setitem__("parents", "{not json"), "'parents' is not JSON"),
    ("schema", lambda f: f.attrs.__setitem__("schema_version", "one"), "schema_version 'one' is not a number"),
    ("datasets", lambda f: [f.__delitem__(k) for k in list(f.keys())], "no /spectrograms"),
    ("label", lambda f: f["labels"].__setitem__(3, 99), "sample 3 has label 99"),
    ("nan", lambda f: f["spectrograms"].__setitem__((7, 1, 1), np.nan), "sample 7 holds NaN"),
])
def test_damaged_artifacts_are_one_line(runner, data, tmp_path, what, damage, message):
    bad = _damage(data, tmp_path / f"bad_{what}.h5", damage)
    out = tmp_path / "out.h5"
    for cmd in (["train-classifier", "--config", str(TINY / "train-classifier.yaml"), "--data", str(bad), "-o", str(out)],
                ["subset", str(bad), "--per-class", "2", "-o", str(out)],
                ["plot", str(bad), "-o", str(tmp_path / "g.png")]):
        refused(runner.invoke(app, cmd), str(bad), message)
        assert not out.exists() and not (tmp_path / "g.png").exists()
    assert left_behind(tmp_path) == []


def test_a_yaml_tag_in_a_stored_config_never_runs(runner, data, tmp_path):
    marker = tmp_path / "pwned"
    bad = tmp_path / "ae.h5"
    with h5py.File(bad, "w") as f:
        f.attrs.update({"kind": "autoencoder", "schema_version": 1, "parents": "[]", "seed": 0,
                        "config": f"arch: !!python/object/apply:os.system ['touch {marker}']\n"})
        f.create_group("weights")
    refused(runner.invoke(app, ["plot", str(data), "--ae", str(bad), "-o", str(tmp_path / "g.png")]),
            str(bad), "stored config is not plain YAML")
    assert not marker.exists() and not (tmp_path / "g.png").exists()


def test_nan_data_never_reaches_a_model(runner, data, tmp_path):
    bad = _damage(data, tmp_path / "nan.h5", lambda f: f["spectrograms"].__setitem__((0, 0, 0), np.inf))
    for cmd in (["train-ae", "--data", str(bad), "--perceptual", "none", "-o", str(tmp_path / "ae.h5"), "-q"],
                ["encode", "--ae", str(data), "--data", str(bad), "-o", str(tmp_path / "l.h5")]):
        refused(runner.invoke(app, cmd), str(bad), "sample 0 holds NaN or inf")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.h5", "nan.h5"]


# -- 3. hostile imports ------------------------------------------------------------------------------------------------

def _png_header(width: int, height: int) -> bytes:
    """A PNG that declares width x height 8-bit grey pixels and holds almost none of them."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def _class_folder(tmp_path: Path, name: str, payload: bytes) -> Path:
    root = tmp_path / f"in_{name.replace('.', '_')}"
    (root / "a").mkdir(parents=True)
    (root / "a" / name).write_bytes(payload)
    return root


def _huge_npy_header() -> bytes:
    from numpy.lib import format as npformat
    import io

    buf = io.BytesIO()
    npformat.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False, "shape": (10**7, 10**7)})
    return buf.getvalue() + b"\0" * 64


@pytest.mark.parametrize("name, payload, message", [
    ("bomb.png", _png_header(30000, 30000), "is larger than mdcli reads"),
    ("big.png", _png_header(9000, 9000), "is larger than mdcli reads"),  # under PIL's own limit, over mdcli's
    ("huge.npy", _huge_npy_header(), "the file is truncated or damaged"),
    ("empty.npy", b"", "empty or truncated .npy file"),
    ("garbage.mat", b"MATLAB 5.0 MAT-file" + os.urandom(200), "unreadable MATLAB file"),
])
def test_hostile_imports_are_one_line(runner, tmp_path, name, payload, message):
    src = _class_folder(tmp_path, name, payload)
    out = tmp_path / "imp.h5"
    refused(runner.invoke(app, ["import", str(src), "-o", str(out)]), name, message)
    assert not out.exists() and left_behind(tmp_path) == []


def test_export_files_without_axes_or_with_wrong_labels(runner, tmp_path):
    x = np.random.default_rng(0).random((4, 16, 16)).astype(np.float32)
    ok = tmp_path / "noaxes.npz"
    np.savez(ok, spectrograms=x, labels=np.array([0, 1, 0, 1]), class_names=np.array(["a", "b"]))
    res = runner.invoke(app, ["import", str(ok), "-o", str(tmp_path / "ok.h5")])
    assert res.exit_code == 0, res.output
    with h5py.File(tmp_path / "ok.h5") as f:  # no axes given: an uncalibrated 0..1 range, as for image folders
        assert not f["axes"].attrs["calibrated"] and f["axes/doppler_hz"][-1] == 1.0
    for name, labels, message in (("count", [0, 1, 0], "3 labels for 4 spectrograms"),
                                  ("range", [0, 1, 2, 1], "labels must be integers 0..1")):
        bad = tmp_path / f"{name}.npz"
        np.savez(bad, spectrograms=x, labels=np.array(labels), class_names=np.array(["a", "b"]))
        refused(runner.invoke(app, ["import", str(bad), "-o", str(tmp_path / "bad.h5")]), str(bad), message)
    assert not (tmp_path / "bad.h5").exists()


# -- 4. out-of-range numbers -------------------------------------------------------------------------------------------

class _Result:
    """What `mdcli ARGS` printed and its exit code, run in-process through the real entry point (`main`)."""

    def __init__(self, code: int, output: str):
        self.exit_code, self.output, self.exception = code, output, None


def main_result(argv: list[str], capsys) -> _Result:
    from mdcli.cli import main

    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(argv)
    out = capsys.readouterr()
    return _Result(e.value.code, out.out + out.err)


def test_nonsense_numbers_are_refused_before_any_work(runner, data, tmp_path, capsys):
    out = tmp_path / "o.h5"
    sim = ["simulate", "--config", str(TINY / "simulate.yaml"), "-o", str(out)]
    refused(runner.invoke(app, [*sim, "--set", "processing.image_size=[100000,100000]"]), "of memory", "only")
    refused(runner.invoke(app, [*sim, "--n", "1000000000000"]), "of memory", "--shard")
    refused(runner.invoke(app, [*sim, "--seed", "-1"]), "seed", "between 0 and")
    refused(runner.invoke(app, ["train-ae", "--data", str(data), "--set", "train.lr=nan", "-o", str(out)]),
            "train.lr", "finite")
    for opt in ("--cfg-scale", "--eta"):
        refused(runner.invoke(app, ["sample", "--ldm", str(data), opt, "nan", "-o", str(out)]), "finite")
    refused(main_result(["split", str(data), "--seed", "-1"], capsys), "--seed")
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n" for i in range(9)))
    refused(runner.invoke(app, ["simulate", "--config", str(bomb), "-o", str(out)]), str(bomb), "aliases")
    assert not out.exists()


# -- 5. full disk, read-only folder, killed runs -----------------------------------------------------------------------

def _no_space(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_is_one_line_and_leaves_nothing(runner, data, tmp_path, monkeypatch):
    import mdcli.artifacts

    monkeypatch.setattr(mdcli.artifacts, "write_file", _no_space)
    out = tmp_path / "sub.h5"
    refused(runner.invoke(app, ["subset", str(data), "--per-class", "2", "-o", str(out)]),
            f"writing {out}: no space left on device", "free", "needs about")
    assert not out.exists() and left_behind(tmp_path) == []
    from PIL import Image

    monkeypatch.setattr(Image.Image, "save", _no_space)  # a PNG export fills the disk: one line, no folder left
    pngs = tmp_path / "pngs"
    refused(runner.invoke(app, ["export", str(data), "--format", "png", "-o", str(pngs)]),
            f"writing {pngs}: no space left on device")
    assert not pngs.exists() and left_behind(tmp_path) == []


def test_a_full_disk_keeps_the_last_good_checkpoint(runner, data, tmp_path, monkeypatch):
    import mdcli.artifacts

    out = tmp_path / "clf.h5"
    cmd = ["train-classifier", "--config", str(TINY / "train-classifier.yaml"), "--data", str(data), "-o", str(out), "-q"]
    res = runner.invoke(app, [*cmd, "--stop-after", "20"])
    assert res.exit_code == 0, res.output
    ckpt = tmp_path / "clf.h5.ckpt"
    good = ckpt.read_bytes()
    monkeypatch.setattr(mdcli.artifacts, "write_file", _no_space)
    res = runner.invoke(app, [*cmd, "--resume"])  # fails at its next checkpoint, after "resumed from ..."
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert res.output.strip().splitlines()[-1].startswith(f"error: writing {ckpt}: no space left on device")
    assert ckpt.read_bytes() == good and not out.exists()
    assert left_behind(tmp_path) == []
    monkeypatch.undo()
    res = runner.invoke(app, [*cmd, "--resume"])  # space again: the run continues from its last good checkpoint
    assert res.exit_code == 0 and out.exists(), res.output


def test_a_read_only_folder_is_one_line(runner, data, tmp_path, monkeypatch):
    import tempfile

    def denied(*_a, **_k):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    out = tmp_path / "sub.h5"
    refused(runner.invoke(app, ["subset", str(data), "--per-class", "2", "-o", str(out)]),
            f"writing {out}", "is not writable")
    assert not out.exists()


def test_one_writer_per_output_and_stale_leftovers_are_cleared(runner, data, tmp_path):
    out = tmp_path / "sub.h5"
    lock = tmp_path / ".sub.h5.lock"
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        import socket

        lock.write_text(json.dumps({"pid": live.pid, "host": socket.gethostname(), "started": 0}))
        refused(runner.invoke(app, ["subset", str(data), "--per-class", "2", "-o", str(out)]),
                "another mdcli run", f"pid {live.pid}")
        assert not out.exists() and lock.exists()
    finally:
        live.kill()
        live.wait()
    # the writer was killed: its lock is stale and its temp file is garbage that the next run of this output removes
    (tmp_path / ".sub.h5.x1y2.tmp.h5").write_bytes(b"half a file")
    res = runner.invoke(app, ["subset", str(data), "--per-class", "2", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert out.exists() and left_behind(tmp_path) == []


# -- 6. one line, not a progress bar and then the error ---------------------------------------------------------------

def test_errors_found_during_work_are_still_one_line(runner, data, tmp_path):
    root = tmp_path / "imp"
    (root / "a").mkdir(parents=True)
    for i in range(3):
        np.save(root / "a" / f"x{i}.npy", np.random.default_rng(i).random((16, 16)))
    (root / "a" / "x3.npy").write_bytes(b"\x93NUMPY garbage")
    refused(runner.invoke(app, ["import", str(root), "-o", str(tmp_path / "i.h5")]), "x3.npy")
    out = tmp_path / "ae.h5"
    (tmp_path / "ae.h5.ckpt").write_text("not a checkpoint")
    refused(runner.invoke(app, ["train-ae", "--data", str(data), "--perceptual", "none", "-o", str(out), "--resume"]),
            "ae.h5.ckpt", "not an HDF5 file")
    refused(runner.invoke(app, ["train-ldm", "--latents", str(data), "-o", str(tmp_path / "l.h5")]),
            "is a 'spectrograms' artifact, expected latents")


def test_brackets_in_a_message_are_printed_as_written(runner, tmp_path):
    """rich markup must not eat a message's brackets ('expected [low, high]')."""
    res = runner.invoke(app, ["simulate", "--set", "scene.range_m=[50, 10]", "-o", str(tmp_path / "s.h5")])
    refused(res, "expected [low, high] with low <= high, got [50.0, 10.0]")


def test_sigterm_ends_a_run_as_ctrl_c_does(runner, data, tmp_path):
    """A scheduler's time limit (SIGTERM) checkpoints the trainer at a step boundary and removes the output's lock
    and temp files, exit 130; before, the process died at once and left a lock that a rerun on another host could
    not tell from a live run. The checkpoint it leaves resumes."""
    import signal
    import time

    out = tmp_path / "clf.h5"
    cmd = [sys.executable, "-m", "mdcli", "train-classifier", "--config", str(TINY / "train-classifier.yaml"),
           "--data", str(data), "-o", str(out), "--set", "train.steps=100000", "--set", "train.checkpoint_every=1", "-q"]
    run = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while not (tmp_path / "clf.h5.ckpt").exists() and time.time() < deadline and run.poll() is None:
            time.sleep(0.1)
        assert (tmp_path / "clf.h5.ckpt").exists(), run.communicate()
        run.send_signal(signal.SIGTERM)
        _, err = run.communicate(timeout=60)
    finally:
        run.kill()
    assert run.returncode == 130, err
    assert "interrupted: checkpoint" in err and "Traceback" not in err, err
    assert not out.exists() and left_behind(tmp_path) == []
    with h5py.File(tmp_path / "clf.h5.ckpt") as f:
        step = int(f.attrs["step"])
    assert 0 < step < 100000
    res = runner.invoke(app, cmd[3:] + ["--resume", "--stop-after", "1"])
    assert res.exit_code == 0 and f"resumed from {tmp_path / 'clf.h5.ckpt'} at step {step}" in " ".join(res.output.split()), res.output


def test_an_input_named_in_the_config_is_never_the_output(runner, data, tmp_path):
    """simulate's measured set (`like.file`, given by --set or in a YAML file) is an input like --like itself:
    an -o naming it is refused (same kind, so no --force would have stopped it), the file keeps its bytes."""
    before = data.read_bytes()
    cfg = tmp_path / "like.yaml"
    cfg.write_text(f"like:\n  file: {data}\n")
    for how in (["--set", f"like.file={data}"], ["--config", str(cfg)]):
        refused(runner.invoke(app, ["simulate", *how, "--targets", "walker", "--n", "2", "-o", str(data), "-q"]),
                f"--output {data} is the input like.file {data}")
    assert data.read_bytes() == before and left_behind(tmp_path) == []


def test_only_a_file_that_parses_is_json(tmp_path):
    """A '[' or '{' also starts TOML and INI files: a --json-out naming one needs --force, a JSON file is replaced."""
    from mdcli.outputs import check_outputs, existing_kind

    toml, js = tmp_path / "pyproject.toml", tmp_path / "report.json"
    toml.write_text('[build-system]\nrequires = ["setuptools"]\n')
    js.write_text('{"arms": []}')
    assert existing_kind(toml) == "a file that is not an mdcli artifact" and existing_kind(js) == "json"
    with pytest.raises(Exception, match=f"--json-out {toml}: exists and is a file that is not an mdcli artifact"):
        check_outputs({"--json-out": (toml, "json")}, {})
    check_outputs({"--json-out": (js, "json")}, {})


def test_split_writes_both_parts_or_neither(runner, data, tmp_path, monkeypatch):
    """The two parts of a split are one result: an earlier pair stays as it was when the new split fails (here: a
    set of one window per class holds nothing out), and no part of the new one is left behind."""
    from mdcli.artifacts import Spectrograms

    d = Spectrograms.load(data)
    one = tmp_path / "one.h5"
    d.select(np.array([np.flatnonzero(d.labels == c)[0] for c in range(len(d.class_names))])).save(one, "one each\n", 0)
    train, test = tmp_path / "train.h5", tmp_path / "test.h5"
    res = runner.invoke(app, ["split", str(data), "--train-out", str(train), "--test-out", str(test)])
    assert res.exit_code == 0, res.output
    before = train.read_bytes(), test.read_bytes()
    refused(runner.invoke(app, ["split", str(one), "--train-out", str(train), "--test-out", str(test)]),
            f"--test-out {test}: --test-fraction 0.3 holds out no window of {one}")
    assert (train.read_bytes(), test.read_bytes()) == before and left_behind(tmp_path) == []
    refused(runner.invoke(app, ["split", str(one), "--test-fraction", "0.9", "--train-out", str(train), "--test-out", str(test)]),
            f"--train-out {train}: --test-fraction 0.9 keeps no training window of {one}")
    real_save, calls = Spectrograms.save, []

    def full_disk_at_the_test_part(self, path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 2:
            raise MdcliError(f"writing {path}: no space left on device")
        return real_save(self, path, *args, **kwargs)

    monkeypatch.setattr(Spectrograms, "save", full_disk_at_the_test_part)
    res = runner.invoke(app, ["split", str(data), "--seed", "1", "--train-out", str(train), "--test-out", str(test)])
    assert res.exit_code == 2 and "no space left" in res.output, res.output
    assert (train.read_bytes(), test.read_bytes()) == before and left_behind(tmp_path) == []  # the seed-0 pair, whole


@pytest.mark.skipif(not os.path.exists(f"/proc/self/task/{os.getpid()}/children"),
                    reason="reads the pool's workers from /proc/PID/task/PID/children")
def test_sigterm_ends_a_simulation_on_worker_processes_cleanly(tmp_path):
    """SIGTERM to `simulate --workers 2` mid-run: exit 130, no output and no temp file, and no traceback. The forked
    workers had inherited the CLI's SIGTERM handler, so the pool's own terminate() made each busy worker print a
    KeyboardInterrupt traceback (and each idle one as it exited after a finished run)."""
    import signal
    import time

    out = tmp_path / "sim.h5"
    cmd = [sys.executable, "-m", "mdcli", "simulate", "--targets", "walker,drone", "--n", "3000", "--workers", "2",
           "-o", str(out), "-q"]
    run = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    children = Path(f"/proc/{run.pid}/task/{run.pid}/children")
    try:
        deadline = time.time() + 60
        while time.time() < deadline and run.poll() is None and len(children.read_text().split()) < 2:
            time.sleep(0.05)
        assert run.poll() is None and len(children.read_text().split()) == 2, run.communicate()
        time.sleep(1.0)  # the workers are inside their first chunks
        run.send_signal(signal.SIGTERM)
        _, err = run.communicate(timeout=60)
    finally:
        run.kill()
    assert run.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert not out.exists() and left_behind(tmp_path) == []
