"""Walking person: the Boulic–Thalmann global walking model, as used by V.C. Chen.

R. Boulic, N. Magnenat-Thalmann, D. Thalmann, "A global human walking model with
real-time kinematic personification", The Visual Computer 6:344–358, 1990; and
V.C. Chen, The Micro-Doppler Effect in Radar, 2nd ed., ch. 5 (17 joints, 16
ellipsoid segments). The gait is set by the relative velocity rv = v / H_t with
the thigh height H_t = 0.491 H (rv <= 3); one cycle (two steps) lasts
D_c = 1.346 / sqrt(rv) s. The body translates at v m/s (public ports that
advance 1.346 sqrt(rv) per cycle without the H_t factor walk at rv m/s instead).

Choices where the ports disagree: the lateral and forward oscillation amplitudes
above rv = 0.5 take the sign that keeps them continuous at rv = 0.5 (Chen's
listing flips it); the elbow keyframe uses (rv - 1.3), not Chen's (rv - 0.13)
typo; each segment scatters from its midpoint, and each toe tip (the far end of
the foot segment) is a point scatterer of its own (a sphere of the foot's radius),
so the limb edge reaches the toe's Doppler, 3.8-4.7 times the torso's over
v = 0.9-2 m/s as in Chen's reference code (the foot midpoint alone reaches only
3.3-4.0 times); the pelvis roll is 1.66 rv deg.

Distributed body (`walker.points_per_segment` K > 1): a limb several wavelengths long with a rough surface is
not one coherent point but many unresolved scatterers. K points are fixed along each segment (stratified:
one uniformly in each K-th between its joints, drawn once per walk) with random phases; each carries the
segment's ellipsoid RCS / K, so the expected power is the K = 1 body's. A point at fraction s moves at
(1 - s) v_a + s v_b, so the limb's return fills the Doppler between its two joints' (the filled clouds of
measured spectrograms) instead of drawing one trace. The toe tips stay single points. A range gate
(`walker.range_gate_m`, off by default) keeps what an FMCW radar that sums the range bins around the
strongest return keeps: each scatterer weighted by its range offset from the torso.

Rough surfaces (`walker.diffuse` w in [0, 1], off by default): the spheroid RCS is physical optics for a smooth
body, a specular glint, so an elongated limb is bright only while it stands broadside to the radar (a thigh swung
30 deg off it returns about a ninth) and the legs flash at mid-swing and mid-stance. A surface is rough once its
height deviations exceed about lambda / 8 (Rayleigh): 0.5 mm at 77 GHz, where clothing folds and skin are rough,
while at 5.8 GHz (6 mm) they are not. A rough segment scatters diffusely, in proportion to the area it shows the
radar: sigma_d = g (4 a c sin theta + pi a^2 |cos theta|), with g = pi c_T / (4 a_T) so that the torso's broadside
value is its specular one (pi c_T^2). The segment's RCS is (1 - w) specular + w diffuse.

Leg RCS (`walker.leg_rcs` g, 1 = Chen's spheroids): the thighs', shanks' and feet's RCS and the toe tips' times g.
Chen's segment radii are one body's; trousers, shoes and how far the legs stand from the radar's boresight set how
bright the legs are against the torso, and a measured set says how much (it is fittable under `--like`). The torso,
head, arms and hips keep theirs.
"""

from __future__ import annotations

import numpy as np

from mdcli.sim.config import WalkerConfig
from mdcli.sim.scene import UP, Scene, max_doppler, radial_speed
from mdcli.sim.signal import point_returns

THIGH_FRACTION = 0.491  # H_t / H

# Segment lengths as fractions of the height H.
L_HEAD, L_TORSO, L_UPPER_ARM, L_LOWER_ARM = 0.130, 0.288, 0.188, 0.152
L_THIGH, L_SHANK, L_FOOT = 0.245, 0.246, 0.143
HALF_SHOULDER, HALF_HIP = 0.1295, 0.0955

# The 17 joints (indices into the joint array).
(BASE, NECK, HEAD, L_SHO, R_SHO, L_ELB, R_ELB, L_HAND, R_HAND,
 L_HIP, R_HIP, L_KNEE, R_KNEE, L_ANK, R_ANK, L_TOE, R_TOE) = range(17)

# The 16 segments: (joint a, joint b, ellipsoid radius a = b in metres); c = half the segment length.
SEGMENTS = (
    (NECK, HEAD, 0.10), (BASE, NECK, 0.15),
    (NECK, L_SHO, 0.06), (NECK, R_SHO, 0.06),
    (L_SHO, L_ELB, 0.06), (R_SHO, R_ELB, 0.06), (L_ELB, L_HAND, 0.05), (R_ELB, R_HAND, 0.05),
    (BASE, L_HIP, 0.07), (BASE, R_HIP, 0.07),
    (L_HIP, L_KNEE, 0.07), (R_HIP, R_KNEE, 0.07), (L_KNEE, L_ANK, 0.06), (R_KNEE, R_ANK, 0.06),
    (L_ANK, L_TOE, 0.05), (R_ANK, R_TOE, 0.05),
)
SEG_A = np.array([s[0] for s in SEGMENTS])
SEG_B = np.array([s[1] for s in SEGMENTS])
SEG_RADIUS = np.array([s[2] for s in SEGMENTS])
TORSO_SEGMENT = 1
LEG_SEGMENTS = np.arange(10, 16)  # thighs, shanks, feet (the toes are scaled with them, see walker_ranges)
TOES = (L_TOE, R_TOE)  # point scatterers after the 16 segments (rows 16, 17 of walker_ranges)
STYLE_KEYS = ("leg_scale", "arm_scale", "arm_swing", "step_asymmetry", "torso_sway")  # see joints_body_frame
TOE_RADIUS = 0.05  # m, the foot segment's radius: sqrt(RCS) of a sphere = sqrt(pi) r


def relative_velocity(speed: float, height: float, leg_scale: float = 1.0) -> float:
    """rv = v / H_t, the thigh height H_t = 0.491 H (times the body's leg_scale, see joints_body_frame)."""
    return speed / (THIGH_FRACTION * height * leg_scale)


def cycle_duration(rv: float) -> float:
    """Gait cycle (two steps) in seconds: D_c = 1.346 / sqrt(rv) (Boulic et al. 1990)."""
    return 1.346 / np.sqrt(rv)


def support_duration(rv: float) -> float:
    """Share of the cycle a foot is on the ground, D_s = 0.752 - 0.143 / D_c: the right foot from its heel strike at
    normalised time 0 to its toe-off at D_s, the left half a cycle later (Boulic et al. 1990)."""
    return 0.752 - 0.143 / cycle_duration(rv)


def _periodic_pchip(x: list[float], y: list[float], t: np.ndarray) -> np.ndarray:
    """Shape-preserving cubic (PCHIP, Fritsch–Carlson) through keyframes repeated with period 1.

    Chen's scripts use MATLAB's pchip on the keyframes replicated one period either side;
    this is the same interpolant (scipy's PchipInterpolator gives identical values), built
    without per-call object overhead. t: values in [0, 1).
    """
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    xx = np.concatenate([x - 1, x, x + 1])
    yy = np.concatenate([y, y, y])
    xx, keep = np.unique(np.round(xx, 12), return_index=True)
    yy = yy[keep]
    h = np.diff(xx)
    delta = np.diff(yy) / h
    d = np.zeros_like(yy)
    w1 = 2 * h[1:] + h[:-1]
    w2 = h[1:] + 2 * h[:-1]
    same = delta[:-1] * delta[1:] > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        hm = (w1 + w2) / (w1 / delta[:-1] + w2 / delta[1:])
    d[1:-1] = np.where(same, hm, 0.0)
    i = np.clip(np.searchsorted(xx, t, side="right") - 1, 0, len(h) - 1)
    s = (t - xx[i]) / h[i]
    h00, h10 = (1 + 2 * s) * (1 - s) ** 2, s * (1 - s) ** 2
    h01, h11 = s**2 * (3 - 2 * s), s**2 * (s - 1)
    return h00 * yy[i] + h10 * h[i] * d[i] + h01 * yy[i + 1] + h11 * h[i] * d[i + 1]


def swing_time(ts: np.ndarray, ds: float, skew: float) -> np.ndarray:
    """A leg's phase ts (its heel strike at 0, toe-off at ds) with the swing re-timed: u = (ts - ds) / (1 - ds)
    runs as (1 - skew) u + skew u^2, so the leg starts its swing at (1 - skew) and ends it at (1 + skew) times
    Boulic's pace (skew > 0: the foot gathers speed through the swing and stops at heel strike, the lean of a
    measured gait's limb spikes; 0 = Boulic's). Stance is untouched; the swing starts and ends where it did."""
    out = np.array(ts, dtype=np.float64, copy=True)
    sw = out >= ds
    u = (out[sw] - ds) / (1.0 - ds)
    out[sw] = ds + ((1.0 - skew) * u + skew * u * u) * (1.0 - ds)
    return out


def trajectories(rv: float, t: np.ndarray, style: dict | None = None) -> dict[str, np.ndarray]:
    """Boulic's translations (m) and joint angles (deg) for the right side at normalised time t.

    style (a virtual walker's identity and the walker's swing_skew, all optional): swing_skew re-times each leg's
    swing (swing_time); arm_swing scales the shoulder swing amplitude;
    torso_sway the lateral sway and the pelvis roll; step_asymmetry a makes the left hip and knee
    flex (1 + a) and the right (1 - a) times Boulic's angles (a longer step on one side).
    """
    style = style or {}
    two_pi = 2 * np.pi
    ds = support_duration(rv)
    u = (rv - 1.3) / 1.7
    w = (rv - 0.5) / 0.8
    regime = "a" if rv < 0.5 else ("b" if rv < 1.3 else "c")
    out = {}
    # Translations of the spine origin.
    av = 0.015 * rv
    out["z"] = -av + av * np.sin(two_pi * (2 * t - 0.35))
    al = -0.128 * rv**2 + 0.128 * rv if rv < 0.5 else 0.032
    if "torso_sway" in style:
        al = al * style["torso_sway"]
    out["y"] = al * np.sin(two_pi * (t - 0.1))
    af = -0.084 * rv**2 + 0.084 * rv if rv < 0.5 else 0.021
    out["x"] = af * np.sin(two_pi * (2 * t + 2 * (0.625 - ds)))
    # Pelvis and trunk rotations.
    a1 = -8 * rv**2 + 8 * rv if rv < 0.5 else 2.0
    out["pitch"] = -a1 + a1 * np.sin(two_pi * (2 * t - 0.1))
    a2 = 1.66 * rv
    if "torso_sway" in style:
        a2 = a2 * style["torso_sway"]
    out["roll"] = np.select(
        [t < 0.15, t < 0.5, t < 0.65],
        [-a2 + a2 * np.cos(two_pi * 10 / 3 * t), -a2 - a2 * np.cos(two_pi * 10 / 7 * (t - 0.15)),
         a2 - a2 * np.cos(two_pi * 10 / 3 * (t - 0.5))],
        a2 + a2 * np.cos(two_pi * 10 / 7 * (t - 0.65)),
    )
    out["torsion"] = -4 * rv * np.cos(two_pi * t)
    out["thorax"] = _periodic_pchip([0.1, 0.4, 0.6, 0.9], [4 / 3 * rv, -4.5 / 3 * rv, -4 / 3 * rv, 4.5 / 3 * rv], t)
    # Leg and arm flexions (right side; the left is the same half a cycle later).
    if regime == "a":
        hip = ([-0.1, 0.5, 0.9], [50 * rv, -30 * rv, 50 * rv])
        knee = ([0.17, 0.4, 0.75, 1.0], [3, 3, 140 * rv, 3])
        ankle = ([0, 0.08, 0.5, ds, 0.85], [-3, -30 * rv - 3, 22 * rv - 3, -34 * rv - 3, -3])
        elbow = ([0.05, 0.5, 0.9], [6 * rv + 3, 34 * rv + 3, 10 * rv + 3])
    elif regime == "b":
        hip = ([-0.1, 0.5, 0.9], [25, -15, 25])
        knee = ([0.17, 0.4, 0.75, 1.0], [3, 3, 70, 3])
        ankle = ([0, 0.08, 0.5, ds, 0.85], [-3, -18, 8, -20, -3])
        elbow = ([0.05, 0.5 + 0.01 * w, 0.9], [6 + 8 * w, 20 + 24 * w, 8 + 9 * w])
    else:
        hip = ([0.2 * u - 0.1, 0.5, 0.9], [5 * u + 25, -15, 6 * u + 25])
        knee = ([0.17 - 0.05 * u, 0.4, 0.75 - 0.05 * u, 1 - 0.03 * u], [3 + 22 * u, 3, 70 - 5 * u, 3 + 3 * u])
        ankle = ([0, 0.08, 0.5 - 0.1 * u, ds, 0.85], [5 * u - 3, 4 * u - 18, 8 - 3 * u, -20 - 8 * u, 5 * u - 3])
        elbow = ([0.05, 0.51 + 0.04 * u, 0.9 - 0.1 * u], [14 - 6 * u, 44 + 26 * u, 17 - 6 * u])
    a_s = 9.88 * rv
    if "arm_swing" in style:
        a_s = a_s * style["arm_swing"]
    skew = float(style.get("swing_skew", 0.0))
    for side, shift in (("r", 0.0), ("l", 0.5)):
        ts = (t + shift) % 1.0
        tl = swing_time(ts, ds, skew) if skew else ts  # the leg's angles run on the swing's own clock
        out[f"hip_{side}"] = _periodic_pchip(*hip, tl)
        out[f"knee_{side}"] = _periodic_pchip(*knee, tl)
        if "step_asymmetry" in style:
            k = 1.0 + style["step_asymmetry"] * (1.0 if side == "l" else -1.0)
            out[f"hip_{side}"] = out[f"hip_{side}"] * k
            out[f"knee_{side}"] = out[f"knee_{side}"] * k
        out[f"ankle_{side}"] = _periodic_pchip(*ankle, tl)
        out[f"elbow_{side}"] = _periodic_pchip(*elbow, ts)
        out[f"shoulder_{side}"] = 3 - a_s / 2 - a_s * np.cos(2 * np.pi * ts)
    return out


def _rotate_zx(v: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rz(a) @ Rx(b) applied to points v (P, K, 3); a, b (P,) in radians."""
    ca, sa, cb, sb = (f(x)[:, None] for f, x in ((np.cos, a), (np.sin, a), (np.cos, b), (np.sin, b)))
    x, y, z = v[..., 0], v[..., 1] * cb - v[..., 2] * sb, v[..., 1] * sb + v[..., 2] * cb
    return np.stack([x * ca - y * sa, x * sa + y * ca, z], -1)


def _rotate_zy(v: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rz(a) @ Ry(b) applied to points v (P, K, 3); a, b (P,) in radians."""
    ca, sa, cb, sb = (f(x)[:, None] for f, x in ((np.cos, a), (np.sin, a), (np.cos, b), (np.sin, b)))
    x, y, z = v[..., 0] * cb + v[..., 2] * sb, v[..., 1], -v[..., 0] * sb + v[..., 2] * cb
    return np.stack([x * ca - y * sa, x * sa + y * ca, z], -1)


def _hang(alpha: np.ndarray) -> np.ndarray:
    """Unit vector of a limb pitched forward by alpha from hanging straight down: (sin a, 0, -cos a)."""
    return np.stack([np.sin(alpha), np.zeros_like(alpha), -np.cos(alpha)], -1)


def joints_body_frame(height: float, rv: float, t: np.ndarray, style: dict | None = None,
                      foot_lock: bool = False, cadence: float = 1.0) -> np.ndarray:
    """(P, 17, 3) joint positions in the body frame (x forward, y left, z up; spine origin at 0).

    Forward kinematics of Chen's implementation: the legs hang from the hips and get
    the pelvis roll and torsion; the trunk, head and arms get the thorax torsion and
    forward pitch; the whole body gets the translation oscillations. style: see
    trajectories, and leg_scale / arm_scale multiply the leg (thigh, shank, foot) and
    arm segment lengths (a person's proportions; rv must then use H_t times leg_scale). foot_lock: each foot stands
    still on the ground while it supports the body (see foot_slip and lock_feet); cadence: cycles per second relative
    to Boulic's at this rv (the lock's stride, body speed x cycle duration, follows it).
    """
    H = height
    style = style or {}
    tr = trajectories(rv, t, style)
    leg = H * style["leg_scale"] if "leg_scale" in style else H
    arm = H * style["arm_scale"] if "arm_scale" in style else H
    rad = np.deg2rad
    P = len(t)
    j = np.zeros((P, 17, 3))
    for side, y, hip_i, knee_i, ank_i, toe_i, sho_i, elb_i, hand_i in (
        ("l", 1.0, L_HIP, L_KNEE, L_ANK, L_TOE, L_SHO, L_ELB, L_HAND),
        ("r", -1.0, R_HIP, R_KNEE, R_ANK, R_TOE, R_SHO, R_ELB, R_HAND),
    ):
        f_hip, f_knee, f_ank = rad(tr[f"hip_{side}"]), rad(tr[f"knee_{side}"]), rad(tr[f"ankle_{side}"])
        j[:, hip_i] = [0.0, y * HALF_HIP * H, 0.0]
        j[:, knee_i] = j[:, hip_i] + L_THIGH * leg * _hang(f_hip)
        j[:, ank_i] = j[:, knee_i] + L_SHANK * leg * _hang(f_hip - f_knee)
        foot = f_hip - f_knee + f_ank
        j[:, toe_i] = j[:, ank_i] + L_FOOT * leg * np.stack([np.cos(foot), np.zeros(P), np.sin(foot)], -1)
        f_sho, f_elb = rad(tr[f"shoulder_{side}"]), rad(tr[f"elbow_{side}"])
        j[:, sho_i] = [0.0, y * HALF_SHOULDER * H, L_TORSO * H]
        j[:, elb_i] = j[:, sho_i] + L_UPPER_ARM * arm * _hang(f_sho)
        j[:, hand_i] = j[:, elb_i] + L_LOWER_ARM * arm * _hang(f_sho + f_elb)
    j[:, NECK] = [0.0, 0.0, L_TORSO * H]
    j[:, HEAD] = [0.0, 0.0, (L_TORSO + L_HEAD) * H]
    legs = [L_HIP, R_HIP, L_KNEE, R_KNEE, L_ANK, R_ANK, L_TOE, R_TOE]
    upper = [NECK, HEAD, L_SHO, R_SHO, L_ELB, R_ELB, L_HAND, R_HAND]
    j[:, legs] = _rotate_zx(j[:, legs], -rad(tr["torsion"]), rad(tr["roll"]))  # pelvis
    j[:, upper] = _rotate_zy(j[:, upper], -rad(tr["thorax"]), -rad(tr["pitch"]))  # thorax
    j += np.stack([tr["x"], tr["y"], tr["z"]], -1)[:, None, :]
    if foot_lock:
        grid = np.arange(LOCK_GRID) / LOCK_GRID
        slip = foot_slip(joints_body_frame(height, rv, grid, style), rv, THIGH_FRACTION * leg * rv, cadence)
        lock_feet(j, np.stack([_periodic_linear(slip[:, i], t) for i in range(2)], 1), leg)
    return j


# Stance-foot lock. Boulic's angles do not scale with speed in the middle regime (0.5 <= rv < 1.3), so the
# supporting leg sweeps back faster than the body moves on: the ankle and toe slide backwards over the ground at up
# to 0.4-0.5 m/s for a third of the cycle (docs/findings.md), where a measured foot stands still (the sharp lower
# edge of a measured spectrogram at 0 m/s). The lock is the animators' foot-skate clean-up: a horizontal offset of
# the foot that cancels the contact point's slide while the foot is on the ground (heel strike to toe-off, Boulic's
# D_s), undone along a raised cosine during the swing, and the knee placed by two-bone inverse kinematics so the
# thigh and shank keep their lengths. The body's motion and the upper body are untouched.
LOCK_GRID = 256  # phases per cycle the offsets are tabulated on
SOFT_REACH = 0.01  # share of the straight leg where the soft reach begins (lock_feet)
LEGS = ((L_HIP, L_KNEE, L_ANK, L_TOE, 0.5), (R_HIP, R_KNEE, R_ANK, R_TOE, 0.0))  # the left leg half a cycle later


def _periodic_linear(table: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Linear interpolation of rows tabulated at phases k / n (period 1) at phases t in [0, 1)."""
    n = len(table)
    x = t * n
    i = np.floor(x).astype(int) % n
    f = (x - np.floor(x))[:, None]
    return (1 - f) * table[i] + f * table[(i + 1) % n]


def foot_slip(jb: np.ndarray, rv: float, speed: float, cadence: float = 1.0) -> np.ndarray:
    """(n, 2 legs, 2) horizontal offsets (x forward, y left; m) that hold each supporting foot still.

    jb: (n, 17, 3) body-frame joints at phases k / n of one cycle without the lock; the body moves on at `speed`
    along x, so a joint's ground velocity is speed x + d jb / dt. The contact point is the heel (the ankle joint) until
    the toe tip is the lower of the two (each against its lowest point in the cycle), then the toe. From the landing
    (the first phase after the heel strike where the heel no longer moves forward) to toe-off the offset is minus the
    contact point's travel since the landing; over the swing it returns to zero. cadence: see joints_body_frame (the
    support share D_s stays Boulic's).
    """
    n = len(jb)
    dc, ds = cycle_duration(rv) / cadence, support_duration(rv)
    out = np.zeros((n, 2, 2))
    ts = np.arange(n) / n  # the leg's own phase: 0 = its heel strike
    stance = ts < ds
    k_off = int(np.argmin(stance))  # first swing phase
    for leg, (_, _, ank, toe, shift) in enumerate(LEGS):
        m = int(round(shift * n))
        a, b = np.roll(jb[:, ank], m, 0), np.roll(jb[:, toe], m, 0)  # row k: the leg at its phase k / n
        heel = (a[:, 2] - a[:, 2].min()) <= (b[:, 2] - b[:, 2].min())
        va, vb = ((np.roll(p, -1, 0) - np.roll(p, 1, 0))[:, :2] * n / (2 * dc) for p in (a, b))  # central differences
        vel = np.where(heel[:, None], va, vb)
        vel[:, 0] += speed
        k_on = int(np.argmax(vel[:, 0] <= 0.0))  # Boulic's heel still moves forward at its strike: it lands here
        off = np.zeros((n, 2))
        off[k_on + 1 : k_off + 1] = -np.cumsum(vel[k_on:k_off], 0) / n * dc
        d = off[k_off]
        s = (ts[~stance] - ts[k_off]) / (1 - ts[k_off])
        off[~stance] = d * (0.5 + 0.5 * np.cos(np.pi * s))[:, None]
        out[:, leg] = np.roll(off, -m, 0)
    return out


def lock_feet(j: np.ndarray, slip: np.ndarray, leg_height: float) -> None:
    """Moves each foot (ankle and toe) by its slip offset (P, 2, 2) in place and re-places the knee by two-bone
    inverse kinematics: the hip stays, the thigh and shank keep their lengths, the knee bends forward (in the plane of
    the hip, the ankle and Boulic's knee). Soft reach: beyond (1 - SOFT_REACH) of the straight leg the hip-ankle
    distance saturates exponentially below the leg's length, so a nearly straight stance leg neither overshoots nor
    snaps its knee (hard IK's knee speed diverges at full extension); the ankle then stops up to 1 % of the leg short
    of its target."""
    a, b = L_THIGH * leg_height, L_SHANK * leg_height
    reach = a + b
    soft = reach * (1 - SOFT_REACH)
    fwd = np.array([1.0, 0.0, 0.0])
    for leg, (hip, knee, ank, toe, _) in enumerate(LEGS):
        shift = np.concatenate([slip[:, leg], np.zeros((len(j), 1))], 1)
        hd = j[:, ank] + shift - j[:, hip]
        d = np.linalg.norm(hd, axis=-1, keepdims=True)
        u = hd / d
        dd = np.where(d > soft, soft + (reach - soft) * -np.expm1(-(d - soft) / (reach - soft)), d)
        dd = np.maximum(dd, abs(a - b) + 1e-6)
        target = j[:, hip] + u * dd
        x = (a**2 - b**2 + dd**2) / (2 * dd)
        h = np.sqrt(np.maximum(a**2 - x**2, 0.0))
        # the knee's bend: Boulic's knee off Boulic's hip-ankle line (forward, >= 3 deg of flexion), nudged forward
        u0 = j[:, ank] - j[:, hip]
        u0 = u0 / np.linalg.norm(u0, axis=-1, keepdims=True)
        side = j[:, knee] - j[:, hip]
        side = side - np.sum(side * u0, -1, keepdims=True) * u0 + 0.01 * reach * fwd
        side = side - np.sum(side * u, -1, keepdims=True) * u
        side = side / np.linalg.norm(side, axis=-1, keepdims=True)
        j[:, toe] += target - j[:, ank]
        j[:, ank] = target
        j[:, knee] = j[:, hip] + x * u + h * side


def ellipsoid_rcs(a: np.ndarray, c: np.ndarray, cos_theta: np.ndarray) -> np.ndarray:
    """RCS of a spheroid (a = b) seen at angle theta from its c axis (Mahafza; Chen's rcsellipsoid).

    sigma = pi a^4 c^2 / (a^2 sin^2 theta + c^2 cos^2 theta)^2: pi c^2 broadside, pi a^4 / c^2 end-on.
    """
    cos2 = cos_theta**2
    return np.pi * a**4 * c**2 / (a**2 * (1 - cos2) + c**2 * cos2) ** 2


def diffuse_rcs(a: np.ndarray, c: np.ndarray, cos_theta: np.ndarray, gain: float) -> np.ndarray:
    """Diffuse RCS of a rough spheroid segment: gain x its projected area seen at theta from its c axis (module doc)."""
    sin_t = np.sqrt(np.clip(1.0 - cos_theta**2, 0.0, 1.0))
    return gain * (4.0 * a * c * sin_t + np.pi * a**2 * np.abs(cos_theta))


def draw_in_range(lo_hi: list[float], rng: np.random.Generator) -> float:
    """A value from [lo, hi] (a cadence scale, a treadmill drift); a single value draws nothing (the random streams
    of the default stay)."""
    lo, hi = lo_hi
    return float(lo) if lo == hi else float(rng.uniform(lo, hi))


def draw_phase(lo_hi: list[float], rng: np.random.Generator) -> float:
    """The gait phase at t = 0, uniform in [lo, hi] and wrapped to [0, 1) (the default [0, 1] draws as before)."""
    return float(rng.uniform(*lo_hi)) % 1.0


def sample_walker(cfg: WalkerConfig, rng: np.random.Generator) -> dict:
    height = rng.uniform(*cfg.height_m)
    speed = rng.uniform(*cfg.speed_mps)
    speed = min(speed, 3.0 * THIGH_FRACTION * height)
    rv = relative_velocity(speed, height)
    p = {"height_m": height, "speed_mps": speed, "relative_velocity": rv, "phase0": draw_phase(cfg.start_phase, rng)}
    p["cadence_scale"] = draw_in_range(cfg.cadence_scale, rng)
    p["gait_cycle_s"] = cycle_duration(rv) / p["cadence_scale"]  # what is simulated (walker_joints)
    return p


def distributed_body(k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """K scatterers per segment, fixed to the body for one walk: positions (16, K) as fractions from joint a to b,
    stratified (one uniformly in each K-th of the segment), and phases (16, K) uniform in [0, 2 pi)."""
    frac = (np.arange(k) + rng.uniform(0.0, 1.0, (len(SEGMENTS), k))) / k
    return frac, rng.uniform(0.0, 2 * np.pi, (len(SEGMENTS), k))


def walker_joints(p: dict, scene: Scene) -> np.ndarray:
    """(Jc, 17, 3) world positions of the joints on the coarse grid."""
    H, v = p["height_m"], p["speed_mps"]
    style = {k: p[f"id_{k}"] for k in STYLE_KEYS if f"id_{k}" in p}  # a virtual walker's identity (identity.py)
    if p.get("swing_skew"):
        style["swing_skew"] = float(p["swing_skew"])
    leg = style.get("leg_scale", 1.0)
    rv = relative_velocity(v, H, leg)
    cadence = float(p.get("cadence_scale", 1.0))
    phase = (scene.tc * cadence / cycle_duration(rv) + p["phase0"]) % 1.0
    jb = joints_body_frame(H, rv, phase, style, bool(p.get("foot_lock", False)), cadence)  # (Jc, 17, 3) body frame
    # Body frame -> world: x along the heading, y to the left, spine origin at thigh height.
    rot = np.stack([scene.heading, scene.lateral, UP], 0)  # rows: world images of the body axes
    # on a treadmill the body stays put (the belt moves the ground under it): no travel but its drift over the
    # deck, the same limb motion
    travel = float(p.get("drift_mps", 0.0)) if p.get("treadmill") else v
    return jb @ rot + scene.track(travel, THIGH_FRACTION * H * leg)[:, None, :]


def walker_ranges(p: dict, scene: Scene, body: tuple[np.ndarray, np.ndarray] | None = None,
                  gate_m: float = 0.0, extra: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Coarse-grid ranges (18, Jc) and amplitudes sqrt(RCS) (18, Jc): the 16 segment midpoints, then the 2 toe tips,
    then the rows of `extra` (ranges, amplitudes) if given (the treadmill's belt: inside the same range gate).

    body (distributed_body): K points per segment instead of its midpoint, rows segment-major (16 K + 2, Jc); each
    gets the segment's ellipsoid RCS (at the segment's aspect) / K and its fixed random phase. gate_m > 0: a range
    gate of that full width around the torso's range, amplitude exp(-(2 dR / gate_m)^4 / 2) (the summed range bins
    of an FMCW radar; the phase offsets of the body are under a wavelength, so dR is the geometric offset)."""
    jw = walker_joints(p, scene)
    a_pts, b_pts = jw[:, SEG_A], jw[:, SEG_B]  # (Jc, 16, 3)
    mid = 0.5 * (a_pts + b_pts)
    axis = b_pts - a_pts
    half_len = 0.5 * np.linalg.norm(axis[0], axis=-1)  # segment lengths are constant (16,)
    los = scene.radar_pos - mid
    r = np.linalg.norm(los, axis=-1)
    cos_t = np.einsum("jki,jki->jk", los, axis) / (r * 2 * half_len)
    rcs = ellipsoid_rcs(SEG_RADIUS, half_len, cos_t)
    w = float(p.get("diffuse", 0.0))
    if w > 0:
        gain = np.pi * half_len[TORSO_SEGMENT] / (4 * SEG_RADIUS[TORSO_SEGMENT])
        rcs = (1 - w) * rcs + w * diffuse_rcs(SEG_RADIUS, half_len, cos_t, gain)
    leg = float(p.get("leg_rcs", 1.0))
    if leg != 1.0:
        rcs[:, LEG_SEGMENTS] *= leg
    amp = np.sqrt(rcs)
    if body is None:
        amp = amp * scene.beam(mid)
    else:  # K points along each segment (see distributed_body)
        frac, phase = body
        k = frac.shape[1]
        pts = a_pts[:, :, None] + frac[None, :, :, None] * axis[:, :, None]  # (Jc, 16, K, 3)
        # the phase exp(j phi) as a fixed range offset: a r -> r - phi lambda / (4 pi) turns the return by phi
        r = (np.linalg.norm(scene.radar_pos - pts, axis=-1) - phase * (scene.wavelength / (4 * np.pi))).reshape(len(r), -1)
        amp = np.repeat(amp / np.sqrt(k), k, axis=1)  # the segment's RCS split evenly: sum of |a|^2 kept
        amp = amp * np.reshape(scene.beam(pts), (len(r), -1)) if scene.beam_deg else amp  # each point's elevation
    r_toe = np.linalg.norm(scene.radar_pos - jw[:, list(TOES)], axis=-1)  # (Jc, 2)
    amp_toe = np.full_like(r_toe, np.sqrt(np.pi * leg) * TOE_RADIUS) * scene.beam(jw[:, list(TOES)])
    r, amp = np.concatenate([r, r_toe], 1).T, np.concatenate([amp, amp_toe], 1).T
    if extra is not None:
        r, amp = np.concatenate([r, extra[0]]), np.concatenate([amp, extra[1]])
    if gate_m > 0:  # the range bins kept around the torso (the strongest return)
        ref = np.linalg.norm(scene.radar_pos - mid[:, TORSO_SEGMENT], axis=-1)
        amp = amp * np.exp(-0.5 * (2 * (r - ref) / gate_m) ** 4)
    return r, amp


BELT_LENGTH_M, BELT_WIDTH_M, BELT_HEIGHT_M = 1.5, 0.5, 0.05  # a treadmill deck's visible top run
BELT_PATCHES_PER_M = 24  # rough-surface patches along the run (each its own random phase)


def belt_ranges(p: dict, scene: Scene, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The treadmill belt's top run under a walker (`belt_rcs` m² in all): coarse-grid ranges and amplitudes (M, Jc).

    The run, BELT_LENGTH_M long and centred under the deck's start, moves backwards at the walking speed less the
    walk's drift over the deck (`drift_mps`: it carries the stance foot, which moves at drift - v); rough patches
    ride it, each with a random phase and lateral place, entering at the front and leaving at the back over the
    window. A patch's power follows cos² of its place along the run (the deck's ends, where the belt turns under,
    fade out smoothly: no patch appears or vanishes at once), so the patches carry `belt_rcs` together, a line at
    minus the walking speed: the measured treadmill gait's faint line under the torso. Each patch's elevation
    in the beam counts (scene.beam)."""
    v, half = float(p["speed_mps"]) - float(p.get("drift_mps", 0.0)), BELT_LENGTH_M / 2
    travel = v * (scene.tc[-1] - scene.tc[0])
    m = int(np.ceil(BELT_PATCHES_PER_M * (BELT_LENGTH_M + travel)))
    s0 = rng.uniform(-half, half + travel, m)  # place along the run (ahead of the body +) at the first coarse time
    y = rng.uniform(-BELT_WIDTH_M / 2, BELT_WIDTH_M / 2, m)
    phase = rng.uniform(0.0, 2 * np.pi, m)
    s = s0[:, None] - v * (scene.tc - scene.tc[0])[None, :]  # (M, Jc)
    ground = scene.track(0.0, BELT_HEIGHT_M)  # (Jc, 3): the body stays put on a treadmill
    pts = ground[None] + s[..., None] * scene.heading + y[:, None, None] * scene.lateral  # (M, Jc, 3)
    r = np.linalg.norm(scene.radar_pos - pts, axis=-1) - phase[:, None] * (scene.wavelength / (4 * np.pi))
    weight = np.where(np.abs(s) < half, np.cos(np.pi * s / BELT_LENGTH_M) ** 2, 0.0)
    # cos² averages 1/2 over the run: BELT_PATCHES_PER_M * BELT_LENGTH_M / 2 patches' worth of power at any time
    amp = np.sqrt(float(p["belt_rcs"]) * weight / (BELT_PATCHES_PER_M * half)) * scene.beam(pts)
    return r, amp


def walker_signal(p: dict, scene: Scene, rng: np.random.Generator) -> tuple[np.ndarray, float, float]:
    """Returns (signal, max Doppler in Hz, bulk radial speed in m/s)."""
    k = int(p.get("points_per_segment", 1))
    # K > 1: the body's scatterers from a stream spawned off the sample's (the draws after it are unchanged)
    body = distributed_body(k, rng.spawn(1)[0]) if k > 1 else None
    # the treadmill's belt from its own spawned stream (the draws after it are unchanged); its Doppler, minus the
    # walking speed, stays under the limbs', so the largest Doppler is the body's
    belt = belt_ranges(p, scene, rng.spawn(1)[0]) if p.get("belt_rcs") else None
    r, amp = walker_ranges(p, scene, body, float(p.get("range_gate_m", 0.0)), belt)
    fmax = max_doppler(r, scene, coarse=True)
    r, amp = scene.up(r), scene.up(amp)
    sig = point_returns(r, amp, scene.wavelength)
    torso = r[TORSO_SEGMENT] if body is None else r[TORSO_SEGMENT * k : (TORSO_SEGMENT + 1) * k].mean(0)
    return sig, fmax, radial_speed(torso, scene)
