"""The engine of a run: groups of jobs through one loaded `Colorizer`, and the image jobs.

Each group's reference is encoded once. Images are decoded by a reader pool that runs two batches ahead of the
model, results are encoded and written by a writer pool, so the device never waits on disk (`window`); videos
are `video_jobs`. A bad item is reported on one line and counted, and the rest go on (`errors.item_error`).
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING

from sscn.images import ImageError, Picture, read_image
from sscn.models import Colorizer
from sscn.models.colorizer import batched
from sscn.models.outputs import OutputError

from .errors import item_error
from .images import write_image
from .progress import Display
from .settings import RunSettings
from .summary import Summary
from .targets import Job
from .video_jobs import VideoJob
from .window import Window, ahead

if TYPE_CHECKING:
    from .runner import Group


class Engine:
    """Runs groups of jobs through one loaded `Colorizer`, recording each item in `summary`."""

    def __init__(self, colorizer: Colorizer, settings: RunSettings, summary: Summary, display: Display) -> None:
        self.colorizer, self.settings, self.summary, self.display = colorizer, settings, summary, display
        self.batch_size = settings.batch_size
        self.workers = settings.workers or min(8, os.cpu_count() or 1)

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
        try:
            group.set_reference(self.colorizer)
        except Exception as error:
            item_error(error, self.settings.debug)
            for job in group.jobs:
                self.failed(job, f"{job.source}: reference {error}")
            return
        self._run_images([job for job in group.jobs if not job.video])
        for job in group.jobs:
            if job.video:
                VideoJob(self, job, group.schedule).run()

    def failed(self, job: Job, message: str) -> None:
        self.display.error(message)
        self.summary.record(job, "failed", message)
        self.display.advance()

    def _run_images(self, jobs: list[Job]) -> None:
        writes = Window(2 * self.batch_size, self._finish_write)
        # a group is the next batch_size jobs, less those that cannot be read: which images share a forward
        # pass (and so their bytes, to the last ulp) never depends on which other files are bad
        for group in batched(self._decoded(jobs), self.batch_size):
            readable = [(job, picture) for job, picture in group if picture is not None]
            for batch in split_by_pixels(readable, self.settings.max_pixels):
                self._colorize_batch(batch, writes)
        writes.drain()

    def _decoded(self, jobs: list[Job]) -> Iterator[tuple[Job, Picture | None]]:
        """Each job and its picture, decoded two batches ahead by the reader pool; None when it cannot be read
        (reported as the job's failure)."""
        reads = ((job, partial(read_image, job.source, self.settings.max_pixels)) for job in jobs)
        for job, future in ahead(reads, self.readers.submit, 2 * self.batch_size):
            try:
                picture = future.result()
            except ImageError as error:
                item_error(error, self.settings.debug)
                self.failed(job, str(error))
                picture = None
            yield job, picture

    def _colorize_batch(self, batch: list[tuple[Job, Picture]], writes: Window) -> None:
        """One forward pass; each result goes to a writer thread (its future added to `writes`)."""
        try:
            results = self.colorizer.colorize([picture.pixels for _, picture in batch])
        except Exception as error:      # torch.compile failing stops the run: one line, not an error per file
            item_error(error, self.settings.debug)
            for job, _ in batch:
                self.failed(job, f"{job.source}: colorization failed ({error})")
            return
        for (job, picture), result in zip(batch, results):
            writes.add(job, self.writers.submit(write_image, job.output, result.rgb, picture.alpha,
                                                picture.icc_profile))

    def _finish_write(self, job: Job, future: Future) -> None:
        try:
            future.result()
        except Exception as error:
            item_error(error, self.settings.debug)
            self.failed(job, str(error) if isinstance(error, OutputError) else f"{job.output}: cannot write ({error})")
            return
        self.summary.images += 1
        self.summary.record(job, "done")
        self.display.advance(colorized=1)


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
