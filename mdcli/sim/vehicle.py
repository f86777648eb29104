"""Wheeled vehicle: a rigid body and four rolling wheels.

A rim point of a wheel rolling without slip at speed v has ground velocity
v (1 + sin(theta)) along the heading, from 0 at the contact point to 2v at the
top, so the wheels spread Doppler from 0 to 2 f_body around the body line.
"""

from __future__ import annotations

import numpy as np

from mdcli.sim.config import VehicleConfig
from mdcli.sim.scene import UP, Scene, max_doppler, radial_speed
from mdcli.sim.signal import point_returns, ranges


def sample_vehicle(cfg: VehicleConfig, rng: np.random.Generator) -> dict:
    return {
        "speed_mps": rng.uniform(*cfg.speed_mps),
        "wheel_radius_m": rng.uniform(*cfg.wheel_radius_m),
        "wheelbase_m": rng.uniform(*cfg.wheelbase_m),
        "rim_points": cfg.rim_points,
    }


def wheel_points(
    scene: Scene, centres: np.ndarray, radius: float, speed: float, n: int, rng: np.random.Generator
) -> np.ndarray:
    """(W, n, Jc, 3) coarse-grid rim points of W wheels rolling along the heading (theta = pi/2 on top).

    Rolling without slip: theta(t) = theta0 - (v / r) t, so the top point moves at 2v, the contact point at 0.
    """
    n_wheels = len(centres)
    theta0 = rng.uniform(0, 2 * np.pi, (n_wheels, 1, 1)) + 2 * np.pi * np.arange(n)[None, :, None] / n
    theta = theta0 - (speed / radius) * scene.tc  # (W, n, Jc)
    return (
        centres[:, None]
        + radius * np.cos(theta)[..., None] * scene.heading
        + radius * np.sin(theta)[..., None] * UP
    )


def vehicle_signal(p: dict, scene: Scene, rng: np.random.Generator) -> tuple[np.ndarray, float, float]:
    """Returns (signal, max Doppler in Hz, bulk radial speed in m/s)."""
    v, rw, wb = p["speed_mps"], p["wheel_radius_m"], p["wheelbase_m"]
    d, lat = scene.heading, scene.lateral
    centre = scene.track(v)  # (Jc, 3) ground point under the middle of the car
    # Body: bumpers, roof edges, side panels; strong and rigid. Offsets (forward, left, up) in metres.
    offsets = np.array([
        [0.5 * wb + 0.9, 0.0, 0.5], [-0.5 * wb - 0.8, 0.0, 0.6], [0.3, 0.7, 1.4],
        [-0.6, -0.7, 1.4], [0.0, 0.85, 0.7], [0.0, -0.85, 0.7],
    ])
    wheels = np.array([[0.5 * wb, 0.8, rw], [0.5 * wb, -0.8, rw], [-0.5 * wb, 0.8, rw], [-0.5 * wb, -0.8, rw]])
    frame = np.stack([d, lat, UP])  # rows: world directions of forward, left, up
    body = centre[None] + (offsets @ frame)[:, None, :]  # (6, Jc, 3)
    hubs = centre[None] + (wheels @ frame)[:, None, :]  # (4, Jc, 3)
    rims = wheel_points(scene, hubs, rw, v, int(p["rim_points"]), rng).reshape(-1, len(centre), 3)
    r_body = ranges(body, scene.radar_pos)
    r_rim = ranges(rims, scene.radar_pos)
    fmax = max(max_doppler(r_body, scene, coarse=True), max_doppler(r_rim, scene, coarse=True))
    r_all = scene.up(np.concatenate([r_body, r_rim, ranges(hubs, scene.radar_pos)]))
    amp = np.concatenate([rng.uniform(0.4, 1.0, len(body)), np.full(len(rims), 0.08), np.full(len(hubs), 0.15)])
    sig = point_returns(r_all, amp, scene.wavelength)
    r_centre = scene.up(ranges(centre, scene.radar_pos))
    return sig, fmax, radial_speed(r_centre, scene)
