"""The `diagnose` commands (a sub-app: `mdcli diagnose recon`, ...) and `report`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from mdcli.cli.common import (
    command, console, err_console, _output_path, _require, _write_json, _write_json_file, writes,
)
from mdcli.errors import MdcliError

group = typer.Typer()

@command(group, "report")
def report_cmd(run: Annotated[Path, typer.Argument(help="A pipeline run folder (examples/pipeline.sh).")], force=False) -> None:
    """Write RUN/REPORT.md with real-vs-generated grids, loss curves, codebook use and the diagnostics; print the headline."""
    from mdcli.diagnose.report import build_report, no_diagnostics_note

    out, head = build_report(run, force)
    if not head:
        console.print(f"wrote {out}; {no_diagnostics_note(run)}", highlight=False, soft_wrap=True)
        return
    _kv_table(f"{run}: headline (full report: {out})", list(head.items()))


diagnose_app = typer.Typer(
    help="Measure why a latent space that reconstructs well may still generate badly (rich tables, --json, --plot DIR).",
    no_args_is_help=True,
)
group.add_typer(diagnose_app, name="diagnose")


def _figures_then_json(report: dict, plot_dir: Path | None, plot, as_json: bool) -> bool:
    """Draw the figures (`plot(folder)` -> their paths, listed in the report as `figures`) into --plot DIR, then print
    the report with --json; -> whether it was printed (the command prints no table then)."""
    if plot_dir is not None:
        plot_dir.mkdir(parents=True, exist_ok=True)
        report["figures"] = [str(p) for p in plot(plot_dir)]
    if as_json:
        _write_json(report)
    return as_json


def _report_table(title: str, rows: dict, per_class: dict) -> None:
    table = Table(title=title)
    table.add_column("")
    cols = list(rows)
    for c in cols:
        table.add_column(c, justify="right")
    fmt = lambda v: "n/a" if v is None or (isinstance(v, float) and v != v) else (f"{v:.4g}" if isinstance(v, float) else str(v))  # noqa: E731
    table.add_row("overall", *[fmt(rows[c]) for c in cols], style="bold")
    for name, vals in per_class.items():
        table.add_row(name, *[fmt(vals.get(c)) for c in cols])
    console.print(table)



def _kv_table(title: str, rows: list[tuple[str, object]]) -> None:
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in rows:
        table.add_row(k, f"{v:.4g}" if isinstance(v, float) else str(v))
    console.print(table)



@command(diagnose_app, "recon", prefix="diagnose")
def diagnose_recon(
    ae: Annotated[Path, typer.Option("--ae", help="Autoencoder artifact.")] = Path("ae.h5"),
    data: Annotated[Path, typer.Option("--data", "-d", help="Spectrograms to reconstruct.")] = Path("data.h5"),
    classifier: Annotated[Optional[Path], typer.Option(
        help="classifier.h5 for the perceptual distance and the reconstruction FMD (use an independent judge).")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 64,
    as_json=False, plot_dir=None,
) -> None:
    """Reconstruction quality: PSNR, SSIM, L1, log-spectral distance (dB), perceptual; overall and per class.

    With --classifier also the reconstruction FMD (reconstructions vs originals in the classifier's
    features): the floor the decoder sets for the FMD of generated samples.
    """
    from mdcli.diagnose.recon import plot_recon, recon_report

    _require(ae, "autoencoder")
    _require(data, "spectrograms")
    if classifier is not None:
        _require(classifier, "classifier", "--classifier")
    report = recon_report(ae, data, classifier, batch_size)
    if _figures_then_json(report, plot_dir, lambda d: plot_recon(report, d), as_json):
        return
    _report_table(f"reconstruction of {data} by {ae} ({report['arch']}, {report['n']} images)", report["overall"], report["per_class"])
    if report.get("kinematics"):
        from mdcli.diagnose.kinematics import print_recon_table

        print_recon_table(console, report["kinematics"], "kinematic fidelity of the reconstructions (limb envelopes, periods)")


@command(diagnose_app, "codebook", prefix="diagnose")
def diagnose_codebook(
    ae: Annotated[Optional[Path], typer.Option("--ae", help="VQ autoencoder artifact.")] = None,
    data: Annotated[Optional[Path], typer.Option("--data", "-d", help="Spectrograms to encode.")] = None,
    latents: Annotated[Optional[Path], typer.Option("--latents", help="Use the code indices stored by `encode` instead.")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 64,
    as_json=False, plot_dir=None,
) -> None:
    """Codebook use over the whole dataset: usage, perplexity (and /K), dead codes, top-10% mass, per class."""
    from mdcli.diagnose.codebook import codebook_report, plot_codebook

    for path, kind in ((ae, "autoencoder"), (data, "spectrograms"), (latents, "latents")):
        if path is not None:
            _require(path, kind)
    report, counts = codebook_report(ae, data, latents, batch_size)
    if _figures_then_json(report, plot_dir, lambda d: plot_codebook(report, counts, d), as_json):
        return
    overall = {k: report[k] for k in ("codebook_usage", "perplexity", "perplexity_ratio", "dead_codes", "top10pct_mass")}
    _report_table(f"codebook of {ae or latents} ({report['arch']}, K = {report['codebook_size']}, {report['n_images']} images)",
                  overall, report["per_class"])


def _latent_rows(r: dict) -> list[tuple[str, object]]:
    rows: list[tuple[str, object]] = [("images", r["n"]), ("latent shape", "x".join(map(str, r["latent_shape"])))]
    if "vae" in r:
        v = r["vae"]
        rows += [("KL per image (nats)", v["kl_total"]), ("active units", f"{v['active_units']}/{v['latent_dims']}"),
                 ("posterior sigma (mean)", v["posterior_sigma_mean"]), ("variance-collapse index", v["variance_collapse_index"]),
                 ("I(x;z) nats (bound log N)", f"{v['mutual_information']:.3g} ({v['mutual_information_bound']:.3g})")]
    if "vq" in r:
        q = r["vq"]
        rows += [("codebook usage", q["codebook_usage"]), ("perplexity / K", q["perplexity_ratio"]),
                 ("neighbour-code MI / H", q["neighbour_mi_ratio"]), ("code-neighbour damage ratio", q["damage_ratio"])]
    sp, eq = r["spectrum"], r["equivariance"]
    rows += [("latent high-freq share", sp["latent_high_freq_share"]), ("image high-freq share", sp["image_high_freq_share"]),
             ("recon PSNR dB", eq["recon_psnr"])]
    if "half_psnr" in eq:
        rows.append(("2x-down decode PSNR dB (equivariance)", eq["half_psnr"]))
    rows += [(f"PSNR at latent noise {k} std", v) for k, v in r["robustness_psnr"].items() if k != "0"]
    p = r["probe"]
    if "linear_probe_accuracy" in p:
        rows += [(f"linear probe acc ({p['split']} split)", p["linear_probe_accuracy"]), ("5-NN acc", p["knn_accuracy"])]
    if "interpolation" in r:
        rows.append(("interpolation path-length ratio", r["interpolation"]["path_length_ratio"]))
    return rows


@command(diagnose_app, "latent", prefix="diagnose")
def diagnose_latent(
    ae: Annotated[Path, typer.Option("--ae", help="Autoencoder artifact.")] = Path("ae.h5"),
    data: Annotated[Path, typer.Option("--data", "-d", help="Spectrograms to encode.")] = Path("data.h5"),
    split=None, config=None, set_=None, as_json=False, plot_dir=None,
) -> None:
    """Latent geometry: VAE KL/active units/variance collapse/I(x;z); spectra, equivariance, robustness, probes; VQ structure."""
    from mdcli.config import load_config
    from mdcli.diagnose.latent import LatentConfig, latent_report_files, plot_latent

    cfg = load_config(LatentConfig, config, set_, {"split": split})
    _require(ae, "autoencoder")
    _require(data, "spectrograms")
    report = latent_report_files(ae, data, cfg)
    if _figures_then_json(report, plot_dir, lambda d: plot_latent(report, d), as_json):
        return
    _kv_table(f"latent space of {ae} ({report['arch']}) on {data}", _latent_rows(report))


@command(diagnose_app, "collapse", prefix="diagnose")
def diagnose_collapse(
    ae: Annotated[Path, typer.Option("--ae", help="Autoencoder artifact.")] = Path("ae.h5"),
    data: Annotated[Path, typer.Option("--data", "-d", help="Spectrograms to encode.")] = Path("data.h5"),
    config=None, set_=None, as_json=False,
) -> None:
    """Label the autoencoder healthy / variance collapse / codebook collapse / posterior collapse, with the evidence.

    Thresholds (--set NAME=VALUE): variance_index_max, active_share_min, perplexity_ratio_min,
    top10_mass_max, neighbour_mi_ratio_min, damage_ratio_max (see docs/DIAGNOSE.md).
    """
    from mdcli.config import load_config, to_yaml
    from mdcli.diagnose.latent import CollapseThresholds, LatentConfig, collapse_label, latent_report_files

    th = load_config(CollapseThresholds, config, set_, {})
    _require(ae, "autoencoder")
    _require(data, "spectrograms")
    report = latent_report_files(ae, data, LatentConfig())
    label, evidence = collapse_label(report, th)
    if as_json:
        _write_json({"label": label, "evidence": evidence, "thresholds": to_yaml(th), "latent": report})
        return
    table = Table(title=f"{ae} ({report['arch']}): [bold]{label}[/]")
    for col in ("metric", "value", "rule", "fired", "would mean"):
        table.add_column(col, justify="right" if col == "value" else "left")
    for row in evidence:
        table.add_row(row["metric"], f"{row['value']:.4g}", row["rule"], "yes" if row["fired"] else "no", row["label"],
                      style="bold red" if row["fired"] else None)
    console.print(table)
    _kv_table("supporting latent metrics", _latent_rows(report))


@command(diagnose_app, "diffusability", prefix="diagnose")
@writes(keep="ldm")
def diagnose_diffusability(
    latents: Annotated[Path, typer.Option("--latents", help="Latents artifact (from `encode`).")] = Path("latents.h5"),
    classifier: Annotated[Optional[Path], typer.Option(help="Independent judge for FMD / accuracy of decoded samples.")] = None,
    real: Annotated[Optional[Path], typer.Option(help="Real spectrograms for FMD (with --classifier).")] = None,
    keep: Annotated[Optional[Path], typer.Option(help="Keep the probe LDM at this path (else a temp file).")] = None,
    config=None, set_=None, as_json=False, quiet=False, force=False,
) -> None:
    """Train a fixed-budget diffusion probe on the latents: held-out denoising error per noise level, sample quality."""
    from mdcli.config import load_config
    from mdcli.diagnose.diffusability import DiffusabilityConfig, diffusability_report
    from mdcli.progress import progress_bar

    cfg = load_config(DiffusabilityConfig, config, set_, {})
    _require(latents, "latents")
    if (classifier is None) != (real is None):
        from mdcli.errors import MdcliError

        raise MdcliError("--classifier and --real: give both (FMD of the decoded samples) or neither")
    if classifier is not None:
        _require(classifier, "classifier", "--classifier")
        _require(real, "spectrograms")
    if keep is not None:
        keep = _output_path(keep, "--keep")
    with progress_bar("diffusability probe", cfg.ldm.train.steps, unit="step", quiet=quiet or as_json) as advance:
        report = diffusability_report(latents, cfg, classifier, real, keep, advance)
    if as_json:
        _write_json(report)
        return
    table = Table(title=f"diffusability of {latents} ({report['arch']}, probe {report['budget_steps']} steps)")
    table.add_column("timestep")
    table.add_column("held-out loss", justify="right")
    table.add_column("x0-MSE (1 = predicting the mean)", justify="right")
    for t, v in report["denoising"].items():
        table.add_row(t, f"{v['loss']:.4f}", f"{v['x0_mse']:.4f}")
    console.print(table)
    rows = [("mean x0-MSE", report["mean_x0_mse"])] + [(f"latent {k}", v) for k, v in report["latent_prdc"].items()]
    rows += [(k, report[k]) for k in ("fmd", "judge_accuracy_generated") if k in report]
    _kv_table("generated latents against held-out latents", rows)


@command(diagnose_app, "generation", prefix="diagnose")
def diagnose_generation(
    samples: Annotated[Path, typer.Option("--samples", help="Generated spectrograms (from `sample`).")] = Path("samples.h5"),
    real: Annotated[Path, typer.Option("--real", help="Held-out real spectrograms (not seen by any model).")] = Path("test.h5"),
    classifier: Annotated[Path, typer.Option("--classifier", help="The judge: a classifier independent of the generator.")] = Path("judge.h5"),
    train: Annotated[Optional[Path], typer.Option(help="Real training spectrograms (default: found through the lineage).")] = None,
    allow_same_judge: Annotated[bool, typer.Option("--allow-same-judge", help="Accept a judge from the generator's lineage.")] = False,
    baseline_cache: Annotated[Optional[Path], typer.Option(
        "--baseline-cache", help="Folder that keeps the accuracies of the fits not involving the generator (all real, "
        "few real, few real + classic), so comparing many generators on the same data fits each once.")] = None,
    config=None, set_=None, as_json=False, plot_dir=None, quiet=False,
) -> None:
    """FMD, KID, precision/recall/density/coverage, judge accuracy, memorisation, TSTR and augmentation gain."""
    from mdcli.config import load_config
    from mdcli.diagnose.generation import GenerationConfig, generation_report, plot_generation, summary_rows

    cfg = load_config(GenerationConfig, config, set_, {})
    _require(samples, "spectrograms")
    _require(real, "spectrograms")
    _require(classifier, "classifier", "--classifier")
    if train is not None:
        _require(train, "spectrograms")
    say = (lambda s: None) if quiet or as_json else (lambda s: err_console.print(f"[dim]{s}[/]"))
    report = generation_report(samples, real, classifier, train, cfg, allow_same_judge, say, baseline_cache)
    figures = plot_dir if report.get("augmentation") else None  # no augmentation runs (few: []): no empty figure
    if _figures_then_json(report, figures, lambda d: plot_generation(report, d), as_json):
        return
    _report_table(f"{samples} against {real} (judge {classifier})", summary_rows(report),
                  {k: {"fmd": v["fmd"], "judge_accuracy_generated": v["judge_accuracy"]} for k, v in report["per_class"].items()})
    if report.get("kinematics"):
        from mdcli.diagnose.kinematics import print_generation_table

        print_generation_table(console, report["kinematics"], "kinematic features, generated against real")
    rows: list[tuple[str, object]] = []
    if report.get("memorisation"):
        m = report["memorisation"]
        rows += [("median NN distance generated->train", m["median_nn_generated"]),
                 ("median NN distance real->train", m["median_nn_real"]), ("near copies (share)", m["near_copies"])]
    from mdcli.diagnose.stats import fmt_spread

    spread = lambda v: fmt_spread(v["values"], ".3f", ".3f")  # noqa: E731
    for k, v in report.get("tstr", {}).items():
        rows.append((f"{k.upper()} accuracy", spread(v)))
    for n, arms in report.get("augmentation", {}).items():
        for arm in ("real", "real+classic", "real+generated"):
            rows.append((f"{n}/class {arm}", spread(arms[arm])))
    from mdcli.diagnose.generation import augmentation_caveat

    caveat = augmentation_caveat(report)
    if caveat:
        err_console.print(f"[yellow]note:[/] {caveat}", highlight=False, soft_wrap=True)
    if rows:
        _kv_table(f"memorisation, TSTR and augmentation (seeds {cfg.seeds}; test: {real})", rows)


@command(diagnose_app, "gain", prefix="diagnose")
@writes(json_out="json", md_out="md")
def diagnose_gain(
    train: Annotated[Path, typer.Option("--train", help="Real training spectrograms (the N per class are drawn from it).")] = Path("train.h5"),
    test: Annotated[Path, typer.Option("--test", help="Held-out real spectrograms (disjoint from --train and every arm's lineage).")] = Path("test.h5"),
    per_class: Annotated[str, typer.Option("--per-class", help="Real windows per class, comma-separated (e.g. 20,50).")] = "20,50",
    seeds: Annotated[int, typer.Option("--seeds", min=1, help="Seeds S..S+K-1 (S: --first-seed): one paired subset and initialisation each (an init arm starts from its classifier).")] = 5,
    first_seed: Annotated[int, typer.Option("--first-seed", min=0, help="The first seed (a replication on subsets and weights no earlier run used).")] = 0,
    arm: Annotated[Optional[list[str]], typer.Option("--arm", help="NAME=MODE:FILE[,key=value...] (repeatable); FILE may hold {n} and {seed}; A.h5+B.h5 joins files into one set.")] = None,
    split: Annotated[str, typer.Option("--split", help="How the N per class are drawn: auto (blocked when the data has /sequence), blocked, random.")] = "auto",
    jobs: Annotated[int, typer.Option("--jobs", min=1, help="Classifier fits in this many processes (one thread each; same numbers for any value).")] = 1,
    starts: Annotated[int, typer.Option("--starts", min=1, help="Fits per arm, N and seed (every arm alike; an init arm joining M classifiers with + tries each: K a multiple of M): the one most accurate on the other training windows is kept.")] = 1,
    choose_on: Annotated[Optional[int], typer.Option("--choose-on", help="With --starts: choose on this many other training windows per class (the nearest the subset in recording order) instead of all of them.")] = None,
    keep: Annotated[str, typer.Option("--keep", help="Of the --starts: best (the one most accurate on the other training windows) or ensemble (the mean of all their class probabilities).")] = "best",
    config=None, set_=None, as_json=False,
    json_out: Annotated[Optional[Path], typer.Option("--json-out", help="Also write the --json report to this file (the table still prints).")] = None,
    md_out: Annotated[Optional[Path], typer.Option("--md-out", help="Also write the table as a Markdown report headed by this command.")] = None,
    plot_dir=None, quiet=False, force=False,
) -> None:
    """Paired few-shot protocol: does extra data help a classifier trained on N real windows per class, and how surely?"""
    from mdcli.config import load_config
    from mdcli.diagnose.gain import GainConfig, gain_report, parse_arm, plan
    from mdcli.progress import progress_bar

    cfg = load_config(GainConfig, config, set_, {})
    cfg.validate()
    try:
        ns = [int(v) for v in per_class.split(",") if v.strip()]
    except ValueError:
        raise MdcliError(f"--per-class {per_class}: expected comma-separated integers, e.g. 20,50") from None
    arms = [parse_arm(a) for a in arm or []]
    _require(train, "spectrograms")
    _require(test, "spectrograms")
    for opt, path in (("--json-out", json_out), ("--md-out", md_out)):
        if path is not None and path.is_dir():
            raise MdcliError(f"{opt} {path}: is a folder, expected a file name")
    seed_list = list(range(first_seed, first_seed + seeds))
    from mdcli.outputs import check_outputs

    # the arm files are inputs too (before plan reads them all)
    check_outputs({o: (path, None) for o, path in (("--json-out", json_out), ("--md-out", md_out)) if path is not None},
                  {f"--arm {a.name} ({q})": q for a in arms if a.file for n in ns for s in seed_list for q in a.paths(n, s)})
    p = plan(train, test, arms, ns, seed_list, split, starts, choose_on, keep)
    with progress_bar("diagnose gain", len(p.tasks), unit="fit", quiet=quiet) as advance:
        report = gain_report(p, cfg, ns, seed_list, jobs, lambda: advance(1))
    from mdcli.diagnose.gain import plot_gain

    _figures_then_json(report, plot_dir, lambda d: plot_gain(report, d), False)  # the JSON after the files below
    # the command that reproduces the numbers (--jobs, outputs and display options do not change them)
    cmd = ["mdcli", "diagnose", "gain", "--train", str(train), "--test", str(test), "--per-class", per_class,
           "--seeds", str(seeds), *(["--first-seed", str(first_seed)] if first_seed else []),
           *(["--split", split] if split != "auto" else []), *(["--starts", str(starts)] if starts > 1 else []),
           *(["--choose-on", str(choose_on)] if choose_on is not None else []),
           *(["--keep", keep] if keep != "best" else []),
           *(["--config", str(config)] if config else []), *[x for v in set_ or [] for x in ("--set", v)],
           *[x for a in arm or [] for x in ("--arm", a)]]
    _write_gain_files(report, json_out, md_out, cmd)
    if as_json:
        _write_json(report)
        return
    which = (f"{seeds} seeds" + (f" from {first_seed}" if first_seed else "")
             + ((f", ensemble of {starts} starts" if keep == "ensemble" else
                 f", best of {starts} starts on the other training windows") if starts > 1 else "")
             + (f" ({choose_on} per class)" if choose_on is not None else ""))
    _print_gain(report, f"diagnose gain: {train} -> {test} ({report['split']} subsets, {which})")


def _write_gain_files(report: dict, json_out: Path | None, md_out: Path | None, command: list[str]) -> None:
    """diagnose gain's and gain-pool's --json-out (the report) and --md-out (its tables headed by `command`)."""
    if json_out is not None:
        _write_json_file(report, json_out)
    if md_out is not None:
        import shlex

        from mdcli.artifacts import atomic_path
        from mdcli.diagnose.gain import markdown_report

        with atomic_path(_output_path(md_out, "--md-out")) as tmp:
            tmp.write_text(markdown_report(report, shlex.join(command)))


def _print_gain(report: dict, title: str) -> None:
    """diagnose gain's tables in the terminal: the gains, their notes, the reference line and the side tables."""
    from mdcli.diagnose.gain import (FROZEN_HEADER, FROZEN_TITLE, REFERENCE_ARMS_HEADER, REFERENCE_ARMS_TITLE,
                                     TABLE_HEADER, TRAIN_HEADER, TRAIN_TITLE, frozen_cells, reference_arm_cells,
                                     reference_line, table_cells, train_cells)

    table = Table(title=title)
    for c in TABLE_HEADER:
        table.add_column(c, justify="right" if c in ("N", "accuracy", "macro-F1", "wins") else "left")
    rows, notes = table_cells(report)
    for cells in rows:
        table.add_row(*cells)
    console.print(table)
    if report["test_sequence_gap"] is not None and report["test_sequence_gap"] < 3:
        notes.append(f"a test window is {report['test_sequence_gap']} recording step(s) from a training window: overlapping "
                     "windows then share time (mdcli split --split blocked --gap 3 keeps them apart)")
    for line in notes:
        console.print(f"[yellow]note:[/] {line}", highlight=False, soft_wrap=True)
    ref = reference_line(report)
    if ref:
        console.print(ref, highlight=False, soft_wrap=True)
    for title, header, rows, left in (
            (REFERENCE_ARMS_TITLE, REFERENCE_ARMS_HEADER, reference_arm_cells(report), ("arm", "gain")),
            (TRAIN_TITLE, TRAIN_HEADER, train_cells(report), ("arm", "gain")),
            (FROZEN_TITLE, FROZEN_HEADER, frozen_cells(report), ("start", "over"))):
        if rows:  # the side tables: text columns left, numbers right
            table = Table(title=title)
            for c in header:
                table.add_column(c, justify="left" if c == left[0] or c.startswith(left[1]) else "right")
            for cells in rows:
                table.add_row(*cells)
            console.print(table)


@command(diagnose_app, "gain-pool", prefix="diagnose")
@writes(json_out="json", md_out="md")
def diagnose_gain_pool(
    reports: Annotated[list[Path], typer.Argument(help="`diagnose gain --json-out` reports of one comparison on disjoint seeds.")],
    as_json=False,
    json_out: Annotated[Optional[Path], typer.Option("--json-out", help="Also write the pooled --json report to this file (the table still prints).")] = None,
    md_out: Annotated[Optional[Path], typer.Option("--md-out", help="Also write the pooled table as a Markdown report headed by this command.")] = None,
    force=False,
) -> None:
    """One `diagnose gain` report from runs on disjoint seeds (e.g. --first-seed 0 and --first-seed 6): every mean,
    interval and verdict again over all the seeds, the same numbers one run of them all would give."""
    from mdcli.diagnose.gainpool import pool_reports

    report = pool_reports(reports)  # (a folder named as an output is refused by @writes before this)
    _write_gain_files(report, json_out, md_out, ["mdcli", "diagnose", "gain-pool", *map(str, reports)])
    if as_json:
        _write_json(report)
        return
    _print_gain(report, f"diagnose gain-pool: {report['train']} -> {report['test']} ({report['split']} subsets, "
                        f"{len(report['seeds'])} seeds from {len(reports)} reports)")


@command(diagnose_app, "separability", prefix="diagnose")
def diagnose_separability(
    data: Annotated[list[Path], typer.Option("--data", help="Spectrograms with classes (repeatable: side by side, e.g. measured and simulated).")],
    run: Annotated[int, typer.Option("--run", help="Windows per run along the recording for the drift column (files with /sequence).")] = 20,
    as_json=False,
) -> None:
    """Which kinematic features tell the classes apart: per feature the spread of the class means against the spread
    within a class (between / within), and the drift of RUN-window runs along a recording. Compare a simulated
    set's ratios with a measured one's: do its classes differ the way the measured ones do?"""
    from mdcli.diagnose.separability import separability_report

    for path in data:
        _require(path, "spectrograms", "--data")
    reports = [separability_report(path, run) for path in data]
    if as_json:
        _write_json({"files": reports})
        return
    num = lambda v, f=".3g": "–" if v is None else format(v, f)  # noqa: E731
    table = Table(title="between / within class spread per feature (ratio: how far apart the classes lie in units of "
                        f"their own spread; drift: sd of {run}-window means along each recording)")
    table.add_column("feature")
    for r in reports:
        table.add_column(f"{Path(r['data']).name} ({r['classes']} classes): between / within", justify="right")
        table.add_column("ratio", justify="right")
        if r["recording_order"]:
            table.add_column("drift", justify="right")
    for name in reports[0]["features"]:
        cells = [name]
        for r in reports:
            f = r["features"][name]
            unit = f" {f['unit']}" if f["unit"] else ""
            cells += [f"{num(f['between'])} / {num(f['within'])}{unit}", num(f["ratio"], ".2f")]
            if r["recording_order"]:
                cells.append(num(f["drift"]))
        table.add_row(*cells)
    console.print(table)


@command(diagnose_app, "domain", prefix="diagnose")
def diagnose_domain(
    a: Annotated[Path, typer.Option("--a", help="First spectrograms (e.g. simulated).")] = Path("sim.h5"),
    b: Annotated[Path, typer.Option("--b", help="Second spectrograms (e.g. measured), of the same image size.")] = Path("measured.h5"),
    classifier: Annotated[Optional[Path], typer.Option(
        help="A judge classifier.h5 for the FMD features (else the two-sample net's own features, stated in the report).")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed of the balanced split and the classifier (default 0).")] = None,
    steps: Annotated[Optional[int], typer.Option("--steps", min=1, help="Training steps of the two-sample classifier (default 200).")] = None,
    config=None, set_=None, as_json=False, plot_dir=None, quiet=False,
) -> None:
    """Domain gap between two sets: a two-sample classifier's held-out accuracy (50 % = indistinguishable) and FMD;
    what gives them away: the accuracy on coarsened images (--set 'scales=[1,2,4,8]') and per statistic."""
    from mdcli.config import load_config
    from mdcli.diagnose.domain import DomainConfig, domain_report, plot_domain

    cfg = load_config(DomainConfig, config, set_, {"seed": seed, "steps": steps})
    _require(a, "spectrograms")
    _require(b, "spectrograms")
    if classifier is not None:
        _require(classifier, "classifier", "--classifier")
    say = (lambda s: None) if quiet or as_json else (lambda s: err_console.print(f"[dim]{s}[/]", highlight=False))
    report = domain_report(a, b, classifier, cfg, say)
    examples = report.pop("_examples")
    if _figures_then_json(report, plot_dir, lambda d: plot_domain({**report, "_examples": examples}, d), as_json):
        return
    o = report["overall"]
    _report_table(f"{a} against {b} ({report['n_per_side']} per side, {report['n_test']} held out; FMD in {report['fmd_features']})",
                  {"two-sample accuracy": o["two_sample_accuracy"], "95% CI": f"{o['ci95_low']:.3f}-{o['ci95_high']:.3f}", "FMD": o["fmd"]},
                  {k: {"two-sample accuracy": v["two_sample_accuracy"], "95% CI": f"{v['ci95_low']:.3f}-{v['ci95_high']:.3f}",
                       "FMD": v["fmd"]} for k, v in report["per_class"].items()})
    if not report["per_class"]:
        err_console.print("[dim]no class names shared by the two files: overall only[/]")
    if len(report["by_scale"]) > 1:
        _kv_table("two-sample accuracy on s x s block means (50 % = indistinguishable at that scale)",
                  [(f"s = {r['factor']}", f"{r['two_sample_accuracy']:.3f} ({r['ci95_low']:.3f}-{r['ci95_high']:.3f})")
                   for r in report["by_scale"]])
    c = report["statistics_combined"]
    table = Table(title=f"what tells them apart, one statistic at a time (all {c['n_statistics']} together: "
                        f"{c['accuracy']:.3f}, {c['ci95_low']:.3f}-{c['ci95_high']:.3f})")
    for col in ("statistic", "held-out accuracy", "median A", "median B"):
        table.add_column(col, justify="left" if col == "statistic" else "right")
    for r in report["statistics"][:10]:
        table.add_row(r["statistic"], f"{r['accuracy']:.3f}", f"{r['median_a']:.4g}", f"{r['median_b']:.4g}")
    console.print(table)
    tc = report["time_course"]
    _kv_table(f"along time: each set's mean image over the window (gap between the two: {tc['gap']:.3f} of B's mean)",
              [(f"{side}: coherence / slope", f"{tc[side]['coherence']:.3f} / {tc[side]['slope']:+.3f}") for side in ("a", "b")])
