"""Worker of `diagnose generation --set jobs=N` and `diagnose gain --jobs N`: runs some of its classifier fits in a separate process.

Reads one JSON object on stdin (the samples / real / train paths, class names, fit config, batch size
and a list of fit tasks from `mdcli.diagnose.generation.fit_tasks`), writes each task's held-out accuracy on a
line of stdout as its fit ends. With `"kind": "gain"` it runs `diagnose gain` tasks instead
(`mdcli.diagnose.gain.run_spec`: one JSON result a line). Each fit is seeded and self-contained, so a task gives the same accuracy here as
in the parent at the same torch thread count (OMP_NUM_THREADS, set by the parent).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from mdcli.allocator import keep_freed_memory
from mdcli.artifacts import Spectrograms
from mdcli.config import from_dict
from mdcli.diagnose.generation import FitData, fit_accuracy
from mdcli.train.classifier import FitConfig


def main() -> None:
    keep_freed_memory()
    spec = json.loads(sys.stdin.read())
    emit = lambda i, result: print(json.dumps(result), flush=True)  # noqa: E731  one line per fit, as it ends
    if spec.get("kind") == "gain":
        from mdcli.diagnose.gain import run_spec

        run_spec(spec, emit)
        return
    fit = from_dict(FitConfig, spec["fit"])
    data = FitData.build(Spectrograms.load(Path(spec["train"])), Spectrograms.load(Path(spec["samples"])),
                         Spectrograms.load(Path(spec["real"])), list(spec["names"]), Path(spec["samples"]))
    device = torch.device("cpu")
    for i, task in enumerate(spec["tasks"]):
        emit(i, fit_accuracy(task, data, fit, int(spec["batch_size"]), device))


if __name__ == "__main__":
    main()
