"""The options `sscn colorize` and `sscn palette` share, declared once (`RunOptions`), and the one way both run.

A command declares only its own options and takes the shared ones as one parameter `run: RunOptions`;
`with_run_options` shows typer (which reads a command's signature) the command's own parameters followed by each
field of RunOptions, and hands the command those fields gathered back into a RunOptions. The command plans its
groups of jobs, and `RunOptions.run` runs them (here or on Ray), prints the summary and gives the exit code.
"""
from __future__ import annotations

import dataclasses
import functools
import inspect
import sys
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from sscn.constants import DEFAULT_MAX_PIXELS

from .errors import CLIError, warn
from .options import Debug, Device, Precision, Upsample, Weights, flag, optional

if TYPE_CHECKING:
    from sscn.models import Colorizer

    from .ray_backend import RaySettings
    from .runner import Group
    from .settings import RunSettings
    from .targets import Job


@dataclass
class RunOptions:
    targets: Annotated[Optional[list[str]], typer.Argument(
        show_default=False, metavar="TARGET...",
        help="Images, videos, folders (images and videos inside), or - to read paths from stdin, one a line.")] = None
    out: Annotated[Optional[str], optional(
        "--out", "-o", help="Output file (one target; format from its suffix) or folder (mirrors the targets' "
                            "relative paths). Default: beside each input as NAME_color.png / NAME_color.mp4; a "
                            "folder F goes to F_color/.")] = None
    recursive: Annotated[bool, flag("--recursive", help="Descend into subfolders of folder targets.")] = False
    frames: Annotated[Optional[Path], optional(
        "--frames", help="Write video targets as numbered PNG frames (frame_000001.png, ...) into this folder "
                         "(one subfolder per video when there are several). It must be empty or hold the same "
                         "video's frames (a re-run resumes); --overwrite replaces other contents.")] = None
    weights: Weights = None
    model: Annotated[Optional[Path], typer.Option("--model", hidden=True)] = None     # --weights' old name
    k: Annotated[Optional[int], optional(
        "--k", help="Top-k CAM positions of the reference to attend to (default: the model's).")
    ] = None
    r: Annotated[Optional[int], optional(
        "--r", help="Random extra reference positions (default: the model's).")] = None
    dense: Annotated[bool, flag("--dense", help="Attend to every reference position (slower; ignores --k/--r).")
                     ] = False
    size: Annotated[int, typer.Option(
        "--size", help="Working resolution of the network (multiple of 32); output keeps the input's size.")] = 256
    device: Device = "auto"
    precision: Precision = "auto"
    batch_size: Annotated[int, typer.Option("--batch-size", help="Images (or video frames) per forward pass.")] = 8
    workers: Annotated[int, typer.Option(
        "--workers", help="Threads decoding and writing images, each (0: one per core, max 8).")] = 0
    compile: Annotated[bool, flag(
        "--compile", help="torch.compile the network: a one-off wait (about a minute on a CPU) that pays back on "
                          "long videos and large folders.")] = False
    upsample: Upsample = "guided"
    seed: Annotated[int, typer.Option(
        "--seed", help="Seed of the random reference positions (same seed, same output), 0 to 2**64-1.")] = 0
    max_pixels: Annotated[int, typer.Option(
        "--max-pixels", help="Refuse images (and video frames) of more pixels than this; a batch holds at most "
                             "this many. Memory grows by about 25 bytes a pixel (100 Mpx: near 3.5 GB).")
    ] = DEFAULT_MAX_PIXELS
    overwrite: Annotated[bool, flag("--overwrite", help="Redo outputs that already exist (default: skip them).")
                         ] = False
    quiet: Annotated[bool, flag("--quiet", "-q", help="No progress bar and no summary; errors are still printed.")
                     ] = False
    json: Annotated[bool, flag("--json", help="Print a JSON summary (counts, timing, every item) on stdout.")] = False
    debug: Debug = False
    ray: Annotated[Optional[str], optional(
        "--ray", metavar="ADDRESS",
        help="Run on Ray (needs the `ray` extra of sscn): 'auto' joins RAY_ADDRESS, else the cluster `ray start` "
             "made on this machine, else starts a local Ray; 'local' starts a local Ray; or a cluster address "
             "(HOST:6379, ray://HOST:10001). Paths must be visible to every node.")] = None
    ray_actors: Annotated[int, typer.Option(
        "--ray-actors", help="Engines (Ray actors) with --ray; 0: one per GPU, or one per --ray-cpus CPUs on a "
                             "cluster without GPUs.")] = 0
    ray_cpus: Annotated[float, typer.Option(
        "--ray-cpus", help="CPUs per actor with --ray (its torch and decoding threads); 0: the cluster's CPUs per "
                           "GPU, or 1 without GPUs.")] = 0.0
    ray_gpus: Annotated[Optional[float], optional(
        "--ray-gpus", help="GPUs per actor with --ray, e.g. 0.5 for two engines a GPU (default: 1 where the "
                           "cluster has GPUs, else 0).")] = None

    def settings(self) -> RunSettings:
        """The engine's settings, checked (before any model is loaded); takes --model, with a notice."""
        from .settings import RunSettings

        weights = self.weights
        if self.model is not None:
            warn("--model is deprecated; use --weights PATH (the model file, in every command)")
            if weights is not None:
                raise CLIError("give the model file once: --weights (--model is its old name)")
            weights = self.model
        settings = RunSettings(weights=weights, device=self.device, precision=self.precision, size=self.size,
                               k=self.k, r=self.r, dense=self.dense, seed=self.seed, batch_size=self.batch_size,
                               max_pixels=self.max_pixels, workers=self.workers, compile=self.compile,
                               upsample=self.upsample, overwrite=self.overwrite, quiet=self.quiet, debug=self.debug)
        settings.check()
        return settings

    def ray_settings(self) -> RaySettings | None:
        """The --ray options (None without --ray)."""
        from .ray_backend import RaySettings

        return RaySettings.from_options(self.ray, self.ray_actors, self.ray_cpus, self.ray_gpus)

    def jobs(self) -> list[Job]:
        """A job for every target (files, folders, videos, or paths on stdin), with its output."""
        from .targets import discover, plan_jobs

        exclude = [Path(path) for path in (self.out, self.frames) if path is not None]
        return plan_jobs(discover(self.targets, self.recursive, exclude, sys.stdin), self.out, self.frames)

    def run(self, groups: list[Group], settings: RunSettings, on_ray: RaySettings | None,
            colorizer: Colorizer | None = None) -> int:
        """Colorize the groups' jobs (on Ray with `on_ray`), print the summary (stderr; --json: stdout) and
        return the exit code."""
        from .runner import run_groups

        return run_groups(groups, settings, colorizer, on_ray).print(self.quiet, self.json)


def with_run_options(command: Callable[..., None]) -> Callable[..., None]:
    """`command(own options..., run: RunOptions)` as a typer command taking the RunOptions fields as options."""
    own = inspect.signature(command, eval_str=True)
    hints = typing.get_type_hints(RunOptions, include_extras=True)
    shared = [inspect.Parameter(field.name, inspect.Parameter.KEYWORD_ONLY, default=field.default,
                                annotation=hints[field.name]) for field in dataclasses.fields(RunOptions)]
    parameters = [parameter for name, parameter in own.parameters.items() if name != "run"] + shared

    @functools.wraps(command)
    def with_options(**values) -> None:
        run = RunOptions(**{field.name: values.pop(field.name) for field in dataclasses.fields(RunOptions)})
        command(**values, run=run)

    with_options.__signature__ = own.replace(parameters=parameters)     # type: ignore[attr-defined]
    with_options.__annotations__ = {parameter.name: parameter.annotation for parameter in parameters}
    return with_options
