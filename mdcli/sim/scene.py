"""Scene geometry shared by all targets.

Frame: x along the ground from the radar to the target's start, y to the left,
z up; the radar sits at (0, 0, radar height). A target starts at (R0, 0, z0)
and moves along heading d = (-cos a, sin a, 0): aspect a = 0 walks straight at
the radar (closing, positive Doppler), a = 180 deg straight away.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mdcli.sim.config import SceneConfig
from mdcli.sim.signal import upsample

UP = np.array([0.0, 0.0, 1.0])
KINEMATIC_RATE_HZ = 500.0  # geometry is computed at >= this rate, then cubic-interpolated to the PRF


@dataclass
class Scene:
    t: np.ndarray  # (S,) slow time, s
    radar_pos: np.ndarray  # (3,)
    wavelength: float
    start: np.ndarray  # (3,) ground point under the target at t = 0
    heading: np.ndarray  # (3,) unit horizontal direction of travel
    aspect_deg: float
    factor: int = 1  # slow-time samples per coarse (kinematic) sample
    beam_deg: float = 0.0  # one-way half-power elevation beamwidth (RadarConfig.beam_elevation_deg); 0 = isotropic

    def beam(self, points: np.ndarray) -> np.ndarray | float:
        """Two-way amplitude gain (...) of scatterers at points (..., 3): exp(-4 ln 2 (e / beam_deg)^2), e the
        elevation seen from the radar (the antenna looks horizontally); 1 when beam_deg is 0."""
        if not self.beam_deg:
            return 1.0
        d = points - self.radar_pos
        e = np.degrees(np.arctan2(d[..., 2], np.hypot(d[..., 0], d[..., 1])))
        return np.exp(-4 * np.log(2) * (e / self.beam_deg) ** 2)

    @property
    def tc(self) -> np.ndarray:
        """Coarse kinematic times t0 + (i - 1) * factor * dt, i = 0 .. J + 2 (see signal.upsample)."""
        dt = self.t[1] - self.t[0]
        j = -(-len(self.t) // self.factor)
        return self.t[0] + (np.arange(j + 3) - 1) * self.factor * dt

    def up(self, x: np.ndarray) -> np.ndarray:
        """Coarse-grid values (..., Jc) -> slow-time values (..., S)."""
        return upsample(x, self.factor, len(self.t))

    @property
    def lateral(self) -> np.ndarray:
        """Unit vector to the target's left (z x d)."""
        return np.cross(UP, self.heading)

    def track(self, speed: float, z: float = 0.0) -> np.ndarray:
        """(Jc, 3) coarse-grid positions of a point moving at `speed` along the heading from start + z up."""
        return self.start + z * UP + (speed * self.tc)[:, None] * self.heading


def draw_scene(cfg: SceneConfig, t: np.ndarray, radar_height: float, wavelength: float, rng: np.random.Generator,
               beam_deg: float = 0.0) -> Scene:
    r0 = rng.uniform(*cfg.range_m)
    aspect = rng.uniform(*cfg.aspect_deg)
    if rng.random() < cfg.receding_fraction:
        aspect += 180.0
    aspect = aspect % 360.0
    a = np.deg2rad(aspect)
    heading = np.array([-np.cos(a), np.sin(a), 0.0])
    prf = 1.0 / (t[1] - t[0])
    return Scene(
        t=t,
        radar_pos=np.array([0.0, 0.0, radar_height]),
        wavelength=wavelength,
        start=np.array([r0, 0.0, 0.0]),
        heading=heading,
        aspect_deg=aspect,
        factor=max(1, int(prf // KINEMATIC_RATE_HZ)),
        beam_deg=beam_deg,
    )


def radial_speed(r: np.ndarray, scene: Scene) -> float:
    """Mean closing speed (positive = approaching), m/s, from slow-time ranges r (S,)."""
    return float(-(r[-1] - r[0]) / (scene.t[-1] - scene.t[0]))


def max_doppler(r: np.ndarray, scene: Scene, coarse: bool = False) -> float:
    """Largest |Doppler| (Hz) of scatterers with ranges r (..., S), or (..., Jc) on the coarse grid."""
    dt = (scene.t[1] - scene.t[0]) * (scene.factor if coarse else 1)
    rate = np.abs(np.diff(r, axis=-1)).max() / dt
    return float(2.0 * rate / scene.wavelength)
