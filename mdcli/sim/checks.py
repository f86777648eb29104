"""What a finished simulation warns about: weakly windowed slow time and aliased Doppler (printed by `simulate`)."""

from __future__ import annotations

from mdcli.sim.config import SimulateConfig
from mdcli.sim.signal import window_coverage


def simulation_warnings(cfg: SimulateConfig, report: dict) -> list[str]:
    """The warnings of one `simulate` run, in the order they are printed (each without the 'warning:' prefix).

    `report` is simulate_dataset's per-target summary ({target: {"n", "aliased", "max_doppler_hz"}}).
    """
    warnings = []
    pc = cfg.processing
    n_samples = int(round(cfg.radar.prf_hz * cfg.radar.duration_s))
    win = pc.win_len
    if cfg.like.file:  # --like renders with its own window (like.window_s at the fitted PRF)
        from mdcli.sim.like import stft_setup

        win = stft_setup(cfg)[0]
    weak = float((window_coverage(n_samples, win, pc.image_size[1] * pc.time_oversample, pc.window) < 0.25).mean())
    if weak > 0.05:
        warnings.append(
            f"{weak:.0%} of the slow-time samples weigh under -6 dB in every STFT window "
            f"({pc.image_size[1]} columns x {pc.time_oversample} frame(s) of {win} samples over {n_samples}): "
            "short events there (blade flashes, foot strikes) fade. Raise processing.time_oversample."
        )
    nyq = cfg.radar.prf_hz / 2
    for target, r in report.items():
        if r["aliased"] and not cfg.like.file:  # --like: the fitted span matches the measured images, wraps included
            warnings.append(
                f"{target}: {r['aliased']}/{r['n']} samples reach "
                f"{r['max_doppler_hz']:.0f} Hz, beyond the unambiguous +-{nyq:.0f} Hz (PRF/2); "
                "those returns alias (wrap around the Doppler axis). Raise radar.prf_hz to avoid it."
            )
    return warnings
