"""`--ray`: run the jobs of `sscn colorize` / `sscn palette` on a Ray cluster, with the guarantees of a local run.

The driver plans exactly what a local run plans (the same job list, the same skipped outputs) and cuts it into
work units: `batch_size` consecutive images of one reference, or one video. The units become a Ray Dataset
whose `map_batches` runs on a pool of actors; each actor loads the weights once, keeps the encodings of the
references it has met, and hands a unit to the local engine (`engine.Engine`), which decodes, colorizes and
writes atomically on that node. A local run batches the same images together, so the outputs are the same
bytes (given the same torch thread count: CPU convolutions round by it). The driver prints the errors and the
progress as units come back; the command prints the usual summary at the end.

Inputs and outputs are paths that every node sees (a shared filesystem). A long video runs on one actor.
"""
from __future__ import annotations

import collections
import dataclasses
import functools
import json
import os
import pickle
import re
import socket
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import CLIError
from .engine import Engine
from .progress import Display
from .runner import Group, load_colorizer
from .settings import RunSettings
from .summary import Summary
from .targets import Job

INSTALL_HINT = "--ray needs Ray: pip install 'sscn[ray]' (or pip install 'ray[data]')"
# reference encodings an actor keeps (--pairs with many references); units come roughly in order
_KEPT_REFERENCES = 16


@dataclass(frozen=True)
class RaySettings:
    address: str                 # auto, local, HOST:PORT or ray://HOST:PORT
    actors: int = 0              # engines; 0: one per GPU, or one per `cpus` CPUs on a CPU-only cluster
    cpus: float = 0              # per actor; 0: a GPU's share of the CPUs, or 1 without GPUs
    gpus: float | None = None    # per actor; None: 1 where the cluster has GPUs (and --device is not cpu)

    @classmethod
    def from_options(cls, address: str | None, actors: int, cpus: float, gpus: float | None) -> RaySettings | None:
        """The settings of the --ray options (None without --ray); checks that Ray is installed."""
        if address is None:
            if actors or cpus or gpus is not None:
                raise CLIError("--ray-actors, --ray-cpus and --ray-gpus apply with --ray ADDRESS only")
            return None
        for name, value in (("--ray-actors", actors), ("--ray-cpus", cpus), ("--ray-gpus", gpus or 0)):
            if value < 0:
                raise CLIError(f"{name} must be 0 (automatic) or more (got {value})")
        _import_ray()
        return cls(address, actors, cpus, gpus)


def _import_ray():
    try:
        import ray
        import ray.data
    except ImportError:
        raise CLIError(INSTALL_HINT) from None
    return ray


def start_on_ray(pending: list[Group], settings: RunSettings,
                 ray_settings: RaySettings) -> Callable[[Summary, Display], None]:
    """Join the cluster for `runner.run_groups`, and what runs `pending` there (recording into a summary, showing
    on a display): the same errors, items and summary as a local run."""
    # the errors of a local run (missing or corrupt weights, k/r out of range) before any actor starts
    load_colorizer(dataclasses.replace(settings, device="cpu", compile=False))
    ray = _import_ray()
    _connect(ray, ray_settings.address)
    units = plan_units(pending, settings.batch_size)
    resources = _actor_resources(ray.cluster_resources(), ray_settings, settings.device, len(units))
    return functools.partial(_run_units, ray, pending, units, settings, resources)


@dataclass(frozen=True)
class Unit:
    group: int                   # index of its group (its reference)
    jobs: list[Job]              # batch_size images, or one video


def plan_units(groups: list[Group], batch_size: int) -> list[Unit]:
    """The work units, in the order a local run takes them: per group its images in batches (the batches of
    a local run), then its videos one by one."""
    units = []
    for index, group in enumerate(groups):
        images = [job for job in group.jobs if not job.video]
        units += [Unit(index, images[start:start + batch_size]) for start in range(0, len(images), batch_size)]
        units += [Unit(index, [job]) for job in group.jobs if job.video]
    return units


@dataclass(frozen=True)
class ActorResources:
    actors: int
    cpus: float
    gpus: float


def _actor_resources(cluster: dict[str, float], ray_settings: RaySettings, device: str,
                     units: int) -> ActorResources:
    """How many actors, with how many CPUs and GPUs each, from the options and what the cluster has."""
    cluster_cpus, cluster_gpus = cluster.get("CPU", 0.0), cluster.get("GPU", 0.0)
    gpus = ray_settings.gpus if ray_settings.gpus is not None else float(cluster_gpus > 0 and device != "cpu")
    if gpus > 0 and device == "cpu":
        raise CLIError("--ray-gpus gives the actors GPUs, but --device cpu would leave them idle")
    slots = cluster_gpus / gpus if gpus else None
    cpus = ray_settings.cpus or (max(1.0, cluster_cpus // slots) if slots else 1.0)
    actors = ray_settings.actors or max(1, int(slots if slots else cluster_cpus // cpus))
    actors = min(actors, units)
    for name, need, have in (("CPUs", actors * cpus, cluster_cpus), ("GPUs", actors * gpus, cluster_gpus)):
        if need > have:
            raise CLIError(f"{actors} Ray actors need {need:g} {name}; the cluster has {have:g} "
                           "(lower --ray-actors, --ray-cpus or --ray-gpus)")
    return ActorResources(actors, cpus, gpus)


def _connect(ray, address: str) -> None:
    """Join the cluster at `address` (auto: RAY_ADDRESS, else the one `ray start` made on this machine, else a
    new local Ray); a program that started Ray already keeps its own."""
    import logging

    if ray.is_initialized():
        return
    try:
        ray.init(address=None if address == "auto" else address, logging_level=logging.ERROR,
                 include_dashboard=False, log_to_driver=False)
    except (ConnectionError, ValueError, RuntimeError) as error:
        raise CLIError(f"--ray {address}: cannot join the Ray cluster ({error})") from None


def _run_units(ray, groups: list[Group], units: list[Unit], settings: RunSettings, resources: ActorResources,
               summary: Summary, display: Display) -> None:
    _quiet_ray_data(ray)
    rows = [{"unit": index, "group": unit.group, "jobs": json.dumps([_job_fields(job) for job in unit.jobs])}
            for index, unit in enumerate(units)]
    # one unit a block: Ray Data hands whole blocks to actors, so smaller blocks balance the pool
    dataset = ray.data.from_items(rows, override_num_blocks=len(rows))
    # an actor without a GPU leaves its node's GPUs alone
    device = "cpu" if resources.gpus == 0 and settings.device == "auto" else settings.device
    actor_settings = dataclasses.replace(settings, quiet=True, device=device,
                                         workers=settings.workers or max(1, int(resources.cpus)))
    # the references (a decoded image, a swatch, or a path per --pairs reference) go once into the object
    # store, and each actor fetches them itself
    references = ray.put([group.set_reference for group in groups])
    with warnings.catch_warnings():
        # max_restarts=0: Ray Data's default restarts an actor and retries its unit without end, so a unit
        # that kills its actor (out of memory) would never finish, and Ray logs a warning for every actor. A
        # lost node ends the run instead, and a re-run resumes it. Ray 2.60 takes it only through the
        # deprecated **ray_remote_args (hence the pin below 2.64 in pyproject.toml).
        warnings.simplefilter("ignore", DeprecationWarning)
        results = dataset.map_batches(
            _EngineActor, batch_size=1, compute=ray.data.ActorPoolStrategy(size=resources.actors),
            num_cpus=resources.cpus, num_gpus=resources.gpus or None, max_restarts=0,
            fn_constructor_kwargs={"settings": actor_settings, "references": [references],
                                   "threads": max(1, int(resources.cpus)), "cwd": _relative_to(units)})
    finished: dict[int, list[dict]] = {}
    try:
        for row in results.iter_rows():
            if row["error"]:    # what stopped an actor (a CompileError, a full disk, ...) stops the run
                raise pickle.loads(row["error"])
            items = json.loads(row["items"])
            finished[row["unit"]] = items
            for item in items:
                if item["status"] == "failed":
                    display.error(item["error"])
                display.advance(colorized=_colorized(item))
    except ray.exceptions.RayError as error:        # Ray's own: a lost node, an actor killed for memory
        if settings.debug:
            raise
        raise CLIError(f"the Ray run failed ({_first_line(error)}); finished outputs are kept, run it again to "
                       "resume (--debug for details)") from None
    for unit in sorted(finished):       # the order of a local run, whatever order the actors finished in
        for item in finished[unit]:
            summary.images += _colorized(item)
            summary.record(Job(Path(item["input"]), Path(item["output"])), item["status"], item.get("error"),
                           item.get("frames"))


def _colorized(item: dict) -> int:
    """Images (or a video's frames) an item colorized."""
    return item.get("frames", int(item["status"] == "done"))


def _relative_to(units: list[Unit]) -> str | None:
    """The driver's working folder when some path is relative (the actors resolve it there), else None."""
    relative = any(not path.is_absolute() for unit in units for job in unit.jobs for path in (job.source, job.output))
    return os.getcwd() if relative else None


def _quiet_ray_data(ray) -> None:
    """No Ray Data progress bars or notices on the console (the driver shows its own); its log file stays."""
    import logging

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    context.enable_auto_log_stats = False
    for handler in logging.getLogger("ray.data").handlers:
        if isinstance(handler, logging.StreamHandler):     # errors come back as one line of ours
            handler.setLevel(logging.CRITICAL)


def _first_line(error: Exception) -> str:
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in str(error).splitlines()]
    return next((line for line in lines if line), type(error).__name__)


def _portable(error: Exception) -> bytes:
    """`error` pickled for the driver to raise (as a RuntimeError with its text when it does not pickle)."""
    try:
        return pickle.dumps(error)
    except Exception:   # an unpicklable attribute: keep the type's name and the message
        return pickle.dumps(RuntimeError(f"{type(error).__name__}: {error}"))


def _job_fields(job: Job) -> list:
    return [str(job.source), str(job.output), job.video, job.frames]


class _Silent(Display):
    """An actor's display: no bar, no printing (the driver prints each failed item's error)."""

    def __init__(self) -> None:
        super().__init__(0, enabled=False)

    def error(self, message: str) -> None:
        pass


class _EngineActor:
    """One engine on a Ray worker: loads the weights once, keeps the references it has encoded, and runs each
    unit through `runner.Engine` (decode, colorize, atomic write), answering with the unit's summary items."""

    def __init__(self, settings: RunSettings, references: list, threads: int, cwd: str | None) -> None:
        self.settings = settings
        self.failure = b""
        try:
            self._start(references, threads, cwd)
        except Exception as error:      # reported by the driver as a local run reports it: one line
            if settings.debug:
                raise
            self.failure = _portable(error)

    def _start(self, references: list, threads: int, cwd: str | None) -> None:
        import ray
        import torch

        if cwd is not None:     # an actor has a process of its own: changing its folder touches nothing else
            try:
                os.chdir(cwd)
            except OSError:
                raise CLIError(f"{cwd}: no such folder on Ray node {socket.gethostname()}; relative paths need "
                               "the same folders on every node (or give absolute paths)") from None
        torch.set_num_threads(threads)
        [stored] = references
        self.references: list[Callable] = ray.get(stored)
        self.colorizer = load_colorizer(self.settings)
        self.encodings: collections.OrderedDict[int, Any] = collections.OrderedDict()

    def __call__(self, batch: dict) -> dict:
        import numpy as np

        unit, group = int(batch["unit"][0]), int(batch["group"][0])
        jobs = [Job(Path(source), Path(output), video=bool(video), frames=bool(frames))
                for source, output, video, frames in json.loads(str(batch["jobs"][0]))]
        summary = Summary()
        failure = self.failure
        if not failure:
            try:
                Engine(self.colorizer, self.settings, summary, _Silent()).run([Group(self._encoded(group), jobs)])
            except Exception as error:
                if self.settings.debug:
                    raise
                failure = _portable(error)
        return {"unit": np.array([unit]), "items": np.array([json.dumps(summary.items)]),
                "error": np.array([failure], dtype=object)}

    def _encoded(self, group: int) -> Callable:
        """The group's set_reference, encoding its reference on this actor only the first time."""
        def set_reference(colorizer) -> None:
            if group in self.encodings:
                self.encodings.move_to_end(group)
                colorizer.reference = self.encodings[group]
                return
            self.references[group](colorizer)
            self.encodings[group] = colorizer.reference
            if len(self.encodings) > _KEPT_REFERENCES:
                self.encodings.popitem(last=False)

        return set_reference
