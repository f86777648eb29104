"""Flapping bird: a gliding body with two-segment wings (inner arm and outer hand wing).

The inner segment flaps about the shoulder, psi1(t) = A sin(2 pi f t); the outer
segment follows with a lag and a smaller extra angle, folding on the upstroke,
as in the articulated-wing models of bird micro-Doppler (e.g. Chen, ch. 5;
Torvik et al., IEEE TGRS 2016). Each segment is a line scatterer (sinc model),
the body a point that bobs once per wingbeat.
"""

from __future__ import annotations

import numpy as np

from mdcli.sim.config import BirdConfig
from mdcli.sim.scene import UP, Scene, max_doppler, radial_speed
from mdcli.sim.signal import point_returns, ranges, segment_returns


def sample_bird(cfg: BirdConfig, rng: np.random.Generator) -> dict:
    flap = rng.uniform(*cfg.flap_hz)
    # Larger birds beat their wings more slowly (wingbeat ~ span^-1 allometry, roughly).
    half_span = float(np.clip(0.9 * flap**-0.6 * rng.uniform(0.85, 1.15), 0.12, 1.0))
    return {
        "flap_hz": flap,
        "speed_mps": rng.uniform(*cfg.speed_mps),
        "flap_amplitude_deg": rng.uniform(*cfg.flap_amplitude_deg),
        "altitude_m": rng.uniform(*cfg.altitude_m),
        "wingspan_m": 2.0 * half_span,
    }


def bird_signal(p: dict, scene: Scene, rng: np.random.Generator) -> tuple[np.ndarray, float, float]:
    """Returns (signal, max Doppler in Hz, bulk radial speed in m/s)."""
    t = scene.tc
    f, amp = p["flap_hz"], np.deg2rad(p["flap_amplitude_deg"])
    half = 0.5 * p["wingspan_m"]
    l_inner, l_outer = 0.4 * half, 0.6 * half
    phase = 2 * np.pi * f * t + rng.uniform(0, 2 * np.pi)
    body = scene.track(p["speed_mps"], p["altitude_m"])
    body = body + (0.04 * half * np.sin(phase + np.pi))[:, None] * UP  # body rises on the downstroke
    psi1 = amp * np.sin(phase) + np.deg2rad(5.0)
    psi2 = psi1 + 0.5 * amp * np.sin(phase - np.pi / 4)
    r_ends = []
    for side in (1.0, -1.0):
        out = side * scene.lateral
        shoulder = body + 0.08 * half * out
        elbow = shoulder + l_inner * (np.cos(psi1)[:, None] * out + np.sin(psi1)[:, None] * UP)
        tip = elbow + l_outer * (np.cos(psi2)[:, None] * out + np.sin(psi2)[:, None] * UP)
        r_ends.append(ranges(np.stack([shoulder, elbow, tip]), scene.radar_pos))
    r_ends = np.stack(r_ends)  # (2 sides, 3 joints, Jc)
    fmax = max_doppler(r_ends, scene, coarse=True)
    r_ends = scene.up(r_ends)
    r_a = r_ends[:, :2].reshape(4, -1)  # shoulder->elbow, elbow->tip, per side
    r_b = r_ends[:, 1:].reshape(4, -1)
    seg_amp = np.array([0.5, 0.35, 0.5, 0.35]) * (half / 0.4)
    r_body = scene.up(ranges(body, scene.radar_pos))
    sig = point_returns(r_body[None], [1.0], scene.wavelength)
    sig = sig + segment_returns(r_a, r_b, seg_amp, scene.wavelength)
    return sig, fmax, radial_speed(r_body, scene)
