"""Strict JSON values for every `--json` output and study record (no NaN or Infinity)."""

from __future__ import annotations


def strict_json(obj, default=float):
    """`obj` as strict JSON values: JSON has no NaN or Infinity, so a non-finite number becomes null.

    e.g. `lsd_db` of data imported on a unit scale (no dB range: the log-spectral distance is undefined)
    or `carrier_hz` of uncalibrated imports. numpy scalars and arrays become Python numbers and lists;
    anything else goes through `default` first.
    """
    import math  # imported here: `mdcli --help` does not pay for numpy

    import numpy as np

    if isinstance(obj, dict):
        return {str(k): strict_json(v, default) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json(v, default) for v in obj]
    if isinstance(obj, np.ndarray):
        return strict_json(obj.tolist(), default)
    if isinstance(obj, np.generic):
        obj = obj.item()
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if not isinstance(obj, float):
        return strict_json(default(obj), default)
    return obj if math.isfinite(obj) else None
