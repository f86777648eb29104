"""`diagnose separability`: which kinematic features tell a file's classes apart, and by how much.

For each feature of `mdcli.kinematics` (torso line, upper and lower envelope, step period, bandwidth, power
outside the torso line, period strength): `between`, the standard deviation of the class means; `within`, the
mean over classes of the standard deviation inside a class; `ratio` = between / within (near 0: the feature
says nothing about the class; above 1: the classes lie apart by more than their own spread). With a recording
order (`/sequence`), `drift`: per class the standard deviation of the means of consecutive runs of `run`
windows, averaged over the classes (how far a subset of `run` contiguous windows can sit from the rest of the
recording). Images without a value (no period, no envelope) are left out of that feature, and so is a class with
fewer than two values; a ratio is infinite (null in `--json`) where every class is constant and the classes differ.

Read side by side for a measured and a simulated file (`--data measured.h5 --data virtual.h5`), the ratios say
whether the virtual classes differ the way the measured ones do: on the gait data the five people share one
cadence (step period ratio 0.10) and differ in their torso line (1.32), while Boulic's virtual people differ
first in cadence (1.31) unless they are given one gait cycle (`identity.cycle_s`).
"""

from __future__ import annotations

import warnings

import numpy as np

from mdcli.artifacts import Spectrograms
from mdcli.errors import MdcliError

DEFAULT_RUN = 20


def feature_values(data: Spectrograms) -> dict[str, tuple[np.ndarray, str]]:
    """Feature name -> (one value per image, unit) from `mdcli.kinematics.features_of`."""
    from mdcli.kinematics import features_of

    k = features_of(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an image without an envelope: NaN, left out below
        upper, lower = np.nanmedian(k.upper_bins, 1), np.nanmedian(k.lower_bins, 1)
    u = k.units
    return {
        "torso line": (k.torso, u["torso"]),
        "upper envelope": (upper, "bins"),
        "lower envelope": (lower, "bins"),
        "step period": (k.period, u["period"]),
        "bandwidth": (k.bandwidth, u["bandwidth"]),
        "power outside the torso line": (k.outside_share, ""),
        "period strength": (k.period_strength, ""),
    }


def spread(values: np.ndarray, labels: np.ndarray, order: np.ndarray | None = None,
           run: int = DEFAULT_RUN) -> dict[str, float | None]:
    """between / within / ratio / drift of one feature (NaN values left out; None where undefined)."""
    classes = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        if order is not None:
            idx = idx[np.argsort(order[idx], kind="stable")]
        v = values[idx]
        classes.append(v)
    kept = [v[np.isfinite(v)] for v in classes]
    kept = [v for v in kept if len(v) >= 2]
    if len(kept) < 2:
        return {"between": None, "within": None, "ratio": None, "drift": None}
    between = float(np.std([v.mean() for v in kept]))
    within = float(np.mean([v.std() for v in kept]))
    drift = None
    if order is not None:
        per_class = []
        for v in classes:  # runs along the recording, NaNs inside a run left out
            means = [np.nanmean(r) for r in (v[i : i + run] for i in range(0, len(v) - run + 1, run))
                     if np.isfinite(r).any()]
            if len(means) >= 2:
                per_class.append(np.std(means))
        drift = float(np.mean(per_class)) if per_class else None
    ratio = between / within if within > 0 else (float("inf") if between > 0 else None)  # inf: perfectly apart
    return {"between": between, "within": within, "ratio": ratio, "drift": drift}


def separability_report(path, run: int = DEFAULT_RUN) -> dict:
    """The table for one spectrograms file (JSON-safe)."""
    if run < 2:
        raise MdcliError(f"--run {run}: a run needs at least 2 windows")
    data = Spectrograms.load(path)
    present = np.unique(data.labels)
    if len(present) < 2:
        raise MdcliError(f"--data {path}: one class only ({data.class_names[int(present[0])]}); separability "
                         "compares classes")
    order = np.asarray(data.sequence) if data.sequence is not None else None
    features = {name: {**spread(np.asarray(v, float), data.labels, order, run), "unit": unit}
                for name, (v, unit) in feature_values(data).items()}
    return {"data": str(path), "n": int(len(data)), "classes": int(len(present)), "run": int(run),
            "recording_order": order is not None, "features": features}
