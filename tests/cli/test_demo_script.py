"""examples/pipeline.sh (what `make demo` runs) end to end on the study's tiny profile.

The script is the chain a user copies; this runs it as they would, with the CPU branches the demo
takes on 2 cores: the two classifiers side by side and train-ae as two torchrun ranks.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow  # examples/pipeline.sh end to end


def _run_or_explain(cmd: list[str], cwd: Path, env: dict, limit_s: float) -> tuple[int, str, str]:
    """Run `cmd` in its own session with stdout / stderr in files and no stdin; -> (code, stdout, stderr).

    The script takes ~40 s on 2 cores. Past `limit_s` (below pytest's own timeout, which would kill the test
    without a word) the test fails with what was running: the session's processes and, through Python's
    faulthandler (PYTHONFAULTHANDLER, dumped on SIGABRT), every Python thread's stack, then the log tails."""
    out, err = cwd / "pipeline.out", cwd / "pipeline.err"
    env = dict(env, PYTHONFAULTHANDLER="1")
    with open(out, "w") as fo, open(err, "w") as fe:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=fo, stderr=fe, text=True,
                                start_new_session=True)
        try:
            code = proc.wait(timeout=limit_s)
        except subprocess.TimeoutExpired:
            ps = subprocess.run(["ps", "-o", "pid,ppid,etimes,stat,wchan:24,args", "-g", str(proc.pid)],
                                capture_output=True, text=True).stdout
            os.killpg(proc.pid, signal.SIGABRT)  # faulthandler prints each Python process's threads
            time.sleep(3)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            logs = "".join(f"--- {p.name}\n{p.read_text()[-3000:]}\n" for p in sorted(cwd.rglob("*.log")))
            pytest.fail(f"examples/pipeline.sh still running after {limit_s:.0f} s; its processes:\n{ps}\n"
                        f"stdout:\n{out.read_text()[-3000:]}\nstderr:\n{err.read_text()[-12000:]}\n{logs}")
    return code, out.read_text(), err.read_text()


def test_pipeline_script_runs_the_whole_chain(tmp_path):
    run = tmp_path / "demo"
    env = dict(os.environ, MDCLI=f"{sys.executable} -m mdcli", TORCHRUN=f"{sys.executable} -m torch.distributed.run", RANKS="2",
               COLUMNS="200")
    code, stdout, stderr = _run_or_explain(["bash", str(ROOT / "examples/pipeline.sh"), "demo", str(ROOT / "configs/study/tiny.yaml")],
                                           tmp_path, env, limit_s=280)
    assert code == 0, stdout[-2000:] + stderr[-3000:]
    for name in ("data.h5", "clf.h5", "judge.h5", "ae.h5", "latents.h5", "ldm.h5", "samples.h5", "generation.json",
                 "REPORT.md", "real_vs_generated.png"):
        assert (run / name).exists(), name
    # the judge trained beside the feature classifier is its own model (seed 1), and its summary is printed once
    with h5py.File(run / "clf.h5") as a, h5py.File(run / "judge.h5") as b:
        assert a.attrs["seed"] == 0 and b.attrs["seed"] == 1
    assert stdout.count("wrote demo/judge.h5: validation accuracy") == 1, stdout
    # only rank 0 of the two train-ae ranks reports
    assert stdout.count("validation metric") == 1, stdout
    assert json.loads((run / "generation.json").read_text())["n_generated"] > 0
