"""examples/pipeline.sh (what `make demo` runs) end to end on the study's tiny profile.

The script is the chain a user copies; this runs it as they would, with the CPU branches the demo
takes on 2 cores: the two classifiers side by side and train-ae as two torchrun ranks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow  # examples/pipeline.sh end to end


def test_pipeline_script_runs_the_whole_chain(tmp_path):
    run = tmp_path / "demo"
    env = dict(os.environ, MDCLI=f"{sys.executable} -m mdcli", TORCHRUN=f"{sys.executable} -m torch.distributed.run", RANKS="2",
               COLUMNS="200")
    res = subprocess.run(["bash", str(ROOT / "examples/pipeline.sh"), "demo", str(ROOT / "configs/study/tiny.yaml")],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=500)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    for name in ("data.h5", "clf.h5", "judge.h5", "ae.h5", "latents.h5", "ldm.h5", "samples.h5", "generation.json",
                 "REPORT.md", "real_vs_generated.png"):
        assert (run / name).exists(), name
    # the judge trained beside the feature classifier is its own model (seed 1), and its summary is printed once
    with h5py.File(run / "clf.h5") as a, h5py.File(run / "judge.h5") as b:
        assert a.attrs["seed"] == 0 and b.attrs["seed"] == 1
    assert res.stdout.count("wrote demo/judge.h5: validation accuracy") == 1, res.stdout
    # only rank 0 of the two train-ae ranks reports
    assert res.stdout.count("validation metric") == 1, res.stdout
    assert json.loads((run / "generation.json").read_text())["n_generated"] > 0
