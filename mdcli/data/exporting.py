"""`export`: a `spectrograms` artifact to PNG folders per class, .npz, or a MATLAB .mat file."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from mdcli.artifacts import TEMP_MARK, Spectrograms, atomic_path, io_error
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
    if fmt != "png" and output.suffix.lower() != f".{fmt}":
        raise MdcliError(f"--output {output}: --format {fmt} writes a .{fmt} file; name it so (or pick --format)")
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
    if colormap == "matlab-jet":  # MATLAB's jet(256), as `import --colormap matlab-jet` inverts it
        from mdcli.data.importing import matlab_jet

        table = (matlab_jet(256) * 255).round().astype(np.uint8)
    elif colormap != "gray":
        import matplotlib

        if colormap not in matplotlib.colormaps:
            raise MdcliError(f"--colormap: unknown '{colormap}'")
        table = (matplotlib.colormaps[colormap](np.linspace(0, 1, 256))[:, :3] * 255).round().astype(np.uint8)
    for name in data.class_names:
        if not name or name in (".", "..") or any(c in name for c in "/\\\0") or name != name.strip():
            raise MdcliError(f"class name {name!r} cannot be a folder name; export it --format npz or mat")
    names = _png_names(data)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=TEMP_MARK, dir=folder.parent))
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it 0700; the folder should be what mkdir would make
        for i, (img, label) in enumerate(zip(data.spectrograms, data.labels)):
            cls_dir = tmp / data.class_names[label]
            cls_dir.mkdir(exist_ok=True)
            q = np.round(img[::-1] * 255).astype(np.uint8)
            arr = q if table is None else table[q]
            Image.fromarray(arr).save(cls_dir / names[i])
        if folder.exists():
            folder.rmdir()
        os.replace(tmp, folder)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError) and e.errno is not None:  # a full disk, a read-only folder: one line
            raise io_error(e, folder) from None
        raise
    return len(data)  # one file each: _png_names makes the names unique per class folder


def _png_names(data: Spectrograms) -> list[str]:
    """One file name per spectrogram, unique within its class folder: the source file's stem where those are
    unique in the class (an imported folder keeps its names), else the index in front of it."""
    stems = [Path(f).stem for f in data.source_files] if data.source_files else [None] * len(data)
    if all(stems):
        keys = list(zip(np.asarray(data.labels).tolist(), stems))
        if len(set(keys)) == len(keys):
            return [f"{s}.png" for s in stems]
    return [f"{i:06d}_{s}.png" if s else f"{i:06d}.png" for i, s in enumerate(stems)]
