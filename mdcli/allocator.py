"""Keep freed tensor memory in the process (glibc malloc), so a training step does not page-fault.

glibc serves blocks above its mmap threshold with fresh `mmap`s and returns them on free, and trims
the heap top back to the kernel; a training step that allocates and frees the same few-MB
activations every step then touches new pages every step. On 2026-12-03's 2-core AMD EPYC Zen 4 VM the
demo's VQ-GAN step took ~7,600 minor page faults (about 4 us each in a VM: 7-9 % of the step) and the
LDM step ~3,900. With the threshold fixed at glibc's maximum (32 MiB) and trimming above 1 GiB only,
both fall to ~0 after the first steps (docs/PERFORMANCE.md, "The CPU training step"). The numbers are
unchanged: only where memory comes from changes. Peak memory is what the run used anyway.

Skipped where it cannot apply (not Linux, no `mallopt`, e.g. musl), or when the user tunes malloc
himself (GLIBC_TUNABLES with a malloc setting, or MDCLI_MALLOC=default).
"""

from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit: larger values are refused
TRIM_THRESHOLD = 1024 * 1024 * 1024


def keep_freed_memory() -> bool:
    """Tune glibc malloc for this process; True if applied."""
    if sys.platform != "linux" or os.environ.get("MDCLI_MALLOC") == "default":
        return False
    if "malloc" in os.environ.get("GLIBC_TUNABLES", ""):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # mallopt returns 1 on success; setting M_MMAP_THRESHOLD also stops glibc's dynamic adjustment
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
