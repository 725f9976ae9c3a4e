"""`sscn colorize`: colorize photos, folders and videos from a colour reference image."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from . import options
from .errors import CLIError, reported_errors


def colorize(
    targets: Optional[list[str]] = options.TARGETS,
    ref: Optional[Path] = typer.Option(None, "--ref", show_default=False,
                                       help="Colour reference image (encoded once for all targets)."),
    pairs: Optional[Path] = typer.Option(
        None, "--pairs", show_default=False,
        help="CSV of target,reference[,output] rows (instead of TARGET and --ref); paths relative to the CSV."),
    out: Optional[str] = options.OUT,
    recursive: bool = options.RECURSIVE,
    frames: Optional[Path] = options.FRAMES,
    weights: Optional[Path] = typer.Option(None, "--weights", "--model", show_default=False,
                                           help="Model weights (.safetensors; default: the shipped model)."),
    k: Optional[int] = options.K,
    r: Optional[int] = options.R,
    dense: bool = options.DENSE,
    size: int = options.SIZE,
    device: str = options.DEVICE,
    precision: str = options.PRECISION,
    batch_size: int = options.BATCH_SIZE,
    workers: int = options.WORKERS,
    compile: bool = options.COMPILE,
    upsample: str = options.UPSAMPLE,
    seed: int = options.SEED,
    overwrite: bool = options.OVERWRITE,
    quiet: bool = options.QUIET,
    json: bool = options.JSON,
    debug: bool = options.DEBUG,
) -> None:
    """Colorize grayscale (or colour) photos and videos with the colours of a reference image. Outputs keep
    each input's size and lightness. Inputs are never modified: an output equal to an input is refused,
    outputs are written to a temporary file and renamed, and existing outputs are skipped unless --overwrite
    (so re-running a command resumes it). Exit codes: 0 ok, 1 some items failed, 2 bad input.

    Examples:

      sscn colorize old.jpg --ref colour.jpg            (writes old_color.png)

      sscn colorize scans/ --ref colour.jpg -o colored/ --recursive

      find scans -name '*.tif' | sscn colorize - --ref colour.jpg -o colored/

      sscn colorize --pairs jobs.csv -o colored/        (rows: target,reference[,output])

      sscn colorize street.mp4 --ref colour.jpg -o street_color.mp4

      sscn colorize street.mp4 --ref colour.jpg --frames frames/

      sscn colorize old.jpg --ref colour.jpg --quiet --json
    """
    with reported_errors(debug):
        if pairs is not None and (targets or ref is not None):
            raise CLIError("--pairs replaces TARGET and --ref; give one or the other")
        if pairs is None and not targets:
            raise CLIError("give one or more targets (files, folders, videos or -) or --pairs FILE")
        if pairs is None and ref is None:
            raise CLIError("--ref REFERENCE is required (or use --pairs FILE)")
        from .images import ImageError, read_image
        from .runner import Group, RunSettings, run_groups
        from .targets import check_outputs, discover, plan_jobs, plan_pairs, read_pairs

        settings = RunSettings(weights=weights, device=device, precision=precision, size=size, k=k, r=r,
                               dense=dense, seed=seed, batch_size=batch_size, workers=workers, compile=compile,
                               upsample=upsample,
                               overwrite=overwrite, quiet=quiet, json=json, debug=debug)
        if pairs is not None:
            rows = read_pairs(pairs)
            jobs = plan_pairs(rows, out, frames)
            check_outputs(jobs, [pairs, *(reference for _, reference, _ in rows)])
            by_reference: dict[Path, list] = {}
            for job in jobs:
                by_reference.setdefault(job.reference, []).append(job)
            groups = [Group(_reference_from_file(reference), group) for reference, group in by_reference.items()]
        else:
            try:
                reference = read_image(ref).pixels
            except ImageError as error:
                raise CLIError(f"reference {error}") from None
            exclude = [Path(p) for p in (out, frames) if p is not None]
            jobs = plan_jobs(discover(targets, recursive, exclude, sys.stdin), out, frames)
            check_outputs(jobs, [ref])
            groups = [Group(lambda colorizer: colorizer.set_reference(reference), jobs)]
        code = run_groups(groups, settings)
    raise typer.Exit(code)


def _reference_from_file(path: Path):
    """A Group.set_reference that reads `path` when its group comes up (a bad one fails only its rows)."""
    from .images import read_image

    def set_reference(colorizer) -> None:
        colorizer.set_reference(read_image(path).pixels)

    return set_reference
