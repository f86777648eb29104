"""Walker driven by motion capture (ASF skeleton + AMC motion, as in the CMU database).

The recording's bones replace the Boulic equations; the body is cut into the same 16
ellipsoid segments as the Boulic walker (Chen's radii), so the radar model is unchanged.
ASF lengths are in units of 1/`length` inches (CMU: length 0.45); AMC frames at 120 fps.
Forward kinematics (the ASF/AMC convention): a bone's world rotation is
parent · C · R(dof angles) · C^-1 with C from its `axis` (XYZ Euler angles), and its end is
the parent's end plus length · rotation · direction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy.interpolate import CubicSpline

from mdcli.errors import MdcliError
from mdcli.sim.scene import UP, Scene, max_doppler, radial_speed
from mdcli.sim.signal import point_returns
from mdcli.sim.walker import ellipsoid_rcs

FPS = 120.0
INCH = 0.0254

# (segment start, segment end, ellipsoid radius in m): joints are bone ends, "root" the pelvis origin.
SEGMENTS = (
    ("upperneck", "head", 0.10), ("root", "thorax", 0.15),
    ("thorax", "lclavicle", 0.06), ("thorax", "rclavicle", 0.06),
    ("lclavicle", "lhumerus", 0.06), ("rclavicle", "rhumerus", 0.06),
    ("lhumerus", "lradius", 0.05), ("rhumerus", "rradius", 0.05),
    ("root", "lhipjoint", 0.07), ("root", "rhipjoint", 0.07),
    ("lhipjoint", "lfemur", 0.07), ("rhipjoint", "rfemur", 0.07),
    ("lfemur", "ltibia", 0.06), ("rfemur", "rtibia", 0.06),
    ("ltibia", "lfoot", 0.05), ("rtibia", "rfoot", 0.05),
)
TORSO_SEGMENT = 1


@dataclass
class Bone:
    name: str
    direction: np.ndarray
    length: float
    axis: np.ndarray  # degrees
    dof: list[str] = field(default_factory=list)


def _euler_xyz(deg: np.ndarray) -> np.ndarray:
    """Rotation Rz(c) Ry(b) Rx(a) for angles (..., 3) = (a, b, c) in degrees -> (..., 3, 3)."""
    a, b, c = np.deg2rad(deg[..., 0]), np.deg2rad(deg[..., 1]), np.deg2rad(deg[..., 2])
    ca, sa, cb, sb, cc, sc = np.cos(a), np.sin(a), np.cos(b), np.sin(b), np.cos(c), np.sin(c)
    r = np.empty(deg.shape[:-1] + (3, 3))
    r[..., 0, 0] = cb * cc
    r[..., 0, 1] = sa * sb * cc - ca * sc
    r[..., 0, 2] = ca * sb * cc + sa * sc
    r[..., 1, 0] = cb * sc
    r[..., 1, 1] = sa * sb * sc + ca * cc
    r[..., 1, 2] = ca * sb * sc - sa * cc
    r[..., 2, 0] = -sb
    r[..., 2, 1] = sa * cb
    r[..., 2, 2] = ca * cb
    return r


def parse_asf(path: Path) -> tuple[dict[str, Bone], dict[str, list[str]], float, list[str]]:
    """-> bones, children per joint, metres per file unit, root channel order."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as e:
        raise MdcliError(f"--skeleton {path}: cannot read ({e})") from None
    bones: dict[str, Bone] = {}
    children: dict[str, list[str]] = {}
    scale, order, section, cur = 1.0 / 0.45 * INCH, ["TX", "TY", "TZ", "RX", "RY", "RZ"], None, None
    for raw in lines:
        parts = raw.split()
        if not parts or parts[0].startswith("#"):
            continue
        if parts[0].startswith(":"):
            section = parts[0][1:]
            continue
        if section == "units" and parts[0] == "length":
            scale = 1.0 / float(parts[1]) * INCH
        elif section == "root" and parts[0] == "order":
            order = [p.upper() for p in parts[1:]]
        elif section == "bonedata":
            if parts[0] == "begin":
                cur = {}
            elif parts[0] == "end":
                bones[cur["name"]] = Bone(cur["name"], np.array(cur["direction"]), cur["length"],
                                          np.array(cur.get("axis", [0.0, 0.0, 0.0])), cur.get("dof", []))
            elif parts[0] == "name":
                cur["name"] = parts[1]
            elif parts[0] == "direction":
                cur["direction"] = [float(v) for v in parts[1:4]]
            elif parts[0] == "length":
                cur["length"] = float(parts[1])
            elif parts[0] == "axis":
                cur["axis"] = [float(v) for v in parts[1:4]]
            elif parts[0] == "dof":
                cur["dof"] = [p.lower() for p in parts[1:]]
        elif section == "hierarchy" and parts[0] not in ("begin", "end"):
            children[parts[0]] = parts[1:]
    if not bones or "root" not in children:
        raise MdcliError(f"--skeleton {path}: not an ASF skeleton (no bonedata/hierarchy)")
    return bones, children, scale, order


def parse_amc(path: Path) -> list[dict[str, list[float]]]:
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as e:
        raise MdcliError(f"--mocap {path}: cannot read ({e})") from None
    frames: list[dict] = []
    for raw in lines:
        parts = raw.split()
        if not parts or parts[0].startswith(("#", ":")):
            continue
        if len(parts) == 1 and parts[0].isdigit():
            frames.append({})
        elif frames:
            frames[-1][parts[0]] = [float(v) for v in parts[1:]]
    if len(frames) < 2:
        raise MdcliError(f"--mocap {path}: no motion frames found")
    return frames


@lru_cache(maxsize=4)
def load_motion(amc: str, asf: str) -> np.ndarray:
    """Joint positions (frames, joints, 3) in metres, z up, for the joints named in SEGMENTS (JOINTS order)."""
    bones, children, scale, order = parse_asf(Path(asf))
    frames = parse_amc(Path(amc))
    n = len(frames)
    pos: dict[str, np.ndarray] = {}
    rot: dict[str, np.ndarray] = {}
    root = np.array([f.get("root", [0.0] * 6) for f in frames])
    if root.shape[1] != 6:
        raise MdcliError(f"--mocap {amc}: root lines need 6 values ({' '.join(order)})")
    t_idx = [order.index(c) for c in ("TX", "TY", "TZ")]
    r_idx = [order.index(c) for c in ("RX", "RY", "RZ")]
    pos["root"] = root[:, t_idx] * scale
    rot["root"] = _euler_xyz(root[:, r_idx])

    def visit(parent: str) -> None:
        for name in children.get(parent, []):
            if name not in bones:
                raise MdcliError(f"--skeleton {asf}: hierarchy names unknown bone '{name}'")
            b = bones[name]
            angles = np.zeros((n, 3))
            for k, d in enumerate(b.dof):
                angles[:, "xyz".index(d[1])] = [f.get(name, [0.0] * len(b.dof))[k] for f in frames]
            c = _euler_xyz(b.axis)
            rot[name] = rot[parent] @ c @ _euler_xyz(angles) @ c.T
            pos[name] = pos[parent] + b.length * scale * (rot[name] @ b.direction)
            visit(name)

    visit("root")
    missing = sorted({j for s in SEGMENTS for j in s[:2]} - set(pos))
    if missing:
        raise MdcliError(f"--skeleton {asf}: no bone named {', '.join(missing)} (a CMU-style skeleton is expected)")
    joints = np.stack([pos[j] for j in JOINTS], axis=1)  # (frames, J, 3), CMU axes: y up
    joints = joints[..., [0, 2, 1]] * np.array([1.0, -1.0, 1.0])  # -> z up, right-handed
    joints[..., 2] -= joints[..., 2].min()  # lowest point of the recording on the floor
    return joints


JOINTS = tuple(dict.fromkeys(j for s in SEGMENTS for j in s[:2]))
SEG_A = np.array([JOINTS.index(s[0]) for s in SEGMENTS])
SEG_B = np.array([JOINTS.index(s[1]) for s in SEGMENTS])
SEG_RADIUS = np.array([s[2] for s in SEGMENTS])


def recording_stats(joints: np.ndarray) -> dict:
    """Walking speed (root, horizontal), height, and foot-contact period from the recording."""
    root = joints[:, JOINTS.index("root"), :2]
    speed = float(np.linalg.norm(root[-1] - root[0]) / ((len(root) - 1) / FPS))
    height = float(joints[..., 2].max(1).mean())
    # Foot contacts: minima of each ankle's height, at least 0.6 s apart (one foot contacts once a cycle).
    from scipy.signal import find_peaks

    periods = []
    for ankle in ("ltibia", "rtibia"):
        z = np.convolve(joints[:, JOINTS.index(ankle), 2], np.ones(9) / 9, mode="valid")
        contacts, _ = find_peaks(-z, distance=int(0.6 * FPS), prominence=0.03)
        if len(contacts) >= 2:
            periods.append(np.diff(contacts).mean() / FPS)
    return {"speed_mps": speed, "height_m": height, "gait_cycle_s": float(np.mean(periods)) if periods else float("nan")}


def mocap_ranges(joints: np.ndarray, scene: Scene, start_frame: float) -> tuple[np.ndarray, np.ndarray]:
    """Coarse-grid ranges and amplitudes (16, Jc) of the segment midpoints, the walk turned onto the heading."""
    root = joints[:, JOINTS.index("root"), :2]
    walk = root[-1] - root[0]
    ang = np.arctan2(walk[1], walk[0])
    ch, sh = np.cos(-ang), np.sin(-ang)
    local = joints.copy()
    local[..., :2] -= root[:1]  # start at the origin, walking along +x
    x, y = local[..., 0].copy(), local[..., 1].copy()
    local[..., 0], local[..., 1] = ch * x - sh * y, sh * x + ch * y
    t_frames = np.arange(len(joints)) / FPS
    spline = CubicSpline(t_frames, local.reshape(len(joints), -1), axis=0)
    t = np.clip(scene.tc + start_frame / FPS, 0.0, t_frames[-1])
    jl = spline(t).reshape(len(t), len(JOINTS), 3)
    frame = np.stack([scene.heading, scene.lateral, UP])  # body x, y, z -> world
    jw = scene.start + jl @ frame
    a, b = jw[:, SEG_A], jw[:, SEG_B]
    mid, axis = 0.5 * (a + b), b - a
    half = 0.5 * np.linalg.norm(axis, axis=-1)
    los = scene.radar_pos - mid
    r = np.linalg.norm(los, axis=-1)
    cos_t = np.einsum("jki,jki->jk", los, axis) / (r * 2 * half + 1e-12)
    amp = np.sqrt(ellipsoid_rcs(SEG_RADIUS, half, cos_t)) * scene.beam(mid)
    return r.T, amp.T


def sample_mocap(cfg, rng: np.random.Generator) -> dict:
    if not cfg.amc or not cfg.asf:
        raise MdcliError("--targets mocap needs --mocap FILE.amc and --skeleton FILE.asf")
    joints = load_motion(cfg.amc, cfg.asf)
    stats = recording_stats(joints)
    return {**stats, "joints": joints, "start_frame": rng.uniform(0.0, 1.0)}


def mocap_signal(p: dict, scene: Scene, rng: np.random.Generator) -> tuple[np.ndarray, float, float]:
    joints = p.pop("joints")
    span = (len(joints) - 1) / FPS
    duration = scene.t[-1] - scene.t[0]
    if duration > span:
        raise MdcliError(f"--mocap: the recording lasts {span:.2f} s, shorter than radar.duration_s = {duration:.2f} s")
    p["start_frame"] = p["start_frame"] * (span - duration) * FPS
    r, amp = mocap_ranges(joints, scene, p["start_frame"])
    fmax = max_doppler(r, scene, coarse=True)
    r, amp = scene.up(r), scene.up(amp)
    return point_returns(r, amp, scene.wavelength), fmax, radial_speed(r[TORSO_SEGMENT], scene)
