"""The command line as a user meets it: help, errors (one line, exit 2), dry runs, info, plot."""

from __future__ import annotations

import json
import subprocess
import sys

import h5py
import pytest

from mdcli import __version__
from mdcli.cli import app
from tests.conftest import ROOT, TINY


def test_version(runner):
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and __version__ in res.output


def test_python_dash_m_works():
    res = subprocess.run([sys.executable, "-m", "mdcli", "--version"], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0 and __version__ in res.stdout


@pytest.mark.parametrize("cmd", ["simulate", "info", "plot", "train-classifier", "train-ae", "encode", "train-ldm",
                                 "sample", "import", "export", "subset", "diagnose recon", "diagnose codebook"])
def test_every_command_has_help_with_examples(runner, cmd):
    res = runner.invoke(app, [*cmd.split(), "--help"])
    assert res.exit_code == 0 and "Examples" in res.output and f"mdcli {cmd}" in res.output


def test_simulate_info_plot_chain(runner, tiny_data, tmp_path):
    res = runner.invoke(app, ["info", str(tiny_data), "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    assert info["kind"] == "spectrograms" and info["classes"]["walker"] == 8
    assert info["datasets"]["spectrograms"]["shape"] == [40, 32, 32]
    assert info["attrs"]["source"] == "simulated" and info["parents"] == []
    assert "n_per_class: 8" in info["config"]
    res = runner.invoke(app, ["info", str(tiny_data)])
    assert res.exit_code == 0 and "spectrograms" in res.output and "walker: 8" in res.output
    png = tmp_path / "sub" / "grid.png"
    res = runner.invoke(app, ["plot", str(tiny_data), "-o", str(png), "--per-class", "3"])
    assert res.exit_code == 0, res.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in png.parent.iterdir()] == ["grid.png"]  # no temp files left


def test_dry_run_prints_config_and_writes_nothing(runner, tmp_path):
    out = tmp_path / "d.h5"
    res = runner.invoke(app, ["simulate", "--config", str(TINY / "simulate.yaml"), "--set", "radar.prf_hz=3000",
                              "--targets", "walker", "--dry-run", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "prf_hz: 3000.0" in res.output and "- walker" in res.output
    assert not out.exists()


def _one_line_error(res, *fragments):
    assert res.exit_code == 2, res.output
    text = res.output.strip()
    assert "Traceback" not in text
    for frag in fragments:
        assert frag in text, text


def test_unknown_target_lists_valid_ones(runner, tmp_path):
    out = tmp_path / "d.h5"
    res = runner.invoke(app, ["simulate", "--targets", "walker,tank", "-o", str(out)])
    _one_line_error(res, "tank", "walker, drone, helicopter, bird, vehicle")
    assert not out.exists()


def test_unknown_set_key(runner, tmp_path):
    res = runner.invoke(app, ["simulate", "--set", "radar.bogus=1", "-o", str(tmp_path / "d.h5")])
    _one_line_error(res, "radar.bogus", "valid keys", "radar.prf_hz")


def test_bad_artifacts(runner, tmp_path):
    junk = tmp_path / "junk.h5"
    junk.write_text("not hdf5")
    _one_line_error(runner.invoke(app, ["info", str(junk)]), "junk.h5", "not an HDF5 file")
    _one_line_error(runner.invoke(app, ["plot", str(tmp_path / "none.h5"), "-o", str(tmp_path / "g.png")]), "file not found")
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f.attrs["kind"] = "spectrograms"
        f.attrs["schema_version"] = 7
    _one_line_error(runner.invoke(app, ["plot", str(other), "-o", str(tmp_path / "g.png")]), "newer than this mdcli")
    assert not (tmp_path / "g.png").exists()


def test_malformed_inputs_and_outputs_are_one_line_errors(runner, tiny_data, tmp_path):
    """Found by probing the CLI: each of these used to end in a traceback (exit 1)."""
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(tiny_data.read_bytes()[:200])  # not text
    _one_line_error(runner.invoke(app, ["simulate", "--config", str(binary), "-o", str(tmp_path / "s.h5")]),
                    f"--config {binary}", "YAML text file")
    assert not (tmp_path / "s.h5").exists()
    hollow = tmp_path / "hollow.h5"  # the right kind, none of the contents
    with h5py.File(hollow, "w") as f:
        f.attrs["kind"] = "latents"
        f.attrs["schema_version"] = 1
    _one_line_error(runner.invoke(app, ["train-ldm", "--config", str(TINY / "train-ldm.yaml"), "--latents", str(hollow),
                                        "-o", str(tmp_path / "l.h5"), "-q"]), str(hollow), "not a complete latents artifact")
    assert not (tmp_path / "l.h5").exists() and not (tmp_path / "l.h5.ckpt").exists()
    folder, file = tmp_path / "adir", tmp_path / "afile"
    folder.mkdir()
    file.write_text("x")
    _one_line_error(runner.invoke(app, ["export", str(tiny_data), "-o", str(folder), "--format", "npz"]),
                    f"--output {folder}", "is a folder")
    _one_line_error(runner.invoke(app, ["export", str(tiny_data), "-o", str(file), "--format", "png"]),
                    f"--output {file}", "is a file")
    assert file.read_text() == "x" and not any(folder.iterdir())
    res = runner.invoke(app, ["diagnose", "codebook", "--ae", str(tiny_data), "--data", str(tiny_data), "--plot", str(file)])
    assert res.exit_code == 2 and "--plot" in res.output and "Traceback" not in res.output


def test_plot_requires_png(runner, tiny_data, tmp_path):
    _one_line_error(runner.invoke(app, ["plot", str(tiny_data), "-o", str(tmp_path / "g.jpg")]), "--output", ".png")


def test_real_process_error_is_one_line_exit_2(tmp_path):
    """Outside CliRunner: the installed entry point prints one line and no traceback."""
    res = subprocess.run([sys.executable, "-m", "mdcli", "simulate", "--targets", "ufo", "-o", str(tmp_path / "x.h5")],
                         capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 2
    assert "Traceback" not in res.stderr and "ufo" in res.stderr
    assert len([line for line in res.stderr.splitlines() if line.strip()]) == 1


@pytest.mark.parametrize("argv, names", [
    (["train-ae", "--steps", "abc"], ["mdcli train-ae", "'--steps'", "integer"]),
    (["simulate", "--targts", "walker"], ["mdcli simulate", "--targts", "--targets"]),
    (["diagnose", "nothing"], ["mdcli diagnose", "'nothing'"]),
])
def test_usage_errors_are_one_line_exit_2(capsys, tmp_path, argv, names):
    """Typer's own parsing errors (wrong type, unknown option or command) read like every other user error:
    one line on stderr naming the command and option, exit 2, no usage block or box; and nothing written."""
    from mdcli.cli import main

    with pytest.raises(SystemExit) as exc:
        main([*argv, "-o", str(tmp_path / "out.h5")])
    err = capsys.readouterr().err
    assert exc.value.code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    assert all(n in lines[0] for n in names) and "╭" not in err and "Usage:" not in err
    assert not any(tmp_path.iterdir())


def test_main_passes_exit_codes_through(capsys):
    """Without click's standalone mode the entry point must still exit 0 for --help / --version and 2 for a
    bare `mdcli` (its help), as the standalone app did."""
    from mdcli.cli import main

    for argv, code in ((["--version"], 0), (["simulate", "--help"], 0), ([], 2)):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == code, argv
    out = capsys.readouterr().out
    assert __version__ in out and "Usage" in out
