"""Options shared by `sscn colorize` and `sscn palette`, declared once (typer reads them per command)."""
from __future__ import annotations

import inspect
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

from .limits import DEFAULT_MAX_PIXELS


def flag(*names: str, help: str) -> Any:
    """An on/off option, shown in --help without a `<bool>` value it does not take."""
    return typer.Option(False, *names, help=help, metavar="")


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


TARGETS = typer.Argument(
    None, show_default=False, metavar="TARGET...",
    help="Images, videos, folders (images and videos inside), or - to read paths from stdin, one a line.")
OUT = typer.Option(
    None, "--out", "-o", show_default=False,
    help="Output file (one target; format from its suffix) or folder (mirrors the targets' relative paths). "
         "Default: beside each input as NAME_color.png / NAME_color.mp4; a folder F goes to F_color/.")
RECURSIVE = flag("--recursive", help="Descend into subfolders of folder targets.")
FRAMES = typer.Option(None, "--frames", show_default=False,
                      help="Write video targets as numbered PNG frames (frame_000001.png, ...) into this folder "
                           "(one subfolder per video when there are several). It must be empty or hold the same "
                           "video's frames (a re-run resumes); --overwrite replaces other contents.")
K = typer.Option(None, "--k", show_default=False,
                 help="Top-k CAM positions of the reference to attend to (default: the model's).")
R = typer.Option(None, "--r", show_default=False,
                 help="Random extra reference positions (default: the model's).")
DENSE = flag("--dense", help="Attend to every reference position (slower; ignores --k/--r).")
SIZE = typer.Option(256, "--size", help="Working resolution of the network (multiple of 32); output keeps "
                                        "the input's size.")
DEVICE = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N.")
PRECISION = typer.Option("auto", "--precision", help="auto, fp32, bf16 or fp16 (auto: bf16 on CUDA and on CPUs "
                                                      "with native bf16, AVX-512 BF16 or AMX; fp32 elsewhere).")
BATCH_SIZE = typer.Option(8, "--batch-size", help="Images (or video frames) per forward pass.")
WORKERS = typer.Option(0, "--workers", help="Threads decoding and writing images, each (0: one per core, max 8).")
COMPILE = flag("--compile",
               help="torch.compile the network: a one-off wait (about a minute on a CPU) that pays back "
                    "on long videos and large folders.")
UPSAMPLE = typer.Option("guided", "--upsample",
                        help="How the working-size colour reaches the output size: guided (a guided filter that "
                             "follows the edges of the full-resolution lightness) or bilinear.")
SEED = typer.Option(0, "--seed", help="Seed of the random reference positions (same seed, same output), "
                                      "0 to 2**64-1.")
MAX_PIXELS = typer.Option(DEFAULT_MAX_PIXELS, "--max-pixels",
                          help="Refuse images (and video frames) of more pixels than this; a batch holds at most "
                               "this many. Memory grows by about 25 bytes a pixel (100 Mpx: near 3.5 GB).")
OVERWRITE = flag("--overwrite", help="Redo outputs that already exist (default: skip them).")
QUIET = flag("--quiet", "-q", help="No progress bar and no summary; errors are still printed.")
JSON = flag("--json", help="Print a JSON summary (counts, timing, every item) on stdout.")
DEBUG = flag("--debug", help="Show tracebacks.")
RAY = typer.Option(
    None, "--ray", metavar="ADDRESS", show_default=False,
    help="Run on Ray (needs the `ray` extra of sscn): 'auto' joins RAY_ADDRESS, else the cluster `ray start` made on "
         "this machine, else starts a local Ray; 'local' starts a local Ray; or a cluster address "
         "(HOST:6379, ray://HOST:10001). Paths must be visible to every node.")
RAY_ACTORS = typer.Option(0, "--ray-actors", help="Engines (Ray actors) with --ray; 0: one per GPU, or one per "
                                                  "--ray-cpus CPUs on a cluster without GPUs.")
RAY_CPUS = typer.Option(0.0, "--ray-cpus", help="CPUs per actor with --ray (its torch and decoding threads); "
                                                "0: the cluster's CPUs per GPU, or 1 without GPUs.")
RAY_GPUS = typer.Option(None, "--ray-gpus", show_default=False,
                        help="GPUs per actor with --ray, e.g. 0.5 for two engines a GPU (default: 1 where the "
                             "cluster has GPUs, else 0).")
