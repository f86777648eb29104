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
from typing import Iterator

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


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path beside `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        raise MdcliError(f"output {path}: folder {folder} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=folder)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_h5(path: str | Path) -> Iterator[h5py.File]:
    """Open a temp HDF5 file beside `path`; rename it onto `path` only if the block succeeds."""
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            yield f


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


@contextlib.contextmanager
def open_artifact(path: str | Path, kinds: str | tuple[str, ...] | None = None) -> Iterator[h5py.File]:
    """Open an artifact read-only after checking it is a readable mdcli file of an accepted kind."""
    path = Path(path)
    if not path.exists():
        raise ArtifactError(f"{path}: file not found")
    if path.is_dir():
        raise ArtifactError(f"{path}: is a folder, expected an HDF5 file")
    if not h5py.is_hdf5(path):
        raise ArtifactError(f"{path}: not an HDF5 file")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise ArtifactError(f"{path}: cannot open HDF5 file (truncated or corrupt?): {e}") from None
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
        version = int(f.attrs.get("schema_version", -1))
        if version > SCHEMA_VERSIONS[kind]:
            raise ArtifactError(
                f"{path}: schema version {version} of '{kind}' is newer than this mdcli "
                f"({__version__}) reads (≤ {SCHEMA_VERSIONS[kind]}); upgrade mdcli"
            )
        yield f
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
            try:
                iq, iq_rate = None, None
                if with_iq and "iq" in f:
                    iq = f["iq"][()]
                    iq_rate = float(f["iq"].attrs["iq_rate_hz"])
                return cls(
                    spectrograms=f["spectrograms"][()],
                    labels=f["labels"][()],
                    class_names=[_s(c) for c in f.attrs["class_names"]],
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
    with open_artifact(path) as f:
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
            names = [_s(c) for c in f.attrs["class_names"]]
            counts = np.bincount(f["labels"][()], minlength=len(names))
            info["classes"] = {n: int(c) for n, c in zip(names, counts)}
        info["file_sha256"] = sha256_file(path)
    return info


def save_model(path: str | Path, kind: str, config_yaml: str, seed: int, parents: list[dict],
               state: dict, attrs: dict) -> None:
    """A trained network: /weights/<param> datasets plus JSON-able attributes (no pickle)."""
    with atomic_h5(path) as f:
        write_header(f, kind, config_yaml, seed, parents)
        for k, v in attrs.items():
            f.attrs[k] = json.dumps(v) if isinstance(v, (dict, list)) else v
        g = f.create_group("weights")
        for name, t in state.items():
            arr = t.detach().cpu()
            g.create_dataset(name, data=arr.float().numpy() if arr.is_floating_point() else arr.numpy())


def load_model(path: str | Path, kind: str) -> tuple[dict, dict, dict]:
    """-> (header, attrs with JSON decoded, {param: numpy array})."""
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
    return header, attrs, weights
