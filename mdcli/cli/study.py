"""`mdcli study`: the autoencoder comparison (mdcli/study.py) as a command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from mdcli.cli.common import command

group = typer.Typer()


@command(group, "study")
def study_cmd(
    profile: Annotated[Path, typer.Option("--profile", help="Study profile (configs/study/*.yaml): the stages' configs and the study section.")],
    dataset: Annotated[str, typer.Option("--dataset", help="sim | gait")],
    out: Annotated[Path, typer.Option("--out", help="Folder of the study (resumed when it holds one made the same way).")],
    data: Annotated[Optional[Path], typer.Option("--data", help="Use these spectrograms instead of simulating/importing.")] = None,
    gait_dir: Annotated[Path, typer.Option("--gait-dir", help="Folder of the gait images (--dataset gait).")] = Path("../shared/data/gait"),
    perceptual: Annotated[str, typer.Option("--perceptual", help="domain | lpips-vgg (the report's setting; needs the ImageNet "
                                            "VGG16 weights in the torch hub cache)")] = "domain",
    jobs: Annotated[Optional[int], typer.Option("--jobs", help="Arm pipelines run in parallel (default: the profile's study.jobs, else 1).")] = None,
    threads: Annotated[Optional[int], typer.Option("--threads", help="Torch threads per process (default: the profile's study.threads, "
                                                   "else the cores shared out over the jobs).")] = None,
    arms: Annotated[Optional[str], typer.Option("--arms", help="Comma-separated subset of the profile's arms and extra_arms (default: its arms).")] = None,
    judges: Annotated[Optional[str], typer.Option("--judges", help="Comma-separated seeds of extra judges that score every arm's samples "
                                                  "(default: the profile's study.judges; 'none' for none).")] = None,
) -> None:
    """VAE vs VQ-VAE vs VQ-GAN (and induced failures) on one dataset, same budget, same LDM; resumes after a kill.

    Every step is a plain `mdcli` command (arms in parallel with --jobs); writes OUT/results.md and OUT/results.json.
    """
    from mdcli.cli.common import err_console
    from mdcli.study import run_study

    try:
        run_study(profile, dataset, out, data, gait_dir, perceptual, jobs, threads, arms, judges)
    except KeyboardInterrupt:  # the finished stages stay: say so, not the generic "no output written"
        err_console.print(f"[yellow]interrupted: {out} keeps every finished stage; run the same command to resume[/]",
                          highlight=False, soft_wrap=True)
        raise typer.Exit(130) from None
