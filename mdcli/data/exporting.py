"""`export`: a `spectrograms` artifact to PNG folders per class, .npz, or a MATLAB .mat file."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from mdcli.artifacts import Spectrograms, atomic_path
from mdcli.errors import MdcliError

FORMATS = ("png", "npz", "mat")


def _fields(data: Spectrograms) -> dict:
    return {
        "spectrograms": data.spectrograms, "labels": data.labels,
        "class_names": np.array(data.class_names), "doppler_hz": data.doppler_hz, "time_s": data.time_s,
        "axes_calibrated": np.array([data.axes_calibrated]), "carrier_hz": np.float64(data.carrier_hz),
        "prf_hz": np.float64(data.prf_hz), "dynamic_range_db": np.float64(data.dynamic_range_db),
    }


def export(data: Spectrograms, output: Path, fmt: str, colormap: str = "gray") -> int:
    """Write `data` as `fmt`; returns the number of files written."""
    if fmt not in FORMATS:
        raise MdcliError(f"--format: unknown '{fmt}'; valid: {', '.join(FORMATS)}")
    if fmt != "png" and output.is_dir():
        raise MdcliError(f"--output {output}: is a folder; --format {fmt} writes one file")
    if fmt == "png" and output.exists() and not output.is_dir():
        raise MdcliError(f"--output {output}: is a file; --format png writes a folder with one subfolder per class")
    if fmt == "npz":
        with atomic_path(output) as tmp:
            with open(tmp, "wb") as f:
                np.savez_compressed(f, **_fields(data))
        return 1
    if fmt == "mat":
        from scipy.io import savemat

        fields = _fields(data)
        fields["class_names"] = np.array(data.class_names, dtype=object)  # a cell array of char in MATLAB
        with atomic_path(output) as tmp:
            savemat(tmp, fields, do_compression=True)
        return 1
    return _export_png(data, output, colormap)


def _export_png(data: Spectrograms, folder: Path, colormap: str) -> int:
    """One PNG per spectrogram under folder/<class>/, top row = highest Doppler; grey or colour-mapped."""
    from PIL import Image

    if folder.exists() and any(folder.iterdir()):
        raise MdcliError(f"--output {folder}: folder exists and is not empty")
    table = None
    if colormap != "gray":
        import matplotlib

        if colormap not in matplotlib.colormaps:
            raise MdcliError(f"--colormap: unknown '{colormap}'")
        table = (matplotlib.colormaps[colormap](np.linspace(0, 1, 256))[:, :3] * 255).round().astype(np.uint8)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        for i, (img, label) in enumerate(zip(data.spectrograms, data.labels)):
            cls_dir = tmp / data.class_names[label]
            cls_dir.mkdir(exist_ok=True)
            q = np.round(img[::-1] * 255).astype(np.uint8)
            arr = q if table is None else table[q]
            stem = Path(data.source_files[i]).stem if data.source_files else f"{i:06d}"
            Image.fromarray(arr).save(cls_dir / f"{stem}.png")
        if folder.exists():
            folder.rmdir()
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return len(data)
