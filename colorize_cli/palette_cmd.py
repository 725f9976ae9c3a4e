"""`sscn palette`: colorize photos, folders and videos from a list of colours instead of a reference photo."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Optional

import typer

from .errors import CLIError, reported_errors, warn
from .options import optional
from .run_options import RunOptions, with_run_options


@with_run_options
def palette(
    colors: Annotated[Optional[str], optional(
        "--colors", help="Comma-separated hex colours, e.g. '#e63946,#f1faee,#a8dadc'.")] = None,
    palette_file: Annotated[Optional[Path], optional(
        "--palette", help="Palette file: GIMP .gpl, text of hex colours, JSON (list, or {colors, weights}), or "
                          "an image whose dominant colours are taken.")] = None,
    count: Annotated[int, typer.Option("--count", help="Dominant colours taken from a palette image.")] = 5,
    shares: Annotated[Optional[str], optional(
        "--shares", help="Share of each colour, e.g. 0.5,0.3,0.2 (default: equal, or the palette file's "
                         "weights).")] = None,
    save_reference: Annotated[Optional[Path], optional(
        "--save-reference", help="Also write the swatch image used as the reference.")] = None,
    *,
    run: RunOptions,
) -> None:
    """Colorize photos and videos with a colour palette instead of a reference photo.

    The colours are drawn as a swatch image (stripes as wide as their shares) that serves as the reference;
    targets, outputs, --weights (the model file) and exit codes work as in `sscn colorize`.

    Examples:

      sscn palette old.jpg --colors '#e63946,#f1faee,#a8dadc' --shares 0.5,0.3,0.2

      sscn palette scans/ --palette sunset.gpl -o sunset/

      sscn palette old.jpg --palette painting.jpg --count 6 --save-reference s.png

      sscn palette street.mp4 --palette colours.json -o street_palette.mp4

      sscn palette --colors '#264653,#2a9d8f,#e9c46a' --save-reference swatch.png
    """
    with reported_errors(run.debug):
        if (colors is None) == (palette_file is None):
            raise CLIError("give exactly one of --colors and --palette")
        if not run.targets and save_reference is None:
            raise CLIError("give one or more targets (files, folders, videos or -), or --save-reference PATH")
        from .targets import check_outputs

        run, shares = _old_shares(run, shares)
        jobs = run.jobs() if run.targets else []     # before torch and the model: a mistyped path fails at once
        settings = run.settings()

        from sscn.models.palette import palette_image
        from sscn.models.runtime import working_size

        from .images import write_image
        from .palettes import parse_colors, parse_weights, read_palette
        from .runner import Group

        check_outputs(jobs, [palette_file, settings.weights],
                      {"--save-reference": save_reference} if save_reference else None)
        on_ray = run.ray_settings()
        if palette_file is not None:
            chosen = read_palette(palette_file, count, run.seed)
            swatch_colors, swatch_weights = chosen.colors, chosen.weights
        else:
            swatch_colors, swatch_weights = parse_colors(colors), None
        if shares is not None:
            swatch_weights = parse_weights(shares)
        swatch = palette_image(swatch_colors, swatch_weights, working_size(run.size))   # (3, S, S) in [0, 1]
        if save_reference is not None:
            write_image(save_reference, swatch)
        if not jobs:
            raise typer.Exit(0)
        code = run.run([Group(lambda colorizer: colorizer.set_reference(swatch), jobs)], settings, on_ray)
    raise typer.Exit(code)


def _old_shares(run: RunOptions, shares: str | None) -> tuple[RunOptions, str | None]:
    """`--weights 0.5,0.3,0.2`, the shares' old spelling (before --weights named the model file in every command):
    a value that names no file and reads as comma-separated numbers is taken as --shares, with a notice."""
    if run.weights is None or run.weights.exists() or not _numbers(str(run.weights)):
        return run, shares
    if shares is not None:
        raise CLIError("give the colour shares once: --shares (--weights NUMBERS is their old spelling)")
    warn("--weights 0.5,0.3,... for colour shares is deprecated; use --shares (--weights is the model file)")
    return dataclasses.replace(run, weights=None), str(run.weights)


def _numbers(text: str) -> bool:
    try:
        [float(part) for part in text.split(",")]
    except ValueError:
        return False
    return True
