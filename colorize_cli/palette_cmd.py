"""`sscn palette`: colorize photos, folders and videos from a list of colours instead of a reference photo."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from . import options
from .errors import CLIError, reported_errors


def palette(
    targets: Optional[list[str]] = options.TARGETS,
    colors: Optional[str] = typer.Option(None, "--colors", show_default=False,
                                         help="Comma-separated hex colours, e.g. '#e63946,#f1faee,#a8dadc'."),
    palette_file: Optional[Path] = typer.Option(
        None, "--palette", show_default=False,
        help="Palette file: GIMP .gpl, text of hex colours, JSON (list, or {colors, weights}), or an image "
             "whose dominant colours are taken."),
    weights: Optional[str] = typer.Option(None, "--weights", show_default=False,
                                          help="Share of each colour, e.g. 0.5,0.3,0.2 (default: equal, or "
                                               "the palette file's)."),
    count: int = typer.Option(5, "--count", help="Dominant colours taken from a palette image."),
    save_reference: Optional[Path] = typer.Option(None, "--save-reference", show_default=False,
                                                  help="Also write the swatch image used as the reference."),
    model: Optional[Path] = typer.Option(None, "--model", show_default=False,
                                         help="Model weights (.safetensors; default: the shipped model)."),
    out: Optional[str] = options.OUT,
    recursive: bool = options.RECURSIVE,
    frames: Optional[Path] = options.FRAMES,
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
    max_pixels: int = options.MAX_PIXELS,
    overwrite: bool = options.OVERWRITE,
    quiet: bool = options.QUIET,
    json: bool = options.JSON,
    debug: bool = options.DEBUG,
    ray: Optional[str] = options.RAY,
    ray_actors: int = options.RAY_ACTORS,
    ray_cpus: float = options.RAY_CPUS,
    ray_gpus: Optional[float] = options.RAY_GPUS,
) -> None:
    """Colorize photos and videos with a colour palette instead of a reference photo.

    The colours are drawn as a swatch image (stripes as wide as their weights) that serves as the reference;
    targets, outputs and exit codes work as in `sscn colorize`.

    Examples:

      sscn palette old.jpg --colors '#e63946,#f1faee,#a8dadc' --weights 0.5,0.3,0.2

      sscn palette scans/ --palette sunset.gpl -o sunset/

      sscn palette old.jpg --palette painting.jpg --count 6 --save-reference s.png

      sscn palette street.mp4 --palette colours.json -o street_palette.mp4

      sscn palette --colors '#264653,#2a9d8f,#e9c46a' --save-reference swatch.png
    """
    with reported_errors(debug):
        if (colors is None) == (palette_file is None):
            raise CLIError("give exactly one of --colors and --palette")
        if not targets and save_reference is None:
            raise CLIError("give one or more targets (files, folders, videos or -), or --save-reference PATH")
        from sscn.models.colorizer import working_size
        from sscn.models.palette import palette_image

        from .images import write_image
        from .palettes import parse_colors, parse_weights, read_palette
        from .ray_backend import RaySettings, run_on_ray
        from .runner import Group, RunSettings, run_groups
        from .targets import check_outputs, discover, plan_jobs

        settings = RunSettings(weights=model, device=device, precision=precision, size=size, k=k, r=r,
                               dense=dense, seed=seed, batch_size=batch_size, max_pixels=max_pixels, workers=workers,
                               compile=compile, upsample=upsample, overwrite=overwrite, quiet=quiet, json=json,
                               debug=debug)
        settings.check()
        jobs = []
        if targets:
            exclude = [Path(p) for p in (out, frames) if p is not None]
            jobs = plan_jobs(discover(targets, recursive, exclude, sys.stdin), out, frames)
        check_outputs(jobs, [palette_file, model], {"--save-reference": save_reference} if save_reference else None)
        on_ray = RaySettings.from_options(ray, ray_actors, ray_cpus, ray_gpus)
        if palette_file is not None:
            chosen = read_palette(palette_file, count, seed)
            swatch_colors, swatch_weights = chosen.colors, chosen.weights
        else:
            swatch_colors, swatch_weights = parse_colors(colors), None
        if weights is not None:
            swatch_weights = parse_weights(weights)
        swatch = palette_image(swatch_colors, swatch_weights, working_size(size))   # (3, S, S) in [0, 1]
        if save_reference is not None:
            write_image(save_reference, swatch)
        if not jobs:
            raise typer.Exit(0)
        groups = [Group(lambda colorizer: colorizer.set_reference(swatch), jobs)]
        code = run_on_ray(groups, settings, on_ray) if on_ray else run_groups(groups, settings)
    raise typer.Exit(code)
