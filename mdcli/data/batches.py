"""Spectrogram artifacts as tensors for the networks (which all see images in [-1, 1])."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from mdcli.artifacts import class_names as artifact_class_names
from mdcli.artifacts import Spectrograms
from mdcli.errors import MdcliError


def to_model(x01: torch.Tensor) -> torch.Tensor:
    return x01 * 2.0 - 1.0


def from_model(x: torch.Tensor) -> torch.Tensor:
    return ((x + 1.0) * 0.5).clamp(0.0, 1.0)


def model_images(data: Spectrograms) -> torch.Tensor:
    """A dataset's spectrograms as model inputs (N, 1, F, T) in [-1, 1]."""
    return to_model(torch.from_numpy(np.ascontiguousarray(data.spectrograms))[:, None])


def load_images(path: str | Path) -> tuple[torch.Tensor, np.ndarray, Spectrograms]:
    """-> images (N, 1, F, T) in [-1, 1], labels (N,), and the artifact itself."""
    data = Spectrograms.load(path)
    return model_images(data), data.labels, data


def align_labels(data: Spectrograms, names: list[str], path: Path) -> np.ndarray:
    """Labels of `data` re-indexed to the class order `names`."""
    missing = [c for c in data.class_names if c not in names]
    if missing:
        raise MdcliError(f"{path}: class '{missing[0]}' is not among the real data's classes ({', '.join(names)})")
    remap = np.array([names.index(c) for c in data.class_names])
    return remap[data.labels]


class BatchReader:
    """Samples read from an artifact's per-sample-chunked dataset, batch by batch.

    Training and encoding never hold a whole dataset: memory grows with the batch, not with N.
    Labels (and the recording order, when present) are small and read once.
    """

    def __init__(self, path: str | Path, kind: str = "spectrograms", dataset: str = "spectrograms"):
        import h5py

        from mdcli.artifacts import open_artifact

        with open_artifact(path, kind):  # one-line errors for missing / wrong-kind / damaged files
            pass
        self.path = Path(path)
        self._file = h5py.File(self.path, "r")
        self._data = self._file[dataset]
        self.shape = tuple(self._data.shape)
        self.labels = self._file["labels"][()]
        self.sequence = self._file["sequence"][()] if "sequence" in self._file else None
        self.class_names = artifact_class_names(self._file)

    def __len__(self) -> int:
        return self.shape[0]

    def read(self, idx) -> np.ndarray:
        """Rows `idx` in the given order (h5py wants increasing, unique indices)."""
        idx = np.asarray(idx, dtype=np.int64)
        if len(idx) == 0:
            return np.zeros((0, *self.shape[1:]), np.float32)
        uniq, inverse = np.unique(idx, return_inverse=True)
        return np.asarray(self._data[uniq], dtype=np.float32)[inverse]

    def images(self, idx) -> torch.Tensor:
        """Spectrogram rows as model inputs (B, 1, F, T) in [-1, 1]."""
        return to_model(torch.from_numpy(self.read(idx))[:, None])

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "BatchReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Prefetcher:
    """Loads batch `step + 1` on a background thread while the caller computes on batch `step`."""

    def __init__(self, load):
        from concurrent.futures import ThreadPoolExecutor

        self._load = load
        self._pool = ThreadPoolExecutor(1)
        self._next: tuple[int, object] | None = None

    def get(self, step: int, last: int):
        fut = self._next[1] if self._next is not None and self._next[0] == step else self._pool.submit(self._load, step)
        out = fut.result()
        self._next = (step + 1, self._pool.submit(self._load, step + 1)) if step + 1 < last else None
        return out

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def eval_subset(idx: np.ndarray, limit: int, seed: int) -> np.ndarray:
    """At most `limit` of the held-out indices (seeded, sorted): validation cost and memory stay bounded."""
    if limit <= 0 or len(idx) <= limit:
        return idx
    return np.sort(np.random.default_rng(np.random.SeedSequence([seed, 31])).choice(idx, limit, replace=False))
