"""The command list of `mdcli -h` (its order is part of the interface) and `mdcli study` as a command."""

from __future__ import annotations

import re

import pytest

from tests.conftest import ROOT

COMMANDS = ["simulate", "info", "plot", "train-classifier", "classify", "train-ae", "encode", "train-ldm", "sample", "augment",
            "import", "export", "merge", "split", "subset", "report", "diagnose", "study"]


def _run(argv, capsys):
    from mdcli.cli import main

    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(argv)
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


def test_help_lists_every_command_in_the_pipeline_order(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    code, out, _ = _run(["-h"], capsys)
    assert code == 0
    panel = out[out.index("Commands"):]
    listed = re.findall(r"^│ (\S+) ", panel, flags=re.M)
    assert listed == COMMANDS


def test_study_is_a_command_and_refuses_bad_input_in_one_line(capsys, tmp_path):
    code, out, _ = _run(["study", "-h"], capsys)
    assert code == 0 and "--profile" in out and "--judges" in out
    out_dir = tmp_path / "study"
    code, _, err = _run(["study", "--profile", str(ROOT / "configs/study/tiny.yaml"), "--dataset", "nope",
                         "--out", str(out_dir)], capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error:") and "--dataset" in lines[0], err
    assert not out_dir.exists()


def test_python_m_mdcli_study_is_the_same_command(capsys, tmp_path):
    from mdcli.study import main

    with pytest.raises(SystemExit) as e:
        main(["--profile", str(ROOT / "configs/study/tiny.yaml"), "--dataset", "nope", "--out", str(tmp_path / "s")])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and "--dataset: unknown 'nope'" in err
