"""Output safety: a command never writes over its own inputs, never replaces a file of another kind without
`--force`, and holds a lock on each output while it runs, so a second writer is refused.

The CLI declares, per command, which options are outputs and what kind each writes (`guard_outputs`); every
other path option is an input. Checks run before any work or progress output starts.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from pathlib import Path
from typing import Iterator

from mdcli.artifacts import SCHEMA_VERSIONS, temp_files
from mdcli.errors import MdcliError

# File signatures of the non-HDF5 outputs, so an existing file of the expected format may be replaced.
SIGNATURES = {
    "png": (b"\x89PNG\r\n\x1a\n",),
    "npz": (b"PK\x03\x04", b"PK\x05\x06"),
    "mat": (b"MATLAB",),
    "json": (b"{", b"["),
    "md": (b"<!-- mdcli",),  # a generated Markdown report (diagnose gain --md-out)
}
STALE_UNREADABLE_LOCK_S = 60.0  # a lock file without a readable owner (killed while writing it) older than this is stale


def _same(a: Path, b: Path) -> bool:
    """Same file: same inode where both exist (hard and symbolic links included), else the same resolved path."""
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def _is_json(path: Path) -> bool:
    """A '{' or '[' starts many text formats (a TOML table, an INI section): only a file that parses is JSON."""
    try:
        json.loads(path.read_bytes())
    except (OSError, ValueError):
        return False
    return True


def existing_kind(path: Path) -> str:
    """What `path` holds now, in words: an artifact kind, a format, or 'a file that is not an mdcli artifact'."""
    import h5py

    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError:
        return "an unreadable file"
    for fmt, sigs in SIGNATURES.items():
        if any(head.startswith(s) for s in sigs) and (fmt != "json" or _is_json(path)):
            return fmt
    try:
        if h5py.is_hdf5(path):
            with h5py.File(path, "r") as f:
                kind = f.attrs.get("kind")
                kind = kind.decode() if isinstance(kind, bytes) else kind
            return kind if kind in SCHEMA_VERSIONS else "an HDF5 file that is not an mdcli artifact"
    except (OSError, RuntimeError):
        return "a damaged HDF5 file"
    return "a file that is not an mdcli artifact" if head else "an empty file"


def check_outputs(outputs: dict[str, tuple[Path, str | None]], inputs: dict[str, Path], force: bool = False) -> None:
    """Refuse (one line, nothing written) when an output is one of the inputs, two outputs are the same file, or an
    existing output is not of the kind being written (unless `force`).

    outputs: option name -> (path, kind written: an artifact kind, 'png', 'npz', 'mat', or None for a folder).
    inputs: option name -> path of every file the command reads.
    """
    for oname, (out, _) in outputs.items():
        for iname, inp in inputs.items():
            if _same(out, inp):
                raise MdcliError(f"{oname} {out} is the input {iname} {inp}: mdcli never writes over its own inputs; "
                                 "choose another output name")
    names = list(outputs)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if _same(outputs[a][0], outputs[b][0]):
                raise MdcliError(f"{a} and {b} are the same file ({outputs[a][0]}); give each output its own name")
    for oname, (out, kind) in outputs.items():
        if kind is None or not out.exists() or out.is_dir() or force:
            continue
        now = existing_kind(out)
        if now != kind:
            what = f"{'an' if now[0] in 'aeiou' else 'a'} '{now}' artifact" if now in SCHEMA_VERSIONS else f"a .{now} file" if now in SIGNATURES else now
            raise MdcliError(f"{oname} {out}: exists and is {what}, not the '{kind}' this command writes; "
                             "pass --force to replace it, or choose another name")


def lock_path(output: Path) -> Path:
    return output.with_name(f".{output.name}.lock")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _owner(lock: Path) -> dict | None:
    """The running process holding `lock`, or None when the lock is stale (its process is gone)."""
    try:
        owner = json.loads(lock.read_text())
        pid, host = int(owner["pid"]), str(owner["host"])
    except (OSError, ValueError, KeyError, TypeError):
        try:
            return None if time.time() - lock.stat().st_mtime > STALE_UNREADABLE_LOCK_S else {"pid": "?", "host": "?"}
        except OSError:
            return None
    if host == socket.gethostname() and not _alive(pid):
        return None
    return owner


@contextlib.contextmanager
def output_lock(output: Path) -> Iterator[None]:
    """Hold `.<name>.lock` beside `output` for the block: a second writer of the same output is refused while
    the first runs. A lock whose process is gone (killed) is stale and taken over; with it go the temp files
    that killed run left."""
    from mdcli.artifacts import io_error

    lock = lock_path(output)
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            break
        except FileExistsError:
            owner = _owner(lock)
            if owner is not None:
                raise MdcliError(f"--output {output}: another mdcli run (pid {owner['pid']} on {owner['host']}) is writing "
                                 f"it; wait for it to finish, or delete {lock} if that run is gone") from None
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()
        except OSError as e:
            raise io_error(e, output) from None
    else:
        raise MdcliError(f"--output {output}: cannot take the lock {lock}")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump({"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}, f)
        for tmp in temp_files(output) + temp_files(output.with_name(output.name + ".ckpt")):
            with contextlib.suppress(OSError):
                tmp.unlink()  # left by a killed run of this output: nobody else writes it while we hold the lock
        yield
    finally:
        with contextlib.suppress(OSError):
            lock.unlink()


def is_secondary_rank() -> bool:
    """Under torchrun every rank runs the command; rank 0 alone writes, so it alone takes the locks."""
    return os.environ.get("RANK", "0") not in ("", "0")


@contextlib.contextmanager
def guard_outputs(outputs: dict[str, tuple[Path, str | None]], inputs: dict[str, Path], force: bool = False) -> Iterator[None]:
    """`check_outputs`, then hold a lock on every file output for the block (rank 0 only under torchrun)."""
    check_outputs(outputs, inputs, force)
    created: list[Path] = []  # folders made here for the outputs: removed again if the command fails
    try:
        with contextlib.ExitStack() as stack:
            if not is_secondary_rank():
                for oname, (out, kind) in outputs.items():
                    if kind is None:  # a folder output (export --format png) is created atomically by rename
                        continue
                    if out.exists() and out.is_dir():
                        raise MdcliError(f"{oname} {out}: is a folder, expected a file name")
                    _make_folder(out.parent, created)
                    stack.enter_context(output_lock(out))
            yield
    except BaseException:
        for folder in reversed(created):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if still empty
        raise


def _make_folder(folder: Path, created: list[Path]) -> None:
    from mdcli.artifacts import io_error

    missing = []
    p = folder
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    for m in reversed(missing):
        try:
            m.mkdir()
        except FileExistsError:
            continue
        except OSError as e:
            raise io_error(e, folder / "x") from None
        created.append(m)
