"""The `latents` artifact (docs/artifacts.md): written by `encode` (`LatentsWriter`, batch by batch), read by
`train-ldm`, `diagnose diffusability` (`load_latents`, the latents standardised batch by batch) and `diagnose
codebook` (`read_indices`).

/latents [N, C, h, w] float32 (pre-quantisation for VQ, posterior mean for the VAE), one chunk per sample;
/indices [N, h, w] (VQ) or /logvar [N, C, h, w] (VAE); /labels [N] and /sequence [N] (when the spectrograms have
one); /kinematics [N, 3] float32, each input image's `mdcli.kinematics.RAW_CONDITION` (period in columns, its
strength, bandwidth in bins; what `train-ldm --set 'kinematics=[...]'` conditions on); /axes copied from the
spectrograms. Attributes: channel_mean and channel_std over the whole file (the LDM's
standardisation), arch, class_names, image_shape, carrier_hz, prf_hz, dynamic_range_db (so generated data can be
written back with the spectrograms' contract). The first parent is the autoencoder, the second the spectrograms.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch

from mdcli.artifacts import atomic_h5, class_names, open_artifact, parent_record, read_header, write_header
from mdcli.data.batches import BatchReader
from mdcli.errors import ArtifactError, MdcliError
from mdcli.kinematics import RAW_CONDITION

RADAR_ATTRS = ("carrier_hz", "prf_hz", "dynamic_range_db")


class LatentsWriter:
    """Write a `latents` artifact batch by batch (atomically: nothing is on disk under the name until `close`
    returns without error). Use as a context manager around the batches."""

    def __init__(self, output: Path, ae_path: Path, data_path: Path, config_text: str, n: int,
                 latent_shape: list[int], arch: str) -> None:
        self.n, self.shape, self.arch = n, tuple(latent_shape), arch
        self._ctx = atomic_h5(output)
        self.parents = [parent_record(ae_path), parent_record(data_path)]
        self.config_text = config_text
        self.s1 = np.zeros(latent_shape[0])
        self.s2 = np.zeros(latent_shape[0])
        self.done = 0

    def __enter__(self) -> "LatentsWriter":
        c, lh, lw = self.shape
        f = self.f = self._ctx.__enter__()
        try:
            write_header(f, "latents", self.config_text, -1, self.parents)
            self.lat = f.create_dataset("latents", (self.n, c, lh, lw), np.float32, chunks=(1, c, lh, lw))
            vq = self.arch in ("vqvae", "vqgan")
            self.idx = f.create_dataset("indices", (self.n, lh, lw), np.int64, chunks=(1, lh, lw)) if vq else None
            self.logvar = None if vq else f.create_dataset("logvar", (self.n, c, lh, lw), np.float32, chunks=(1, c, lh, lw))
            self.kin = f.create_dataset("kinematics", (self.n, len(RAW_CONDITION)), np.float32)
            self.kin.attrs["columns"] = np.array(RAW_CONDITION, dtype=h5py.string_dtype())
        except BaseException as e:  # no with-block runs, so no __exit__: drop the temp file here
            self._ctx.__exit__(type(e), e, e.__traceback__)
            raise
        return self

    def write(self, z: np.ndarray, indices: np.ndarray | None = None, logvar: np.ndarray | None = None,
              kinematics: np.ndarray | None = None) -> None:
        """The next rows: latents (and the code indices of a VQ model or the log-variances of a VAE; the
        inputs' `raw_condition`, NaN when not given)."""
        i, k = self.done, len(z)
        self.lat[i : i + k] = z
        self.kin[i : i + k] = np.nan if kinematics is None else kinematics
        if self.idx is not None:
            self.idx[i : i + k] = indices
        if self.logvar is not None:
            self.logvar[i : i + k] = logvar
        self.s1 += z.sum((0, 2, 3), dtype=np.float64)
        self.s2 += (z.astype(np.float64) ** 2).sum((0, 2, 3))
        self.done += k

    def finish(self, src: h5py.File) -> dict:
        """Labels, recording order, axes and radar attributes from the spectrograms `src`; the channel statistics.
        -> the statistics."""
        f, (c, lh, lw) = self.f, self.shape
        count = self.n * lh * lw
        mean = self.s1 / count
        std = np.sqrt(np.maximum(self.s2 / count - mean**2, 0.0))
        f.create_dataset("labels", data=src["labels"][()])
        if "sequence" in src:  # recording order, for blocked splits downstream
            f.create_dataset("sequence", data=src["sequence"][()])
        f.attrs["channel_mean"] = mean
        f.attrs["channel_std"] = std
        f.attrs["arch"] = self.arch
        f.attrs["class_names"] = np.array(class_names(src), dtype=h5py.string_dtype())
        for key in RADAR_ATTRS:
            f.attrs[key] = float(src.attrs[key])
        f.attrs["image_shape"] = np.array(src["spectrograms"].shape[1:])
        src.copy(src["axes"], f, "axes")
        return {"channel_mean": mean, "channel_std": std}

    def __exit__(self, *exc) -> bool | None:
        return self._ctx.__exit__(*exc)  # the temp file becomes the output, or is removed on an error


@dataclass
class Latents:
    """A latents artifact opened for training or probing: the latents stay on disk (read batch by batch, `get`
    standardises them), labels and attributes in memory."""

    reader: BatchReader
    labels: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    class_names: list[str]
    attrs: dict  # what sample needs to write spectrograms back (stored with the LDM)
    sequence: np.ndarray | None = None  # recording order (measured data), for blocked splits
    kinematics: np.ndarray | None = None  # (N, 3) raw_condition of the inputs; None: encoded by an older mdcli

    @property
    def shape(self) -> tuple[int, ...]:
        return self.reader.shape

    def get(self, idx) -> torch.Tensor:
        """Standardised latents of rows `idx` (per-channel mean/std of the whole dataset)."""
        z = self.reader.read(idx)
        z = (z - self.mean[None, :, None, None]) / np.maximum(self.std, 1e-8)[None, :, None, None]
        return torch.from_numpy(z.astype(np.float32))


def load_latents(path: Path) -> Latents:
    try:
        return _load_latents(path)
    except KeyError as e:  # h5py: a missing attribute or dataset
        raise ArtifactError(f"{path}: not a complete latents artifact ({str(e).strip(chr(34))}); rerun `mdcli encode`") from None


def _load_latents(path: Path) -> Latents:
    with open_artifact(path, "latents") as f:
        mean = np.asarray(f.attrs["channel_mean"], np.float64)
        std = np.asarray(f.attrs["channel_std"], np.float64)
        names = class_names(f)
        attrs = {
            "class_names": names, "arch": str(f.attrs["arch"]), "image_shape": [int(v) for v in f.attrs["image_shape"]],
            **{k: float(f.attrs[k]) for k in RADAR_ATTRS},
            "doppler_hz": f["axes/doppler_hz"][()].tolist(), "time_s": f["axes/time_s"][()].tolist(),
            "axes_calibrated": bool(f["axes"].attrs.get("calibrated", True)),
            "ae_parent": read_header(f)["parents"][0],
        }
        labels = f["labels"][()]
        sequence = f["sequence"][()] if "sequence" in f else None
        kinematics = f["kinematics"][()] if "kinematics" in f else None
        if kinematics is not None and kinematics.shape != (len(labels), len(RAW_CONDITION)):
            raise ArtifactError(f"{path}: damaged latents artifact: /kinematics is {list(kinematics.shape)}, "
                                f"expected [{len(labels)}, {len(RAW_CONDITION)}]")
    return Latents(BatchReader(path, "latents", "latents"), labels, mean, std, names, attrs, sequence, kinematics)


def read_indices(path: Path) -> tuple[np.ndarray, np.ndarray, list[str], dict]:
    """A VQ model's code indices -> (indices [N, h, w], labels, class names, the autoencoder's lineage record)."""
    with open_artifact(path, "latents") as f:
        if "indices" not in f:
            raise MdcliError(f"{path}: holds no code indices (arch {f.attrs['arch']}); codebook statistics need a VQ model")
        return f["indices"][()], f["labels"][()], class_names(f), read_header(f)["parents"][0]
