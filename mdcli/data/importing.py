"""`import`: measured spectrograms (arrays, MATLAB files, colour-mapped images, IQ) -> `spectrograms`.

Colour-mapped images (the norm in published micro-Doppler sets: jet JPEGs without axes) are
inverted by nearest colour in the named map; the mean colour distance is reported as a
quality figure and a large one is an error (the map is wrong). Axes are stored as given or
as an uncalibrated 0..1 range, never invented. Nothing is unpickled (allow_pickle=False).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from mdcli.artifacts import Spectrograms
from mdcli.errors import MdcliError
from mdcli.sim.signal import resample_axis

IMAGE_EXT = {".png", ".jpg", ".jpeg"}
ARRAY_EXT = {".npy", ".npz", ".mat"}
COLORMAPS = ("jet", "matlab-jet", "turbo", "viridis", "gray", "parula")


@dataclass
class ImportOptions:
    colormap: str | None = None  # jet | matlab-jet | turbo | viridis | gray | parula (needs --colormap-file)
    colormap_file: Path | None = None  # CSV of RGB rows from low to high (0..1 or 0..255)
    input_scale: str = "unit"  # unit (a display scale in [0, 1], e.g. images) | db | power | amplitude
    dynamic_range_db: float = 50.0  # floor below each sample's peak when converting db/power/amplitude
    image_size: tuple[int, int] | None = None  # (Doppler bins, time frames); also allows mixed input shapes
    doppler_range: tuple[float, float] | None = None  # Hz; with duration, the axes are calibrated
    duration: float | None = None  # s
    carrier_hz: float = float("nan")
    variable: str | None = None  # array name inside .mat / .npz files
    iq_rate: float | None = None  # complex 1-D inputs are slow-time IQ sampled at this rate (Hz)
    csv: Path | None = None  # file,label rows instead of one folder per class
    max_colour_distance: float = 0.12  # mean nearest-colour distance (RGB in 0..1) above this: wrong map
    flip_images: bool = True  # image row 0 is the top (highest Doppler); arrays are stored ascending


MAX_IMAGE_PIXELS = 64 * 10**6  # PIL's own bomb guard warns at 89 M pixels and only fails at twice that
NOT_NUMPY = "not a plain numpy array file (pickled objects, or not numpy at all); mdcli never unpickles"


def sequence_key(name: str) -> int:
    """The last integer in a file stem (e.g. ..._Doppler17.jpg -> 17), -1 if none."""
    nums = re.findall(r"\d+", Path(name).stem)
    return int(nums[-1]) if nums else -1


def natural_key(name: str) -> list:
    """Sort key reading digit runs as numbers: rec2_img10 after rec2_img9, rec10_* after rec2_*."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", Path(name).name)]


def recording_order(names: list[str], labels: np.ndarray) -> np.ndarray:
    """Position of each window in its class's recording order, for the blocked split.

    The last integer of the file name where it is distinct within the class (the gait sample's
    ..._Doppler17.jpg: the window's start in seconds). Where it is not (no digits; a take number or a
    date last; several recordings numbered alike) the tied windows would all sit at one position and
    the blocked split would drop the whole class from training, or interleave recordings. Those
    classes use the rank in natural name order instead: consecutive windows of a recording stay
    adjacent, and a rank never exceeds the true distance, so the split's gap only errs on the safe side.
    """
    seq = np.array([sequence_key(n) for n in names], dtype=np.int64)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        if len(np.unique(seq[idx])) < len(idx):
            order = sorted(range(len(idx)), key=lambda i: natural_key(names[idx[i]]))
            seq[idx[order]] = np.arange(len(idx))
    return seq


def colormap_table(name: str | None, file: Path | None) -> np.ndarray:
    """(K, 3) RGB in [0, 1], from low to high."""
    if file is not None:
        try:
            table = np.loadtxt(file, delimiter=",", ndmin=2)
        except (OSError, ValueError) as e:
            raise MdcliError(f"--colormap-file {file}: cannot read a CSV of RGB rows ({e})") from None
        if table.shape[1] != 3 or len(table) < 2:
            raise MdcliError(f"--colormap-file {file}: expected rows of 3 numbers (R,G,B), got shape {table.shape}")
        return table / 255.0 if table.max() > 1.0 else table
    if name == "parula":
        raise MdcliError("--colormap parula: MATLAB's parula is not bundled; in MATLAB run "
                         "writematrix(parula(256),'parula.csv') and pass --colormap-file parula.csv")
    if name not in COLORMAPS:
        raise MdcliError(f"--colormap: unknown '{name}'; valid: {', '.join(COLORMAPS)} (or --colormap-file)")
    if name == "matlab-jet":
        return matlab_jet(256)
    import matplotlib

    return matplotlib.colormaps[name](np.linspace(0.0, 1.0, 256))[:, :3]


def matlab_jet(m: int = 256) -> np.ndarray:
    """MATLAB's jet(m), (m, 3) RGB in [0, 1], from its definition: each channel a trapezoid of ramps n = ceil(m/4)
    long, the blue one starting at index 1 - n/2, green n and red 2n later. It is not matplotlib's jet: at m = 256
    it starts at blue 0.516 (matplotlib 0.5), ends at red 0.5 and its ramps sit up to 33 levels of 255 away, so
    images drawn in MATLAB and inverted with matplotlib's map come back with their clipped floor at 1/255 instead
    of 0 and their mid tones shifted (docs/findings.md, "The colour map the measured images were drawn with")."""
    n = -(-m // 4)
    u = np.concatenate([np.arange(1, n + 1) / n, np.ones(n - 1), np.arange(n, 0, -1) / n])
    g = n // 2 + n % 2 - (m % 4 == 1) + np.arange(len(u))  # 0-based rows of the green ramp
    out = np.zeros((m, 3))
    for channel, rows in ((0, g + n), (1, g), (2, g - n)):
        keep = (rows >= 0) & (rows < m)
        out[rows[keep], channel] = u[keep]
    return out


class ColourInverter:
    """Nearest colour in a map -> position in [0, 1]; keeps the mean colour distance as quality."""

    def __init__(self, table: np.ndarray):
        from scipy.spatial import cKDTree

        self.table = table
        self.tree = cKDTree(table)

    def __call__(self, rgb: np.ndarray) -> tuple[np.ndarray, float]:
        dist, idx = self.tree.query(rgb.reshape(-1, 3))
        return (idx / (len(self.table) - 1)).reshape(rgb.shape[:-1]), float(dist.mean())


def _read_image(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            if im.width * im.height > MAX_IMAGE_PIXELS:
                raise Image.DecompressionBombError(f"{im.width}x{im.height}")
            if im.mode.startswith("I;16") or im.mode in ("I", "F"):  # 16-bit / 32-bit greyscale: keep the depth
                x = np.asarray(im, dtype=np.float64)
                if im.mode == "F":
                    return x if x.max() <= 1.0 else x / x.max()
                return x / (65535.0 if x.max() <= 65535 else 4294967295.0)
            im = im.convert("RGB") if im.mode not in ("L", "RGB") else im
            return np.asarray(im, dtype=np.float64) / 255.0
    except MdcliError:
        raise
    except Image.DecompressionBombError:
        raise MdcliError(f"{path}: image of more than {MAX_IMAGE_PIXELS // 10**6} megapixels is larger than mdcli reads; "
                         "a spectrogram image this size is almost certainly a damaged or hostile file") from None
    except Exception as e:  # noqa: BLE001 - a foreign file: whatever its decoder raises is the user's to fix
        raise MdcliError(f"{path}: unreadable image ({type(e).__name__}: {e})") from None


def _read_array(path: Path, variable: str | None) -> np.ndarray:
    try:
        if path.suffix.lower() == ".npy":
            return _read_npy(path)
        if path.suffix.lower() == ".npz":
            with np.load(path, allow_pickle=False) as z:
                names = list(z.keys())
                key = variable or (names[0] if len(names) == 1 else None)
                if key is None or key not in names:
                    raise MdcliError(f"{path}: variable '{variable}' not in the file; it holds: {', '.join(names)}"
                                     if variable else f"{path}: holds several arrays ({', '.join(names)}); pass --variable")
                return z[key]
        return _read_mat(path, variable)
    except ValueError as e:
        if "pickle" in str(e):
            raise MdcliError(f"{path}: {NOT_NUMPY}") from None
        raise MdcliError(f"{path}: unreadable array file ({e})") from None
    except OSError as e:
        raise MdcliError(f"{path}: unreadable file ({e})") from None
    except EOFError:
        raise MdcliError(f"{path}: empty or truncated file") from None


def _read_npy(path: Path) -> np.ndarray:
    """A .npy array, its header checked against the file's size before anything is allocated."""
    from numpy.lib import format as npformat

    with open(path, "rb") as f:
        try:
            version = npformat.read_magic(f)
            read = npformat.read_array_header_1_0 if version == (1, 0) else npformat.read_array_header_2_0
            shape, _, dtype = read(f, max_header_size=10000)
        except (EOFError, ValueError) as e:
            if isinstance(e, EOFError) or str(e).startswith("EOF"):
                raise MdcliError(f"{path}: empty or truncated .npy file") from None
            raise MdcliError(f"{path}: {NOT_NUMPY}") from None
        if dtype.hasobject:
            raise MdcliError(f"{path}: {NOT_NUMPY}")
        need = int(np.prod(shape, dtype=np.float64) * dtype.itemsize)
        have = path.stat().st_size - f.tell()
        if need > have:
            raise MdcliError(f"{path}: header promises {shape} {dtype} ({need:,} bytes) but the file holds {have:,}; "
                             "the file is truncated or damaged")
    return np.load(path, allow_pickle=False)


def _read_mat(path: Path, variable: str | None) -> np.ndarray:
    import h5py

    if h5py.is_hdf5(path):  # MATLAB v7.3: HDF5, column-major, so dimensions come reversed
        with h5py.File(path, "r") as f:
            names = [k for k in f.keys() if not k.startswith("#")]
            key = variable or (names[0] if len(names) == 1 else None)
            if key is None or key not in f:
                raise MdcliError(f"{path}: variable '{variable}' not in the file; it holds: {', '.join(names)}"
                                 if variable else f"{path}: holds several variables ({', '.join(names)}); pass --variable")
            ds = f[key]
            arr = ds[()]
            if arr.dtype.names and {"real", "imag"} <= set(arr.dtype.names):
                arr = arr["real"] + 1j * arr["imag"]
            return np.asarray(arr).T
    from scipy.io import loadmat

    try:
        m = loadmat(path)
    except Exception as e:  # noqa: BLE001 - a foreign file: whatever scipy's parser raises is the user's to fix
        raise MdcliError(f"{path}: unreadable MATLAB file ({type(e).__name__}: {e})") from None
    names = [k for k in m if not k.startswith("__")]
    key = variable or (names[0] if len(names) == 1 else None)
    if key is None or key not in m:
        raise MdcliError(f"{path}: variable '{variable}' not in the file; it holds: {', '.join(names)}"
                         if variable else f"{path}: holds several variables ({', '.join(names)}); pass --variable")
    arr = m[key]
    if arr.dtype == object:
        raise MdcliError(f"{path}: variable '{key}' is a cell/struct, expected a numeric array")
    return arr


def list_inputs(source: Path, opts: ImportOptions) -> tuple[list[tuple[Path, str]], list[str]]:
    """(file, class) pairs in class order, then sequence/name order; and the class names."""
    if opts.csv is not None:
        rows = []
        try:
            with open(opts.csv, newline="") as f:
                for row in csv.reader(f):
                    if len(row) < 2 or row[0].strip().lower() in ("file", "path", "filename"):
                        continue
                    p = Path(row[0].strip())
                    rows.append((p if p.is_absolute() else opts.csv.parent / p, row[1].strip()))
        except OSError as e:
            raise MdcliError(f"--csv {opts.csv}: cannot read ({e})") from None
        if not rows:
            raise MdcliError(f"--csv {opts.csv}: no 'file,label' rows")
        classes = sorted({c for _, c in rows})
        return rows, classes
    if not source.is_dir():
        raise MdcliError(f"{source}: expected a folder with one subfolder per class (or a file exported by mdcli, or --csv)")
    classes = sorted(d.name for d in source.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise MdcliError(f"{source}: no class subfolders found")
    pairs = []
    for c in classes:
        files = [p for p in (source / c).iterdir() if p.suffix.lower() in IMAGE_EXT | ARRAY_EXT]
        if not files:
            raise MdcliError(f"{source / c}: class '{c}' holds no .npy/.npz/.mat/.png/.jpg files")
        files.sort(key=lambda p: (sequence_key(p.name), p.name))
        pairs += [(p, c) for p in files]
    return pairs, classes


def _to_unit(x: np.ndarray, scale: str, dr: float) -> np.ndarray:
    """Bring one spectrogram to [0, 1] with 1 at its peak (dB-linear below it)."""
    if scale == "unit":
        x = np.clip(x, 0.0, 1.0)
        return np.clip(x + (1.0 - x.max()), 0.0, 1.0)  # re-reference to the peak (additive in dB)
    if scale == "power":
        db = 10 * np.log10(np.maximum(x, 1e-30))
    elif scale == "amplitude":
        db = 20 * np.log10(np.maximum(np.abs(x), 1e-30))
    else:
        db = x
    return np.clip((db - (db.max() - dr)) / dr, 0.0, 1.0)


def import_dataset(source: Path, opts: ImportOptions, progress: Callable[[int], None] | None = None) -> Spectrograms:
    if opts.colormap is not None and opts.colormap_file is not None:
        raise MdcliError("--colormap and --colormap-file: give one (the file is a colour map of its own)")
    if source.is_file() and source.suffix.lower() in (".npz", ".mat") and opts.csv is None:
        ignored = {"--colormap": opts.colormap, "--colormap-file": opts.colormap_file, "--image-size": opts.image_size,
                   "--doppler-range": opts.doppler_range, "--duration": opts.duration, "--variable": opts.variable,
                   "--iq-rate": opts.iq_rate, "--carrier": None if np.isnan(opts.carrier_hz) else opts.carrier_hz,
                   "--input-scale": None if opts.input_scale == "unit" else opts.input_scale}
        data = import_export_file(source, opts)  # a file that is not an export is refused here, saying so
        given = [k for k, v in ignored.items() if v is not None]
        if given:
            raise MdcliError(f"{source}: an `mdcli export` file carries its own images, axes and radar values; "
                             f"import it without {', '.join(given)}")
        return data
    pairs, classes = list_inputs(source, opts)
    inverter = None
    images, labels, names, distances, iq_axes = [], [], [], [], None
    for path, cls in pairs:
        if not path.exists():
            raise MdcliError(f"{path}: file not found")
        if path.suffix.lower() in IMAGE_EXT:
            rgb = _read_image(path)
            grey = rgb.ndim == 2 or np.abs(rgb - rgb.mean(-1, keepdims=True)).max() <= 12 / 255
            if grey:
                img = rgb if rgb.ndim == 2 else rgb.mean(-1)
            else:
                if opts.colormap is None and opts.colormap_file is None:
                    raise MdcliError(f"{path}: colour image; pass --colormap jet|matlab-jet|turbo|viridis|gray|parula "
                                     "(the map it was rendered with) or --colormap-file")
                if inverter is None:
                    inverter = ColourInverter(colormap_table(opts.colormap, opts.colormap_file))
                img, dist = inverter(rgb)
                distances.append(dist)
                if dist > opts.max_colour_distance:
                    raise MdcliError(f"{path}: mean colour distance {dist:.3f} to the '{opts.colormap_file or opts.colormap}' "
                                     f"map exceeds {opts.max_colour_distance}; the colour map looks wrong")
            if opts.flip_images:
                img = img[::-1]
            img = _to_unit(img, "unit", opts.dynamic_range_db)
        else:
            arr = np.squeeze(_read_array(path, opts.variable))
            if np.iscomplexobj(arr) and arr.ndim == 1:
                img, iq_axes = _iq_image(arr, path, opts)
            else:
                if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.number):
                    raise MdcliError(f"{path}: expected a 2-D real spectrogram [Doppler, time] or 1-D complex IQ, got {arr.dtype} {arr.shape}")
                if np.iscomplexobj(arr):
                    arr = np.abs(arr)
                arr = arr.astype(np.float64)
                if not np.isfinite(arr).all():
                    raise MdcliError(f"{path}: contains NaN or inf values")
                img = _to_unit(arr, opts.input_scale, opts.dynamic_range_db)
        if not np.isfinite(img).all():
            raise MdcliError(f"{path}: contains NaN or inf values")
        images.append(img)
        labels.append(classes.index(cls))
        names.append(str(path))
        if progress:
            progress(1)
    shapes = {im.shape for im in images}
    original = sorted(shapes)
    if opts.image_size is not None:
        images = [resize(im, opts.image_size) for im in images]
    elif len(shapes) > 1:
        raise MdcliError(f"{source}: inputs have mixed shapes {sorted(shapes)[:3]}; pass --image-size H,W to resize them")
    stack = np.stack(images).astype(np.float32)
    n, h, w = stack.shape
    if iq_axes is not None:  # the STFT already made images of the requested size
        (doppler, time), calibrated = iq_axes, True
    elif opts.doppler_range is not None and opts.duration is not None:
        doppler = np.linspace(opts.doppler_range[0], opts.doppler_range[1], h)
        time, calibrated = (np.arange(w) + 0.5) * opts.duration / w, True
    else:  # unknown axes: a normalised 0..1 range, flagged as uncalibrated
        doppler, time, calibrated = np.linspace(0.0, 1.0, h), np.linspace(0.0, 1.0, w), False
    transform = {
        "input_scale": "unit" if not any(p.suffix.lower() in ARRAY_EXT for p, _ in pairs) else opts.input_scale,
        "colormap": str(opts.colormap_file or opts.colormap) if distances else None,
        "mean_colour_distance": float(np.mean(distances)) if distances else None,
        "flipped_rows": bool(opts.flip_images and any(p.suffix.lower() in IMAGE_EXT for p, _ in pairs)),
        "original_shapes": [list(s) for s in original], "image_size": [h, w],
        "peak_reference": "each image shifted so its maximum is 1 (additive in dB)",
    }
    return Spectrograms(
        spectrograms=stack, labels=np.array(labels, dtype=np.int64), class_names=classes,
        doppler_hz=np.asarray(doppler, float), time_s=np.asarray(time, float),
        carrier_hz=opts.carrier_hz, prf_hz=opts.iq_rate if opts.iq_rate else float("nan"),
        dynamic_range_db=opts.dynamic_range_db if transform["input_scale"] != "unit" else float("nan"),
        source="imported", axes_calibrated=calibrated, source_files=names,
        sequence=recording_order(names, np.array(labels, dtype=np.int64)), transform=transform,
    )


def resize(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a [0, 1] image to (H, W): block means for integer factors, else linear interpolation."""
    h, w = size
    out, _ = resample_axis(img, np.arange(img.shape[0], dtype=float), h, axis=0)
    out, _ = resample_axis(out, np.arange(img.shape[1], dtype=float), w, axis=1)
    return out


def _iq_image(sig: np.ndarray, path: Path, opts: ImportOptions):
    """Complex slow-time IQ -> the simulate pipeline's STFT image, with calibrated axes."""
    from mdcli.sim.config import SimulateConfig
    from mdcli.sim.dataset import spectrogram_image

    if not opts.iq_rate:
        raise MdcliError(f"{path}: complex 1-D IQ needs --iq-rate (the slow-time sampling rate in Hz)")
    if not np.isfinite(sig).all():
        raise MdcliError(f"{path}: contains NaN or inf values")
    cfg = SimulateConfig()
    cfg.radar.prf_hz = opts.iq_rate
    cfg.processing.dynamic_range_db = opts.dynamic_range_db
    if opts.image_size is not None:
        cfg.processing.image_size = list(opts.image_size)
    win = min(cfg.processing.win_len, len(sig))
    cfg.processing.win_len = win
    cfg.processing.nfft = max(win, cfg.processing.nfft)
    img, doppler, time = spectrogram_image(sig.astype(np.complex128), cfg)
    return img, (doppler, time)


def import_export_file(path: Path, opts: ImportOptions) -> Spectrograms:
    """Re-import a single .npz / .mat written by `mdcli export` (spectrograms, labels, class_names, axes)."""
    try:
        if path.suffix.lower() == ".npz":
            import zipfile

            from mdcli.artifacts import check_fits

            with zipfile.ZipFile(path) as zf:  # the sizes the archive declares, before anything is inflated
                check_fits(sum(i.file_size for i in zf.infolist()), f"reading {path}")
            with np.load(path, allow_pickle=False) as z:
                d = {k: z[k] for k in z.keys()}
        else:
            from scipy.io import loadmat

            d = loadmat(path, squeeze_me=True)
    except ValueError as e:
        if "pickle" in str(e):
            raise MdcliError(f"{path}: {NOT_NUMPY}") from None
        raise MdcliError(f"{path}: unreadable file ({type(e).__name__}: {e})") from None
    except MdcliError:
        raise
    except Exception as e:  # noqa: BLE001 - a foreign file: whatever its parser raises is the user's to fix
        raise MdcliError(f"{path}: unreadable file ({type(e).__name__}: {e})") from None
    missing = [k for k in ("spectrograms", "labels", "class_names") if k not in d]
    if missing:
        raise MdcliError(f"{path}: not an mdcli export (missing {', '.join(missing)}); import a folder with one subfolder per class instead")
    try:
        x = np.asarray(d["spectrograms"], dtype=np.float32)
        labels = np.atleast_1d(np.asarray(d["labels"]))
    except (TypeError, ValueError) as e:
        raise MdcliError(f"{path}: 'spectrograms' or 'labels' is not numeric ({e})") from None
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3:
        raise MdcliError(f"{path}: 'spectrograms' has shape {x.shape}, expected [N, Doppler, time]")
    if not np.isfinite(x).all():
        raise MdcliError(f"{path}: contains NaN or inf values")
    names = [str(c) for c in np.atleast_1d(d["class_names"])]
    if len(labels) != len(x):
        raise MdcliError(f"{path}: {len(labels)} labels for {len(x)} spectrograms")
    if not np.issubdtype(labels.dtype, np.integer) or (len(labels) and (labels.min() < 0 or labels.max() >= len(names))):
        raise MdcliError(f"{path}: labels must be integers 0..{len(names) - 1}, one per class name ({', '.join(names)})")
    calibrated = bool(np.atleast_1d(d.get("axes_calibrated", [True]))[0])
    doppler, time = (np.atleast_1d(d[k]).astype(float) if k in d else None for k in ("doppler_hz", "time_s"))
    if doppler is None or time is None:  # no axes: an uncalibrated 0..1 range, as for a folder of images
        doppler, time, calibrated = np.linspace(0.0, 1.0, x.shape[1]), np.linspace(0.0, 1.0, x.shape[2]), False
    if doppler.shape != (x.shape[1],) or time.shape != (x.shape[2],):
        raise MdcliError(f"{path}: axes of {len(doppler)} and {len(time)} points do not match {x.shape[1]}x{x.shape[2]} spectrograms")
    try:
        radar = {k: float(np.asarray(d.get(k, np.nan)).reshape(-1)[0]) for k in ("carrier_hz", "prf_hz", "dynamic_range_db")}
    except (TypeError, ValueError, IndexError):
        raise MdcliError(f"{path}: carrier_hz, prf_hz or dynamic_range_db is not a number") from None
    return Spectrograms(
        spectrograms=x, labels=labels.astype(np.int64), class_names=names,
        doppler_hz=doppler, time_s=time, **radar, source="imported",
        axes_calibrated=calibrated, source_files=[str(path)] * len(x), sequence=np.arange(len(x)),
        transform={"from_export": str(path)},
    )
