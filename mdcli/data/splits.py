"""Train/validation (and train/test) splits of a labelled dataset: stratified, random or blocked."""

from __future__ import annotations

import numpy as np

from mdcli.errors import MdcliError


def class_label(c: int, class_names: list[str] | None) -> str:
    """A class in an error message: its quoted name where known, else its index."""
    return f"'{class_names[c]}'" if class_names is not None else str(int(c))


def split_indices(labels: np.ndarray, val_fraction: float, seed: int, mode: str = "random",
                  sequence: np.ndarray | None = None, gap: int = 3,
                  class_names: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split -> (train, val) index arrays; at least one val sample per class when possible.

    random: a seeded shuffle per class. blocked: per class, a contiguous run of the recording
    order (`sequence`, else file order) is held out, at a seeded position, and training windows
    closer than `gap` sequence steps to it are dropped (overlapping windows of measured data
    would otherwise put near-copies of test images into training). A class left without training windows is
    an error (named from `class_names` where given).
    """
    if mode not in ("random", "blocked"):
        raise MdcliError(f"--split: unknown '{mode}'; valid: random, blocked")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 7]))
    train, val = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        n_val = int(round(val_fraction * len(idx)))
        if val_fraction > 0 and len(idx) > 1:
            n_val = max(1, n_val)
        name = class_label(c, class_names)
        if mode == "random":
            if n_val >= len(idx) > 1:
                raise MdcliError(f"--split random: class {name} keeps no training windows ({len(idx)} windows, "
                                 f"{n_val} held out); lower the held-out fraction")
            rng.shuffle(idx)
            val.append(idx[:n_val])
            train.append(idx[n_val:])
            continue
        pos = np.asarray(sequence)[idx] if sequence is not None else np.arange(len(idx))
        order = np.argsort(pos, kind="stable")
        idx, pos = idx[order], pos[order]
        start = int(rng.integers(0, len(idx) - n_val + 1))
        held = slice(start, start + n_val)
        val.append(idx[held])
        if n_val:
            # at least `gap` steps from the block, and never inside it (gap 0 kept the block's own ends)
            lo, hi, g = pos[held].min(), pos[held].max(), max(gap, 1)
            far = (pos <= lo - g) | (pos >= hi + g)
        else:
            far = np.ones(len(idx), bool)
        if not far.any() and len(idx) > n_val:
            raise MdcliError(f"--split blocked: class {name} keeps no training windows ({len(idx)} windows, {n_val} held out, "
                             f"gap {gap}): its recording positions span too little; lower --gap or use --split random")
        train.append(idx[far])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))
