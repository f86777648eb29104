"""Rotating-blade targets: multirotor drones and helicopters.

Each blade is a thin line from the hub to the tip, integrated along its length
(V.C. Chen, The Micro-Doppler Effect in Radar, 2nd ed., sec. 4.2): its return is
L exp(-j 4 pi R_mid / lambda) sinc(2 pi (R_tip - R_hub) / lambda). The sinc term
makes the blade "flash" when it is perpendicular to the line of sight; the tip
sets the largest Doppler, f_max = 2 Omega L cos(beta) / lambda, with beta the
angle between the line of sight and the rotor plane. An even number of blades
flashes N times per turn (opposite blades flash together), an odd number 2N times.
"""

from __future__ import annotations

import numpy as np

from mdcli.sim.config import DroneConfig, HelicopterConfig
from mdcli.sim.scene import UP, Scene, max_doppler, radial_speed
from mdcli.sim.signal import point_returns, ranges, segment_returns


def blade_returns(
    scene: Scene,
    hubs: np.ndarray,
    e1: np.ndarray,
    e2: np.ndarray,
    rpm: np.ndarray,
    n_blades: int,
    length: float,
    amp: float,
    phase0: np.ndarray,
) -> tuple[np.ndarray, float]:
    """Signal (S,) of R rotors whose planes are spanned by unit vectors e1, e2, and their max Doppler (Hz).

    hubs: (R, Jc, 3) coarse-grid hub positions; rpm, phase0: (R,); blades turn from e1
    towards e2 (negative rpm: the other way). In the far field a point at distance r along
    a blade in direction d(t) has range R_hub + r d(t).u(t), u the unit line of sight.
    """
    rel = hubs - scene.radar_pos
    r_hub_c = np.linalg.norm(rel, axis=-1)  # (R, Jc)
    los = rel / r_hub_c[..., None]
    # Slow terms (hub range, line of sight in the rotor plane) are interpolated; blade angles are exact.
    r_hub, u1, u2 = scene.up(np.stack([r_hub_c, los @ e1, los @ e2]))[:, :, None, :]  # (R, 1, S) each
    # Blade angle theta = omega t + phi_k: trig of omega t once per rotor (reduced mod 2 pi in
    # float64, then float32), blades by the angle-addition formulas.
    wt = np.outer((2.0 * np.pi / 60.0) * np.asarray(rpm, float), scene.t)
    wt = (wt - 2.0 * np.pi * np.floor(wt / (2.0 * np.pi))).astype(np.float32)[:, None, :]  # (R, 1, S)
    cw, sw = np.cos(wt), np.sin(wt)
    phi = np.asarray(phase0, float)[:, None, None] + 2.0 * np.pi * np.arange(n_blades)[None, :, None] / n_blades
    cp, sp = np.cos(phi).astype(np.float32), np.sin(phi).astype(np.float32)  # (R, N, 1)
    cos_t, sin_t = cw * cp - sw * sp, sw * cp + cw * sp  # (R, N, S)
    r_tip = r_hub + length * (cos_t * u1 + sin_t * u2)  # cos(blade, LOS) = d . u
    r_tip = r_tip.reshape(-1, len(scene.t))
    r_hub = np.broadcast_to(r_hub, cos_t.shape).reshape(r_tip.shape)
    sig = segment_returns(r_hub, r_tip, np.full(len(r_tip), amp), scene.wavelength)
    return sig, max_doppler(r_tip, scene)


def _choice(rng: np.random.Generator, options: list[int]) -> int:
    return int(options[rng.integers(len(options))])


def sample_drone(cfg: DroneConfig, rng: np.random.Generator) -> dict:
    return {
        "n_rotors": _choice(rng, cfg.n_rotors),
        "n_blades": _choice(rng, cfg.n_blades),
        "blade_length_m": rng.uniform(*cfg.blade_length_m),
        "rpm": rng.uniform(*cfg.rpm),
        "speed_mps": rng.uniform(*cfg.speed_mps),
        "altitude_m": rng.uniform(*cfg.altitude_m),
        "blade_rcs_rel": rng.uniform(*cfg.blade_rcs_rel),
    }


def drone_signal(p: dict, scene: Scene, rng: np.random.Generator) -> tuple[np.ndarray, float, float]:
    """Multirotor: body and hub points, and n_rotors horizontal rotors (Chen's blade model).

    Rotors sit on arms around the body, alternate their spin and differ by a few
    per cent in rpm, as a flight controller's thrust corrections make them; p's
    "rpm" becomes the rotors' mean rpm (with "rpm_min", "rpm_max"), what was simulated.
    Returns (signal, max Doppler in Hz, bulk radial speed in m/s).
    """
    body = scene.track(p["speed_mps"], p["altitude_m"])
    # Hover is never still: a small sway of a few cm at about 1 Hz.
    sway_f = rng.uniform(0.5, 1.5)
    body = body + (0.02 * np.sin(2 * np.pi * sway_f * scene.tc + rng.uniform(0, 2 * np.pi)))[:, None] * scene.lateral
    n, length = p["n_rotors"], p["blade_length_m"]
    arm = 1.2 * length + 0.05
    e1, e2 = scene.heading, scene.lateral
    r_body = scene.up(ranges(body, scene.radar_pos))
    sig = point_returns(r_body[None], [1.0], scene.wavelength)
    fmax = max_doppler(r_body, scene)
    ang = rng.uniform(0, 2 * np.pi) + 2 * np.pi * np.arange(n) / n
    hubs = body[None] + arm * (np.cos(ang)[:, None, None] * e1 + np.sin(ang)[:, None, None] * e2)  # (n, Jc, 3)
    spin = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    rpm = spin * p["rpm"] * (1.0 + 0.03 * rng.standard_normal(n))
    # Store what was simulated, not the drawn centre: the rotors' mean, slowest and fastest rpm.
    p.update(rpm=float(np.abs(rpm).mean()), rpm_min=float(np.abs(rpm).min()), rpm_max=float(np.abs(rpm).max()))
    s, f = blade_returns(
        scene, hubs, e1, e2, rpm, p["n_blades"], length, p["blade_rcs_rel"], rng.uniform(0, 2 * np.pi, n)
    )
    sig, fmax = sig + s, max(fmax, f)
    r_hubs = scene.up(ranges(hubs, scene.radar_pos))
    sig = sig + point_returns(r_hubs, np.full(n, 0.15), scene.wavelength)
    return sig, fmax, radial_speed(r_body, scene)


def sample_helicopter(cfg: HelicopterConfig, rng: np.random.Generator) -> dict:
    return {
        "n_blades": _choice(rng, cfg.n_blades),
        "blade_length_m": rng.uniform(*cfg.blade_length_m),
        "rpm": rng.uniform(*cfg.rpm),
        "tail_blades": _choice(rng, cfg.tail_blades),
        "tail_gear_ratio": rng.uniform(*cfg.tail_gear_ratio),
        "speed_mps": rng.uniform(*cfg.speed_mps),
        "altitude_m": rng.uniform(*cfg.altitude_m),
    }


def helicopter_signal(p: dict, scene: Scene, rng: np.random.Generator) -> tuple[np.ndarray, float, float]:
    """Main rotor (few long blades, low rpm) over the fuselage, and a tail rotor in the vertical plane.

    Returns (signal, max Doppler in Hz, bulk radial speed in m/s).
    """
    length = p["blade_length_m"]
    d, lat = scene.heading, scene.lateral
    cabin = scene.track(p["speed_mps"], p["altitude_m"])
    fuselage = np.stack([cabin + 1.5 * d, cabin, cabin - 0.6 * length * d])  # nose, cabin, tail boom
    r_fus = scene.up(ranges(fuselage, scene.radar_pos))
    sig = point_returns(r_fus, [0.8, 1.0, 0.5], scene.wavelength)
    fmax = max_doppler(r_fus, scene)
    main_hub = cabin + 1.5 * UP
    # Long metal blades at broadside outshine the fuselage: amplitude grows with the blade length.
    s, f = blade_returns(
        scene, main_hub[None], d, lat, [p["rpm"]], p["n_blades"], length, 0.5 * length, rng.uniform(0, 2 * np.pi, 1)
    )
    sig, fmax = sig + s, max(fmax, f)
    tail_hub = cabin - 1.15 * length * d + 0.5 * UP
    tail_len = 0.17 * length
    s, f = blade_returns(
        scene, tail_hub[None], d, UP, [p["rpm"] * p["tail_gear_ratio"]], p["tail_blades"], tail_len,
        0.5 * tail_len, rng.uniform(0, 2 * np.pi, 1),
    )
    sig, fmax = sig + s, max(fmax, f)
    r_main_hub = scene.up(ranges(main_hub, scene.radar_pos))
    sig = sig + point_returns(r_main_hub[None], [0.4], scene.wavelength)
    return sig, fmax, radial_speed(r_fus[1], scene)
