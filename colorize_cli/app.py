"""The `sscn` command: colorize photos and video from a colour reference (SSCN, ECCV 2022)."""
from __future__ import annotations

from typing import Optional

import typer

from . import __version__
from .bench_cmd import bench
from .colorize_cmd import colorize
from .errors import handle_termination
from .evaluate_cmd import EvaluateCommand, evaluate
from .options import Command, Group
from .palette_cmd import palette
from .train_cmd import train

app = typer.Typer(
    name="sscn",
    help="Colorize grayscale photos and video from a colour reference image (Semantic-Sparse Colorization Network).",
    cls=Group,
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
    version: Optional[bool] = typer.Option(None, "--version", callback=_version, is_eager=True, metavar="",
                                           help="Print the version and exit."),
) -> None:
    """Colorize grayscale photos and video from a colour reference image."""
    handle_termination()


app.command("colorize", cls=Command)(colorize)
app.command("palette", cls=Command)(palette)
app.command("train", cls=Command)(train)
app.command("evaluate", cls=EvaluateCommand)(evaluate)
app.command("bench", cls=Command)(bench)
