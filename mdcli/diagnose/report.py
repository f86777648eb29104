"""`mdcli report RUN_DIR`: one Markdown page (plus PNGs) from a pipeline run's artifacts and diagnostics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mdcli.artifacts import Spectrograms, atomic_path, open_artifact, read_header, stored_config
from mdcli.diagnose.stats import fmt_spread
from mdcli.errors import MdcliError


def _lsd(v: dict) -> str:
    """The log-spectral distance cell: none without a dB range (unit-scale imports give null / NaN)."""
    x = v.get("lsd_db")
    return f"{x:.2f}" if isinstance(x, (int, float)) and x == x else "–"


# The diagnostics a run folder's report reads: file -> (the command that writes it, the keys the report uses).
DIAGNOSTICS = {
    "recon.json": ("recon", ("overall.psnr", "overall.ssim", "per_class")),
    "codebook.json": ("codebook", ("codebook_usage", "perplexity", "codebook_size", "perplexity_ratio",
                                   "dead_codes", "top10pct_mass")),
    "collapse.json": ("collapse", ("label", "evidence")),
    "generation.json": ("generation", ("fmd", "kid", "precision", "recall", "density", "coverage",
                                       "judge_accuracy_generated", "judge_accuracy_real")),
}


def no_diagnostics_note(run: Path) -> str:
    """What to run when a run folder holds none of the diagnostics the report reads."""
    return (f"no diagnostics in {run}: the report reads {', '.join(DIAGNOSTICS)} (`mdcli diagnose "
            f"{'|'.join(c for c, _ in DIAGNOSTICS.values())} ... --json > {run}/NAME.json`, as examples/pipeline.sh "
            "writes them); grids and training curves only")


def _json(path: Path) -> dict | None:
    """A diagnostics report of the run folder, None where absent; a file that is not a JSON object (an empty one
    left by a failed `diagnose ... --json > FILE`) or lacks a key the report uses is one line naming it."""
    if not path.exists():
        return None
    try:
        out = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise MdcliError(f"{path}: not a diagnose --json report ({type(e).__name__}); run the diagnose command again "
                         "or delete the file") from None
    if not isinstance(out, dict):
        raise MdcliError(f"{path}: not a diagnose --json report (a JSON {type(out).__name__}, expected an object)")
    if path.name in DIAGNOSTICS:
        command, keys = DIAGNOSTICS[path.name]
        for key in keys:
            node, present = out, True
            for part in key.split("."):
                present = isinstance(node, dict) and part in node
                if not present:
                    break
                node = node[part]
            if not present:  # a null value (an undefined number in strict JSON) is present
                raise MdcliError(f"{path}: not a `mdcli diagnose {command} --json` report (no '{key}'); run that "
                                 "command again or delete the file")
    return out


def _jsonl(path: Path) -> list[dict]:
    """A metrics log's records; a torn last line (a run killed mid-write and not resumed) is left out, a
    damaged line before it is one error naming the file and line."""
    if not path.exists():
        return []
    lines = [(i, line) for i, line in enumerate(path.read_text().splitlines(), 1) if line.strip()]
    out = []
    for j, (i, line) in enumerate(lines):
        try:
            out.append(json.loads(line))
        except ValueError:
            if j == len(lines) - 1:
                break
            raise MdcliError(f"{path}: line {i} is not JSON; the metrics log is damaged (delete it to report without "
                             "training curves)") from None
    return out


REPORT_HEAD = "# mdcli run: "  # how a generated REPORT.md begins


def check_report_path(out: Path, force: bool) -> None:
    """REPORT.md is replaced only when it is one this command wrote (or with --force): notes of the user's own under
    that name survive."""
    if out.exists() and not force:
        try:
            ours = out.read_text(errors="replace").startswith(REPORT_HEAD)
        except OSError:
            ours = False
        if not ours:
            raise MdcliError(f"{out}: exists and is not a report mdcli wrote; pass --force to replace it, or move it")


def plot_real_vs_generated(real: Spectrograms, gen: Spectrograms, out: Path, per_class: int = 4) -> Path:
    """Held-out real (left block) and generated (right block) spectrograms, a row per class, on the
    physical axes of `mdcli plot`: Doppler (Hz) on the first column, time (s) on the bottom row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mdcli.plotting import axis_labels, show

    names = real.class_names
    fig, axs = plt.subplots(len(names), 2 * per_class, figsize=(2 * per_class * 1.25, len(names) * 1.3 + 0.4),
                            constrained_layout=True, squeeze=False)
    doppler_label, time_label = axis_labels(real)
    for r, name in enumerate(names):
        for part, data in enumerate((real, gen)):
            idx = np.flatnonzero(np.asarray(data.labels) == data.class_names.index(name))[:per_class] if name in data.class_names else []
            for j in range(per_class):
                col = part * per_class + j
                ax = axs[r, col]
                if j < len(idx):
                    show(ax, data.spectrograms[idx[j]], real)
                ax.tick_params(labelsize=6, length=2)
                if col != 0:
                    ax.set_yticklabels([])
                if r != len(names) - 1:
                    ax.set_xticklabels([])
                if r == 0 and j == 0:
                    ax.set_title("real (held-out)" if part == 0 else "generated", fontsize=8, loc="left")
        axs[r, 0].set_ylabel(f"{name}\n{doppler_label}", fontsize=7)
    for ax in axs[-1]:
        ax.set_xlabel(time_label, fontsize=7)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return out


def read_logs(run: Path) -> tuple[list[dict], list[dict]]:
    """The autoencoder's and the LDM's metrics logs of a run folder (empty where absent)."""
    return _jsonl(run / "ae.metrics.jsonl"), _jsonl(run / "ldm.metrics.jsonl")


def plot_losses(logs: tuple[list[dict], list[dict]], out: Path, ae_ema: bool = False) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ae, ldm = logs
    if not ae and not ldm:
        return None
    fig, axs = plt.subplots(1, 3, figsize=(12, 3), constrained_layout=True)
    for key in ("rec", "perceptual", "g_loss", "d_loss"):
        pts = [(r["step"], r[key]) for r in ae if key in r]
        if pts:
            axs[0].plot(*zip(*pts), label=key, lw=0.8)
    axs[0].set_title("autoencoder training", fontsize=9)
    axs[0].legend(fontsize=7)
    val = [(r["step"], r["val_psnr"]) for r in ae if "val_psnr" in r]
    if val:
        axs[1].plot(*zip(*val), "o-")
    axs[1].set_title("autoencoder validation PSNR (dB" + (", EMA weights)" if ae_ema else ")"), fontsize=9)
    pts = [(r["step"], r["loss"]) for r in ldm if "loss" in r]
    if pts:
        axs[2].plot(*zip(*pts), lw=0.8, label="train (weighted)")
    for key in sorted({k for r in ldm for k in r if k.startswith("val_loss_t")}, key=lambda k: int(k[10:])):
        v = [(r["step"], r[key]) for r in ldm if key in r]
        axs[2].plot(*zip(*v), "o-", ms=3, label=key[9:], lw=0.8)
    axs[2].set_yscale("log")
    axs[2].set_title("LDM loss (held-out per timestep)", fontsize=9)
    axs[2].legend(fontsize=6)
    for ax in axs:
        ax.set_xlabel("step")
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return out


def build_report(run: Path, force: bool = False) -> tuple[Path, dict]:
    """Write RUN/REPORT.md (+ PNGs) -> (path, headline figures). Every input is checked before the first file is
    written."""
    if not run.is_dir():
        raise MdcliError(f"{run}: not a folder (run examples/pipeline.sh {run} first)")
    for name in ("train.h5", "test.h5", "samples.h5", "ae.h5"):
        if not (run / name).exists():
            raise MdcliError(f"{run}: no {name}; run the pipeline (examples/pipeline.sh) first")
    out = run / "REPORT.md"
    check_report_path(out, force)
    recon, codebook = _json(run / "recon.json"), _json(run / "codebook.json")
    collapse, gen = _json(run / "collapse.json"), _json(run / "generation.json")
    train, test, samples = (Spectrograms.load(run / n) for n in ("train.h5", "test.h5", "samples.h5"))
    with open_artifact(run / "ae.h5") as f:
        ae_header = read_header(f)
    ae_ema = float((stored_config(ae_header, run / "ae.h5").get("train") or {}).get("ema_decay", 0.0)) > 0
    logs = read_logs(run)
    grid = plot_real_vs_generated(test, samples, run / "real_vs_generated.png")
    losses = plot_losses(logs, run / "losses.png", ae_ema)
    head: dict = {}
    if recon:
        head["recon PSNR (dB, test)"] = recon["overall"]["psnr"]
        head["recon SSIM (test)"] = recon["overall"]["ssim"]
        if "fmd" in recon["overall"]:
            head["recon FMD (judge features)"] = recon["overall"]["fmd"]
    if codebook:
        head["codebook usage (share of codes used, test)"] = f"{codebook['codebook_usage']:.1%}"
        head["codebook perplexity"] = codebook["perplexity"]
    if collapse:
        head["collapse label"] = collapse["label"]
    if gen:
        head["FMD (judge features)"] = gen["fmd"]
        head["judge accuracy on generated"] = gen["judge_accuracy_generated"]
        head["judge accuracy on real test"] = gen["judge_accuracy_real"]
        head["precision / recall"] = f"{gen['precision']:.3f} / {gen['recall']:.3f}"
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = [f"{REPORT_HEAD}{run}", "",
             f"mdcli {ae_header['mdcli_version']}; {len(train)} training and {len(test)} held-out test spectrograms "
             f"({', '.join(train.class_names)}); {len(samples)} generated. Every diagnostic below is measured on the held-out "
             "test part, with a judge classifier trained independently of the generator; the training curves are "
             "the training runs' own validation splits.", "",
             "## Headline", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {fmt(v)} |" for k, v in head.items()]
    if not head:
        lines += ["", no_diagnostics_note(run) + "."]
    lines += ["", "## Real (left) and generated (right) spectrograms per class", "", f"![real vs generated]({grid.name})", ""]
    from mdcli.diagnose.kinematics import report_lines

    lines += report_lines(recon, gen)  # limb envelopes and periods: beside the grids, what FMD and PSNR miss
    if recon:
        rfmd = "fmd" in recon["overall"]
        lines += ["## Reconstruction per class (test)", "",
                  "| class | PSNR dB | SSIM | L1 | log-spectral dB |" + (" recon FMD |" if rfmd else ""),
                  "|---|---|---|---|---|" + ("---|" if rfmd else "")]
        lines += [f"| {c} | {v['psnr']:.2f} | {v['ssim']:.3f} | {v['l1']:.4f} | {_lsd(v)} |"
                  + ((f" {v['fmd']:.3g} |" if "fmd" in v else " – |") if rfmd else "") for c, v in recon["per_class"].items()]
        if rfmd:
            lines += ["", "recon FMD: the judge's features of the reconstructions against those of the originals — what "
                      "the decoder alone costs. A generation FMD far above it is the latent diffusion model's share; "
                      "a class whose recon FMD is already high cannot be generated well from this autoencoder."]
        lines.append("")
    if (run / "reconstructions.png").exists():  # examples/pipeline.sh: `mdcli plot test.h5 --ae ae.h5`
        lines += ["Held-out inputs (top) over their reconstructions (bottom):", "",
                  "![reconstructions](reconstructions.png)", ""]
    if codebook:
        lines += ["## Codebook", "", f"usage {codebook['codebook_usage']:.1%}, perplexity {codebook['perplexity']:.1f} of "
                  f"{codebook['codebook_size']} ({codebook['perplexity_ratio']:.2f}), dead codes {codebook['dead_codes']}, "
                  f"top-10% mass {codebook['top10pct_mass']:.2f}.", "", "![codebook](codebook_usage.png)", ""]
    if collapse:
        lines += ["## Collapse check", "", f"label: **{collapse['label']}**", "", "| evidence | value | rule | fired |", "|---|---|---|---|"]
        lines += [f"| {e['metric']} | {e['value']:.4g} | {e['rule']} | {'yes' if e['fired'] else 'no'} |" for e in collapse["evidence"]]
        lines.append("")
    if gen:
        lines += ["## Generation", "", "| metric | value |", "|---|---|"]
        for k in ("fmd", "kid", "precision", "recall", "density", "coverage", "judge_accuracy_generated", "judge_accuracy_real"):
            note = " (unbiased estimate; ≤ 0: no difference measurable with these sample sizes)" if k == "kid" and gen[k] <= 0 else ""
            lines.append(f"| {k} | {gen[k]:.4g}{note} |")
        if gen.get("memorisation"):
            m = gen["memorisation"]
            lines.append(f"| nearest-train distance, generated / real (median) | {m['median_nn_generated']:.3f} / {m['median_nn_real']:.3f} |")
            lines.append(f"| near copies | {m['near_copies']:.1%} |")
        n_seeds = len(gen.get("seeds", [])) or 1
        spread = lambda v: f"{fmt_spread(v['values'], '.3f', '.3f')} ({n_seeds} seed{'s' if n_seeds > 1 else ''})"  # noqa: E731
        for k, v in gen.get("tstr", {}).items():
            lines.append(f"| {k.upper()} accuracy (test) | {spread(v)} |")
        for n, arms in gen.get("augmentation", {}).items():
            for arm in ("real", "real+classic", "real+generated"):
                lines.append(f"| {n} real/class, {arm} | {spread(arms[arm])} |")
        from mdcli.diagnose.generation import augmentation_caveat

        caveat = augmentation_caveat(gen)
        if caveat:
            lines.append(f"| note | {caveat} |")
        if gen.get("fits"):  # CPU fits depend on the torch thread count: say how they ran
            f = gen["fits"]
            lines.append(f"| fresh classifier fits ran as | {f['jobs']} process(es) x {f['threads']} thread(s), {f['device']} |")
        lines.append("")
        if gen.get("per_class"):
            lines += ["Per class (generated against held-out real):", "", "| class | FMD | judge accuracy on generated |", "|---|---|---|"]
            lines += [f"| {c} | {v['fmd']:.3g} | {v['judge_accuracy']:.3f} |" for c, v in gen["per_class"].items()]
            lines.append("")
        if (run / "augmentation.png").exists():
            lines += ["![augmentation](augmentation.png)", ""]
    if losses:
        lines += ["## Training curves", "", f"![losses]({losses.name})", ""]
    with atomic_path(out) as tmp:
        tmp.write_text("\n".join(lines))
    return out, head
