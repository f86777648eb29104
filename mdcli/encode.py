"""`encode`: spectrograms -> latents (kind `latents`, laid out by mdcli/latents.py), streamed in batches."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

from mdcli.artifacts import open_artifact
from mdcli.data.batches import to_model
from mdcli.errors import MdcliError
from mdcli.kinematics import raw_condition
from mdcli.latents import LatentsWriter
from mdcli.models.load import load_autoencoder


@torch.no_grad()
def encode_dataset(ae_path: Path, data_path: Path, output: Path, batch_size: int = 64,
                   progress: Callable[[int], None] | None = None) -> dict:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    ae, attrs, _ = load_autoencoder(ae_path, device)
    with open_artifact(data_path, "spectrograms") as f:
        n, h, w = f["spectrograms"].shape
    if [h, w] != list(attrs["image_shape"]):
        raise MdcliError(f"{data_path}: images are {h}x{w} but {ae_path} was trained on "
                         f"{attrs['image_shape'][0]}x{attrs['image_shape'][1]}")
    text = f"ae: {ae_path}\ndata: {data_path}\nbatch_size: {batch_size}\n"
    with LatentsWriter(output, ae_path, data_path, text, n, attrs["latent_shape"], attrs["arch"]) as out, \
            open_artifact(data_path, "spectrograms") as src:
        dynamic_range_db = float(src.attrs["dynamic_range_db"])
        for i in range(0, n, batch_size):
            x01 = src["spectrograms"][i : i + batch_size]
            enc = ae.encode(to_model(torch.from_numpy(x01)[:, None]).to(device))
            out.write(enc.latent.float().cpu().numpy(),
                      None if enc.indices is None else enc.indices.cpu().numpy(),
                      None if enc.logvar is None else enc.logvar.float().cpu().numpy(),
                      raw_condition(x01, dynamic_range_db))
            if progress:
                progress(len(x01))
        stats = out.finish(src)
    mean, std = stats["channel_mean"], stats["channel_std"]
    return {"n": n, "latent_shape": list(attrs["latent_shape"]), "channel_mean": mean.tolist(), "channel_std": std.tolist(), "arch": attrs["arch"]}
