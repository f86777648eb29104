"""`encode`: spectrograms -> latents (kind `latents`), streamed in batches.

/latents [N, C, h, w] float32 (pre-quantisation for VQ, posterior mean for the VAE),
/indices [N, h, w] (VQ), /logvar [N, C, h, w] (VAE), /labels [N]; attributes
channel_mean and channel_std over the whole dataset, for the LDM to standardise with,
plus the spectrograms' class names, axes and radar attributes so generated data can
be written back with the same contract.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import h5py
import numpy as np
import torch

from mdcli.artifacts import class_names as artifact_class_names
from mdcli.artifacts import atomic_h5, open_artifact, parent_record, write_header
from mdcli.data.batches import to_model
from mdcli.errors import MdcliError
from mdcli.models.load import load_autoencoder


@torch.no_grad()
def encode_dataset(ae_path: Path, data_path: Path, output: Path, batch_size: int = 64,
                   progress: Callable[[int], None] | None = None) -> dict:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    ae, attrs, _ = load_autoencoder(ae_path, device)
    with open_artifact(data_path, "spectrograms") as f:
        n, h, w = f["spectrograms"].shape
        class_names = artifact_class_names(f)
    if [h, w] != list(attrs["image_shape"]):
        raise MdcliError(f"{data_path}: images are {h}x{w} but {ae_path} was trained on "
                         f"{attrs['image_shape'][0]}x{attrs['image_shape'][1]}")
    c, lh, lw = attrs["latent_shape"]
    vq = attrs["arch"] in ("vqvae", "vqgan")
    s1 = np.zeros(c)
    s2 = np.zeros(c)
    text = f"ae: {ae_path}\ndata: {data_path}\nbatch_size: {batch_size}\n"
    with atomic_h5(output) as out, open_artifact(data_path, "spectrograms") as src:
        write_header(out, "latents", text, -1, [parent_record(ae_path), parent_record(data_path)])
        lat = out.create_dataset("latents", (n, c, lh, lw), np.float32, chunks=(1, c, lh, lw))
        idx = out.create_dataset("indices", (n, lh, lw), np.int64, chunks=(1, lh, lw)) if vq else None
        logvar = out.create_dataset("logvar", (n, c, lh, lw), np.float32, chunks=(1, c, lh, lw)) if not vq else None
        for i in range(0, n, batch_size):
            xb = to_model(torch.from_numpy(src["spectrograms"][i : i + batch_size])[:, None]).to(device)
            enc = ae.encode(xb)
            z = enc.latent.float().cpu().numpy()
            lat[i : i + len(z)] = z
            if idx is not None:
                idx[i : i + len(z)] = enc.indices.cpu().numpy()
            if logvar is not None:
                logvar[i : i + len(z)] = enc.logvar.float().cpu().numpy()
            s1 += z.sum((0, 2, 3), dtype=np.float64)
            s2 += (z.astype(np.float64) ** 2).sum((0, 2, 3))
            if progress:
                progress(len(z))
        count = n * lh * lw
        mean = s1 / count
        std = np.sqrt(np.maximum(s2 / count - mean**2, 0.0))
        out.create_dataset("labels", data=src["labels"][()])
        if "sequence" in src:  # recording order, for blocked splits downstream
            out.create_dataset("sequence", data=src["sequence"][()])
        out.attrs["channel_mean"] = mean
        out.attrs["channel_std"] = std
        out.attrs["arch"] = attrs["arch"]
        out.attrs["class_names"] = np.array(class_names, dtype=h5py.string_dtype())
        for key in ("carrier_hz", "prf_hz", "dynamic_range_db"):
            out.attrs[key] = float(src.attrs[key])
        out.attrs["image_shape"] = np.array([h, w])
        src.copy(src["axes"], out, "axes")
    return {"n": n, "latent_shape": [c, lh, lw], "channel_mean": mean.tolist(), "channel_std": std.tolist(), "arch": attrs["arch"]}
