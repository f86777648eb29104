"""Data commands: simulate, merge, import, export, split, subset, info, plot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from mdcli.cli.common import (
    command, console, err_console, _output_path, _print_config, _require, _write_json, writes,
)
from mdcli.errors import MdcliError
from mdcli.jsonio import strict_json

group = typer.Typer()


def _nullcontext():
    import contextlib

    return contextlib.nullcontext()



@command(group)
@writes(output="spectrograms")
def simulate(
    output: Annotated[Path, typer.Option("--output", "-o", help="Output spectrograms file (.h5).")] = Path("data.h5"),
    targets: Annotated[
        Optional[str], typer.Option(help="Comma-separated targets: walker,drone,helicopter,bird,vehicle.")
    ] = None,
    n: Annotated[Optional[int], typer.Option("--n", help="Spectrograms per class.")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Random seed (every random stream derives from it).")] = None,
    workers: Annotated[Optional[int], typer.Option(help="Worker processes (results do not depend on it).")] = None,
    save_iq: Annotated[
        Optional[bool], typer.Option("--save-iq/--no-save-iq", help="Also store the complex slow-time signal.")
    ] = None,
    mocap: Annotated[Optional[Path], typer.Option("--mocap", help="AMC motion file for --targets mocap.")] = None,
    skeleton: Annotated[Optional[Path], typer.Option("--skeleton", help="ASF skeleton for --targets mocap.")] = None,
    shard: Annotated[Optional[str], typer.Option("--shard", help="i/N: simulate only shard i of N (cluster array jobs; join with `mdcli merge`).")] = None,
    identities: Annotated[Optional[int], typer.Option("--identities", help="N virtual walkers, each a fixed body and style; the classes are id_000.. (--targets walker).")] = None,
    per_identity: Annotated[Optional[int], typer.Option("--per-identity", help="Windows (walks) per identity; the same as --n with --identities.")] = None,
    like: Annotated[Optional[Path], typer.Option("--like", help="Render like this measured spectrograms file: its image size and colour map + JPEG round trip; fit its unknown Doppler span, 0 Hz row, SNR, dynamic range, blur, smear and fading, and the walkers' speed, aspect and direction (like.* keys; like.fit=[] renders without fitting).")] = None,
    config=None, set_=None, dry_run=False, quiet=False, force=False,
) -> None:
    """Simulate micro-Doppler spectrograms of walkers, drones, helicopters, birds and vehicles.

    Physics: point and line scatterers sum_k a_k exp(-j 4 pi R_k(t)/lambda), thermal noise at the
    chosen SNR, STFT -> dB -> [0, 1] image. Writes a `spectrograms` artifact.
    """
    from mdcli.config import load_config
    from mdcli.errors import ConfigError
    from mdcli.progress import progress_bar
    from mdcli.sim.config import SimulateConfig, config_text
    from mdcli.sim.dataset import simulate_dataset

    if per_identity is not None and n is not None and per_identity != n:
        raise ConfigError(f"--per-identity {per_identity} and --n {n} disagree (with --identities they are the same)")
    cfg = load_config(
        SimulateConfig, config, set_,
        {"targets": targets if targets or not identities else "walker", "n_per_class": per_identity if per_identity is not None else n,
         "seed": seed, "workers": workers, "save_iq": save_iq, "identities": identities,
         "mocap.amc": str(mocap) if mocap else None, "mocap.asf": str(skeleton) if skeleton else None,
         "like.file": str(like) if like else None},
    )
    if per_identity is not None and not cfg.identities:
        raise ConfigError("--per-identity: give --identities N too (without it, use --n)")
    from mdcli.outputs import check_outputs

    check_outputs({"--output": (output, None)}, {key: Path(path) for key, path in (  # inputs named in the config
        ("like.file", cfg.like.file), ("mocap.amc", cfg.mocap.amc), ("mocap.asf", cfg.mocap.asf)) if path})
    text = config_text(cfg)
    if dry_run:
        _print_config(text)
        return
    like_attrs, like_parents = {}, None
    if cfg.like.file:  # fit before the progress bar; the fitted values go into the stored config
        from mdcli.artifacts import parent_record
        from mdcli.sim.like import prepare

        with console.status("fitting --like", spinner="dots") if not quiet else _nullcontext():
            fit = prepare(cfg, (lambda s: None) if quiet else (lambda s: err_console.print(f"[dim]{s}[/]", highlight=False)))
        text = config_text(cfg)
        like_attrs, like_parents = {"like_fit": json.dumps(strict_json(fit))}, [parent_record(cfg.like.file)]
        if not quiet:
            v = fit["values"]
            err_console.print(f"like {cfg.like.file}: Doppler span (PRF) {v['prf_hz']:.0f} Hz, 0 Hz at row {v['doppler_zero']:.2f}, "
                              f"SNR {v['snr_db']:.1f} dB, dynamic range {v['dynamic_range_db']:.1f} dB, blur {v['blur_px']:.2f} px, "
                              f"Doppler smear {v['doppler_spread_px']:.2f} px, fading sd {v['speckle']:.2f}, "
                              f"walkers {v['speed_mps']:.2f} m/s at cadence x{v['cadence_scale']:.2f}; "
                              f"distance {fit['distance_start']:.3g} -> {fit['distance']:.3g} ({fit['evaluations']} evaluations)",
                              highlight=False)
    total = cfg.n_total()
    part = _parse_shard(shard, total) if shard else None
    output = _output_path(output)
    if part is not None:
        from mdcli.sim.dataset import shard_range

        start, stop = shard_range(total, part)
        total = stop - start
    with progress_bar("simulate", total, unit="spec", quiet=quiet) as advance:
        data, report = simulate_dataset(cfg, advance, shard=part)
    from mdcli.sim.checks import simulation_warnings

    for warning in simulation_warnings(cfg, report):
        err_console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    data.save(output, text, cfg.seed, parents=like_parents,
              attrs={**({"shard": f"{part[0]}/{part[1]}"} if part else {}), **like_attrs} or None)
    if not quiet and cfg.identities:
        r = report.get("walker")
        console.print(f"{output}: {len(data)} spectrograms, {data.spectrograms.shape[1]}x{data.spectrograms.shape[2]}, "
                      f"{cfg.identities} identities ({data.class_names[0]}..{data.class_names[-1]}) x {cfg.n_per_class} walks"
                      + (f"; max |Doppler| {r['max_doppler_hz']:.0f} Hz, {r['aliased']} aliased" if r else ""))
    elif not quiet:
        table = Table(title=f"{output} ({len(data)} spectrograms, {data.spectrograms.shape[1]}x{data.spectrograms.shape[2]})")
        table.add_column("class")
        table.add_column("n", justify="right")
        table.add_column("max |Doppler| (Hz)", justify="right")
        table.add_column("aliased", justify="right")
        for target, count in data.class_counts().items():
            r = report.get(target)  # a --shard may hold no sample of a class
            table.add_row(target, str(count), f"{r['max_doppler_hz']:.0f}" if r else "–", str(r["aliased"]) if r else "–")
        console.print(table)


@command(group)
def info(
    path: Annotated[Path, typer.Argument(help="Any mdcli artifact (.h5).")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Show an artifact's kind, schema, shapes, classes, config and lineage."""
    from mdcli.artifacts import describe

    d = describe(path)
    if as_json:
        _write_json(d, default=str)
        return
    table = Table(title=str(path), show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for key in ("kind", "schema_version", "mdcli_version", "created_utc", "seed", "file_sha256"):
        table.add_row(key, str(d[key]))
    for name, attr in d["attrs"].items():
        table.add_row(name, str(attr))
    for name, ds in d["datasets"].items():
        table.add_row(f"/{name}", f"{ds['dtype']} {ds['shape']}")
    if "classes" in d:
        table.add_row("classes", ", ".join(f"{k}: {v}" for k, v in d["classes"].items()))
    parents = d["parents"] or [{"path": "(none)", "sha256": ""}]
    table.add_row("parents", "\n".join(f"{p['path']} {p['sha256'][:12]}" for p in parents))
    console.print(table)
    console.print("[bold]config[/]")
    _print_config(d["config"])


@command(group)
@writes(output="png")
def plot(
    path: Annotated[Path, typer.Argument(help="A spectrograms artifact (simulated, imported or generated).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="PNG file to write.")] = Path("grid.png"),
    per_class: Annotated[int, typer.Option(min=1, max=16, help="Examples per class.")] = 4,
    seed: Annotated[int, typer.Option(min=0, help="Which examples to pick.")] = 0,
    ae: Annotated[Optional[Path], typer.Option("--ae", help="Show these inputs over their reconstructions by this autoencoder.")] = None,
    force=False,
) -> None:
    """Plot a grid of spectrograms, a row per class, with Doppler (Hz) and time (s) axes."""
    from mdcli.artifacts import Spectrograms, atomic_path
    from mdcli.plotting import plot_grid, plot_reconstructions

    if output.suffix.lower() != ".png":
        raise MdcliError(f"--output {output}: expected a .png file name")
    data = Spectrograms.load(path)
    if len(data) == 0:
        raise MdcliError(f"{path}: holds no spectrograms to plot")
    output = _output_path(output)
    if ae is None:
        with atomic_path(output) as tmp:
            plot_grid(data, tmp, per_class=per_class, seed=seed, title=f"{path.name} ({data.source})")
    else:
        from mdcli.diagnose.recon import reconstruct_examples

        recon, index, attrs = reconstruct_examples(data, path, ae, per_class, seed)
        with atomic_path(output) as tmp:
            plot_reconstructions(data, recon, index, tmp, title=f"{ae.name} ({attrs['arch']}) on {path.name}")
    console.print(f"wrote {output}")


def _pair(text: str | None, option: str, cast=float):
    if text is None:
        return None
    parts = [p for p in text.replace("x", ",").split(",") if p.strip()]
    try:
        vals = tuple(cast(p) for p in parts)
    except ValueError:
        vals = ()
    if len(vals) != 2:
        raise MdcliError(f"{option} {text!r}: expected two comma-separated numbers")
    return vals


MAX_IMPORT_SIDE = 4096  # pixels per side of an imported spectrogram (a 64x64 model input is typical)


def _check_import_values(dynamic_range_db: float, doppler_range, duration, carrier, iq_rate) -> None:
    """The radar and axis values `import` stores: finite, positive, in order, and the axes given together."""
    import math

    def positive(value, option):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise MdcliError(f"{option} {value}: must be a finite number > 0")

    positive(dynamic_range_db, "--dynamic-range-db")
    positive(duration, "--duration")
    positive(carrier, "--carrier")
    positive(iq_rate, "--iq-rate")
    if doppler_range is not None:
        lo, hi = doppler_range
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise MdcliError(f"--doppler-range {lo:g},{hi:g}: expected two finite numbers LO < HI (Hz)")
    if (doppler_range is None) != (duration is None) and iq_rate is None:
        given, missing = ("--doppler-range", "--duration") if duration is None else ("--duration", "--doppler-range")
        raise MdcliError(f"{given} without {missing}: calibrated axes need both (or neither, for uncalibrated axes)")


@command(group, "import")
@writes(output="spectrograms")
def import_cmd(
    source: Annotated[Path, typer.Argument(help="Folder with one subfolder per class, or an .npz/.mat from `mdcli export`.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Spectrograms artifact to write (source = imported).")] = Path("imported.h5"),
    colormap: Annotated[Optional[str], typer.Option(help="Colour map the images were rendered with: jet (matplotlib's) | matlab-jet (MATLAB's jet(256)) | turbo|viridis|gray (others, e.g. MATLAB's parula: --colormap-file).")] = None,
    colormap_file: Annotated[Optional[Path], typer.Option("--colormap-file", help="CSV of RGB rows (low to high) for other maps.")] = None,
    input_scale: Annotated[str, typer.Option("--input-scale", help="Arrays are: unit ([0,1] display) | db | power | amplitude.")] = "unit",
    dynamic_range_db: Annotated[float, typer.Option("--dynamic-range-db", help="Floor below each peak for db/power/amplitude.")] = 50.0,
    image_size: Annotated[Optional[str], typer.Option("--image-size", help="Resize to H,W (also allows mixed shapes).")] = None,
    doppler_range: Annotated[Optional[str], typer.Option("--doppler-range", help="LO,HI in Hz (with --duration: calibrated axes).")] = None,
    duration: Annotated[Optional[float], typer.Option(help="Seconds covered by each spectrogram.")] = None,
    carrier: Annotated[Optional[float], typer.Option(help="Radar carrier frequency (Hz), if known.")] = None,
    variable: Annotated[Optional[str], typer.Option(help="Array name inside .mat/.npz files.")] = None,
    iq_rate: Annotated[Optional[float], typer.Option("--iq-rate", help="Complex 1-D inputs are slow-time IQ at this rate (Hz).")] = None,
    csv_file: Annotated[Optional[Path], typer.Option("--csv", help="CSV of file,label rows instead of class folders.")] = None,
    quiet=False, force=False,
) -> None:
    """Import measured spectrograms: arrays, MATLAB files, colour-mapped images (inverted), or IQ.

    Keeps each sample's source file and order (/source_files) and the number in its name
    (/sequence) for temporal splits; axes as given, or an uncalibrated 0..1 range.
    """
    from mdcli.artifacts import parent_record
    from mdcli.data.importing import ImportOptions, import_dataset
    from mdcli.progress import progress_bar

    if not source.exists():
        raise MdcliError(f"{source}: not found")
    if input_scale not in ("unit", "db", "power", "amplitude"):
        raise MdcliError(f"--input-scale: unknown '{input_scale}'; valid: unit, db, power, amplitude")
    size = _pair(image_size, "--image-size", int)
    if size is not None and not (min(size) >= 8 and max(size) <= MAX_IMPORT_SIDE):
        raise MdcliError(f"--image-size {image_size}: each side must lie in 8..{MAX_IMPORT_SIDE}")
    doppler = _pair(doppler_range, "--doppler-range")
    _check_import_values(dynamic_range_db, doppler, duration, carrier, iq_rate)
    opts = ImportOptions(
        colormap=colormap, colormap_file=colormap_file, input_scale=input_scale, dynamic_range_db=dynamic_range_db,
        image_size=size, doppler_range=doppler, duration=duration,
        carrier_hz=carrier if carrier is not None else float("nan"), variable=variable, iq_rate=iq_rate, csv=csv_file,
    )
    output = _output_path(output)
    from mdcli.data.importing import ARRAY_EXT, IMAGE_EXT

    if csv_file is not None:
        from mdcli.data.importing import list_inputs

        n_files = len(list_inputs(source, opts)[0])
    else:
        n_files = sum(1 for p in source.rglob("*") if p.suffix.lower() in IMAGE_EXT | ARRAY_EXT) if source.is_dir() else 1
    with progress_bar("import", n_files, unit="file", quiet=quiet) as advance:
        data = import_dataset(source, opts, advance)
    config = "\n".join(f"{k}: {v}" for k, v in vars(opts).items()) + f"\nsource: {source}\n"
    parents = [parent_record(source)] if source.is_file() else []
    data.save(output, config, 0, parents)
    if not quiet:
        q = data.transform.get("mean_colour_distance") if data.transform else None
        extra = f"; mean colour distance {q:.4f}" if q is not None else ""
        axes = "calibrated axes" if data.axes_calibrated else "uncalibrated (normalised) axes"
        console.print(f"wrote {output}: {len(data)} spectrograms {data.spectrograms.shape[1]}x{data.spectrograms.shape[2]}, "
                      f"classes {data.class_counts()}, {axes}{extra}")


@command(group)
@writes(output=lambda o: None if o["fmt"] == "png" else o["fmt"])
def export(
    path: Annotated[Path, typer.Argument(help="A spectrograms artifact.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="File (.npz/.mat) or folder (png).")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="png | npz | mat")] = "npz",
    colormap: Annotated[str, typer.Option(help="PNG colour map: gray, matlab-jet (MATLAB's jet(256)) or a matplotlib map such as jet.")] = "gray",
    force=False,
) -> None:
    """Export spectrograms to PNG folders per class, .npz, or MATLAB .mat (labels, class names, axes)."""
    from mdcli.artifacts import Spectrograms
    from mdcli.data.exporting import export as do_export

    data = Spectrograms.load(path)
    n = do_export(data, output, fmt, colormap)
    console.print(f"wrote {output} ({fmt}, {len(data)} spectrograms{f', {n} files' if fmt == 'png' else ''})")


def _parse_shard(text: str, n_tasks: int) -> tuple[int, int]:
    from mdcli.errors import ConfigError

    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise ConfigError(f"--shard {text}: expected i/N, e.g. 0/4") from None
    if not (n >= 1 and 0 <= i < n):
        raise ConfigError(f"--shard {text}: need 0 <= i < N")
    if n > n_tasks:
        raise ConfigError(f"--shard {text}: more shards than spectrograms ({n_tasks})")
    return i, n


@command(group, "merge")
@writes(output="spectrograms")
def merge_cmd(
    shards: Annotated[list[Path], typer.Argument(help="The shard files of one `simulate --shard i/N` run, any order.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The merged spectrograms artifact.")] = Path("data.h5"),
    force=False,
) -> None:
    """Join simulate shards; the data equal a single-process run of the same config byte for byte."""
    from mdcli.artifacts import parent_record
    from mdcli.sim.dataset import merge_shards

    for path in shards:
        _require(path, "spectrograms")
    output = _output_path(output)
    data, config, seed = merge_shards(shards)
    data.save(output, config, seed, [parent_record(p) for p in shards])
    console.print(f"wrote {output}: {len(data)} spectrograms from {len(shards)} shards")


@command(group, "split")
@writes(train_out="spectrograms", test_out="spectrograms")
def split_cmd(
    path: Annotated[Path, typer.Argument(help="A spectrograms artifact.")],
    train_out: Annotated[Path, typer.Option("--train-out", help="Training part to write.")] = Path("train.h5"),
    test_out: Annotated[Path, typer.Option("--test-out", help="Held-out part to write.")] = Path("test.h5"),
    split: Annotated[str, typer.Option("--split", help="random | blocked (contiguous recording runs; measured data).")] = "random",
    test_fraction: Annotated[float, typer.Option("--test-fraction", min=0.01, max=0.99)] = 0.3,
    gap: Annotated[int, typer.Option("--gap", min=0, help="blocked: sequence steps between test and training windows.")] = 3,
    seed: Annotated[int, typer.Option(min=0, help="Seed (which samples / which block).")] = 0,
    force=False,
) -> None:
    """Split spectrograms per class into training and held-out files (random, or blocked by recording time)."""
    from mdcli.artifacts import Spectrograms, atomic_path, parent_record
    from mdcli.data.splits import split_indices

    _require(path, "spectrograms")
    train_out, test_out = _output_path(train_out, "--train-out"), _output_path(test_out, "--test-out")
    data = Spectrograms.load(path)
    tr, te = split_indices(data.labels, test_fraction, seed, split, data.sequence, gap, data.class_names)
    for part, option, out, what in ((te, "--test-out", test_out, "holds out no window"), (tr, "--train-out", train_out, "keeps no training window")):
        if not len(part):
            raise MdcliError(f"{option} {out}: --test-fraction {test_fraction:g} {what} of {path}; nothing written")
    text = f"split: {split}\ntest_fraction: {test_fraction}\ngap: {gap}\nseed: {seed}\n"
    parents = [parent_record(path)]
    with atomic_path(train_out) as tmp_train, atomic_path(test_out) as tmp_test:  # both parts or neither
        data.select(tr).save(tmp_train, text + "part: train\n", seed, parents)
        data.select(te).save(tmp_test, text + "part: test\n", seed, parents)
    dropped = len(data) - len(tr) - len(te)
    console.print(f"wrote {train_out} ({len(tr)}) and {test_out} ({len(te)}), {split} split"
                  + (f"; {dropped} windows within {gap} steps of the test blocks left out" if dropped else ""))


@command(group, "subset")
@writes(output="spectrograms", rest="spectrograms")
def subset_cmd(
    path: Annotated[Path, typer.Argument(help="A spectrograms artifact (e.g. the training part of `split`).")],
    per_class: Annotated[int, typer.Option("--per-class", min=1, help="Spectrograms to keep per class.")] = 20,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the draw (diagnose gain's subset for this N and seed).")] = 0,
    output: Annotated[Path, typer.Option("--output", "-o", help="Spectrograms file to write.")] = Path("subset.h5"),
    split: Annotated[str, typer.Option("--split", help="auto (blocked when the data has /sequence) | blocked (a contiguous "
                                       "run per class) | random (diagnose generation's draw).")] = "auto",
    rest: Annotated[Optional[Path], typer.Option("--rest", help="Also write the spectrograms not kept (e.g. an unlabelled pool for classify -o).")] = None,
    force=False,
) -> None:
    """Keep N spectrograms per class: the few-shot subset `diagnose gain` uses for this N and seed (with --split random,
    the one `diagnose generation` draws), so a generator trained on it alone measures the augmentation gain of a
    user who has only N real images."""
    import numpy as np

    from mdcli.artifacts import Spectrograms, parent_record
    from mdcli.errors import MdcliError
    from mdcli.diagnose.gain import few_shot_indices, resolved_split

    _require(path, "spectrograms")
    output = _output_path(output)
    data = Spectrograms.load(path)
    short = [(c, k) for c, k in data.class_counts().items() if k < per_class]
    if short:
        raise MdcliError(f"--per-class {per_class}: {path} holds only {short[0][1]} spectrograms of class '{short[0][0]}'")
    idx = few_shot_indices(data.labels, per_class, seed, data.sequence, split)
    others = np.setdiff1d(np.arange(len(data)), idx)  # in file order
    if rest is not None and len(others) == 0:
        raise MdcliError(f"--rest {rest}: --per-class {per_class} keeps every spectrogram of {path}; nothing is left")
    config = f"per_class: {per_class}\nseed: {seed}\nsplit: {resolved_split(split, data)}\n"
    data.select(idx).save(output, config, seed, [parent_record(path)])
    console.print(f"wrote {output}: {per_class} per class ({len(idx)}) of {len(data)} in {path}")
    if rest is not None:
        data.select(others).save(_output_path(rest, "--rest"), config + "part: rest\n", seed, [parent_record(path)])
        console.print(f"wrote {rest}: the other {len(others)}")
