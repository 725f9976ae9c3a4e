"""Running the jobs of `sscn colorize` and `sscn palette`: skip the outputs that exist, load one `Colorizer`, and
hand the rest to the engine (`engine.Engine`, here; `ray_backend`, on a Ray cluster) under a progress display.
The summary comes back to the command, which prints it (`sscn bench` reads it instead)."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from sscn.models import SSCN, Colorizer
from sscn.models.checkpoint import default_weights_path

from .engine import Engine
from .errors import CLIError, stderr_is_terminal
from .progress import Display
from .settings import RunSettings
from .summary import Summary
from .targets import Job

if TYPE_CHECKING:
    from .ray_backend import RaySettings
    from .shots import ShotSchedule


@dataclass
class Group:
    """Jobs sharing one reference; `set_reference` encodes it (once) and may raise ValueError / ImageError."""
    set_reference: Callable[[Colorizer], None]
    jobs: list[Job]
    notes: dict[Path, dict] = field(default_factory=dict)   # extra --json fields per job source (--ref-dir)
    schedule: "ShotSchedule | None" = None   # videos: a reference per shot (colorize_cli.shots)


def run_groups(groups: list[Group], settings: RunSettings, colorizer: Colorizer | None = None,
               on_ray: RaySettings | None = None) -> Summary:
    """Colorize every job, here or on Ray (`on_ray`); the summary of the run. `colorizer`: an engine already
    loaded (`sscn bench` times a warm one, `--ref-dir` matched the targets with it); by default one is loaded
    from `settings`."""
    settings.check()
    settings.check_jobs([job for group in groups for job in group.jobs])
    summary = Summary()
    pending = skip_existing(groups, settings, summary)
    if not pending:
        return summary
    if on_ray is not None:
        from .ray_backend import start_on_ray

        execute = start_on_ray(pending, settings, on_ray)
    else:
        execute = partial(_run_here, colorizer or load_colorizer(settings), settings, pending)
    summary.colorizing_started = time.perf_counter()
    with Display(sum(len(g.jobs) for g in pending), show_progress(pending, settings)) as display:
        execute(summary, display)
    return summary


def _run_here(colorizer: Colorizer, settings: RunSettings, pending: list[Group], summary: Summary,
              display: Display) -> None:
    Engine(colorizer, settings, summary, display).run(pending)


def skip_existing(groups: list[Group], settings: RunSettings, summary: Summary) -> list[Group]:
    """Record the jobs whose output exists as skipped (unless --overwrite); the groups of the rest."""
    pending = []
    for group in groups:
        summary.notes.update(group.notes)
        todo = []
        for job in group.jobs:
            if _exists(job) and not settings.overwrite:
                summary.record(job, "skipped")
            else:
                todo.append(job)
        if todo:
            pending.append(Group(group.set_reference, todo, group.notes, group.schedule))
    return pending


def _exists(job: Job) -> bool:
    # a frames folder is resumed frame by frame instead
    return not job.frames and job.output.exists()


def show_progress(pending: list[Group], settings: RunSettings) -> bool:
    """A progress bar for more than one item (or a video), on a terminal, unless --quiet."""
    several = sum(len(g.jobs) for g in pending) > 1 or any(j.video for g in pending for j in g.jobs)
    return stderr_is_terminal() and not settings.quiet and several


def load_colorizer(settings: RunSettings, model: SSCN | None = None) -> Colorizer:
    """The engine `settings` describe, around `model` (default: the weights file of `settings`)."""
    if model is None and settings.weights is None and not default_weights_path().is_file():
        raise CLIError(f"{default_weights_path()}: shipped weights not found (pass --weights FILE)")
    return Colorizer(weights=settings.weights, device=settings.device, precision=settings.precision,
                     size=settings.size, k=settings.k, r=settings.r, dense=settings.dense, seed=settings.seed,
                     model=model, compile=settings.compile, upsample=settings.upsample)
