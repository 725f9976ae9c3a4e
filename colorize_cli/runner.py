"""The batch engine behind `sscn colorize` and `sscn palette`.

One `Colorizer` per run; each group of jobs shares a reference, encoded once. Images are decoded by a
reader thread pool that runs ahead of the model (two batches), results are encoded and written by a writer
pool, so the device never waits on disk. Videos stream frames from a decoder thread into batches and from
an encoder thread into ffmpeg. A bad item is reported on one line and counted; the rest go on.
"""
from __future__ import annotations

import collections
import json
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)
from rich.text import Text

from sscn.models import SSCN, Colorizer
from sscn.models.checkpoint import default_weights_path
from sscn.models.colorizer import CompileError, batched, resolve_device, resolve_precision, working_size
from sscn.models.outputs import OutputError, atomic_write, protect, remove_stale_parts
from sscn.models.upsample import UPSAMPLERS

from .errors import EXIT_BAD_INPUT, EXIT_FAILED_ITEMS, CLIError, fail, stderr_is_terminal
from .frames import FRAME_NAME, check_frames_folder, claim_frames_folder, remove_frames_after
from .images import ImageError, Picture, megapixels, read_image, to_uint8, write_image
from .limits import DEFAULT_MAX_PIXELS, LARGEST_MAX_PIXELS
from .targets import Job

if TYPE_CHECKING:
    import torch

    from .shots import ShotSchedule
from .video import VIDEO_OUTPUT_FORMATS, FrameReader, FrameWriter, VideoError, probe, stop_all

MAX_SEED = 2**64 - 1        # torch.Generator's seeds are 64-bit


@dataclass
class RunSettings:
    weights: Path | None = None
    device: str = "auto"
    precision: str = "auto"
    size: int = 256
    k: int | None = None
    r: int | None = None
    dense: bool = False
    seed: int = 0
    batch_size: int = 8
    max_pixels: int = DEFAULT_MAX_PIXELS   # larger images are refused; a batch holds at most this many pixels
    workers: int = 0                 # reader and writer threads each; 0: one per CPU core, at most 8
    compile: bool = False            # torch.compile the network
    upsample: str = "guided"         # models.upsample.UPSAMPLERS
    overwrite: bool = False
    quiet: bool = False
    json: bool = False
    debug: bool = False

    def check(self) -> None:
        """Refuse bad settings up front, even when every output exists already and no model is loaded."""
        resolve_precision(self.precision, resolve_device(self.device))
        working_size(self.size)
        if self.upsample not in UPSAMPLERS:
            raise CLIError(f"--upsample {self.upsample!r}: choose one of {', '.join(UPSAMPLERS)}")
        for name, value in (("k", self.k), ("r", self.r)):
            if value is not None and value < 0:
                raise CLIError(f"--{name} must be >= 0 (got {value})")
        if not self.dense and self.k == 0 and self.r == 0:
            raise CLIError("--k and --r cannot both be 0 (attend to some positions, or use --dense)")
        if self.batch_size < 1:
            raise CLIError(f"--batch-size must be at least 1 (got {self.batch_size})")
        if self.workers < 0:
            raise CLIError(f"--workers must be 0 (automatic) or more (got {self.workers})")
        check_seed(self.seed)
        if not 1 <= self.max_pixels <= LARGEST_MAX_PIXELS:
            raise CLIError(f"--max-pixels must be between 1 and {LARGEST_MAX_PIXELS} (got {self.max_pixels})")

    def check_jobs(self, jobs: list[Job]) -> None:
        """Start-up checks of a run, before the model is loaded: the weights exist (and are never written),
        stale temporary files of a killed run are removed, frames folders hold nothing else."""
        if self.weights is not None and not self.weights.is_file():
            raise CLIError(f"{self.weights}: weights file not found")
        protect([self.weights or default_weights_path()])
        for folder, names in _output_names(jobs).items():
            remove_stale_parts(folder, names)
        for job in jobs:
            if job.frames:
                check_frames_folder(job.output, job.source, self.overwrite)


def check_seed(seed: int) -> None:
    if not 0 <= seed <= MAX_SEED:
        raise CLIError(f"--seed must be between 0 and 2**64-1 (got {seed})")


def _output_names(jobs: list[Job]) -> dict[Path, set[str]]:
    """Output file names by folder (frames folders are cleaned by their own check)."""
    names: dict[Path, set[str]] = {}
    for job in jobs:
        if not job.frames:
            names.setdefault(job.output.parent, set()).add(job.output.name)
    return names


@dataclass
class Group:
    """Jobs sharing one reference; `set_reference` encodes it (once) and may raise ValueError / ImageError."""
    set_reference: Callable[[Colorizer], None]
    jobs: list[Job]
    notes: dict[Path, dict] = field(default_factory=dict)   # extra --json fields per job source (--ref-dir)
    schedule: "ShotSchedule | None" = None   # videos: a reference per shot (colorize_cli.shots)


class RateColumn(ProgressColumn):
    """Images (or video frames) colorized per second; failures and skips do not count."""

    def render(self, task) -> Text:
        elapsed = task.elapsed or 0.0
        return Text(f"{task.fields['images'] / elapsed:.1f} img/s" if elapsed > 0 else "- img/s")


class Display:
    """A rich progress bar on stderr when it is a terminal; one-line errors either way."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.progress = None
        if enabled:
            self.progress = Progress(TextColumn("[bold]colorize"), BarColumn(), MofNCompleteColumn(),
                                     RateColumn(), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                                     console=Console(stderr=True))
            self.task = self.progress.add_task("colorize", total=total, images=0)
        self.images = 0

    def __enter__(self) -> "Display":
        if self.progress:
            self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.progress:
            self.progress.stop()

    def advance(self, count: int = 1, colorized: int = 0) -> None:
        """`count` items (or frames) finished, `colorized` of them colorized (not failed or skipped)."""
        if colorized:       # only the main thread colorizes; skipped frames are counted from the decoder's
            self.images += colorized
        if self.progress:
            self.progress.update(self.task, advance=count, images=self.images)

    def grow(self, count: int) -> None:
        if self.progress and count:
            self.progress.update(self.task, total=self.progress.tasks[0].total + count)

    def error(self, message: str) -> None:
        if self.progress:
            self.progress.console.print(f"sscn: error: {message}", markup=False, highlight=False, soft_wrap=True)
        else:
            fail(message)


class Summary:
    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.colorizing_started: float | None = None   # after the model is loaded
        self.items: list[dict] = []
        self.counts = collections.Counter()
        self.images = 0                # images and video frames colorized
        self.notes: dict[Path, dict] = {}   # Group.notes of every group

    def record(self, job: Job, status: str, error: str | None = None, frames: int | None = None) -> None:
        self.counts[status] += 1
        item = {"input": str(job.source), "output": str(job.output), "status": status}
        if frames is not None:
            item["frames"] = frames
        item.update(self.notes.get(job.source, {}))
        if error:
            item["error"] = error
        self.items.append(item)

    def as_dict(self) -> dict:
        """`seconds` is the whole run; `images_per_second` counts from the moment the model is ready."""
        now = time.perf_counter()
        working = now - (self.colorizing_started or now)
        return {"done": self.counts["done"], "skipped": self.counts["skipped"], "failed": self.counts["failed"],
                "total": len(self.items), "images": self.images, "seconds": round(now - self.started, 3),
                "images_per_second": round(self.images / working, 3) if working > 0 else 0.0,
                "items": self.items}

    def line(self) -> str | None:
        """The closing line on stderr; None after a lone failure (its error line says it all)."""
        data = self.as_dict()
        if data["total"] == 1 and data["failed"] == 1:
            return None
        if data["total"] == 1 and data["done"] == 1:
            return f"sscn: wrote {self.items[0]['output']} in {data['seconds']:.1f} s"
        if data["total"] == 1 and data["skipped"] == 1:
            return f"sscn: skipped {self.items[0]['input']}: {self.items[0]['output']} exists (--overwrite to redo)"
        return (f"sscn: {data['done']} done, {data['skipped']} skipped, {data['failed']} failed in "
                f"{data['seconds']:.1f} s ({data['images_per_second']:.2f} images/s)")

    def exit_code(self) -> int:
        if not self.counts["failed"]:
            return 0
        return EXIT_BAD_INPUT if len(self.items) == 1 else EXIT_FAILED_ITEMS


def _exists(job: Job) -> bool:
    # a frames folder is resumed frame by frame instead
    return not job.frames and job.output.exists()


def run_groups(groups: list[Group], settings: RunSettings, colorizer: Colorizer | None = None) -> int:
    """Colorize every job; print the summary (stderr, or JSON on stdout); return the exit code. `colorizer`:
    an engine already loaded (`sscn bench` times a warm one); by default one is loaded from `settings`."""
    settings.check()
    settings.check_jobs([job for group in groups for job in group.jobs])
    summary = Summary()
    pending = skip_existing(groups, settings, summary)
    if pending:
        colorizer = colorizer or load_colorizer(settings)
        summary.colorizing_started = time.perf_counter()
        with Display(sum(len(g.jobs) for g in pending), show_progress(pending, settings)) as display:
            Engine(colorizer, settings, summary, display).run(pending)
    return report(summary, settings)


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


def show_progress(pending: list[Group], settings: RunSettings) -> bool:
    """A progress bar for more than one item (or a video), on a terminal, unless --quiet."""
    several = sum(len(g.jobs) for g in pending) > 1 or any(j.video for g in pending for j in g.jobs)
    return stderr_is_terminal() and not settings.quiet and several


def report(summary: Summary, settings: RunSettings) -> int:
    """Print the closing line (stderr) and the --json summary (stdout); return the exit code."""
    line = summary.line()
    if line and not settings.quiet:
        typer.echo(line, err=True)
    if settings.json:
        typer.echo(json.dumps(summary.as_dict(), indent=2))
    return summary.exit_code()


def load_colorizer(settings: RunSettings, model: SSCN | None = None) -> Colorizer:
    """The engine `settings` describe, around `model` (default: the weights file of `settings`)."""
    if model is None and settings.weights is None and not default_weights_path().is_file():
        raise CLIError(f"{default_weights_path()}: shipped weights not found (pass --weights FILE)")
    return Colorizer(weights=settings.weights, device=settings.device, precision=settings.precision,
                     size=settings.size, k=settings.k, r=settings.r, dense=settings.dense, seed=settings.seed,
                     model=model, compile=settings.compile, upsample=settings.upsample)


def split_by_pixels(group: list[tuple[Job, Picture]], max_pixels: int) -> list[list[tuple[Job, Picture]]]:
    """Consecutive batches of `group` holding at most `max_pixels` pixels each (a single larger image alone):
    memory follows the batch's pixels, not its count."""
    batches: list[list[tuple[Job, Picture]]] = []
    pixels = 0
    for item in group:
        size = item[1].pixels[0].numel()
        if not batches or pixels + size > max_pixels:
            batches.append([])
            pixels = 0
        batches[-1].append(item)
        pixels += size
    return batches


class Engine:
    """Runs groups of jobs through one loaded `Colorizer`, recording each item in `summary`."""

    def __init__(self, colorizer: Colorizer, settings: RunSettings, summary: Summary, display: Display) -> None:
        self.colorizer, self.settings, self.summary, self.display = colorizer, settings, summary, display
        self.batch_size = settings.batch_size
        self.workers = settings.workers or min(8, os.cpu_count() or 1)
        self.schedule: ShotSchedule | None = None     # the current group's

    def run(self, groups: list[Group]) -> None:
        with ThreadPoolExecutor(self.workers, thread_name_prefix="sscn-read") as readers, \
                ThreadPoolExecutor(self.workers, thread_name_prefix="sscn-write") as writers:
            self.readers, self.writers = readers, writers
            try:
                for group in groups:
                    self._run_group(group)
            except BaseException:
                # Ctrl-C or a fatal error: queued reads and writes are dropped; writes under way finish
                # atomically, so no partial file is left
                readers.shutdown(wait=False, cancel_futures=True)
                writers.shutdown(wait=True, cancel_futures=True)
                raise

    def _run_group(self, group: Group) -> None:
        self.schedule = group.schedule
        try:
            group.set_reference(self.colorizer)
        except ValueError as error:
            for job in group.jobs:
                self._failed(job, f"{job.source}: reference {error}")
            return
        self._run_images([job for job in group.jobs if not job.video])
        for job in group.jobs:
            if job.video:
                self._run_video(job)

    def _failed(self, job: Job, message: str) -> None:
        self.display.error(message)
        self.summary.record(job, "failed", message)
        self.display.advance()

    def _run_images(self, jobs: list[Job]) -> None:
        window = 2 * self.batch_size
        upcoming = iter(jobs)
        reads: collections.deque[tuple[Job, Future]] = collections.deque()
        writes: collections.deque[tuple[Job, Future]] = collections.deque()

        def read_ahead() -> None:
            while len(reads) < window:
                job = next(upcoming, None)
                if job is None:
                    return
                reads.append((job, self.readers.submit(read_image, job.source, self.settings.max_pixels)))

        read_ahead()
        while reads:
            # a group is the next batch_size jobs, less those that cannot be read: which images share a
            # forward pass (and so their bytes, to the last ulp) never depends on which other files are bad
            group = []
            for _ in range(self.batch_size):
                if not reads:
                    break
                job, future = reads.popleft()
                read_ahead()
                try:
                    group.append((job, future.result()))
                except ImageError as error:
                    self._failed(job, str(error))
            for batch in split_by_pixels(group, self.settings.max_pixels):
                self._colorize_batch(batch, writes)
                while writes and (len(writes) > window or writes[0][1].done()):
                    self._finish_write(*writes.popleft())
        while writes:
            self._finish_write(*writes.popleft())

    def _colorize_batch(self, batch: list[tuple[Job, Picture]], writes: collections.deque) -> None:
        """One forward pass; each result goes to a writer thread (its future appended to `writes`)."""
        try:
            results = self.colorizer.colorize([picture.pixels for _, picture in batch])
        except CompileError:
            raise               # the same for every batch: one line and exit 2, not an error per file
        except (RuntimeError, ValueError) as error:
            if self.settings.debug:
                raise
            for job, _ in batch:
                self._failed(job, f"{job.source}: colorization failed ({error})")
            return
        for (job, picture), result in zip(batch, results):
            writes.append((job, self.writers.submit(write_image, job.output, result.rgb, picture.alpha,
                                                    picture.icc_profile)))

    def _finish_write(self, job: Job, future: Future) -> None:
        try:
            future.result()
        except OutputError as error:
            self._failed(job, str(error))
            return
        except (OSError, ValueError) as error:
            self._failed(job, f"{job.output}: cannot write ({error})")
            return
        self.summary.images += 1
        self.summary.record(job, "done")
        self.display.advance(colorized=1)

    def _run_video(self, job: Job) -> None:
        try:
            info = probe(job.source)
            if info.width * info.height > self.settings.max_pixels:
                raise VideoError(f"{job.source}: frames too large ({info.width}x{info.height} = "
                                 f"{megapixels(info.width * info.height)}; --max-pixels is "
                                 f"{megapixels(self.settings.max_pixels)}: raise it to colorize this one)")
            self.display.grow((info.frame_count or 1) - 1)
            if job.frames:
                frames = self._video_to_frames(job, info)
            else:
                frames = self._video_to_file(job, info)
        except CompileError:
            raise
        except (OSError, RuntimeError, ValueError) as error:
            if self.settings.debug and not isinstance(error, VideoError):
                raise
            self._failed(job, str(error) if isinstance(error, VideoError) else f"{job.source}: {error}")
            return
        self.summary.images += frames
        # a frames folder whose frames all exist already counts as skipped
        self.summary.record(job, "done" if frames or not job.frames else "skipped", frames=frames)

    def _frame_batches(self, reader: FrameReader, keep: Callable[[int], bool] | None = None) -> Iterator[list]:
        """(index, (3, H, W) uint8 frame) batches, decoded ahead in a thread; `keep(index)` filters frames."""
        frames = ((index, frame.permute(2, 0, 1)) for index, frame in enumerate(reader, start=1)
                  if keep is None or keep(index))
        return prefetch(batched(frames, self.batch_size), depth=2)

    def _colorize_frames(self, batch: list[tuple[int, torch.Tensor]]) -> list:
        """(1-based index, (3, H, W) frame) pairs of a video -> results, shot by shot when the group says so."""
        if self.schedule is None:
            return self.colorizer.colorize([frame for _, frame in batch])
        return self.schedule.colorize(self.colorizer, batch)

    def _video_to_file(self, job: Job, info) -> int:
        count = 0

        def encode(tmp: str) -> None:
            nonlocal count
            try:
                count = self._encode(job, info, tmp)
            except BaseException:
                stop_all()      # before atomic_write removes `tmp`: no encoder may write it again
                raise

        atomic_write(job.output, encode)
        self.display.grow(count - (info.frame_count or 1))
        return count

    def _encode(self, job: Job, info, tmp: str) -> int:
        """Stream `job.source` through the model into `tmp`; returns the number of frames."""
        fmt = VIDEO_OUTPUT_FORMATS[job.output.suffix.lower()]
        count = 0
        with FrameReader(job.source, info) as reader, FrameWriter(tmp, fmt, info, job.source) as writer, \
                ThreadPoolExecutor(1, thread_name_prefix="sscn-encode") as encoder:
            pending: collections.deque[Future] = collections.deque()
            try:
                for batch in self._frame_batches(reader):
                    results = self._colorize_frames(batch)
                    pending.append(encoder.submit(_write_frames, writer, results))
                    while len(pending) > 2 or (pending and pending[0].done()):
                        pending.popleft().result()
                    count += len(batch)
                    self.display.advance(len(batch), colorized=len(batch))
                while pending:
                    pending.popleft().result()
            except BaseException:
                encoder.shutdown(wait=False, cancel_futures=True)
                raise
        return count

    def _video_to_frames(self, job: Job, info) -> int:
        def missing(index: int) -> bool:
            if self.settings.overwrite or not (job.output / FRAME_NAME.format(index)).exists():
                return True
            self.display.advance()
            return False

        count = 0
        writes: collections.deque[Future] = collections.deque()
        claim_frames_folder(job.output, job.source)
        with FrameReader(job.source, info) as reader:
            for batch in self._frame_batches(reader, missing):
                results = self._colorize_frames(batch)
                for (index, _), result in zip(batch, results):
                    writes.append(self.writers.submit(write_image, job.output / FRAME_NAME.format(index),
                                                      result.rgb))
                while writes and (len(writes) > 2 * self.batch_size or writes[0].done()):
                    writes.popleft().result()
                count += len(batch)
                self.display.advance(len(batch), colorized=len(batch))
            while writes:
                writes.popleft().result()
            self.display.grow(reader.frames_read - (info.frame_count or 1))
        if self.settings.overwrite:
            remove_frames_after(job.output, reader.frames_read)
        return count


def _write_frames(writer: FrameWriter, results: list) -> None:
    for result in results:
        writer.write(to_uint8(result.rgb))


_END = object()


def prefetch(items: Iterable, depth: int) -> Iterator:
    """Iterate `items` in a background thread, `depth` items ahead; its exceptions re-raise here."""
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                buffer.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_END)
        except BaseException as error:  # handed to the consumer, which re-raises it
            put(error)

    thread = threading.Thread(target=work, daemon=True, name="sscn-prefetch")
    thread.start()
    try:
        while True:
            item = buffer.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)
