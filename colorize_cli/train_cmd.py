"""`sscn train`: self-augmented training (paper §3.5, §4.1)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from sscn.constants import TRAIN_PRECISIONS
from sscn.models.config import CONFIGS, ENCODERS

from .errors import CLIError, reported_errors, stderr_is_terminal
from .options import Debug, Device, check_seed, choices, flag


def train(
    data: Path = typer.Argument(..., help="Folder of photos (searched recursively; class subfolders become labels)."),
    out: Path = typer.Option(..., "--out", "-o",
                             help="Run folder: checkpoints, metrics.jsonl, previews, model.safetensors."),
    config: Annotated[str, typer.Option("--config", help=f"Model size: {choices(CONFIGS)}.")] = "base",
    encoder: Annotated[Optional[str], typer.Option(
        "--encoder", help=f"Override the config's encoder: {choices(ENCODERS)}.")] = None,
    steps: int = typer.Option(10000, help="Optimiser steps."),
    time_limit: Annotated[Optional[str], typer.Option(
        "--time-limit", metavar="DURATION",
        help="Stop after this much training time, e.g. 45m, 8h or 1h30m (a bare number is minutes), counted over "
             "--resume; the learning rate's decay ends at the limit or at --steps, whichever comes first.")] = None,
    batch_size: int = typer.Option(8, help="Pairs per step (per process under torchrun)."),
    lr: float = typer.Option(1e-4, help="Adam learning rate (paper: 1e-4)."),
    warmup: int = typer.Option(200, help="Linear warm-up steps, then cosine decay (at most a fifth of --steps)."),
    size: int = typer.Option(256, help="Side of the square training crops."),
    k: Optional[int] = typer.Option(None, "--k", help="Top-k CAM positions (default: the config's, 256)."),
    r: Optional[int] = typer.Option(None, "--r", help="Random extra positions (default: the config's, 256)."),
    val: Optional[Path] = typer.Option(None, help="Held-out photo folder for periodic validation PSNR."),
    init: Optional[Path] = typer.Option(None, help="Start from these weights (.safetensors), e.g. the shipped model."),
    resume: Annotated[bool, flag("--resume", help="Continue the run in --out exactly where it stopped.")] = False,
    device: Device = "auto",
    seed: int = typer.Option(0, help="Seed of the random streams: photo picks, pairs, random selection."),
    compile: Annotated[bool, flag("--compile", help="torch.compile the network.")] = False,
    precision: Annotated[str, typer.Option(
        "--precision", help=f"{choices(TRAIN_PRECISIONS)} (auto: bf16 on CUDA and on CPUs with native bf16, such as "
                            "AVX-512 BF16 or AMX; fp32 elsewhere).")] = "auto",
    recolor_share: float = typer.Option(0.0, help="Share of pairs whose target and reference get the same random "
                                        "hue rotation and saturation change."),
    paste_share: float = typer.Option(0.0, help="Share of pairs whose reference gets a rectangle of another "
                                      "pair's reference (a partial match)."),
    class_share: float = typer.Option(0.0, help="Share of pairs whose reference is another photo of the target's "
                                      "class (needs class subfolders)."),
    freeze_encoder: Annotated[bool, flag(
        "--freeze-encoder", help="Keep E's pretrained backbone and CAM classifier fixed.")] = False,
    workers: int = typer.Option(min(4, os.cpu_count() or 1),
                                help="DataLoader workers decoding photos (streaming them when too many to hold)."),
    log_every: int = typer.Option(10, help="Steps between metrics lines."),
    preview_every: int = typer.Option(500, help="Steps between preview grids."),
    val_every: int = typer.Option(500, help="Steps between validations."),
    checkpoint_every: int = typer.Option(500, help="Steps between checkpoints."),
    debug: Debug = False,
) -> None:
    """Train SSCN on a folder of photos with self-augmented pairs.

    Examples:

      sscn train photos/train --out runs/base --steps 20000 --val photos/val

      sscn train photos/train --out runs/base --resume

      sscn train photos/train --out runs/night --steps 1000000 --time-limit 8h

      torchrun --nproc_per_node 8 -m sscn train photos/train -o runs/base
    """
    with reported_errors(debug):
        from sscn.train.budget import parse_duration
        from sscn.train.loop import Trainer
        from sscn.train.run_setup import TrainOptions
        from sscn.train.pairs import PairSettings

        check_seed(seed)
        time_limit_s = None if time_limit is None else parse_duration(time_limit)
        for name, share in (("--recolor-share", recolor_share), ("--paste-share", paste_share),
                            ("--class-share", class_share)):
            if not 0.0 <= share <= 1.0:
                raise ValueError(f"{name} {share}: must be between 0 and 1")
        _check_run_folder(out, [folder for folder in (data, val) if folder is not None], init)

        options = TrainOptions(
            data=str(data), out=str(out), config=config, encoder=encoder, steps=steps, batch_size=batch_size,
            lr=lr, warmup=warmup, size=size, k=k, r=r, val=str(val) if val else None, init=str(init) if init else None,
            resume=resume, device=device, seed=seed, compile=compile, precision=precision,
            freeze_encoder=freeze_encoder,
            workers=workers, log_every=log_every, preview_every=preview_every, val_every=val_every,
            checkpoint_every=checkpoint_every, time_limit=time_limit_s,
            pairs=PairSettings(recolor_share=recolor_share, paste_share=paste_share, class_share=class_share),
        )
        trainer = Trainer(options)
        try:
            _run_with_progress(trainer)
        finally:
            trainer.close()


def _check_run_folder(out: Path, photo_folders: list[Path], init: Path | None) -> None:
    """The run folder may not be (or be inside) a photo folder, whose next run would train on its previews,
    and none of the files a run writes may be an input: the photos or the --init weights."""
    from sscn.models.outputs import check_output, protect
    from sscn.constants import IMAGE_SUFFIXES
    from sscn.train.run_setup import RUN_FILES

    run_folder = os.path.realpath(out)
    for folder in photo_folders:
        photos = os.path.realpath(folder)
        if os.path.commonpath([run_folder, photos]) == photos:
            raise CLIError(f"{out}: the run folder is inside the photo folder {folder}; choose another --out")
        if os.path.isdir(folder):
            protect(path for path in Path(folder).rglob("*") if path.suffix.lower() in IMAGE_SUFFIXES)
    protect([init])
    for name in RUN_FILES:
        check_output(out / name)


def _run_with_progress(trainer) -> None:
    """Rank 0 shows a progress bar (loss, training PSNR, images/s at each logging step) on a terminal. Under
    --time-limit the bar runs in thousandths of the run, by steps or by time, whichever is further along (as the
    learning rate does), so that its estimate of the time left is the run's."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    if not trainer.ddp.main:
        trainer.run()
        return
    console = Console(stderr=True)
    if not stderr_is_terminal():
        trainer.run()
    else:
        steps, timed = trainer.options.steps, trainer.budget.limit is not None

        def done(step: int) -> int:
            return round(1000 * max(step / steps, trainer.time_progress)) if timed else step

        count = TextColumn("step {task.fields[step]}") if timed else MofNCompleteColumn()
        with Progress(TextColumn("[bold]train"), BarColumn(), count, TextColumn("{task.fields[info]}"),
                      TimeRemainingColumn(), console=console) as progress:
            task = progress.add_task("train", total=1000 if timed else steps, completed=done(trainer.step),
                                     step=trainer.step, info="")

            def update(step: int, record: dict | None) -> None:
                info = {}
                if record is not None and "loss" in record:
                    info["info"] = (f"loss {record['loss']:.3f}  psnr {record['psnr_stage2']:.2f}  "
                                    f"{record['images_per_s']:.1f} img/s")
                progress.update(task, completed=done(step), step=step, **info)

            trainer.run(update)
    stopped = ""
    if trainer.stopped_by_time:
        from sscn.train.budget import format_duration
        stopped = f" (the time limit, {format_duration(trainer.budget.limit)})"
    console.print(f"trained to step {trainer.step}{stopped}; weights in {trainer.out / 'model.safetensors'}")
