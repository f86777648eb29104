"""Generation commands: encode, sample, augment."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from mdcli.cli.common import (
    command, console, err_console, _output_path, _print_config, _require, writes,
)
from mdcli.errors import MdcliError

group = typer.Typer()



@command(group)
@writes(output="latents")
def encode(
    ae: Annotated[Path, typer.Option("--ae", help="Autoencoder artifact.")] = Path("ae.h5"),
    data: Annotated[Path, typer.Option("--data", "-d", help="Spectrograms to encode.")] = Path("data.h5"),
    output: Annotated[Path, typer.Option("--output", "-o", help="Latents artifact to write.")] = Path("latents.h5"),
    batch_size: Annotated[int, typer.Option(min=1, help="Images per batch.")] = 64,
    quiet=False, force=False,
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


@command(group)
@writes(output="spectrograms", preview="png")
def sample(
    ldm: Annotated[Path, typer.Option("--ldm", help="LDM artifact from `mdcli train-ldm`.")] = Path("ldm.h5"),
    output: Annotated[Path, typer.Option("--output", "-o", help="Spectrograms artifact to write (source = generated).")] = Path("samples.h5"),
    ae: Annotated[Optional[Path], typer.Option("--ae", help="Autoencoder (default: found through the lineage).")] = None,
    n_per_class: Annotated[Optional[int], typer.Option("--n-per-class", "-n", help="Samples per class.")] = None,
    classes: Annotated[Optional[str], typer.Option(help="Comma-separated classes (default: all).")] = None,
    sampler=None,
    steps: Annotated[Optional[int], typer.Option(help="Sampling steps.")] = None,
    eta=None, cfg_scale=None,
    seed: Annotated[Optional[int], typer.Option(help="Seed: the same seed gives the same samples.")] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", help="Samples per batch.")] = None,
    preview: Annotated[Optional[Path], typer.Option("--preview", help="Also write a PNG grid of the samples.")] = None,
    filter_=None, config=None, set_=None, dry_run=False, quiet=False, force=False,
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
        preview = _output_path(preview, "--preview")
        with atomic_path(preview) as tmp:
            plot_grid(data, tmp, per_class=min(6, cfg.n_per_class), seed=cfg.seed, title=f"{output.name} (generated, {cfg.sampler})")
    if not quiet:
        console.print(f"wrote {output}: {len(data)} generated spectrograms"
                      + (f"; preview {preview}" if preview is not None else ""))


@command(group)
@writes(output="spectrograms", preview="png")
def augment(
    ldm: Annotated[Optional[Path], typer.Option("--ldm", help="LDM artifact from `mdcli train-ldm` (its autoencoder is found through the lineage; default ldm.h5). --strength 0 with --ae needs none: the autoencoder's round trip.")] = None,
    data: Annotated[Path, typer.Option("--data", help="Real spectrograms to vary (the training data; never the test part).")] = Path("train.h5"),
    output: Annotated[Path, typer.Option("--output", "-o", help="Spectrograms artifact to write (source = generated, with /source_index).")] = Path("variations.h5"),
    ae: Annotated[Optional[Path], typer.Option("--ae", help="Autoencoder (default: found through the LDM's lineage).")] = None,
    per_image: Annotated[Optional[int], typer.Option("--per-image", "-k", help="Variants per real spectrogram.")] = None,
    strength: Annotated[Optional[str], typer.Option("--strength", help="Diffusion time to noise to: 0 = the image itself, 1 = pure noise; lo:hi draws per variant.")] = None,
    classes: Annotated[Optional[str], typer.Option(help="Comma-separated classes of --data to vary (default: all).")] = None,
    condition: Annotated[Optional[str], typer.Option("--condition", help="What the LDM denoises towards: own (each image's label; default), null (the LDM's unconditional class, e.g. simulated windows towards measured ones) or one of its classes. The output keeps the sources' labels.")] = None,
    sampler=None,
    steps: Annotated[Optional[int], typer.Option(help="Sampler grid points over the whole diffusion; a variant runs those below its start (fewer at lower --strength).")] = None,
    eta=None, cfg_scale=None,
    seed: Annotated[Optional[int], typer.Option(help="Seed: the same seed gives the same variations.")] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", help="Variants per batch (results do not depend on it).")] = None,
    preview: Annotated[Optional[Path], typer.Option("--preview", help="Also write a PNG: sources beside their variants.")] = None,
    filter_=None, config=None, set_=None, dry_run=False, quiet=False, force=False,
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
        "filters": list(filter_) if filter_ else None, "condition": condition,
    })
    if dry_run:
        _print_config(to_yaml(cfg))
        return
    _require(data, "spectrograms")
    if ae is not None:
        _require(ae, "autoencoder")
    if preview is not None and preview.suffix.lower() != ".png":
        raise MdcliError(f"--preview {preview}: expected a .png file name")
    if ldm is None and not (ae is not None and cfg.strength_range()[1] == 0) and Path("ldm.h5").exists():
        ldm = Path("ldm.h5")  # the default; without it check_inputs says what is missing
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
