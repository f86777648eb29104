"""Virtual walkers with identities (`simulate --identities N --per-identity M`).

Each identity is one person: a fixed body and walking style, drawn once from
SeedSequence([seed, target, i], spawn_key=(IDENTITY_KEY,)), so identity i is the same
person whatever --workers, --shard or the number of windows per identity. Each of
its windows then varies what varies between one person's walks: the speed around
the person's preference (normal, the person's own spread), the start phase of the
gait, and the scene (aspect, range, SNR), from SeedSequence([seed, target, i, j],
spawn_key=(WINDOW_KEY,)). The spawn keys keep these streams apart from the plain
per-sample streams (seed, target, index) and from each other.
"""

from __future__ import annotations

import numpy as np

from mdcli.sim.config import CADENCE_LIMITS, IdentityConfig
from mdcli.sim.walker import THIGH_FRACTION, cycle_duration, draw_in_range, draw_phase, relative_velocity

IDENTITY_KEY, WINDOW_KEY = 36, 37

# Per-sample /params of an identity dataset, besides the walker's own (height_m, speed_mps, ...).
IDENTITY_PARAM_NAMES = (
    "identity", "window", "phase0", "id_height_m", "id_leg_scale", "id_arm_scale", "id_arm_swing",
    "id_step_asymmetry", "id_torso_sway", "id_speed_mps", "id_speed_sd_mps", "id_cadence_scale",
)

MIN_SPEED_MPS = 0.3  # a window's speed is kept at or above this (a stroll) ...
MAX_RV = 2.8  # ... and below the model's rv <= 3


def class_names(n: int) -> list[str]:
    width = max(3, len(str(n - 1)))
    return [f"id_{i:0{width}d}" for i in range(n)]


def draw_identity(cfg: IdentityConfig, seed: int, target_index: int, i: int) -> dict[str, float]:
    """Identity i's body and style (the id_* parameters), reproducible from (seed, target, i) alone."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, target_index, i], spawn_key=(IDENTITY_KEY,)))
    ident = {
        "id_height_m": rng.uniform(*cfg.height_m),
        "id_leg_scale": rng.uniform(*cfg.leg_scale),
        "id_arm_scale": rng.uniform(*cfg.arm_scale),
        "id_arm_swing": rng.uniform(*cfg.arm_swing),
        "id_step_asymmetry": rng.uniform(*cfg.step_asymmetry),
        "id_torso_sway": rng.uniform(*cfg.torso_sway),
        "id_speed_mps": rng.uniform(*cfg.speed_mps),
        "id_speed_sd_mps": rng.uniform(*cfg.speed_sd_mps),
    }
    ident["id_cadence_scale"] = draw_in_range(cfg.cadence_scale, rng)  # drawn last: the other draws stay as they were
    return ident


def window_rng(seed: int, target_index: int, i: int, j: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, target_index, i, j], spawn_key=(WINDOW_KEY,)))


def sample_window(ident: dict[str, float], rng: np.random.Generator, cycle_s: float = 0.0,
                  start_phase: tuple[float, float] = (0.0, 1.0)) -> dict:
    """One walk of this person: walker parameters (as sample_walker gives) plus the identity's. cycle_s > 0
    (identity.cycle_s): the walk's gait cycle, whatever its speed; its cadence_scale is derived from it.
    start_phase: walker.start_phase, the range the walk's phase at t = 0 is drawn from."""
    h, leg = ident["id_height_m"], ident["id_leg_scale"]
    top = MAX_RV * THIGH_FRACTION * h * leg
    speed = float(np.clip(ident["id_speed_mps"] + ident["id_speed_sd_mps"] * rng.standard_normal(), MIN_SPEED_MPS, top))
    rv = relative_velocity(speed, h, leg)
    if cycle_s > 0:  # a window far off the person's preferred speed is held at the cadence limits (stored as run)
        cadence = float(np.clip(cycle_duration(rv) / cycle_s, *CADENCE_LIMITS))
    else:
        cadence = ident.get("id_cadence_scale", 1.0)
    return {
        "height_m": h, "speed_mps": speed, "relative_velocity": rv, "gait_cycle_s": cycle_duration(rv) / cadence,
        "cadence_scale": cadence, "phase0": draw_phase(start_phase, rng), **ident,
    }
