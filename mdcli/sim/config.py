"""Config of the `simulate` stage: radar, processing, scene and per-target parameter ranges.

Ranges are [low, high] and sampled uniformly per spectrogram; integer choices are lists.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from mdcli.errors import ConfigError

TARGETS = ("walker", "drone", "helicopter", "bird", "vehicle")  # the default set
ALL_TARGETS = TARGETS + ("mocap",)  # mocap: a walker driven by a motion-capture recording


MAX_POINTS_PER_SEGMENT = 256  # walker scatterers per segment (the cost grows linearly)


def _rng(lo: float, hi: float):
    return field(default_factory=lambda: [lo, hi])


MAX_SLOW_TIME = 10**7  # slow-time samples of one observation (e.g. 100 s at 100 kHz): beyond, memory, not physics

@dataclass
class RadarConfig:
    carrier_hz: float = 24.0e9  # K-band CW/FMCW automotive-style radar
    prf_hz: float = 4000.0  # slow-time sampling rate; unambiguous Doppler is +-prf/2
    duration_s: float = 2.0  # length of each observation (about two gait cycles)
    height_m: float = 1.0  # radar above ground
    # Antenna elevation pattern: one-way half-power beamwidth (full width, deg) of an antenna looking horizontally;
    # a scatterer at elevation e off boresight returns exp(-4 ln 2 (e / width)^2) of its amplitude (the two-way
    # Gaussian pattern). 0 = isotropic. Matters at close range, where a radar at torso height sees the feet well
    # below its boresight (a TI IWR1443 board: about 28 deg).
    beam_elevation_deg: float = 0.0


@dataclass
class ProcessingConfig:
    window: str = "hann"  # any scipy.signal.get_window name: hann, hamming, blackman, ...
    win_len: int = 128  # STFT window in samples (32 ms at 4 kHz)
    nfft: int = 128  # FFT length (>= win_len; zero-padded)
    dynamic_range_db: float = 50.0  # floor of the [0, 1] image below each sample's peak
    image_size: list[int] = field(default_factory=lambda: [128, 128])  # [Doppler bins, time frames]
    # STFT frames per image column, block-averaged (in power) back to the width. With one frame per column a
    # narrow image spaces the windows far apart: at 64 columns of 2 s at 4 kHz the hop is 125 samples for a
    # 128-sample Hann window, and 48 % of the samples weigh under -6 dB in every frame, so a blade flash
    # (one sample) can all but vanish between two windows. 2 brings that to ~1 %. 1 keeps the datasets that
    # docs/findings.md measured; `simulate` warns when the windows leave samples out.
    time_oversample: int = 1


@dataclass
class SceneConfig:
    range_m: list[float] = _rng(8.0, 25.0)  # initial ground range to the target
    aspect_deg: list[float] = _rng(-60.0, 60.0)  # heading off the line of sight (0 = straight at the radar)
    receding_fraction: float = 0.5  # share of targets moving away (aspect + 180 deg)
    snr_db: list[float] = _rng(15.0, 35.0)  # mean signal power over noise power per sample


@dataclass
class WalkerConfig:
    height_m: list[float] = _rng(1.55, 1.95)
    speed_mps: list[float] = _rng(0.6, 2.0)  # rv = v / (0.491 H) must stay <= 3
    # Scatterers per body segment: 1 = each segment scatters from its midpoint; K > 1 = K points along it (stratified
    # between its joints, random phases, the segment's RCS split among them), so a limb fills the Doppler between
    # its joints' velocities (an extended body, as measured spectrograms show). See mdcli/sim/walker.py.
    points_per_segment: int = 1
    # Range gate (m, full width; 0 = off): the radar keeps the range bins around the strongest return (the torso),
    # e.g. 3-5 bins of 7.5 cm summed; a scatterer dR from the torso's range keeps amplitude exp(-(2 dR / w)^4 / 2).
    range_gate_m: float = 0.0
    # Stance-foot lock: each foot stands still on the ground from heel strike to toe-off (Boulic's angles alone let
    # the supporting foot slide backwards at up to 0.5 m/s); the knee follows by two-bone inverse kinematics.
    foot_lock: bool = False
    # Cadence at a given speed, relative to Boulic's D_c = 1.346 / sqrt(rv): people walking at the same speed differ
    # in step rate (a longer stride, a lower cadence); 0.8 = cycles last 1.25x Boulic's (the stride 1.25x longer).
    # Drawn per walk from the range; a single value ([c, c], the default [1, 1]) draws nothing.
    cadence_scale: list[float] = _rng(1.0, 1.0)
    # Share of each body segment's RCS that scatters diffusely (rough surface: in proportion to the area it shows the
    # radar) instead of as a smooth spheroid's specular glint; 0 = Chen's spheroids. See mdcli/sim/walker.py.
    diffuse: float = 0.0
    # The legs' RCS (thighs, shanks, feet, toe tips) relative to Chen's spheroids; 1 = as Chen. Clothing, shoes and the
    # legs' place in the antenna beam set it; fittable under --like. See mdcli/sim/walker.py.
    leg_rcs: float = 1.0
    # The gait phase at the window's first sample (fraction of the cycle, 0 = the right heel strike), drawn per walk
    # from [low, high] (values wrap); [0, 1] = any phase. A measured set cut at one gait event (every window starting
    # at the same phase, as `diagnose domain` finds on the gait data) takes a narrow range; fittable under --like.
    start_phase: list[float] = _rng(0.0, 1.0)
    # Re-timing of each leg's swing (walker.swing_time): the swing starts at (1 - s) and ends at (1 + s) times
    # Boulic's pace, from -0.9 to 0.9. Measured gait spikes lean (a slow rise, a fast fall at heel strike);
    # Boulic's are nearly symmetric. 0 = Boulic's; fittable under --like.
    swing_skew: float = 0.0
    # On a treadmill: the body stays at its start range (the belt carries the stance foot backwards at the walking
    # speed), so the torso's Doppler is its sway alone and the walk's geometry (range, elevation in the beam) holds
    # over the window; the limbs move about the torso as in a walk over the ground. A long recording at a few
    # metres (the gait data: 150 three-second windows a person) is one.
    treadmill: bool = False
    # The treadmill belt's return, m² summed over its top run (walker.belt_ranges: rough patches riding the run
    # backwards at the walking speed, a faint line at minus that speed under the torso); 0 = no belt. Only on a
    # treadmill; fittable under --like.
    belt_rcs: float = 0.0
    # On a treadmill, the body's speed over the deck (m/s along the heading), drawn per walk from [low, high]: a
    # walker who falls behind the belt or catches up moves a little over the window, and the torso line sits that
    # far off 0 Hz (the gait data's torso row moves by ~2 rows between windows). [0, 0] draws nothing; the drift
    # shows in /params radial_speed_mps. Fittable under --like (treadmill_drift: the half-width of [-w, w]).
    treadmill_drift_mps: list[float] = _rng(0.0, 0.0)


@dataclass
class DroneConfig:
    n_rotors: list[int] = field(default_factory=lambda: [2, 3, 4, 6, 8])
    n_blades: list[int] = field(default_factory=lambda: [2, 3])
    blade_length_m: list[float] = _rng(0.05, 0.15)
    rpm: list[float] = _rng(3000.0, 7000.0)
    speed_mps: list[float] = _rng(0.0, 2.0)  # hover or slow drift
    altitude_m: list[float] = _rng(2.0, 20.0)
    blade_rcs_rel: list[float] = _rng(0.2, 0.8)  # blade amplitude relative to the body


@dataclass
class HelicopterConfig:
    n_blades: list[int] = field(default_factory=lambda: [2, 3, 4, 5])
    blade_length_m: list[float] = _rng(3.5, 7.5)
    rpm: list[float] = _rng(250.0, 450.0)
    tail_blades: list[int] = field(default_factory=lambda: [2, 4])
    tail_gear_ratio: list[float] = _rng(4.0, 6.0)  # tail rpm / main rpm
    speed_mps: list[float] = _rng(0.0, 6.0)
    altitude_m: list[float] = _rng(20.0, 100.0)


@dataclass
class BirdConfig:
    flap_hz: list[float] = _rng(2.0, 10.0)
    speed_mps: list[float] = _rng(2.0, 6.0)
    flap_amplitude_deg: list[float] = _rng(30.0, 50.0)
    altitude_m: list[float] = _rng(2.0, 15.0)


@dataclass
class VehicleConfig:
    speed_mps: list[float] = _rng(1.5, 5.0)  # 2v (top of the wheels) must stay below prf/2
    wheel_radius_m: list[float] = _rng(0.28, 0.38)
    wheelbase_m: list[float] = _rng(2.4, 3.0)
    rim_points: int = 8  # scatterers on each wheel rim


@dataclass
class MocapConfig:
    amc: str = ""  # AMC motion file (CMU format, 120 fps)
    asf: str = ""  # ASF skeleton file


@dataclass
class IdentityConfig:
    """Virtual walkers (`identities: N`): the ranges each person's fixed body and style are drawn from."""

    height_m: list[float] = _rng(1.50, 1.95)
    leg_scale: list[float] = _rng(0.94, 1.06)  # leg (thigh, shank, foot) length / Boulic's proportion of H
    arm_scale: list[float] = _rng(0.92, 1.08)  # arm length / Boulic's proportion of H
    arm_swing: list[float] = _rng(0.5, 1.5)  # shoulder swing amplitude / Boulic's
    step_asymmetry: list[float] = _rng(-0.12, 0.12)  # left hip and knee flex (1 + a), right (1 - a) times Boulic's
    torso_sway: list[float] = _rng(0.5, 2.0)  # lateral sway and pelvis roll / Boulic's
    speed_mps: list[float] = _rng(0.9, 1.7)  # preferred walking speed
    speed_sd_mps: list[float] = _rng(0.03, 0.15)  # the person's walk-to-walk speed spread (sd, m/s)
    cadence_scale: list[float] = _rng(1.0, 1.0)  # the person's cadence / Boulic's at any speed (walker.cadence_scale)
    # > 0: every window of every person walks this gait cycle (s, two steps): one shared cadence, as on a treadmill,
    # to a metronome, or like a measured set whose people all step at one rate; each window's stride then follows
    # from its speed (cadence_scale = Boulic's cycle at its speed / cycle_s, stored per window). 0: Boulic's.
    cycle_s: float = 0.0


DEFAULT_FIT = ("prf_hz", "doppler_zero", "snr_db", "dynamic_range_db", "blur_px", "doppler_spread_px", "speckle",
               "speed_mps", "aspect_deg", "receding_fraction")
CADENCE_LIMITS = (0.5, 2.0)  # walker.cadence_scale, identity.cadence_scale
CYCLE_LIMITS_S = (0.6, 3.0)  # identity.cycle_s (a brisk walk's cycle is about 1 s, a slow one 1.6 s)
LEG_RCS_LIMITS = (0.1, 20.0)  # walker.leg_rcs
# on request: cadence_scale trades against speed_mps; start_phase for a set whose windows start at one gait phase;
# swing_skew for spikes that lean
FIT_PARAMS = DEFAULT_FIT + ("cadence_scale", "diffuse", "leg_rcs", "start_phase", "swing_skew", "belt_rcs",
                            "treadmill_drift")
BELT_RCS_MAX = 1.0  # walker.belt_rcs, m²
DRIFT_MAX_MPS = 1.0  # walker.treadmill_drift_mps


@dataclass
class LikeConfig:
    """`simulate --like measured.h5`: render like a measured set (see mdcli/sim/like.py).

    Active when `file` is set. The processing knobs (clutter removal, looks, colour map + JPEG) apply to every
    image; the `fit` parameters are searched first so that simulated walkers match the measured images' statistics,
    and the fitted values are written back into this config (radar.prf_hz, scene.snr_db, processing.dynamic_range_db,
    like.doppler_zero, like.blur_px) and into the output's `like_fit` attribute.
    """

    file: str = ""  # measured spectrograms (an `import` artifact)
    fit: list[str] = field(default_factory=lambda: list(DEFAULT_FIT))  # [] = render with the values as given
    fit_steps: int = 60  # objective evaluations of the Nelder-Mead search (after a coarse PRF x zero-row grid)
    fit_n: int = 16  # simulated walkers per evaluation (the same seeded walkers every time)
    fit_measured: int = 256  # measured images the statistics are taken from (a seeded subset; all when fewer)
    window_s: float = 0.064  # STFT window length in seconds (win_len follows the PRF)
    doppler_zero: float = 0.5  # image row (fraction from the bottom) where 0 Hz sits; 0.5 = symmetric +-PRF/2
    blur_px: float = 0.0  # Gaussian blur (sd, output pixels) of the dB image before the colour round trip
    # Extended-body scattering the point-and-segment model lacks: a Gaussian smear of the power along Doppler
    # (sd, image rows; the spread of velocities around each body part) and multiplicative fading of each image
    # pixel's power (unit-mean gamma, this sd; unresolved scatterers interfering), seeded per image.
    doppler_spread_px: float = 0.0
    speckle: float = 0.0
    snr_width_db: float = 10.0  # scene.snr_db becomes [snr - width/2, snr + width/2] around the fitted centre
    # The walkers: speed_mps (fitted: the centre) sets walker.speed_mps to [v - width/2, v + width/2], the cadence
    # the measured step period shows; aspect_deg (fitted: a) sets scene.aspect_deg to [-a, a].
    speed_width_mps: float = 0.2
    # start_phase (fitted: the centre c) sets walker.start_phase to [c - width/2, c + width/2] (fractions of the cycle)
    phase_width: float = 0.1
    # The walker's body under --like: walker.points_per_segment becomes this (measured limbs are filled clouds, an
    # extended body; docs/findings.md); 0 = leave walker.points_per_segment as given.
    points_per_segment: int = 16
    clutter_removal: bool = True  # subtract each observation's slow-time mean (static clutter removal)
    looks: int = 1  # non-coherent sum over channels / range bins: independent noise per look, powers averaged
    colormap: str = "auto"  # auto: the measured import's map (none if it had none) | none | jet | turbo | ...
    jpeg_quality: int = 90  # JPEG round trip of the colour image (0 = colour map only, no JPEG)
    render_size: list[int] = field(default_factory=list)  # size of the colour image; [] = the measured originals'


@dataclass
class SimulateConfig:
    """`mdcli simulate`: physics-based micro-Doppler spectrograms."""

    seed: int = 0
    n_per_class: int = 100
    targets: list[str] = field(default_factory=lambda: list(TARGETS))
    workers: int = 1  # processes; results are identical for any number
    save_iq: bool = False  # also store the complex slow-time signal as /iq
    radar: RadarConfig = field(default_factory=RadarConfig)
    processing: ProcessingConfig = field(default_factory=ProcessingConfig)
    scene: SceneConfig = field(default_factory=SceneConfig)
    walker: WalkerConfig = field(default_factory=WalkerConfig)
    drone: DroneConfig = field(default_factory=DroneConfig)
    helicopter: HelicopterConfig = field(default_factory=HelicopterConfig)
    bird: BirdConfig = field(default_factory=BirdConfig)
    vehicle: VehicleConfig = field(default_factory=VehicleConfig)
    mocap: MocapConfig = field(default_factory=MocapConfig)
    # Virtual walkers: > 0 makes the classes N identities (id_000, ...) of the one walker target, each with
    # n_per_class windows (--identities N --per-identity M); 0 = one class per target.
    identities: int = 0
    identity: IdentityConfig = field(default_factory=IdentityConfig)
    like: LikeConfig = field(default_factory=LikeConfig)

    def class_names(self) -> list[str]:
        if self.identities:
            from mdcli.sim.identity import class_names

            return class_names(self.identities)
        return list(self.targets)

    def n_total(self) -> int:
        return self.n_per_class * len(self.class_names())

    def validate(self) -> None:
        bad = [t for t in self.targets if t not in ALL_TARGETS]
        if bad:
            raise ConfigError(f"--targets: unknown target '{bad[0]}'; valid targets: {', '.join(ALL_TARGETS)}")
        if "mocap" in self.targets:
            from pathlib import Path

            for key, value in (("--mocap", self.mocap.amc), ("--skeleton", self.mocap.asf)):
                if not value:
                    raise ConfigError(f"--targets mocap needs {key} (mocap.amc / mocap.asf)")
                if not Path(value).is_file():
                    raise ConfigError(f"{key} {value}: file not found")
        if not self.targets:
            raise ConfigError("--targets: give at least one target")
        if len(set(self.targets)) != len(self.targets):
            raise ConfigError("--targets: a target is listed twice")
        if self.n_per_class < 1:
            raise ConfigError("--n / n_per_class: must be at least 1")
        if self.workers < 1:
            raise ConfigError("--workers: must be at least 1")
        if self.identities < 0:
            raise ConfigError(f"--identities: must be 0 (off) or more, got {self.identities}")
        if self.identities and self.targets != ["walker"]:
            raise ConfigError("--identities: give --targets walker (identities are virtual Boulic walkers; "
                              "mocap identities need several recordings per person and are not supported yet)")
        if self.identities:
            for k, v in vars(self.identity).items():
                if k != "cycle_s":
                    _check_range(f"identity.{k}", v)
            i = self.identity
            if not (math.isfinite(i.cycle_s) and (i.cycle_s == 0 or CYCLE_LIMITS_S[0] <= i.cycle_s <= CYCLE_LIMITS_S[1])):
                raise ConfigError(f"identity.cycle_s: {i.cycle_s}; expected 0 (Boulic's cycle for each speed) or a gait "
                                  f"cycle of {CYCLE_LIMITS_S[0]}..{CYCLE_LIMITS_S[1]} s")
            if i.cycle_s > 0 and (list(i.cadence_scale) != [1.0, 1.0] or list(self.walker.cadence_scale) != [1.0, 1.0]
                                  or (self.like.file and "cadence_scale" in self.like.fit)):
                raise ConfigError("identity.cycle_s: fixes every window's cadence; leave identity.cadence_scale at "
                                  "[1, 1] (and walker.cadence_scale, and cadence_scale out of like.fit)")
            if i.cycle_s > 0:
                _check_cycle(i)
            if min(i.height_m) <= 0 or min(i.leg_scale) <= 0 or min(i.arm_scale) <= 0 or min(i.speed_mps) <= 0:
                raise ConfigError("identity: height_m, leg_scale, arm_scale and speed_mps must be positive")
            if min(i.speed_sd_mps) < 0 or min(i.arm_swing) < 0 or min(i.torso_sway) < 0:
                raise ConfigError("identity: speed_sd_mps, arm_swing and torso_sway must be >= 0")
            if max(abs(a) for a in i.step_asymmetry) >= 0.5:
                raise ConfigError("identity.step_asymmetry: must lie within (-0.5, 0.5)")
            _check_cadence("identity.cadence_scale", i.cadence_scale)
            if self.walker.cadence_scale != [1.0, 1.0] and self.walker.cadence_scale != i.cadence_scale:
                raise ConfigError("walker.cadence_scale: virtual people take identity.cadence_scale (each person's "
                                  "own cadence); set that instead")
            # a walker range set while the person's stays at its default would be silently unused (e.g. a --like
            # fit's stored config rendered with --identities): refused. Both set: the person's range is used.
            for key, what in (("height_m", "body height"), ("speed_mps", "preferred speed")):
                value, own = list(getattr(self.walker, key)), list(getattr(i, key))
                if value != list(getattr(WalkerConfig(), key)) and own == list(getattr(IdentityConfig(), key)) \
                        and value != own:
                    raise ConfigError(f"walker.{key}: {value} is not used by virtual people (--identities): each "
                                      f"person's {what} comes from identity.{key} (default {own}); set that instead")
        r, p = self.radar, self.processing
        for key, v in (("radar.carrier_hz", r.carrier_hz), ("radar.prf_hz", r.prf_hz), ("radar.duration_s", r.duration_s)):
            if not (math.isfinite(v) and v > 0):
                raise ConfigError(f"{key}: must be a finite number > 0, got {v}")
        n_samples = int(round(r.prf_hz * r.duration_s))
        if n_samples > MAX_SLOW_TIME:
            raise ConfigError(f"radar.prf_hz x radar.duration_s: {n_samples} slow-time samples per observation, more "
                              f"than mdcli simulates ({MAX_SLOW_TIME}); a spectrogram needs seconds at a few kHz")
        if p.win_len < 8 or p.win_len > n_samples:
            raise ConfigError(f"processing.win_len: must be between 8 and the {n_samples} samples of one observation")
        if p.nfft < p.win_len:
            raise ConfigError(f"processing.nfft: must be >= processing.win_len ({p.win_len})")
        if len(p.image_size) != 2 or min(p.image_size) < 8:
            raise ConfigError("processing.image_size: expected [doppler_bins, time_frames], each >= 8")
        if p.time_oversample < 1:
            raise ConfigError(f"processing.time_oversample: must be at least 1, got {p.time_oversample}")
        if p.time_oversample > 1 and p.image_size[1] * p.time_oversample > n_samples - p.win_len + 1:
            raise ConfigError(f"processing.time_oversample: {p.image_size[1]} columns x {p.time_oversample} frames "
                              f"need more window positions than the {n_samples} samples give")
        if p.dynamic_range_db <= 0:
            raise ConfigError("processing.dynamic_range_db: must be positive")
        try:
            from scipy.signal import get_window

            get_window(p.window, 8)
        except (ValueError, TypeError):
            raise ConfigError(f"processing.window: unknown window '{p.window}'") from None
        for name in ("range_m", "aspect_deg", "snr_db"):
            _check_range(f"scene.{name}", getattr(self.scene, name))
        for target in TARGETS:
            sub = getattr(self, target)
            for k, v in vars(sub).items():
                if isinstance(v, list) and v and isinstance(v[0], float):
                    _check_range(f"{target}.{k}", v)
                elif isinstance(v, list) and not v:
                    raise ConfigError(f"{target}.{k}: give at least one choice")
        if max(self.walker.speed_mps) / (0.491 * min(self.walker.height_m)) > 3.0:
            raise ConfigError("walker.speed_mps: relative velocity v/(0.491 H) exceeds 3, the walking model's limit")
        if min(self.walker.speed_mps) <= 0:
            raise ConfigError("walker.speed_mps: must be positive")
        if not 0 <= self.radar.beam_elevation_deg <= 180:
            raise ConfigError(f"radar.beam_elevation_deg: 0 (isotropic) or a beamwidth up to 180 deg, "
                              f"got {self.radar.beam_elevation_deg}")
        _check_cadence("walker.cadence_scale", self.walker.cadence_scale)
        lo, hi = self.walker.start_phase
        if hi - lo > 1.0:
            raise ConfigError(f"walker.start_phase: a range of gait phases at most one cycle wide, got {self.walker.start_phase}")
        if not -0.9 <= self.walker.swing_skew <= 0.9:
            raise ConfigError(f"walker.swing_skew: from -0.9 to 0.9 (0 = Boulic's swing), got {self.walker.swing_skew}")
        if not 0.0 <= self.walker.diffuse <= 1.0:
            raise ConfigError(f"walker.diffuse: a share from 0 (smooth spheroids) to 1 (rough), got {self.walker.diffuse}")
        if not 0.0 <= self.walker.belt_rcs <= BELT_RCS_MAX:
            raise ConfigError(f"walker.belt_rcs: the belt's RCS in m², 0 (none) to {BELT_RCS_MAX:g}, got {self.walker.belt_rcs}")
        if max(abs(x) for x in self.walker.treadmill_drift_mps) > DRIFT_MAX_MPS:
            raise ConfigError(f"walker.treadmill_drift_mps: within +-{DRIFT_MAX_MPS:g} m/s, got {self.walker.treadmill_drift_mps}")
        if any(self.walker.treadmill_drift_mps) and not self.walker.treadmill:
            raise ConfigError("walker.treadmill_drift_mps: a drift over the deck needs walker.treadmill=true")
        if self.walker.belt_rcs and not self.walker.treadmill:
            raise ConfigError("walker.belt_rcs: a belt needs walker.treadmill=true (a walk over the ground has none)")
        if not LEG_RCS_LIMITS[0] <= self.walker.leg_rcs <= LEG_RCS_LIMITS[1]:
            raise ConfigError(f"walker.leg_rcs: the legs' RCS relative to Chen's, {LEG_RCS_LIMITS[0]:g} to "
                              f"{LEG_RCS_LIMITS[1]:g}, got {self.walker.leg_rcs}")
        if self.walker.range_gate_m < 0:
            raise ConfigError(f"walker.range_gate_m: must be >= 0 (0 = no gate), got {self.walker.range_gate_m}")
        if not 1 <= self.walker.points_per_segment <= MAX_POINTS_PER_SEGMENT:
            raise ConfigError(f"walker.points_per_segment: an integer from 1 (segment midpoints) to "
                              f"{MAX_POINTS_PER_SEGMENT}, got {self.walker.points_per_segment}")
        if self.like.file:
            from mdcli.sim.like import validate_like

            validate_like(self)
        self._check_memory(n_samples)

    def _check_memory(self, n_samples: int) -> None:
        """The result is held in memory before it is written: refuse what cannot fit, before any work."""
        from mdcli.artifacts import check_fits

        h, w = self.processing.image_size
        per_image = 4 * h * w + (8 * n_samples if self.save_iq else 0)
        # one observation's STFT (nfft x columns x oversampling, complex) is the largest array a worker builds
        stft = 16 * max(self.processing.nfft, h) * w * self.processing.time_oversample
        total = self.n_total()
        check_fits(2 * per_image * total + stft * self.workers, f"simulating {total} spectrograms of {h}x{w}",
                   "lower --n or processing.image_size, or simulate in shards (--shard i/N, then mdcli merge)")


def config_text(cfg: SimulateConfig) -> str:
    """The YAML stored in the artifact; without the identity keys when identities are off, so that plain
    `simulate` files keep the config text they had before identities existed."""
    import yaml

    from mdcli.config import to_dict

    d = to_dict(cfg)
    if not cfg.identities:
        d.pop("identities")
        d.pop("identity")
    if not cfg.like.file:
        d.pop("like")
    for sec, key, default in (("walker", "points_per_segment", 1), ("walker", "range_gate_m", 0.0),
                              ("walker", "foot_lock", False), ("radar", "beam_elevation_deg", 0.0),
                              ("walker", "cadence_scale", [1.0, 1.0]), ("walker", "diffuse", 0.0), ("walker", "leg_rcs", 1.0),
                              ("walker", "start_phase", [0.0, 1.0]), ("walker", "swing_skew", 0.0),
                              ("walker", "treadmill", False), ("walker", "belt_rcs", 0.0), ("walker", "treadmill_drift_mps", [0.0, 0.0]), ("identity", "cadence_scale", [1.0, 1.0]), ("identity", "cycle_s", 0.0)):
        if sec in d and getattr(getattr(cfg, sec), key) == default:  # the text files had before these
            d[sec].pop(key)
    return yaml.safe_dump(d, sort_keys=False, default_flow_style=False)


def _check_range(key: str, v: list[float]) -> None:
    if len(v) != 2 or v[0] > v[1]:
        raise ConfigError(f"{key}: expected [low, high] with low <= high, got {v}")


def _check_cycle(i: "IdentityConfig") -> None:
    """identity.cycle_s must be reachable within CADENCE_LIMITS for the people's preferred speeds and bodies (a
    window whose own speed strays further is clipped to the limits: sample_window)."""
    from mdcli.sim.walker import cycle_duration, relative_velocity

    cycles = [cycle_duration(relative_velocity(v, h, leg)) for v in i.speed_mps for h in i.height_m for leg in i.leg_scale]
    lo, hi = min(cycles) / i.cycle_s, max(cycles) / i.cycle_s
    if lo < CADENCE_LIMITS[0] or hi > CADENCE_LIMITS[1]:
        raise ConfigError(f"identity.cycle_s: {i.cycle_s} s is {lo:.2f}..{hi:.2f} times Boulic's cycle over identity.speed_mps, "
                          f"height_m and leg_scale; keep it within {CADENCE_LIMITS[0]}..{CADENCE_LIMITS[1]} (Boulic's cycle "
                          f"there: {min(cycles):.2f}..{max(cycles):.2f} s)")


def _check_cadence(name: str, v: list[float]) -> None:
    _check_range(name, v)
    lo, hi = CADENCE_LIMITS
    if not (lo <= v[0] and v[1] <= hi):
        raise ConfigError(f"{name}: within {lo} to {hi} (cadence relative to Boulic's at the same speed), got {v}")
