"""Worker of `diagnose generation --set jobs=N`: runs some of its classifier fits in a separate process.

Reads one JSON object on stdin (the samples / real / train paths, class names, fit config, batch size
and a list of fit tasks from `mdcli.generation.fit_tasks`), writes the tasks' held-out accuracies as a
JSON list on stdout. Each fit is seeded and self-contained, so a task gives the same accuracy here as
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
from mdcli.generation import FitData, fit_accuracy
from mdcli.train.classifier import FitConfig


def main() -> None:
    keep_freed_memory()
    spec = json.loads(sys.stdin.read())
    fit = from_dict(FitConfig, spec["fit"])
    data = FitData.build(Spectrograms.load(Path(spec["train"])), Spectrograms.load(Path(spec["samples"])),
                         Spectrograms.load(Path(spec["real"])), list(spec["names"]), Path(spec["samples"]))
    device = torch.device("cpu")
    out = [fit_accuracy(task, data, fit, int(spec["batch_size"]), device) for task in spec["tasks"]]
    sys.stdout.write(json.dumps(out))


if __name__ == "__main__":
    main()
