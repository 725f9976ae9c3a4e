"""Options shared by `sscn colorize` and `sscn palette`, declared once (typer reads them per command)."""
from __future__ import annotations

import typer

TARGETS = typer.Argument(
    None, show_default=False, metavar="TARGET...",
    help="Images, videos, folders (images and videos inside), or - to read paths from stdin, one a line.")
OUT = typer.Option(
    None, "--out", "-o", show_default=False,
    help="Output file (one target; format from its suffix) or folder (mirrors the targets' relative paths). "
         "Default: beside each input as NAME_color.png / NAME_color.mp4; a folder F goes to F_color/.")
RECURSIVE = typer.Option(False, "--recursive", help="Descend into subfolders of folder targets.")
FRAMES = typer.Option(None, "--frames", show_default=False,
                      help="Write video targets as numbered PNG frames (frame_000001.png, ...) into this folder.")
K = typer.Option(None, "--k", show_default=False,
                 help="Top-k CAM positions of the reference to attend to (default: the model's).")
R = typer.Option(None, "--r", show_default=False,
                 help="Random extra reference positions (default: the model's).")
DENSE = typer.Option(False, "--dense", help="Attend to every reference position (slower; ignores --k/--r).")
SIZE = typer.Option(256, "--size", help="Working resolution of the network (multiple of 32); output keeps "
                                        "the input's size.")
DEVICE = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N.")
PRECISION = typer.Option("auto", "--precision", help="auto, fp32, bf16 or fp16 (auto: bf16 on CUDA and on CPUs "
                                                      "with native bf16, AVX-512 BF16 or AMX; fp32 elsewhere).")
BATCH_SIZE = typer.Option(8, "--batch-size", help="Images (or video frames) per forward pass.")
WORKERS = typer.Option(0, "--workers", help="Threads decoding and writing images, each (0: one per core, max 8).")
COMPILE = typer.Option(False, "--compile",
                       help="torch.compile the network: a one-off wait (about a minute on a CPU) that pays back "
                            "on long videos and large folders.")
UPSAMPLE = typer.Option("guided", "--upsample",
                        help="How the working-size colour reaches the output size: guided (a guided filter that "
                             "follows the edges of the full-resolution lightness) or bilinear.")
SEED = typer.Option(0, "--seed", help="Seed of the random reference positions (same seed, same output).")
OVERWRITE = typer.Option(False, "--overwrite", help="Redo outputs that already exist (default: skip them).")
QUIET = typer.Option(False, "--quiet", "-q", help="No progress bar and no summary; errors are still printed.")
JSON = typer.Option(False, "--json", help="Print a JSON summary (counts, timing, every item) on stdout.")
DEBUG = typer.Option(False, "--debug", help="Show tracebacks.")
