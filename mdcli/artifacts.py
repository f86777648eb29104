"""HDF5 artifacts: the contract between pipeline stages.

Every artifact carries root attributes `kind`, `schema_version`, `mdcli_version`,
`created_utc`, `seed`, `config` (resolved YAML) and `parents` (JSON list of
{path, sha256} of each input artifact). Files are written to a temp file in the
same folder and renamed into place, so a killed run never leaves a corrupt file.
Everything is plain HDF5 (numbers, fixed arrays, UTF-8 strings): readable from
MATLAB's `h5read` / `h5readatt` and plain h5py; nothing is pickled.
"""

from __future__ import annotations

import dataclasses

import contextlib
import datetime as _dt
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, NamedTuple

import h5py
import numpy as np

from mdcli import __version__
from mdcli.errors import ArtifactError, MdcliError

# Current schema version of each artifact kind; bump when the layout changes.
SCHEMA_VERSIONS = {
    "spectrograms": 1,
    "autoencoder": 1,
    "latents": 1,
    "ldm": 1,
    "classifier": 1,
    "checkpoint": 1,
}

SOURCES = ("simulated", "imported", "generated")


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def tree_sha256(folder: str | Path, pattern: str = "*") -> str:
    """sha256 of the files matching `pattern` under `folder` (relative names and contents); a missing folder
    gives the digest of nothing."""
    folder = Path(folder)
    h = hashlib.sha256()
    for p in sorted(folder.rglob(pattern)) if folder.is_dir() else []:
        if p.is_file():
            h.update(p.relative_to(folder).as_posix().encode() + b"\0" + bytes.fromhex(sha256_file(p)))
    return h.hexdigest()


def parent_record(path: str | Path) -> dict:
    """Lineage entry of an input artifact: its path and content hash."""
    p = Path(path)
    return {"path": str(p), "sha256": sha256_file(p)}


TEMP_MARK = ".tmp"  # temp files are `.<name>.<random>.tmp<suffix>` beside the output


def temp_files(path: str | Path) -> list[Path]:
    """Temp files an atomic write of `path` leaves behind when its process is killed (kill -9)."""
    path = Path(path)
    prefix = f".{path.name}."
    try:
        return [p for p in path.parent.iterdir() if p.name.startswith(prefix) and TEMP_MARK in p.name[len(prefix):]]
    except OSError:
        return []


def io_error(e: OSError, path: Path, needed: int | None = None) -> MdcliError:
    """A failed write as one actionable line: what failed, where, and for a full disk how much space it needed."""
    import errno
    import shutil

    folder = Path(path).parent
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        try:
            free = shutil.disk_usage(folder).free
        except OSError:
            free = None
        need = f"; it needs about {_mb(needed)}" if needed else ""
        have = f", {_mb(free)} free" if free is not None else ""
        return MdcliError(f"writing {path}: no space left on device ({folder}{have}{need}); free some space and run again")
    if e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return MdcliError(f"writing {path}: folder {folder} is not writable ({e.strerror})")
    return MdcliError(f"writing {path}: {e.strerror or e}")


def _mb(n: int | None) -> str:
    return "?" if n is None else f"{n / 2**20:.1f} MiB" if n < 2**30 else f"{n / 2**30:.2f} GiB"


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path beside `path`; rename it onto `path` only if the block succeeds.

    A failed write (full disk, read-only folder) removes the temp file and raises one `MdcliError` line;
    whatever was at `path` before (the last good checkpoint, say) is left as it was.
    """
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        raise MdcliError(f"output {path}: folder {folder} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f"{TEMP_MARK}{path.suffix}", dir=folder)
    except OSError as e:
        raise io_error(e, path) from None
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(e, OSError) and e.errno is not None:
            raise io_error(e, path) from None
        raise


def write_file(path: Path, data) -> None:
    """Write bytes to `path` (one call: the place a full disk shows up, as OSError ENOSPC)."""
    with open(path, "wb") as f:
        f.write(data)


@contextlib.contextmanager
def atomic_h5(path: str | Path) -> Iterator[h5py.File]:
    """An HDF5 file built in memory, then written beside `path` and renamed onto it if the block succeeds.

    Building the file image in memory (HDF5's core driver) keeps HDF5's own writes off the disk: a full disk
    fails the one plain write of the finished image (one line, temp file removed) instead of failing inside
    the HDF5 library, which on ENOSPC prints pages of errors and can crash the process.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        f = h5py.File(str(tmp), "w", driver="core", backing_store=False)
        try:
            yield f
            f.flush()
            image = f.id.get_file_image()
        finally:
            f.close()
        try:
            write_file(tmp, image)
        except OSError as e:
            raise io_error(e, path, len(image)) from None


def write_header(
    f: h5py.File, kind: str, config_yaml: str, seed: int, parents: list[dict] | None = None
) -> None:
    f.attrs["kind"] = kind
    f.attrs["schema_version"] = SCHEMA_VERSIONS[kind]
    f.attrs["mdcli_version"] = __version__
    f.attrs["created_utc"] = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    f.attrs["seed"] = int(seed)
    f.attrs["config"] = config_yaml
    f.attrs["parents"] = json.dumps(parents or [])


def _attr_str(f: h5py.File, name: str, default: str | None = None) -> str | None:
    v = f.attrs.get(name, default)
    if isinstance(v, bytes):
        v = v.decode()
    return None if v is None else str(v)


# Datasets each kind must hold (the structure every reader relies on; checked when a file is opened).
REQUIRED = {
    "spectrograms": ("spectrograms", "labels", "axes/doppler_hz", "axes/time_s"),
    "latents": ("latents", "labels"),
    "autoencoder": ("weights",),
    "ldm": ("weights",),
    "classifier": ("weights",),
    "checkpoint": ("modules",),
}


def available_memory() -> int:
    """Bytes of memory this process can still use (MemAvailable; the physical total where that is unknown)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 1 << 62


def check_fits(nbytes: float, what: str, hint: str = "") -> None:
    """Refuse work whose arrays would not fit in memory (estimated before anything is allocated)."""
    avail = available_memory()
    if nbytes > 0.8 * avail:
        raise MdcliError(f"{what} needs about {_mb(int(nbytes))} of memory, but only {_mb(avail)} is available"
                         + (f"; {hint}" if hint else ""))


def _header_error(path: Path, what: str) -> ArtifactError:
    return ArtifactError(f"{path}: damaged artifact header: {what}")


def _check_header(f: h5py.File, path: Path, kind: str) -> None:
    """The root attributes every artifact has: a numeric schema version, JSON lineage, a config text."""
    try:
        version = int(np.asarray(f.attrs.get("schema_version", -1)).item())
    except (TypeError, ValueError):
        raise _header_error(path, f"schema_version {f.attrs.get('schema_version')!r} is not a number") from None
    if version > SCHEMA_VERSIONS[kind]:
        raise ArtifactError(
            f"{path}: schema version {version} of '{kind}' is newer than this mdcli "
            f"({__version__}) reads (≤ {SCHEMA_VERSIONS[kind]}); upgrade mdcli"
        )
    try:
        parents = json.loads(_attr_str(f, "parents", "[]"))
    except (json.JSONDecodeError, ValueError):
        raise _header_error(path, "'parents' is not JSON") from None
    if not isinstance(parents, list) or not all(
        isinstance(p, dict) and isinstance(p.get("path"), str) and isinstance(p.get("sha256"), str) for p in parents
    ):
        raise _header_error(path, "'parents' is not a list of {path, sha256} records")
    config = f.attrs.get("config", "")
    if not isinstance(config, (str, bytes)):
        raise _header_error(path, "'config' is not text")


def _check_structure(f: h5py.File, path: Path, kind: str) -> None:
    """The datasets a reader of `kind` needs, with consistent shapes and labels inside the class list."""
    missing = [name for name in REQUIRED[kind] if name not in f]
    if missing:
        raise ArtifactError(f"{path}: not a complete {kind} artifact (no /{missing[0]}); write it again with mdcli")
    if kind not in ("spectrograms", "latents"):
        return
    data = f["spectrograms" if kind == "spectrograms" else "latents"]
    labels = f["labels"]
    if not isinstance(data, h5py.Dataset) or not isinstance(labels, h5py.Dataset):
        raise ArtifactError(f"{path}: damaged '{kind}' artifact: /{data.name} or /labels is not a dataset")
    if data.ndim != (3 if kind == "spectrograms" else 4) or labels.shape != data.shape[:1]:
        raise ArtifactError(f"{path}: damaged '{kind}' artifact: data {data.shape} and labels {labels.shape} do not match")
    if data.shape[0] == 0:  # mdcli never writes one (Spectrograms.save refuses); every reader needs at least one
        raise ArtifactError(f"{path}: holds no {kind}")
    if kind == "spectrograms":
        n, nf, nt = data.shape
        if f["axes/doppler_hz"].shape != (nf,) or f["axes/time_s"].shape != (nt,):
            raise ArtifactError(f"{path}: damaged 'spectrograms' artifact: axes do not match the {nf}x{nt} images")
    try:
        names = class_names(f)
    except (KeyError, TypeError, ValueError, UnicodeDecodeError):
        raise ArtifactError(f"{path}: damaged '{kind}' artifact: no readable 'class_names' attribute") from None
    lab = labels[()]
    if lab.size and (not np.issubdtype(lab.dtype, np.integer) or lab.min() < 0 or lab.max() >= len(names)):
        bad = int(np.flatnonzero(~np.isin(lab, np.arange(len(names))))[0]) if np.issubdtype(lab.dtype, np.integer) else 0
        raise ArtifactError(f"{path}: sample {bad} has label {lab[bad].item()!r}, outside the {len(names)} classes {', '.join(names)}")


_FINITE_OK: set[tuple] = set()  # (resolved path, mtime, size) of files whose values were checked this process


def _check_finite(f: h5py.File, path: Path, kind: str) -> None:
    """A NaN or inf pixel or latent is an error naming the file and the first bad sample (scanned once per file)."""
    if kind not in ("spectrograms", "latents"):
        return
    st = path.stat()
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    if key in _FINITE_OK:
        return
    ds = f["spectrograms" if kind == "spectrograms" else "latents"]
    step = max(1, (64 << 20) // max(1, int(np.prod(ds.shape[1:])) * 4))  # ~64 MiB a block
    for i in range(0, ds.shape[0], step):
        block = np.asarray(ds[i : i + step])
        ok = np.isfinite(block.reshape(len(block), -1)).all(1)
        if not ok.all():
            raise ArtifactError(f"{path}: sample {i + int(np.flatnonzero(~ok)[0])} holds NaN or inf values; "
                                "fix or drop it before using the file")
    _FINITE_OK.add(key)


def class_names(f: h5py.File) -> list[str]:
    """The class names stored with an artifact (an HDF5 string array, or JSON text in model attributes)."""
    v = f.attrs["class_names"]
    if isinstance(v, (str, bytes)):
        v = json.loads(_s(v))
    return [_s(c) for c in v]


_READ_ERRORS = (KeyError, OSError, json.JSONDecodeError)


@contextlib.contextmanager
def open_artifact(path: str | Path, kinds: str | tuple[str, ...] | None = None,
                  check_values: bool = True, header_only: bool = False) -> Iterator[h5py.File]:
    """Open an artifact read-only after checking it is a readable mdcli file of an accepted kind.

    The one validated way in: the header (kind, numeric schema version, JSON lineage), the datasets its kind
    needs with consistent shapes and labels inside the class list, and (check_values) finite values. A
    damaged or crafted file raises one `ArtifactError` line; so does an h5py read error inside the block.
    header_only: check the header alone (a lineage walk reads no datasets).
    """
    path = Path(path)
    if not path.exists():
        raise ArtifactError(f"{path}: file not found")
    if path.is_dir():
        raise ArtifactError(f"{path}: is a folder, expected an HDF5 file")
    try:
        hdf5 = h5py.is_hdf5(path)
    except OSError as e:
        raise ArtifactError(f"{path}: cannot read ({e.strerror or e})") from None
    if not hdf5:
        raise ArtifactError(f"{path}: not an HDF5 file")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise ArtifactError(f"{path}: cannot open HDF5 file (truncated or corrupt?): {e}") from None
    try:
        try:
            kind = _attr_str(f, "kind")
            if kind is None:
                raise ArtifactError(f"{path}: not an mdcli artifact (no 'kind' attribute)")
            if kind not in SCHEMA_VERSIONS:
                raise ArtifactError(f"{path}: unknown artifact kind '{kind}'")
            if isinstance(kinds, str):
                kinds = (kinds,)
            if kinds and kind not in kinds:
                raise ArtifactError(f"{path}: is a '{kind}' artifact, expected {' or '.join(kinds)}")
            _check_header(f, path, kind)
            if not header_only:
                _check_structure(f, path, kind)
            if check_values and not header_only:
                _check_finite(f, path, kind)
        except _READ_ERRORS as e:
            raise ArtifactError(f"{path}: damaged artifact ({type(e).__name__}: {e})") from None
        try:
            yield f
        except _READ_ERRORS as e:
            raise ArtifactError(f"{path}: damaged '{kind}' artifact ({type(e).__name__}: {e})") from None
    finally:
        f.close()


def read_header(f: h5py.File) -> dict:
    return {
        "kind": _attr_str(f, "kind"),
        "schema_version": int(f.attrs.get("schema_version", -1)),
        "mdcli_version": _attr_str(f, "mdcli_version"),
        "created_utc": _attr_str(f, "created_utc"),
        "seed": int(f.attrs.get("seed", -1)),
        "config": _attr_str(f, "config", ""),
        "parents": json.loads(_attr_str(f, "parents", "[]")),
    }


def stored_config(header: dict, path: str | Path) -> dict:
    """The resolved config an artifact was made with, parsed as plain YAML (tags such as !!python are refused)."""
    import yaml

    from mdcli.config import load_yaml

    try:
        cfg = load_yaml(header["config"] or "") or {}
    except yaml.YAMLError as e:
        raise ArtifactError(f"{path}: its stored config is not plain YAML ({type(e).__name__})") from None
    if not isinstance(cfg, dict):
        raise ArtifactError(f"{path}: its stored config is not a mapping of options")
    return cfg


@dataclass
class Spectrograms:
    """A labelled set of micro-Doppler spectrograms (simulated, imported or generated).

    spectrograms: float32 [N, F, T] in [0, 1]; 1 = the sample's peak, 0 = the floor
    `dynamic_range_db` below it, dB-linear in between. doppler_hz [F] ascending
    (positive = approaching), time_s [T]. params: per-sample physical parameters
    (NaN where they do not apply).
    """

    spectrograms: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    doppler_hz: np.ndarray
    time_s: np.ndarray
    carrier_hz: float
    prf_hz: float
    dynamic_range_db: float
    source: str
    params: dict[str, np.ndarray] = field(default_factory=dict)
    iq: np.ndarray | None = None
    iq_rate_hz: float | None = None
    axes_calibrated: bool = True  # False: axes are a normalised 0..1 range (imported data without axes)
    source_files: list[str] | None = None  # imported: the file each sample came from, in order
    sequence: np.ndarray | None = None  # imported: numeric key in the file name (-1 when none)
    transform: dict | None = None  # imported: how inputs were brought to the [0, 1] image convention

    def __post_init__(self) -> None:
        n, nf, nt = self.spectrograms.shape
        if self.labels.shape != (n,):
            raise ValueError(f"labels shape {self.labels.shape} != ({n},)")
        if self.doppler_hz.shape != (nf,) or self.time_s.shape != (nt,):
            raise ValueError("axes do not match the spectrogram shape")
        if self.source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}")

    def __len__(self) -> int:
        return len(self.labels)

    def select(self, idx: np.ndarray) -> "Spectrograms":
        """The samples at `idx` (in that order), with their parameters and provenance."""
        idx = np.asarray(idx, dtype=np.int64)
        return dataclasses.replace(
            self, spectrograms=self.spectrograms[idx], labels=self.labels[idx],
            params={k: np.asarray(v)[idx] for k, v in self.params.items()},
            iq=self.iq[idx] if self.iq is not None else None,
            source_files=[self.source_files[i] for i in idx] if self.source_files is not None else None,
            sequence=self.sequence[idx] if self.sequence is not None else None,
        )

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=len(self.class_names))
        return {name: int(c) for name, c in zip(self.class_names, counts)}

    def save(self, path: str | Path, config_yaml: str, seed: int, parents: list[dict] | None = None,
             attrs: dict | None = None) -> None:
        n, nf, nt = self.spectrograms.shape
        if n == 0:  # every reader refuses an empty file: it is not written
            raise MdcliError(f"{path}: no spectrograms to write (the selection is empty); nothing written")
        with atomic_h5(path) as f:
            write_header(f, "spectrograms", config_yaml, seed, parents)
            for key, value in (attrs or {}).items():
                f.attrs[key] = value
            f.attrs["class_names"] = np.array(self.class_names, dtype=h5py.string_dtype())
            f.attrs["carrier_hz"] = float(self.carrier_hz)
            f.attrs["prf_hz"] = float(self.prf_hz)
            f.attrs["dynamic_range_db"] = float(self.dynamic_range_db)
            f.attrs["source"] = self.source
            # One chunk per sample: training reads batches without loading the whole set.
            f.create_dataset(
                "spectrograms", data=self.spectrograms.astype(np.float32),
                chunks=(1, nf, nt) if n else None, compression="gzip", compression_opts=4, shuffle=True,
            )
            f.create_dataset("labels", data=self.labels.astype(np.int64))
            axes = f.create_group("axes")
            axes.create_dataset("doppler_hz", data=self.doppler_hz.astype(np.float64))
            axes.create_dataset("time_s", data=self.time_s.astype(np.float64))
            params = f.create_group("params")
            for name, values in self.params.items():
                params.create_dataset(name, data=np.asarray(values, dtype=np.float64))
            if self.iq is not None:
                ds = f.create_dataset("iq", data=self.iq.astype(np.complex64), chunks=(1, self.iq.shape[1]))
                ds.attrs["iq_rate_hz"] = float(self.iq_rate_hz)
            axes.attrs["calibrated"] = bool(self.axes_calibrated)
            if self.source_files is not None:
                f.create_dataset("source_files", data=np.array(self.source_files, dtype=h5py.string_dtype()))
            if self.sequence is not None:
                f.create_dataset("sequence", data=np.asarray(self.sequence, dtype=np.int64))
            if self.transform is not None:
                f.attrs["import_transform"] = json.dumps(self.transform)

    @classmethod
    def load(cls, path: str | Path, with_iq: bool = False) -> "Spectrograms":
        with open_artifact(path, "spectrograms") as f:
            check_fits(f["spectrograms"].shape[0] * np.prod(f["spectrograms"].shape[1:]) * 4 * 2, f"loading {path}")
            try:
                iq, iq_rate = None, None
                if with_iq and "iq" in f:
                    iq = f["iq"][()]
                    iq_rate = float(f["iq"].attrs["iq_rate_hz"])
                return cls(
                    spectrograms=f["spectrograms"][()],
                    labels=f["labels"][()],
                    class_names=class_names(f),
                    doppler_hz=f["axes/doppler_hz"][()],
                    time_s=f["axes/time_s"][()],
                    carrier_hz=float(f.attrs["carrier_hz"]),
                    prf_hz=float(f.attrs["prf_hz"]),
                    dynamic_range_db=float(f.attrs["dynamic_range_db"]),
                    source=_attr_str(f, "source"),
                    params={k: v[()] for k, v in f["params"].items()},
                    iq=iq,
                    iq_rate_hz=iq_rate,
                    axes_calibrated=bool(f["axes"].attrs.get("calibrated", True)),
                    source_files=[_s(v) for v in f["source_files"][()]] if "source_files" in f else None,
                    sequence=f["sequence"][()] if "sequence" in f else None,
                    transform=json.loads(_attr_str(f, "import_transform")) if "import_transform" in f.attrs else None,
                )
            except (KeyError, OSError, ValueError) as e:
                raise ArtifactError(f"{path}: damaged 'spectrograms' artifact: {e}") from None


def _s(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def describe(path: str | Path) -> dict:
    """Summary of any artifact for `mdcli info`: header, datasets and shapes, classes."""
    with open_artifact(path, check_values=False) as f:
        info = read_header(f)
        datasets = {}

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                datasets[name] = {"shape": list(obj.shape), "dtype": str(obj.dtype)}

        f.visititems(visit)
        info["datasets"] = datasets
        attrs = {}
        skip = {"kind", "schema_version", "mdcli_version", "created_utc", "seed", "config", "parents"}
        for k, v in f.attrs.items():
            if k in skip:
                continue
            if isinstance(v, np.ndarray):
                v = [_s(x) if isinstance(x, (bytes, str)) else x.item() for x in v]
            elif isinstance(v, bytes):
                v = v.decode()
            elif isinstance(v, np.generic):
                v = v.item()
            attrs[k] = v
        info["attrs"] = attrs
        if "labels" in f and "class_names" in f.attrs:
            names = class_names(f)
            counts = np.bincount(f["labels"][()], minlength=len(names))
            info["classes"] = {n: int(c) for n, c in zip(names, counts)}
        info["file_sha256"] = sha256_file(path)
    return info


def save_model(path: str | Path, kind: str, config_yaml: str, seed: int, parents: list[dict],
               state: dict, attrs: dict, tables: dict[str, np.ndarray] | None = None) -> None:
    """A trained network: /weights/<param> datasets plus JSON-able attributes (no pickle); `tables`: arrays the
    model's users need beside its weights, as /tables/<name> (an LDM's kinematic conditions, `read_tables`)."""
    with atomic_h5(path) as f:
        write_header(f, kind, config_yaml, seed, parents)
        for k, v in attrs.items():
            f.attrs[k] = json.dumps(v) if isinstance(v, (dict, list)) else v
        for name, arr in (tables or {}).items():
            f.create_dataset(f"tables/{name}", data=np.asarray(arr))
        g = f.create_group("weights")
        for name, t in state.items():
            arr = t.detach().cpu()
            g.create_dataset(name, data=arr.float().numpy() if arr.is_floating_point() else arr.numpy())


class Model(NamedTuple):
    """A trained network's artifact (kind `autoencoder`, `ldm` or `classifier`; docs/artifacts.md): the header,
    the attributes with JSON decoded (arch, shapes, class names, metrics, history, ...), the weights by parameter
    name. Unpacks as (header, attrs, weights)."""

    header: dict
    attrs: dict
    weights: dict


def load_model(path: str | Path, kind: str) -> Model:
    """A network's artifact of `kind` (one line naming the file when it is not one)."""
    with open_artifact(path, kind) as f:
        header = read_header(f)
        attrs = {}
        for k, v in f.attrs.items():
            if k in header or k == "parents":
                continue
            if isinstance(v, bytes):
                v = v.decode()
            if isinstance(v, str) and v[:1] in "[{":
                try:
                    v = json.loads(v)
                except json.JSONDecodeError:
                    pass
            elif isinstance(v, np.generic):
                v = v.item()
            attrs[k] = v
        if "weights" not in f:
            raise ArtifactError(f"{path}: damaged '{kind}' artifact: no /weights")
        weights = {k: ds[()] for k, ds in f["weights"].items()}
    return Model(header, attrs, weights)


def read_tables(path: str | Path, kind: str) -> dict[str, np.ndarray]:
    """The /tables of a network's artifact (`save_model`); empty when it has none."""
    with open_artifact(path, kind) as f:
        if "tables" not in f:
            return {}
        if not isinstance(f["tables"], h5py.Group) or not all(isinstance(v, h5py.Dataset) for v in f["tables"].values()):
            raise ArtifactError(f"{path}: damaged '{kind}' artifact: /tables must be a group of datasets")
        return {k: ds[()] for k, ds in f["tables"].items()}


def stored_config_of(cls: type, header: dict, path: str | Path):
    """The stage config dataclass an artifact was made with; a damaged or crafted config is one line naming the file."""
    from mdcli.config import from_dict

    try:
        return from_dict(cls, stored_config(header, path))
    except MdcliError as e:
        raise ArtifactError(f"{path}: its stored config is invalid: {e}") from None


def build_and_load(path: str | Path, kind: str, build, weights: dict, strict: bool = True):
    """`build()` the network an artifact's config describes and load its weights; a mismatch is one line.
    strict=False: parameters missing from `weights` keep their fresh values (a new head on a loaded body)."""
    import torch

    try:
        module = build()
        module.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in weights.items()}, strict=strict)
    except (RuntimeError, ValueError, TypeError, KeyError, IndexError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ArtifactError(f"{path}: damaged '{kind}' artifact: its weights do not fit the network its config "
                            f"describes ({first[:200]})") from None
    return module


def read_lineage(path: str | Path) -> dict:
    """An artifact's header alone (kind, config, parents...), for walking a lineage: one `ArtifactError` line if the
    header is damaged; the datasets are not read."""
    with open_artifact(path, header_only=True) as f:
        return read_header(f)


def locate_parent(rec: dict, child: str | Path) -> Path:
    """Where a lineage entry's file is now: its recorded path, else (when that is gone, e.g. it was relative to
    another working folder, or the run folder moved) the file of that name beside `child`, if its content hash is
    the recorded one. Returns the recorded path when neither is found (callers report it)."""
    p = Path(rec["path"])
    if p.exists():
        return p
    near = Path(child).parent / p.name
    if near.is_file() and rec.get("sha256") and sha256_file(near) == rec["sha256"]:
        return near
    return p


def parent_of(path: Path, kind: str) -> Path | None:
    """The input of `kind` that `path` was made from, if it is still on disk unchanged."""
    try:
        with open_artifact(path, header_only=True) as f:
            parents = read_header(f)["parents"]
    except MdcliError:
        return None
    for rec in parents:
        p = locate_parent(rec, path)
        try:
            with open_artifact(p, header_only=True) as f:
                if read_header(f)["kind"] != kind:
                    continue
        except MdcliError:
            continue
        if sha256_file(p) == rec["sha256"]:
            return p
    return None
