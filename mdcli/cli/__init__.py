"""The `mdcli` command line: thin Typer commands that validate, call the library, and report.

User errors (bad files, options, configs) print one line and exit with code 2.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from mdcli import __version__
from mdcli.choices import PERCEPTUAL_CHOICES
from mdcli.errors import MdcliError
from mdcli.jsonio import strict_json

app = typer.Typer(
    name="mdcli",
    help="Radar micro-Doppler data augmentation: simulate, train autoencoders and latent diffusion, diagnose.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
console = Console()
err_console = Console(stderr=True)

CompileOpt = Annotated[Optional[bool], typer.Option("--compile/--no-compile", help="torch.compile the training forward (GPU; the first steps compile).")]
SplitOpt = Annotated[Optional[str], typer.Option("--split", help="Train/validation split: random | blocked (contiguous recording runs held out; use for measured data).")]
ConfigOpt = Annotated[Optional[Path], typer.Option("--config", "-c", help="YAML config file (see configs/).")]
SetOpt = Annotated[
    Optional[list[str]],
    typer.Option("--set", help="Override a config key, e.g. --set radar.prf_hz=8000 (repeatable)."),
]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Print the resolved config and write nothing.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary.")]
FilterOpt = Annotated[Optional[list[str]], typer.Option("--filter", help="Drop generated samples: confidence:CLF[,min=0.5] | novelty:CLF[,quantile=0.05] | kinematic[:margin=0.25] (repeatable; train=PATH sets the reference data).")]


def user_errors(fn):
    """Turn MdcliError into a one-line message and exit code 2 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except MdcliError as e:
            from rich.markup import escape

            err_console.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)  # "[low, high]" stays
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err_console.print("[yellow]interrupted; no output written[/]")
            raise typer.Exit(130) from None

    return wrapper


# Options that name what a command writes; every other path option is one of its inputs.
OUTPUT_OPTIONS = {"output": "--output", "train_out": "--train-out", "test_out": "--test-out", "preview": "--preview",
                  "keep": "--keep", "json_out": "--json-out", "md_out": "--md-out"}
NOT_INPUTS = {"plot_dir", "baseline_cache", "run"}  # folders a command writes into, or reads and writes


def writes(**kinds):
    """Guard a command's outputs: `@writes(output="spectrograms", preview="png")` names each output option and the
    kind it writes (a callable of the options for kinds that depend on them). Before the command runs, an output
    equal to any input, two equal outputs, or an existing output of another kind (without --force) is one line and
    exit 2; while it runs, each output is locked against a second writer."""

    def deco(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            from mdcli.outputs import guard_outputs

            if kwargs.get("dry_run"):
                return fn(*args, **kwargs)
            outputs, inputs = {}, {}
            for name, value in kwargs.items():
                if name in kinds and isinstance(value, Path):
                    kind = kinds[name](kwargs) if callable(kinds[name]) else kinds[name]
                    outputs[OUTPUT_OPTIONS.get(name, name)] = (value, kind)
                elif name not in NOT_INPUTS and name not in OUTPUT_OPTIONS:
                    paths = value if isinstance(value, list) else [value]
                    for i, p in enumerate(paths):
                        if isinstance(p, Path) and p.is_file():
                            opt = "--" + name.replace("_", "-").rstrip("-")
                            inputs[opt if len(paths) == 1 else f"{opt}[{i}]"] = p
            with guard_outputs(outputs, inputs, bool(kwargs.get("force"))):
                return fn(*args, **kwargs)

        return wrapper

    return deco


ForceOpt = Annotated[bool, typer.Option("--force", help="Replace an existing output that is not of the kind this command writes.")]


def _version(value: bool) -> None:
    if value:
        console.print(f"mdcli {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """mdcli: physics-based micro-Doppler simulation and two-stage generative augmentation.

    Each command reads and writes HDF5 artifacts:
    simulate -> data.h5 -> train-ae -> ae.h5 -> encode -> latents.h5 -> train-ldm -> ldm.h5 -> sample -> samples.h5
    """


def _output_path(path: Path) -> Path:
    if path.exists() and path.is_dir():
        raise MdcliError(f"--output {path}: is a folder, expected a file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _nullcontext():
    import contextlib

    return contextlib.nullcontext()


def _print_config(text: str) -> None:
    from rich.syntax import Syntax

    console.print(Syntax(text, "yaml", background_color="default"))


@app.command(
    epilog=(
        "Examples:\n\n"
        "  mdcli simulate --targets walker,drone --n 200 -o data.h5\n\n"
        "  mdcli simulate --config configs/tiny/simulate.yaml --set radar.prf_hz=8000 -o tiny.h5\n\n"
        "  mdcli simulate --n 1000 --workers 2 --save-iq -o big.h5\n\n"
        "  mdcli simulate --targets walker,mocap --mocap 35_01.amc --skeleton 35.asf -o walks.h5\n\n"
        "  mdcli simulate --targets walker --identities 500 --per-identity 20 -o people.h5"
    )
)
@user_errors
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
    like: Annotated[Optional[Path], typer.Option("--like", help="Render like this measured spectrograms file: its image size and colour map + JPEG round trip; fit its unknown Doppler span, 0 Hz row, SNR, dynamic range, blur, smear and fading (like.* keys; like.fit=[] renders without fitting).")] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    dry_run: DryRunOpt = False,
    quiet: QuietOpt = False,
    force: ForceOpt = False,
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
                              f"Doppler smear {v['doppler_spread_px']:.2f} px, fading sd {v['speckle']:.2f}; "
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


@app.command(epilog="Examples:\n\n  mdcli info data.h5\n\n  mdcli info data.h5 --json | jq .classes")
@user_errors
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


@app.command(
    epilog=(
        "Examples:\n\n  mdcli plot data.h5 -o grid.png\n\n  mdcli plot data.h5 -o grid.png --per-class 6 --seed 3\n\n"
        "  mdcli plot data.h5 --ae ae.h5 -o recon.png   # inputs over their reconstructions"
    )
)
@user_errors
@writes(output="png")
def plot(
    path: Annotated[Path, typer.Argument(help="A spectrograms artifact (simulated, imported or generated).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="PNG file to write.")] = Path("grid.png"),
    per_class: Annotated[int, typer.Option(min=1, max=16, help="Examples per class.")] = 4,
    seed: Annotated[int, typer.Option(min=0, help="Which examples to pick.")] = 0,
    ae: Annotated[Optional[Path], typer.Option("--ae", help="Show these inputs over their reconstructions by this autoencoder.")] = None,
    force: ForceOpt = False,
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


SamplerOpt = Annotated[Optional[str], typer.Option(help="ddpm | ddim | dpmpp-2m | dpmpp-2m-sde")]
EtaOpt = Annotated[Optional[float], typer.Option(help="DDIM noise: 0 deterministic, 1 = DDPM posterior.")]
CfgScaleOpt = Annotated[Optional[float], typer.Option("--cfg-scale", help="Classifier-free guidance scale (1: off).")]
ResumeOpt = Annotated[bool, typer.Option("--resume", help="Continue from the checkpoint beside the output (OUTPUT.ckpt).")]
StopAfterOpt = Annotated[
    Optional[int],
    typer.Option("--stop-after", min=1, help="Train at most this many steps in this run, checkpoint, and exit (for time-sliced jobs)."),
]


def _check_input(path: Path, option: str) -> None:
    if not path.exists():
        raise MdcliError(f"{option} {path}: file not found")


def _require(path: Path, kind: str) -> None:
    """Fail early (one line, exit 2) unless `path` is a readable artifact of `kind`."""
    from mdcli.artifacts import open_artifact

    with open_artifact(path, kind):
        pass


def _require_resume(output: Path, resume: bool) -> None:
    """With --resume, the checkpoint beside the output must be a readable checkpoint before training starts."""
    from mdcli.train.checkpoint import checkpoint_path

    if resume and checkpoint_path(output).exists():
        _require(checkpoint_path(output), "checkpoint")


def _run_training(name: str, output: Path, total: int, stop_after: int | None, quiet: bool, fn) -> object:
    """Progress bar, clean Ctrl-C (the trainer has saved a checkpoint), and the usual messages.

    Returns the trainer's result, or None when it stopped early because of --stop-after (and on
    every torchrun rank but 0).
    """
    from mdcli.progress import progress_bar
    from mdcli.train.checkpoint import checkpoint_path
    from mdcli.train.distributed import is_main

    main = is_main()  # under torchrun only rank 0 shows a bar and a summary; the other ranks return None
    try:
        with progress_bar(name, total, unit="step", quiet=quiet or not main) as advance:
            res = fn(advance)
        if not main:
            return None
        if res is None:
            console.print(f"stopped after {stop_after} steps; checkpoint beside {output}; continue with --resume")
        return res
    except KeyboardInterrupt:
        if main:
            ckpt = checkpoint_path(output)
            err_console.print(f"[yellow]interrupted: checkpoint {ckpt}; run the same command with --resume to continue[/]"
                              if ckpt.exists() else "[yellow]interrupted before the first checkpoint; no output written[/]")
        raise typer.Exit(130) from None


@app.command(
    "train-classifier",
    epilog=(
        "Examples:\n\n"
        "  mdcli train-classifier --data data.h5 -o classifier.h5\n\n"
        "  mdcli train-classifier --data data.h5 --seed 1 -o judge.h5   # an independent judge\n\n"
        "  mdcli train-classifier --config configs/tiny/train-classifier.yaml --data tiny.h5 -o clf.h5\n\n"
        "  mdcli train-classifier --data few20.h5 --extra samples.h5 --extra-weight 0.5 --extra-ratio 1 -o clf.h5   # augmented\n\n"
        "  mdcli train-classifier --data sim.h5 -o sim_clf.h5 && mdcli train-classifier --data few20.h5 --init sim_clf.h5 "
        "--finetune all -o clf.h5   # pretrain, then fine-tune (a fresh head for other classes)"
    ),
)
@user_errors
@writes(output="classifier")
def train_classifier_cmd(
    data: Annotated[Path, typer.Option("--data", "-d", help="Spectrograms artifact to train on.")] = Path("data.h5"),
    output: Annotated[Path, typer.Option("--output", "-o", help="Classifier artifact to write.")] = Path("classifier.h5"),
    steps: Annotated[Optional[int], typer.Option(help="Optimiser steps.")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed (weights, split, batches).")] = None,
    compile_: CompileOpt = None,
    split: SplitOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    dry_run: DryRunOpt = False,
    resume: ResumeOpt = False,
    stop_after: StopAfterOpt = None,
    quiet: QuietOpt = False,
    extra: Annotated[Optional[Path], typer.Option("--extra", help="Extra spectrograms (generated, simulated) mixed into every batch.")] = None,
    extra_weight: Annotated[Optional[float], typer.Option("--extra-weight", help="Loss weight of an extra image, in [0, 1] (a real one: 1).")] = None,
    extra_ratio: Annotated[Optional[float], typer.Option("--extra-ratio", help="Extra images per real image in each batch (default 1).")] = None,
    extra_prob: Annotated[Optional[float], typer.Option("--extra-prob", help="Chance a real image is swapped for an extra one of its class.")] = None,
    init: Annotated[Optional[Path], typer.Option("--init", help="Start from this classifier (its network replaces the config's; a fresh head when its classes differ).")] = None,
    finetune: Annotated[Optional[str], typer.Option("--finetune", help="With --init: all | head (train the head alone).")] = None,
    force: ForceOpt = False,
) -> None:
    """Train a small spectrogram CNN on the class labels (held-out validation accuracy recorded).

    Used as the feature net of the `domain` perceptual loss and, with another seed, as the judge.
    """
    from mdcli.config import load_config, to_yaml
    from mdcli.stages import TrainClassifierConfig
    from mdcli.train.classifier import train_classifier

    cfg = load_config(TrainClassifierConfig, config, set_, {"train.steps": steps, "seed": seed, "train.split": split, "train.compile": compile_,
                      "extra.weight": extra_weight, "extra.ratio": extra_ratio, "extra.prob": extra_prob, "finetune": finetune})
    if dry_run:
        _print_config(to_yaml(cfg))
        return
    _require(data, "spectrograms")
    _require_resume(output, resume)
    if extra is None and (extra_weight, extra_ratio, extra_prob) != (None, None, None):
        raise MdcliError("--extra-weight / --extra-ratio / --extra-prob: give the extra images with --extra FILE")
    if init is None and finetune is not None:
        raise MdcliError("--finetune: give the classifier to start from with --init FILE")
    for path, option, kind in ((extra, "--extra", "spectrograms"), (init, "--init", "classifier")):
        if path is not None:
            _check_input(path, option)
            _require(path, kind)
    from mdcli.train.classifier import check_extra_init

    check_extra_init(cfg, data, extra, init)  # classes and image sizes, before the progress bar
    output = _output_path(output)
    res = _run_training("train-classifier", output, cfg.train.steps, stop_after, quiet,
                        lambda adv: train_classifier(cfg, data, output, resume, stop_after, adv, err_console.print, extra, init))
    if res is None:
        return
    if not quiet:
        console.print(f"wrote {output}: validation accuracy {res.val_accuracy:.3f} "
                      f"(train {res.train_accuracy:.3f}), {res.images_per_s:.0f} images/s")


@app.command(
    "train-ae",
    epilog=(
        "Examples:\n\n"
        "  mdcli train-ae --data data.h5 --arch vqgan --classifier classifier.h5 -o ae.h5\n\n"
        "  mdcli train-ae --data data.h5 --arch vae --perceptual none --set vae.kl_weight=1e-4 -o vae.h5\n\n"
        "  mdcli train-ae --data data.h5 --arch vqvae --perceptual lpips-vgg --perceptual-weights vgg16-397923af.pth -o vq.h5\n\n"
        "  mdcli train-ae ... --resume   # continue exactly from OUTPUT.ckpt\n\n"
        "  mdcli train-ae --config ae.yaml --data measured.h5 --init sim_ae.h5 -o ae.h5   # fine-tune a pretrained one"
    ),
)
@user_errors
@writes(output="autoencoder")
def train_ae_cmd(
    data: Annotated[Path, typer.Option("--data", "-d", help="Spectrograms artifact to train on.")] = Path("data.h5"),
    output: Annotated[Path, typer.Option("--output", "-o", help="Autoencoder artifact to write.")] = Path("ae.h5"),
    arch: Annotated[Optional[str], typer.Option(help="vae | vqvae | vqgan")] = None,
    perceptual: Annotated[Optional[str], typer.Option(help=" | ".join(PERCEPTUAL_CHOICES))] = None,
    perceptual_weights: Annotated[
        Optional[Path], typer.Option("--perceptual-weights", help="torchvision ImageNet trunk for lpips-* (else the torch hub cache).")
    ] = None,
    classifier: Annotated[Optional[Path], typer.Option(help="classifier.h5 for --perceptual domain.")] = None,
    steps: Annotated[Optional[int], typer.Option(help="Optimiser steps.")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed (weights, split, batches, noise).")] = None,
    compile_: CompileOpt = None,
    split: SplitOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    dry_run: DryRunOpt = False,
    resume: ResumeOpt = False,
    stop_after: StopAfterOpt = None,
    quiet: QuietOpt = False,
    init: Annotated[Optional[Path], typer.Option("--init", help="Start from this autoencoder (same arch, model config and image size; the discriminator starts fresh).")] = None,
    force: ForceOpt = False,
) -> None:
    """Train an autoencoder (VAE, VQ-VAE or VQ-GAN) on spectrograms; all share one encoder/decoder."""
    from mdcli.config import load_config, to_yaml
    from mdcli.stages import TrainAEConfig
    from mdcli.train.ae import train_autoencoder

    cfg = load_config(TrainAEConfig, config, set_, {
        "arch": arch, "loss.perceptual": perceptual, "train.steps": steps, "seed": seed, "train.split": split, "train.compile": compile_,
        "loss.perceptual_weights": str(perceptual_weights) if perceptual_weights else None,
        "loss.classifier": str(classifier) if classifier else None,
    })
    if dry_run:
        _print_config(to_yaml(cfg))
        return
    _require(data, "spectrograms")
    if cfg.loss.perceptual == "domain":
        _check_input(Path(cfg.loss.classifier), "--classifier")
        _require(Path(cfg.loss.classifier), "classifier")
    _require_resume(output, resume)
    if init is not None:  # arch, image size, latent shape and model config, before the progress bar
        from mdcli.artifacts import open_artifact
        from mdcli.train.transfer import autoencoder_init

        _check_input(init, "--init")
        with open_artifact(data, "spectrograms") as f:
            image_shape = tuple(int(v) for v in f["spectrograms"].shape[1:])
        autoencoder_init(init, cfg, image_shape)
    output = _output_path(output)
    res = _run_training(f"train-ae {cfg.arch}", output, cfg.train.steps, stop_after, quiet,
                        lambda adv: train_autoencoder(cfg, data, output, resume, stop_after, adv, err_console.print, init))
    if res is None:
        return
    if not quiet:
        table = Table(title=f"{output} ({cfg.arch}, {res.images_per_s:.1f} images/s)")
        table.add_column("validation metric")
        table.add_column("value", justify="right")
        for k, v in res.metrics.items():
            table.add_row(k, f"{v:.4f}")
        console.print(table)


@app.command(
    epilog=(
        "Examples:\n\n"
        "  mdcli encode --ae ae.h5 --data data.h5 -o latents.h5\n\n"
        "  mdcli encode --ae ae.h5 --data data.h5 -o latents.h5 --batch-size 256 --quiet"
    ),
)
@user_errors
@writes(output="latents")
def encode(
    ae: Annotated[Path, typer.Option("--ae", help="Autoencoder artifact.")] = Path("ae.h5"),
    data: Annotated[Path, typer.Option("--data", "-d", help="Spectrograms to encode.")] = Path("data.h5"),
    output: Annotated[Path, typer.Option("--output", "-o", help="Latents artifact to write.")] = Path("latents.h5"),
    batch_size: Annotated[int, typer.Option(min=1, help="Images per batch.")] = 64,
    quiet: QuietOpt = False,
    force: ForceOpt = False,
) -> None:
    """Encode spectrograms to latents (pre-quantisation for VQ models, posterior mean for the VAE).

    Stores per-channel mean and std over the whole dataset for the latent diffusion model.
    """
    from mdcli.artifacts import open_artifact
    from mdcli.encode import encode_dataset
    from mdcli.progress import progress_bar

    with open_artifact(data, "spectrograms") as f:
        n = f["spectrograms"].shape[0]
    _require(ae, "autoencoder")
    output = _output_path(output)
    with progress_bar("encode", n, unit="img", quiet=quiet) as advance:
        info = encode_dataset(ae, data, output, batch_size, advance)
    if not quiet:
        console.print(f"wrote {output}: {info['n']} latents of shape {info['latent_shape']} ({info['arch']}); "
                      f"channel std {', '.join(f'{s:.3f}' for s in info['channel_std'])}")


@app.command(
    "train-ldm",
    epilog=(
        "Examples:\n\n"
        "  mdcli train-ldm --latents latents.h5 -o ldm.h5\n\n"
        "  mdcli train-ldm --latents latents.h5 --set diffusion.prediction=v --set diffusion.schedule=cosine -o ldm.h5\n\n"
        "  mdcli train-ldm --config configs/tiny/train-ldm.yaml --latents tiny_latents.h5 -o ldm.h5\n\n"
        "  mdcli train-ldm --latents measured_latents.h5 --init sim_ldm.h5 -o ldm.h5   # fine-tune a pretrained one"
    ),
)
@user_errors
@writes(output="ldm")
def train_ldm_cmd(
    latents: Annotated[Path, typer.Option("--latents", "-l", help="Latents artifact from `mdcli encode`.")] = Path("latents.h5"),
    output: Annotated[Path, typer.Option("--output", "-o", help="LDM artifact to write.")] = Path("ldm.h5"),
    steps: Annotated[Optional[int], typer.Option(help="Optimiser steps.")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed (weights, split, noise).")] = None,
    compile_: CompileOpt = None,
    split: SplitOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    dry_run: DryRunOpt = False,
    resume: ResumeOpt = False,
    stop_after: StopAfterOpt = None,
    quiet: QuietOpt = False,
    init: Annotated[Optional[Path], typer.Option("--init", help="Start from this LDM (same latent shape and UNet config; other classes start as its null class).")] = None,
    force: ForceOpt = False,
) -> None:
    """Train a class-conditional latent diffusion model (UNet denoiser, classifier-free guidance dropout).

    Trains on latents standardised with the per-channel statistics stored by `encode`; for VQ
    autoencoders these are the pre-quantisation latents, quantised again at decode time.
    """
    from mdcli.config import load_config, to_yaml
    from mdcli.stages import TrainLDMConfig
    from mdcli.train.ldm import train_ldm

    cfg = load_config(TrainLDMConfig, config, set_, {"train.steps": steps, "seed": seed, "train.split": split, "train.compile": compile_})
    if dry_run:
        _print_config(to_yaml(cfg))
        return
    _check_input(latents, "--latents")
    _require(latents, "latents")
    _require_resume(output, resume)
    if init is not None:  # autoencoder arch, image size, latent shape and UNet config, before the progress bar
        from mdcli.train.ldm import load_latents
        from mdcli.train.transfer import ldm_init

        _check_input(init, "--init")
        lat = load_latents(latents)
        shape = lat.shape[1:]
        lat.reader.close()
        ldm_init(init, cfg, lat.attrs, shape, lat.class_names)
    output = _output_path(output)
    res = _run_training("train-ldm", output, cfg.train.steps, stop_after, quiet,
                        lambda adv: train_ldm(cfg, latents, output, resume, stop_after, adv, err_console.print, init))
    if res is None:
        return
    if not quiet:
        losses = ", ".join(f"{k[10:]}: {v:.3f}" for k, v in res.items() if k.startswith("val_loss_t"))
        console.print(f"wrote {output}: {res['latents_per_s']:.0f} latents/s; held-out loss by timestep {losses}")


@app.command(
    epilog=(
        "Examples:\n\n"
        "  mdcli sample --ldm ldm.h5 -o samples.h5 --n-per-class 64\n\n"
        "  mdcli sample --ldm ldm.h5 -o samples.h5 --classes walker,drone --sampler ddim --steps 50 --eta 0\n\n"
        "  mdcli sample --ldm ldm.h5 -o samples.h5 --sampler ddpm --steps 1000 --cfg-scale 1 --preview grid.png"
    ),
)
@user_errors
@writes(output="spectrograms", preview="png")
def sample(
    ldm: Annotated[Path, typer.Option("--ldm", help="LDM artifact from `mdcli train-ldm`.")] = Path("ldm.h5"),
    output: Annotated[Path, typer.Option("--output", "-o", help="Spectrograms artifact to write (source = generated).")] = Path("samples.h5"),
    ae: Annotated[Optional[Path], typer.Option("--ae", help="Autoencoder (default: found through the lineage).")] = None,
    n_per_class: Annotated[Optional[int], typer.Option("--n-per-class", "-n", help="Samples per class.")] = None,
    classes: Annotated[Optional[str], typer.Option(help="Comma-separated classes (default: all).")] = None,
    sampler: SamplerOpt = None,
    steps: Annotated[Optional[int], typer.Option(help="Sampling steps.")] = None,
    eta: EtaOpt = None,
    cfg_scale: CfgScaleOpt = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed: the same seed gives the same samples.")] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", help="Samples per batch.")] = None,
    preview: Annotated[Optional[Path], typer.Option("--preview", help="Also write a PNG grid of the samples.")] = None,
    filter_: FilterOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    dry_run: DryRunOpt = False,
    quiet: QuietOpt = False,
    force: ForceOpt = False,
) -> None:
    """Generate spectrograms per class: LDM latents -> un-standardise -> decode with the autoencoder.

    dpmpp-2m-sde (20 steps) is the default: on the demo LDM its FMD was within 5.3 % of ancestral
    ddpm at 1000 steps (55x slower), where the deterministic dpmpp-2m / ddim were 1.4-1.5x worse
    (docs/PERFORMANCE.md); use dpmpp-2m or ddim --eta 0 when samples must be a deterministic
    function of the initial noise (e.g. interpolation).
    """
    from mdcli.artifacts import atomic_path, open_artifact
    from mdcli.config import load_config, to_yaml
    from mdcli.plotting import plot_grid
    from mdcli.progress import progress_bar
    from mdcli.sample import SampleConfig, write_samples

    cfg = load_config(SampleConfig, config, set_, {
        "n_per_class": n_per_class, "classes": classes, "sampler": sampler, "steps": steps, "eta": eta,
        "cfg_scale": cfg_scale, "seed": seed, "batch_size": batch_size,
    })
    if dry_run:
        _print_config(to_yaml(cfg))
        return
    from mdcli.artifacts import check_fits, class_names

    with open_artifact(ldm, "ldm") as f:
        n_classes = len(cfg.classes) or len(class_names(f))
        pixels = len(json.loads(f.attrs["doppler_hz"])) * len(json.loads(f.attrs["time_s"]))
    check_fits(2 * 4 * pixels * cfg.n_per_class * n_classes, f"--n-per-class {cfg.n_per_class} x {n_classes} classes",
               "the samples are held in memory before they are written; sample in several runs with other --seed values")
    if ae is not None:
        _require(ae, "autoencoder")
    if preview is not None and preview.suffix.lower() != ".png":
        raise MdcliError(f"--preview {preview}: expected a .png file name")
    output = _output_path(output)
    if filter_:  # checked (files, classes, options) before anything is generated
        from mdcli.filters import prepare_for_sample, print_table, sample_filtered

        prepared = prepare_for_sample(filter_, cfg, ldm, output)
        with progress_bar(f"sample {cfg.sampler}", cfg.n_per_class * n_classes, unit="img", quiet=quiet) as advance:
            data, reports = sample_filtered(cfg, ldm, output, ae, prepared, advance)
        if not quiet:
            print_table(console, reports, cfg.n_per_class * n_classes)
    else:
        with progress_bar(f"sample {cfg.sampler}", cfg.n_per_class * n_classes, unit="img", quiet=quiet) as advance:
            data = write_samples(cfg, ldm, output, ae, advance)
    if preview is not None and not len(data):
        err_console.print("[yellow]warning:[/] the filters kept no sample; no preview written")
        preview = None
    if preview is not None:
        preview = _output_path(preview)
        with atomic_path(preview) as tmp:
            plot_grid(data, tmp, per_class=min(6, cfg.n_per_class), seed=cfg.seed, title=f"{output.name} (generated, {cfg.sampler})")
    if not quiet:
        console.print(f"wrote {output}: {len(data)} generated spectrograms"
                      + (f"; preview {preview}" if preview is not None else ""))


@app.command(
    epilog=(
        "Examples:\n\n"
        "  mdcli augment --ldm ldm.h5 --data train.h5 --per-image 10 --strength 0.3:0.6 -o variations.h5\n\n"
        "  mdcli augment --ldm ldm.h5 --data train.h5 --strength 0.5 --filter confidence:clf.h5,min=0.8 "
        "--filter novelty:clf.h5 --filter kinematic:margin=0.25 -o variations.h5 --preview grid.png\n\n"
        "  mdcli augment --config configs/gait/augment.yaml --ldm ldm.h5 --data few.h5 -o variations.h5"
    ),
)
@user_errors
@writes(output="spectrograms", preview="png")
def augment(
    ldm: Annotated[Path, typer.Option("--ldm", help="LDM artifact from `mdcli train-ldm` (its autoencoder is found through the lineage).")] = Path("ldm.h5"),
    data: Annotated[Path, typer.Option("--data", help="Real spectrograms to vary (the training data; never the test part).")] = Path("train.h5"),
    output: Annotated[Path, typer.Option("--output", "-o", help="Spectrograms artifact to write (source = generated, with /source_index).")] = Path("variations.h5"),
    ae: Annotated[Optional[Path], typer.Option("--ae", help="Autoencoder (default: found through the LDM's lineage).")] = None,
    per_image: Annotated[Optional[int], typer.Option("--per-image", "-k", help="Variants per real spectrogram.")] = None,
    strength: Annotated[Optional[str], typer.Option("--strength", help="Diffusion time to noise to: 0 = the image itself, 1 = pure noise; lo:hi draws per variant.")] = None,
    classes: Annotated[Optional[str], typer.Option(help="Comma-separated classes of --data to vary (default: all).")] = None,
    sampler: SamplerOpt = None,
    steps: Annotated[Optional[int], typer.Option(help="Sampler grid points over the whole diffusion; a variant runs those below its start (fewer at lower --strength).")] = None,
    eta: EtaOpt = None,
    cfg_scale: CfgScaleOpt = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed: the same seed gives the same variations.")] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", help="Variants per batch (results do not depend on it).")] = None,
    preview: Annotated[Optional[Path], typer.Option("--preview", help="Also write a PNG: sources beside their variants.")] = None,
    filter_: FilterOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    dry_run: DryRunOpt = False,
    quiet: QuietOpt = False,
    force: ForceOpt = False,
) -> None:
    """Variations of real spectrograms (SDEdit): encode, noise to --strength, denoise with the image's own label, decode.

    Each output keeps its source's index (/source_index), label and recording position (/sequence), and the
    strength used (/strength). Filters (--filter, repeatable) drop implausible, mislabelled or copied variants;
    see docs/guide.md.
    """
    from mdcli.augment import AugmentConfig, check_inputs, run_augment
    from mdcli.config import load_config, to_yaml
    from mdcli.progress import progress_bar

    cfg = load_config(AugmentConfig, config, set_, {
        "per_image": per_image, "strength": strength, "classes": classes, "sampler": sampler, "steps": steps,
        "eta": eta, "cfg_scale": cfg_scale, "seed": seed, "batch_size": batch_size,
        "filters": list(filter_) if filter_ else None,
    })
    if dry_run:
        _print_config(to_yaml(cfg))
        return
    _require(data, "spectrograms")
    if ae is not None:
        _require(ae, "autoencoder")
    if preview is not None and preview.suffix.lower() != ".png":
        raise MdcliError(f"--preview {preview}: expected a .png file name")
    output = _output_path(output)
    setup = check_inputs(cfg, ldm, data, ae, output)
    total = len(setup.sources) * cfg.per_image
    with progress_bar(f"augment {cfg.sampler}", total, unit="img", quiet=quiet) as advance:
        out, report = run_augment(cfg, setup, data, output, advance, preview)
    if not quiet:
        if report["filters"]:
            from mdcli.filters import print_table

            print_table(console, report["filters"], total)
        used = f" (strength {report['strength_min']:.2f}..{report['strength_max']:.2f})" if len(out) else ""
        console.print(f"wrote {output}: {len(out)} of {report['generated']} variations of {len(setup.sources)} real "
                      f"spectrograms kept{used}" + (f"; preview {preview}" if preview is not None else ""))


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


@app.command(
    "import",
    epilog=(
        "Examples:\n\n"
        "  mdcli import ../shared/data/gait --colormap jet --image-size 128,128 -o gait.h5\n\n"
        "  mdcli import recordings/ --input-scale db --doppler-range -1000,1000 --duration 3 -o meas.h5\n\n"
        "  mdcli import iq/ --iq-rate 4000 --variable iq -o meas.h5   # complex slow-time .npy/.mat\n\n"
        "  mdcli import exported.npz -o back.h5"
    ),
)
@user_errors
@writes(output="spectrograms")
def import_cmd(
    source: Annotated[Path, typer.Argument(help="Folder with one subfolder per class, or an .npz/.mat from `mdcli export`.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Spectrograms artifact to write (source = imported).")] = Path("imported.h5"),
    colormap: Annotated[Optional[str], typer.Option(help="Colour map the images were rendered with: jet|turbo|viridis|gray|parula.")] = None,
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
    quiet: QuietOpt = False,
    force: ForceOpt = False,
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
    if size is not None and min(size) < 8:
        raise MdcliError("--image-size: each side must be >= 8")
    opts = ImportOptions(
        colormap=colormap, colormap_file=colormap_file, input_scale=input_scale, dynamic_range_db=dynamic_range_db,
        image_size=size, doppler_range=_pair(doppler_range, "--doppler-range"), duration=duration,
        carrier_hz=carrier if carrier is not None else float("nan"), variable=variable, iq_rate=iq_rate, csv=csv_file,
    )
    output = _output_path(output)
    from mdcli.data.importing import ARRAY_EXT, IMAGE_EXT

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


@app.command(
    epilog=(
        "Examples:\n\n"
        "  mdcli export samples.h5 --format npz -o samples.npz\n\n"
        "  mdcli export samples.h5 --format mat -o samples.mat\n\n"
        "  mdcli export samples.h5 --format png --colormap jet -o samples_png/"
    ),
)
@user_errors
@writes(output=lambda o: None if o["fmt"] == "png" else o["fmt"])
def export(
    path: Annotated[Path, typer.Argument(help="A spectrograms artifact.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="File (.npz/.mat) or folder (png).")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="png | npz | mat")] = "npz",
    colormap: Annotated[str, typer.Option(help="PNG colour map: gray or a matplotlib map such as jet.")] = "gray",
    force: ForceOpt = False,
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


@app.command(
    "merge",
    epilog="Examples:\n\n  mdcli merge shard_0.h5 shard_1.h5 shard_2.h5 -o data.h5\n\n  mdcli merge runs/shards/*.h5 -o data.h5",
)
@user_errors
@writes(output="spectrograms")
def merge_cmd(
    shards: Annotated[list[Path], typer.Argument(help="The shard files of one `simulate --shard i/N` run, any order.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The merged spectrograms artifact.")] = Path("data.h5"),
    force: ForceOpt = False,
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


@app.command(
    "split",
    epilog=(
        "Examples:\n\n"
        "  mdcli split gait.h5 --split blocked --test-fraction 0.3 --train-out train.h5 --test-out test.h5\n\n"
        "  mdcli split data.h5 --seed 1 --train-out train.h5 --test-out test.h5"
    ),
)
@user_errors
@writes(train_out="spectrograms", test_out="spectrograms")
def split_cmd(
    path: Annotated[Path, typer.Argument(help="A spectrograms artifact.")],
    train_out: Annotated[Path, typer.Option("--train-out", help="Training part to write.")] = Path("train.h5"),
    test_out: Annotated[Path, typer.Option("--test-out", help="Held-out part to write.")] = Path("test.h5"),
    split: Annotated[str, typer.Option("--split", help="random | blocked (contiguous recording runs; measured data).")] = "random",
    test_fraction: Annotated[float, typer.Option("--test-fraction", min=0.01, max=0.99)] = 0.3,
    gap: Annotated[int, typer.Option("--gap", min=0, help="blocked: sequence steps between test and training windows.")] = 3,
    seed: Annotated[int, typer.Option(min=0, help="Seed (which samples / which block).")] = 0,
    force: ForceOpt = False,
) -> None:
    """Split spectrograms per class into training and held-out files (random, or blocked by recording time)."""
    from mdcli.artifacts import Spectrograms, parent_record
    from mdcli.data.splits import split_indices

    _require(path, "spectrograms")
    train_out, test_out = _output_path(train_out), _output_path(test_out)
    data = Spectrograms.load(path)
    tr, te = split_indices(data.labels, test_fraction, seed, split, data.sequence, gap)
    text = f"split: {split}\ntest_fraction: {test_fraction}\ngap: {gap}\nseed: {seed}\n"
    parents = [parent_record(path)]
    data.select(tr).save(train_out, text + "part: train\n", seed, parents)
    data.select(te).save(test_out, text + "part: test\n", seed, parents)
    dropped = len(data) - len(tr) - len(te)
    console.print(f"wrote {train_out} ({len(tr)}) and {test_out} ({len(te)}), {split} split"
                  + (f"; {dropped} windows within {gap} steps of the test blocks left out" if dropped else ""))


@app.command(
    "subset",
    epilog=(
        "Examples:\n\n"
        "  mdcli subset train.h5 --per-class 20 --seed 0 -o few20.h5\n\n"
        "  (then train-ae / encode / train-ldm / sample on few20.h5, and\n"
        "  mdcli diagnose generation --samples s20.h5 --train few20.h5 --set few=[20] --set seeds=[0] ...)"
    ),
)
@user_errors
@writes(output="spectrograms")
def subset_cmd(
    path: Annotated[Path, typer.Argument(help="A spectrograms artifact (e.g. the training part of `split`).")],
    per_class: Annotated[int, typer.Option("--per-class", min=1, help="Spectrograms to keep per class.")] = 20,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the draw (diagnose gain's subset for this N and seed).")] = 0,
    output: Annotated[Path, typer.Option("--output", "-o", help="Spectrograms file to write.")] = Path("subset.h5"),
    split: Annotated[str, typer.Option("--split", help="auto (blocked when the data has /sequence) | blocked (a contiguous "
                                       "run per class) | random (diagnose generation's draw).")] = "auto",
    force: ForceOpt = False,
) -> None:
    """Keep N spectrograms per class: the few-shot subset `diagnose gain` uses for this N and seed (with --split random,
    the one `diagnose generation` draws), so a generator trained on it alone measures the augmentation gain of a
    user who has only N real images."""
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
    data.select(idx).save(output, f"per_class: {per_class}\nseed: {seed}\nsplit: {resolved_split(split, data)}\n", seed,
                          [parent_record(path)])
    console.print(f"wrote {output}: {per_class} per class ({len(idx)}) of {len(data)} in {path}")


@app.command("report", epilog="Examples:\n\n  mdcli report runs/demo")
@user_errors
def report_cmd(run: Annotated[Path, typer.Argument(help="A pipeline run folder (examples/pipeline.sh).")]) -> None:
    """Write RUN/REPORT.md with real-vs-generated grids, loss curves, codebook use and the diagnostics; print the headline."""
    from mdcli.diagnose.report import build_report

    out, head = build_report(run)
    _kv_table(f"{run}: headline (full report: {out})", list(head.items()))


diagnose_app = typer.Typer(
    help="Measure why a latent space that reconstructs well may still generate badly (rich tables, --json, --plot DIR).",
    no_args_is_help=True,
)
app.add_typer(diagnose_app, name="diagnose")
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output with stable keys.")]
PlotDirOpt = Annotated[Optional[Path], typer.Option("--plot", file_okay=False, help="Write PNG figures into this folder.")]


def _write_json(report: dict, default=float) -> None:
    """`--json` output: strict JSON (see strict_json); `default` converts what JSON has no type for."""
    sys.stdout.write(json.dumps(strict_json(report, default), indent=2, allow_nan=False) + "\n")


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


@diagnose_app.command(
    "recon",
    epilog="Examples:\n\n  mdcli diagnose recon --ae ae.h5 --data data.h5\n\n  mdcli diagnose recon --ae ae.h5 --data data.h5 --classifier judge.h5 --json",
)
@user_errors
def diagnose_recon(
    ae: Annotated[Path, typer.Option("--ae", help="Autoencoder artifact.")] = Path("ae.h5"),
    data: Annotated[Path, typer.Option("--data", "-d", help="Spectrograms to reconstruct.")] = Path("data.h5"),
    classifier: Annotated[Optional[Path], typer.Option(
        help="classifier.h5 for the perceptual distance and the reconstruction FMD (use an independent judge).")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 64,
    as_json: JsonOpt = False,
    plot_dir: PlotDirOpt = None,
) -> None:
    """Reconstruction quality: PSNR, SSIM, L1, log-spectral distance (dB), perceptual; overall and per class.

    With --classifier also the reconstruction FMD (reconstructions vs originals in the classifier's
    features): the floor the decoder sets for the FMD of generated samples.
    """
    from mdcli.diagnose.recon import plot_recon, recon_report

    _require(ae, "autoencoder")
    _require(data, "spectrograms")
    if classifier is not None:
        _require(classifier, "classifier")
    report = recon_report(ae, data, classifier, batch_size)
    if plot_dir is not None:
        plot_dir.mkdir(parents=True, exist_ok=True)
        report["figures"] = [str(p) for p in plot_recon(report, plot_dir)]
    if as_json:
        _write_json(report)
        return
    _report_table(f"reconstruction of {data} by {ae} ({report['arch']}, {report['n']} images)", report["overall"], report["per_class"])
    if report.get("kinematics"):
        from mdcli.diagnose.kinematics import print_recon_table

        print_recon_table(console, report["kinematics"], "kinematic fidelity of the reconstructions (limb envelopes, periods)")


@diagnose_app.command(
    "codebook",
    epilog="Examples:\n\n  mdcli diagnose codebook --ae vq.h5 --data data.h5\n\n  mdcli diagnose codebook --latents latents.h5 --json --plot figs/",
)
@user_errors
def diagnose_codebook(
    ae: Annotated[Optional[Path], typer.Option("--ae", help="VQ autoencoder artifact.")] = None,
    data: Annotated[Optional[Path], typer.Option("--data", "-d", help="Spectrograms to encode.")] = None,
    latents: Annotated[Optional[Path], typer.Option("--latents", help="Use the code indices stored by `encode` instead.")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 64,
    as_json: JsonOpt = False,
    plot_dir: PlotDirOpt = None,
) -> None:
    """Codebook use over the whole dataset: usage, perplexity (and /K), dead codes, top-10% mass, per class."""
    from mdcli.diagnose.codebook import codebook_report, plot_codebook

    for path, kind in ((ae, "autoencoder"), (data, "spectrograms"), (latents, "latents")):
        if path is not None:
            _require(path, kind)
    report, counts = codebook_report(ae, data, latents, batch_size)
    if plot_dir is not None:
        plot_dir.mkdir(parents=True, exist_ok=True)
        report["figures"] = [str(p) for p in plot_codebook(report, counts, plot_dir)]
    if as_json:
        _write_json(report)
        return
    overall = {k: report[k] for k in ("codebook_usage", "perplexity", "perplexity_ratio", "dead_codes", "top10pct_mass")}
    _report_table(f"codebook of {ae or latents} ({report['arch']}, K = {report['codebook_size']}, {report['n_images']} images)",
                  overall, report["per_class"])


def _kv_table(title: str, rows: list[tuple[str, object]]) -> None:
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in rows:
        table.add_row(k, f"{v:.4g}" if isinstance(v, float) else str(v))
    console.print(table)


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


@diagnose_app.command(
    "latent",
    epilog="Examples:\n\n  mdcli diagnose latent --ae ae.h5 --data data.h5\n\n  mdcli diagnose latent --ae vae.h5 --data data.h5 --json --plot figs/",
)
@user_errors
def diagnose_latent(
    ae: Annotated[Path, typer.Option("--ae", help="Autoencoder artifact.")] = Path("ae.h5"),
    data: Annotated[Path, typer.Option("--data", "-d", help="Spectrograms to encode.")] = Path("data.h5"),
    split: SplitOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    as_json: JsonOpt = False,
    plot_dir: PlotDirOpt = None,
) -> None:
    """Latent geometry: VAE KL/active units/variance collapse/I(x;z); spectra, equivariance, robustness, probes; VQ structure."""
    from mdcli.config import load_config
    from mdcli.diagnose.latent import LatentConfig, latent_report_files, plot_latent

    cfg = load_config(LatentConfig, config, set_, {"split": split})
    _require(ae, "autoencoder")
    _require(data, "spectrograms")
    report = latent_report_files(ae, data, cfg)
    if plot_dir is not None:
        plot_dir.mkdir(parents=True, exist_ok=True)
        report["figures"] = [str(p) for p in plot_latent(report, plot_dir)]
    if as_json:
        _write_json(report)
        return
    _kv_table(f"latent space of {ae} ({report['arch']}) on {data}", _latent_rows(report))


@diagnose_app.command(
    "collapse",
    epilog=("Examples:\n\n  mdcli diagnose collapse --ae ae.h5 --data data.h5\n\n"
            "  mdcli diagnose collapse --ae vq.h5 --data data.h5 --set damage_ratio_max=0.4 --json"),
)
@user_errors
def diagnose_collapse(
    ae: Annotated[Path, typer.Option("--ae", help="Autoencoder artifact.")] = Path("ae.h5"),
    data: Annotated[Path, typer.Option("--data", "-d", help="Spectrograms to encode.")] = Path("data.h5"),
    config: ConfigOpt = None,
    set_: SetOpt = None,
    as_json: JsonOpt = False,
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


@diagnose_app.command(
    "diffusability",
    epilog=("Examples:\n\n  mdcli diagnose diffusability --latents latents.h5\n\n"
            "  mdcli diagnose diffusability --latents latents.h5 --classifier judge.h5 --real test.h5 --json"),
)
@user_errors
@writes(keep="ldm")
def diagnose_diffusability(
    latents: Annotated[Path, typer.Option("--latents", help="Latents artifact (from `encode`).")] = Path("latents.h5"),
    classifier: Annotated[Optional[Path], typer.Option(help="Independent judge for FMD / accuracy of decoded samples.")] = None,
    real: Annotated[Optional[Path], typer.Option(help="Real spectrograms for FMD (with --classifier).")] = None,
    keep: Annotated[Optional[Path], typer.Option(help="Keep the probe LDM at this path (else a temp file).")] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
    force: ForceOpt = False,
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
        _require(classifier, "classifier")
        _require(real, "spectrograms")
    if keep is not None:
        keep = _output_path(keep)
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


@diagnose_app.command(
    "generation",
    epilog=("Examples:\n\n  mdcli diagnose generation --samples samples.h5 --real test.h5 --classifier judge.h5\n\n"
            "  mdcli diagnose generation --samples samples.h5 --real test.h5 --train train.h5 --classifier judge.h5 "
            "--set seeds=[0,1,2] --json"),
)
@user_errors
def diagnose_generation(
    samples: Annotated[Path, typer.Option("--samples", help="Generated spectrograms (from `sample`).")] = Path("samples.h5"),
    real: Annotated[Path, typer.Option("--real", help="Held-out real spectrograms (not seen by any model).")] = Path("test.h5"),
    classifier: Annotated[Path, typer.Option("--classifier", help="The judge: a classifier independent of the generator.")] = Path("judge.h5"),
    train: Annotated[Optional[Path], typer.Option(help="Real training spectrograms (default: found through the lineage).")] = None,
    allow_same_judge: Annotated[bool, typer.Option("--allow-same-judge", help="Accept a judge from the generator's lineage.")] = False,
    baseline_cache: Annotated[Optional[Path], typer.Option(
        "--baseline-cache", help="Folder that keeps the accuracies of the fits not involving the generator (all real, "
        "few real, few real + classic), so comparing many generators on the same data fits each once.")] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    as_json: JsonOpt = False,
    plot_dir: PlotDirOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """FMD, KID, precision/recall/density/coverage, judge accuracy, memorisation, TSTR and augmentation gain."""
    from mdcli.config import load_config
    from mdcli.diagnose.generation import GenerationConfig, generation_report, plot_generation, summary_rows

    cfg = load_config(GenerationConfig, config, set_, {})
    _require(samples, "spectrograms")
    _require(real, "spectrograms")
    _require(classifier, "classifier")
    if train is not None:
        _require(train, "spectrograms")
    say = (lambda s: None) if quiet or as_json else (lambda s: err_console.print(f"[dim]{s}[/]"))
    report = generation_report(samples, real, classifier, train, cfg, allow_same_judge, say, baseline_cache)
    if plot_dir is not None and report.get("augmentation"):  # no augmentation runs (few: []): no empty figure
        plot_dir.mkdir(parents=True, exist_ok=True)
        report["figures"] = [str(p) for p in plot_generation(report, plot_dir)]
    if as_json:
        _write_json(report)
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


@diagnose_app.command(
    "gain",
    epilog=("Examples:\n\n"
            "  mdcli diagnose gain --train train.h5 --test test.h5 --per-class 20,50 --seeds 5\n\n"
            "  mdcli diagnose gain --train train.h5 --test test.h5 --per-class 20,50 --seeds 5 --jobs 4 "
            "--arm gen=append:samples.h5 --arm sim=pretrain:sim.h5 --arm var=append:variations.h5,weight=0.3 "
            "--arm cas=only:samples.h5 --json --plot figs/\n\n"
            "  mdcli diagnose gain --train train.h5 --test test.h5 --per-class 20 --seeds 3 "
            "--arm gen=append:runs/gen_{n}_{seed}/samples.h5   # one generator per subset (mdcli subset --per-class N --seed S)\n\n"
            "Modes: append (weight, ratio, prob), pretrain (finetune=all|head), mixed-then-real (weight, ratio, prob), only."),
)
@user_errors
@writes(json_out="json", md_out="md")
def diagnose_gain(
    train: Annotated[Path, typer.Option("--train", help="Real training spectrograms (the N per class are drawn from it).")] = Path("train.h5"),
    test: Annotated[Path, typer.Option("--test", help="Held-out real spectrograms (disjoint from --train and every arm's lineage).")] = Path("test.h5"),
    per_class: Annotated[str, typer.Option("--per-class", help="Real windows per class, comma-separated (e.g. 20,50).")] = "20,50",
    seeds: Annotated[int, typer.Option("--seeds", min=1, help="Seeds 0..K-1: one paired subset and initialisation each.")] = 5,
    arm: Annotated[Optional[list[str]], typer.Option("--arm", help="NAME=MODE:FILE[,key=value...] (repeatable); FILE may hold {n} and {seed}.")] = None,
    split: Annotated[str, typer.Option("--split", help="How the N per class are drawn: auto (blocked when the data has /sequence), blocked, random.")] = "auto",
    jobs: Annotated[int, typer.Option("--jobs", min=1, help="Classifier fits in this many processes (one thread each; same numbers for any value).")] = 1,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    as_json: JsonOpt = False,
    json_out: Annotated[Optional[Path], typer.Option("--json-out", help="Also write the --json report to this file (the table still prints).")] = None,
    md_out: Annotated[Optional[Path], typer.Option("--md-out", help="Also write the table as a Markdown report headed by this command.")] = None,
    plot_dir: PlotDirOpt = None,
    quiet: QuietOpt = False,
    force: ForceOpt = False,
) -> None:
    """Paired few-shot protocol: does extra data help a classifier trained on N real windows per class, and how surely?"""
    from mdcli.config import load_config
    from mdcli.diagnose.gain import GainConfig, gain_report, parse_arm, plan, table_rows, verdict_text
    from mdcli.progress import progress_bar
    from mdcli.diagnose.stats import fmt_spread

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
    p = plan(train, test, arms, ns, list(range(seeds)), split)
    with progress_bar("diagnose gain", len(p.tasks), unit="fit", quiet=quiet) as advance:
        report = gain_report(p, cfg, ns, list(range(seeds)), jobs, lambda: advance(1))
    if plot_dir is not None:
        from mdcli.diagnose.gain import plot_gain

        plot_dir.mkdir(parents=True, exist_ok=True)
        report["figures"] = [str(x) for x in plot_gain(report, plot_dir)]
    if json_out is not None:
        from mdcli.artifacts import atomic_path

        with atomic_path(_output_path(json_out)) as tmp:
            tmp.write_text(json.dumps(strict_json(report), indent=2, allow_nan=False) + "\n")
    if md_out is not None:
        import shlex

        from mdcli.artifacts import atomic_path
        from mdcli.diagnose.gain import markdown_report

        with atomic_path(_output_path(md_out)) as tmp:
            # the command that reproduces the numbers (--jobs, outputs and display options do not change them)
            cmd = ["mdcli", "diagnose", "gain", "--train", str(train), "--test", str(test), "--per-class", per_class,
                   "--seeds", str(seeds), *(["--split", split] if split != "auto" else []),
                   *(["--config", str(config)] if config else []), *[x for v in set_ or [] for x in ("--set", v)],
                   *[x for a in arm or [] for x in ("--arm", a)]]
            tmp.write_text(markdown_report(report, shlex.join(cmd)))
    if as_json:
        _write_json(report)
        return
    table = Table(title=f"diagnose gain: {train} -> {test} ({report['split']} subsets, {seeds} seeds)")
    for c in ("N", "arm", "mode", "accuracy", "macro-F1", "gain over real (95% CI)", "wins"):
        table.add_column(c, justify="right" if c in ("N", "accuracy", "macro-F1", "wins") else "left")
    notes = []
    for n, name, r, star, note in table_rows(report):
        g = r["gain"]
        notes += [note] if note else []
        table.add_row(n, name + ("*" if star else ""), report["arms"][name]["mode"],
                      fmt_spread(r["accuracy"]["values"], ".3f", ".3f"), fmt_spread(r["macro_f1"]["values"], ".3f", ".3f"),
                      verdict_text(g), f"{g['wins']}/{g['seeds']}" if g else "")
    console.print(table)
    if report["test_sequence_gap"] is not None and report["test_sequence_gap"] < 3:
        notes.append(f"a test window is {report['test_sequence_gap']} recording step(s) from a training window: overlapping "
                     "windows then share time (mdcli split --split blocked --gap 3 keeps them apart)")
    for line in notes:
        console.print(f"[yellow]note:[/] {line}", highlight=False, soft_wrap=True)


@diagnose_app.command(
    "domain",
    epilog=("Examples:\n\n  mdcli diagnose domain --a sim.h5 --b measured.h5\n\n"
            "  mdcli diagnose domain --a sim.h5 --b measured.h5 --classifier judge.h5 --plot figs/ --json"),
)
@user_errors
def diagnose_domain(
    a: Annotated[Path, typer.Option("--a", help="First spectrograms (e.g. simulated).")] = Path("sim.h5"),
    b: Annotated[Path, typer.Option("--b", help="Second spectrograms (e.g. measured), of the same image size.")] = Path("measured.h5"),
    classifier: Annotated[Optional[Path], typer.Option(
        help="A judge classifier.h5 for the FMD features (else the two-sample net's own features, stated in the report).")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed of the balanced split and the classifier (default 0).")] = None,
    steps: Annotated[Optional[int], typer.Option("--steps", min=1, help="Training steps of the two-sample classifier (default 200).")] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    as_json: JsonOpt = False,
    plot_dir: PlotDirOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Domain gap between two sets: a two-sample classifier's held-out accuracy (50 % = indistinguishable) and FMD."""
    from mdcli.config import load_config
    from mdcli.diagnose.domain import DomainConfig, domain_report, plot_domain

    cfg = load_config(DomainConfig, config, set_, {"seed": seed, "steps": steps})
    _require(a, "spectrograms")
    _require(b, "spectrograms")
    if classifier is not None:
        _require(classifier, "classifier")
    say = (lambda s: None) if quiet or as_json else (lambda s: err_console.print(f"[dim]{s}[/]", highlight=False))
    report = domain_report(a, b, classifier, cfg, say)
    examples = report.pop("_examples")
    if plot_dir is not None:
        plot_dir.mkdir(parents=True, exist_ok=True)
        report["figures"] = [str(p) for p in plot_domain({**report, "_examples": examples}, plot_dir)]
    if as_json:
        _write_json(report)
        return
    o = report["overall"]
    _report_table(f"{a} against {b} ({report['n_per_side']} per side, {report['n_test']} held out; FMD in {report['fmd_features']})",
                  {"two-sample accuracy": o["two_sample_accuracy"], "95% CI": f"{o['ci95_low']:.3f}-{o['ci95_high']:.3f}", "FMD": o["fmd"]},
                  {k: {"two-sample accuracy": v["two_sample_accuracy"], "95% CI": f"{v['ci95_low']:.3f}-{v['ci95_high']:.3f}",
                       "FMD": v["fmd"]} for k, v in report["per_class"].items()})
    if not report["per_class"]:
        err_console.print("[dim]no class names shared by the two files: overall only[/]")


def main(argv: Optional[list[str]] = None) -> None:
    """The entry point. Click's usage errors (an unknown option, a value of the wrong type, a missing
    option) become one line naming the command and option, exit code 2, like every other user error;
    Typer would print its usage block and a boxed message instead."""
    try:  # Typer >= 0.22 vendors click; older releases use the click package
        from typer._click.exceptions import ClickException, UsageError
    except ImportError:
        from click.exceptions import ClickException, UsageError

    from mdcli.allocator import keep_freed_memory

    keep_freed_memory()
    try:
        rv = app(args=argv, prog_name="mdcli", standalone_mode=False)
    except ClickException as e:
        where = e.ctx.command_path if getattr(e, "ctx", None) is not None else "mdcli"
        message = " ".join(e.format_message().split())
        hint = f" (see '{where} -h')" if isinstance(e, UsageError) else ""
        if message:  # a bare `mdcli` has printed its help already (no_args_is_help)
            err_console.print(f"[bold red]error:[/] {where}: {message}{hint}", highlight=False, soft_wrap=True)
        sys.exit(e.exit_code)
    except typer.Abort:
        err_console.print("[yellow]interrupted; no output written[/]")
        sys.exit(130)
    # without standalone mode, click returns typer.Exit's code instead of exiting with it
    sys.exit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":
    main()
