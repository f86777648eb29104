"""The metrics log beside each output (`OUTPUT.metrics.jsonl`): one JSON record a line, rank 0 only.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from mdcli.artifacts import atomic_path


class JsonlLog:
    """Append-only metrics log, one JSON object a line (flushed each write)."""

    def __init__(self, path: Path | None):
        self.path = path

    def write(self, record: dict) -> None:
        if self.path is None:
            return
        clean = {k: (float(v) if isinstance(v, (torch.Tensor, np.floating)) else v) for k, v in record.items()}
        with open(self.path, "a") as f:
            f.write(json.dumps(clean) + "\n")

    def keep_until(self, step: int) -> None:
        """On resume: drop the records written after the checkpoint (the resumed run writes them again) and a
        torn last line of a killed run, so the log stays one record per step."""
        if self.path is None or not self.path.exists():
            return
        kept = []
        for line in self.path.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if record.get("step", 0) <= step:
                kept.append(line)
        with atomic_path(self.path) as tmp:
            tmp.write_text("".join(k + "\n" for k in kept))


def log_path(output: Path) -> Path:
    return output.with_name(output.stem + ".metrics.jsonl")
