"""Training commands: train-classifier (and classify, which applies what it trains), train-ae, train-ldm."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from mdcli.choices import PERCEPTUAL_CHOICES
from mdcli.cli.common import (
    _check_input, command, console, err_console, _output_path, _print_config, _require, _write_json, _write_json_file,
    writes,
)
from mdcli.errors import MdcliError

group = typer.Typer()




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
    from mdcli.errors import RunComplete
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
    except RunComplete as e:
        if main:
            console.print(str(e), highlight=False, soft_wrap=True)
        raise typer.Exit(0) from None
    except KeyboardInterrupt:
        if main:
            ckpt = checkpoint_path(output)
            err_console.print(f"[yellow]interrupted: checkpoint {ckpt}; run the same command with --resume to continue[/]"
                              if ckpt.exists() else "[yellow]interrupted before the first checkpoint; no output written[/]")
        raise typer.Exit(130) from None


@command(group, "train-classifier")
@writes(output="classifier")
def train_classifier_cmd(
    data: Annotated[Path, typer.Option("--data", "-d", help="Spectrograms artifact to train on.")] = Path("data.h5"),
    output: Annotated[Path, typer.Option("--output", "-o", help="Classifier artifact to write.")] = Path("classifier.h5"),
    steps=None,
    seed: Annotated[Optional[int], typer.Option(help="Seed (weights, split, batches).")] = None,
    compile_=None, split=None, config=None, set_=None, dry_run=False, resume=False, stop_after=None, quiet=False,
    extra: Annotated[Optional[Path], typer.Option("--extra", help="Extra spectrograms (generated, simulated) mixed into every batch.")] = None,
    extra_weight: Annotated[Optional[float], typer.Option("--extra-weight", help="Loss weight of an extra image, in [0, 1] (a real one: 1).")] = None,
    extra_ratio: Annotated[Optional[float], typer.Option("--extra-ratio", help="Extra images per real image in each batch (default 1).")] = None,
    extra_prob: Annotated[Optional[float], typer.Option("--extra-prob", help="Chance a real image is swapped for an extra one of its class.")] = None,
    init: Annotated[Optional[Path], typer.Option("--init", help="Start from this classifier (its network replaces the config's; a fresh head when its classes differ).")] = None,
    finetune: Annotated[Optional[str], typer.Option("--finetune", help="With --init: all | head (train the head alone).")] = None,
    force=False,
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
    # also when set with --set or in the config file: without the file they would be silently unused
    from mdcli.stages import ExtraOptions

    if extra is None and ((extra_weight, extra_ratio, extra_prob) != (None, None, None) or cfg.extra != ExtraOptions()):
        raise MdcliError("--extra-weight / --extra-ratio / --extra-prob (extra.*): give the extra images with --extra FILE")
    if init is None and (finetune is not None or cfg.finetune != "all"):
        raise MdcliError("--finetune (finetune): give the classifier to start from with --init FILE")
    for path, option, kind in ((extra, "--extra", "spectrograms"), (init, "--init", "classifier")):
        if path is not None:
            _require(path, kind, option)
    from mdcli.train.classifier import check_extra_init

    check_extra_init(cfg, data, extra, init)  # classes and image sizes, before the progress bar
    output = _output_path(output)
    res = _run_training("train-classifier", output, cfg.train.steps, stop_after, quiet,
                        lambda adv: train_classifier(cfg, data, output, resume, stop_after, adv, err_console.print, extra, init))
    if res is None:
        return
    if not quiet:
        val = ("no validation (train.val_fraction 0)" if res.val_accuracy != res.val_accuracy
               else f"validation accuracy {res.val_accuracy:.3f}")
        console.print(f"wrote {output}: {val} (train {res.train_accuracy:.3f}), {res.images_per_s:.0f} images/s",
                      soft_wrap=True)


@command(group, "classify")
@writes(json_out="json", output="spectrograms")
def classify_cmd(
    data: Annotated[Path, typer.Option("--data", "-d", help="Spectrograms to label (scored when their classes are the classifiers').")] = Path("data.h5"),
    classifier: Annotated[Optional[list[Path]], typer.Option("--classifier", help="A trained classifier (repeatable: an ensemble, the mean of their class probabilities).")] = None,
    as_json=False,
    json_out: Annotated[Optional[Path], typer.Option("--json-out", help="Also write the --json report (every window's prediction and probabilities) to this file.")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write the windows as spectrograms labelled with the predicted class (pseudo-labels; probabilities in /params).")] = None,
    min_confidence: Annotated[float, typer.Option("--min-confidence", help="Keep (--output) and score apart (scored.kept) the windows whose predicted class has at least this mean probability (0: all).")] = 0.0,
    force=False,
) -> None:
    """Label spectrograms with a classifier or an ensemble of several (the mean of their class probabilities);
    scored against the file's own labels where its classes are the classifiers'. --output writes them as a
    labelled spectrograms file (e.g. unlabelled recordings pseudo-labelled for `train-classifier --extra`)."""
    from mdcli.classify import classify

    _require(data, "spectrograms", "--data")
    for path in classifier or []:
        _require(path, "classifier", "--classifier")
    report = classify(data, list(classifier or []), min_confidence,  # (folders as outputs are refused by @writes)
                      _output_path(output) if output is not None else None)
    if output is not None and not as_json:
        console.print(f"wrote {output}: {report['kept']} of {report['count']} windows labelled "
                      + ", ".join(f"{c} {n}" for c, n in report["kept_counts"].items())
                      + (f" (mean probability >= {min_confidence})" if min_confidence > 0 else ""),
                      highlight=False, soft_wrap=True)
    if json_out is not None:
        _write_json_file(report, json_out)
    if as_json:
        _write_json(report)
        return
    names, scored = report["classes"], report["scored"]
    what = f"{len(report['classifiers'])} classifiers, mean probability" if len(report["classifiers"]) > 1 else str(report["classifiers"][0]["path"])
    if "accuracy" not in scored:  # classes the classifiers do not know: labelled, not scored
        table = Table(title=f"classify: {data} ({what})")
        table.add_column("class")
        table.add_column("predicted", justify="right")
        for c, n in report["predicted_counts"].items():
            table.add_row(c, str(n))
        console.print(table)
        console.print(f"not scored: {scored['reason']}", highlight=False, soft_wrap=True)
        return
    table = Table(title=f"classify: {data} ({what}): rows true class, columns predicted")
    table.add_column("class")
    for c in names:
        table.add_column(c, justify="right")
    table.add_column("recall", justify="right")
    for c, row in zip(names, scored["confusion"]):
        if sum(row):
            table.add_row(c, *map(str, row), f"{scored['recall'][c]:.3f}")
    console.print(table)
    members = ", ".join(f"{a:.3f}" for a in scored["members"])
    console.print(f"accuracy {scored['accuracy']:.3f}, macro-F1 {scored['macro_f1']:.3f} on {report['count']} windows"
                  + (f"; each classifier alone: {members}" if len(scored["members"]) > 1 else ""), highlight=False)
    kept = scored["kept"]
    if min_confidence > 0 and kept["count"]:
        console.print(f"at mean probability >= {min_confidence}: {kept['count']} windows, accuracy {kept['accuracy']:.3f}",
                      highlight=False)


@command(group, "train-ae")
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
    steps=None,
    seed: Annotated[Optional[int], typer.Option(help="Seed (weights, split, batches, noise).")] = None,
    compile_=None, split=None, config=None, set_=None, dry_run=False, resume=False, stop_after=None, quiet=False,
    init: Annotated[Optional[Path], typer.Option("--init", help="Start from this autoencoder (same arch, model config and image size; the discriminator starts fresh).")] = None,
    force=False,
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
        _require(Path(cfg.loss.classifier), "classifier", "--classifier")
    _require_resume(output, resume)
    if init is not None:  # arch, image size, latent shape and model config, before the progress bar
        from mdcli.artifacts import open_artifact
        from mdcli.train.transfer import autoencoder_init

        _require(init, "autoencoder", "--init")
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


@command(group, "train-ldm")
@writes(output="ldm")
def train_ldm_cmd(
    latents: Annotated[Path, typer.Option("--latents", "-l", help="Latents artifact from `mdcli encode`.")] = Path("latents.h5"),
    output: Annotated[Path, typer.Option("--output", "-o", help="LDM artifact to write.")] = Path("ldm.h5"),
    steps=None,
    seed: Annotated[Optional[int], typer.Option(help="Seed (weights, split, noise).")] = None,
    compile_=None, split=None, config=None, set_=None, dry_run=False, resume=False, stop_after=None, quiet=False,
    init: Annotated[Optional[Path], typer.Option("--init", help="Start from this LDM (same latent shape and UNet config; other classes start as its null class).")] = None,
    force=False,
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
        from mdcli.latents import load_latents
        from mdcli.train.transfer import ldm_init

        _require(init, "ldm", "--init")
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
