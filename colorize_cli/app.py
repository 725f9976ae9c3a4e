"""The `sscn` command: colorize photos and video from a colour reference (SSCN, ECCV 2022)."""
from __future__ import annotations

from typing import Optional

import typer

from . import __version__
from .bench_cmd import bench
from .colorize_cmd import colorize
from .evaluate_cmd import evaluate
from .palette_cmd import palette
from .train_cmd import train

app = typer.Typer(
    name="sscn",
    help="Colorize grayscale photos and video from a colour reference image (Semantic-Sparse Colorization Network).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"sscn {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Optional[bool] = typer.Option(None, "--version", callback=_version, is_eager=True,
                                           help="Print the version and exit."),
) -> None:
    """Colorize grayscale photos and video from a colour reference image."""


app.command("colorize")(colorize)
app.command("palette")(palette)
app.command("train")(train)
app.command("evaluate")(evaluate)
app.command("bench")(bench)
