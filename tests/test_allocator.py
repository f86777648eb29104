"""The allocator tuning: freed tensor memory stays in the process instead of going back to the kernel (glibc)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

PROBE = r"""
import ctypes, json, sys
import torch
from mdcli.allocator import keep_freed_memory


class MallInfo2(ctypes.Structure):  # glibc >= 2.33
    _fields_ = [(n, ctypes.c_size_t) for n in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


mallinfo2 = ctypes.CDLL(None).mallinfo2
mallinfo2.restype = MallInfo2
applied = keep_freed_memory() if sys.argv[1] == "tuned" else False
x = torch.empty(4 << 20).fill_(1.0)  # 16 MiB, like a training step's activations at batch 64
held = mallinfo2()
del x
freed = mallinfo2()
print(json.dumps({"applied": applied, "mmapped_held": held.hblkhd, "heap_after_free": freed.arena}))
"""


def _probe(mode: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES", "MDCLI_MALLOC")}
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout)


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc tuning is Linux-only")
def test_freed_tensor_memory_stays_in_the_process():
    mib16 = 16 << 20
    plain, tuned = _probe("plain"), _probe("tuned")
    assert tuned["applied"]
    # by default a 16 MiB block is its own mmap, unmapped on free (and faulted in again next step) ...
    assert plain["mmapped_held"] >= mib16, plain
    # ... tuned it comes from the heap, which keeps it when freed
    assert tuned["mmapped_held"] < mib16 and tuned["heap_after_free"] >= mib16, tuned


def test_user_malloc_settings_are_left_alone(monkeypatch):
    from mdcli.allocator import keep_freed_memory

    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.mmap_threshold=1048576")
    assert keep_freed_memory() is False
    monkeypatch.delenv("GLIBC_TUNABLES")
    monkeypatch.setenv("MDCLI_MALLOC", "default")
    assert keep_freed_memory() is False
