"""The plumbing of the `sscn` commands' options: flags shown without a value, help text wrapped to the terminal,
and the declarations several commands share (their choices named from the registries that check them)."""
from __future__ import annotations

import inspect
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from typer.core import TyperCommand, TyperGroup

from sscn.constants import PRECISIONS, UPSAMPLERS

from .errors import CLIError

MAX_SEED = 2**64 - 1        # torch.Generator's seeds are 64-bit


def flag(*names: str, help: str) -> Any:
    """An on/off option (annotate a bool with it), shown in --help without a `<bool>` value it does not take."""
    return typer.Option(*names, help=help, metavar="")


def optional(*names: str, help: str, **kwargs: Any) -> Any:
    """An option that may be left out (annotate an Optional with it, default None): --help shows no default."""
    return typer.Option(*names, show_default=False, help=help, **kwargs)


def choices(names: Iterable[str]) -> str:
    """A registry's names for a help text: 'a, b or c'."""
    *rest, last = names
    return f"{', '.join(rest)} or {last}" if rest else last


class _PlainHelpFlag:
    def get_help_option(self, ctx):
        option = super().get_help_option(ctx)  # type: ignore[misc]
        if option is not None:
            option.metavar = ""     # --help is a flag too
        return option


def reflow(help_text: str | None) -> str | None:
    """A docstring's paragraphs as single lines, so the terminal wraps them (typer's rich help keeps the
    source's line breaks, which then break mid-line); examples are one-line paragraphs already."""
    if not help_text:
        return help_text
    paragraphs = inspect.cleandoc(help_text).split("\n\n")
    return "\n\n".join(" ".join(line.strip() for line in paragraph.splitlines()) for paragraph in paragraphs)


class Command(_PlainHelpFlag, TyperCommand):
    """A subcommand whose --help lists flags without a value and wraps its text to the terminal."""

    def __init__(self, *args, help: str | None = None, **kwargs) -> None:
        super().__init__(*args, help=reflow(help), **kwargs)


class Group(_PlainHelpFlag, TyperGroup):
    """The `sscn` group, likewise."""


# Options of several commands; each command gives its default (`device: Device = "auto"`).
Device = Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")]
Precision = Annotated[str, typer.Option(
    "--precision", help=f"{choices(PRECISIONS)} (auto: bf16 on CUDA and on CPUs with native bf16, AVX-512 BF16 "
                        "or AMX; fp32 elsewhere).")]
Upsample = Annotated[str, typer.Option(
    "--upsample", help=f"How the working-size colour reaches the output size: {choices(UPSAMPLERS)} (guided: a "
                       "guided filter that follows the edges of the full-resolution lightness).")]
Weights = Annotated[Optional[Path], optional(
    "--weights", help="Model weights (.safetensors; default: the shipped model).")]
Debug = Annotated[bool, flag("--debug", help="Show the traceback of any error (and stop at a failed item).")]


def check_seed(seed: int) -> None:
    if not 0 <= seed <= MAX_SEED:
        raise CLIError(f"--seed must be between 0 and 2**64-1 (got {seed})")
