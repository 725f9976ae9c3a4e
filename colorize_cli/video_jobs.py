"""The video jobs of a run: frames streamed from an ffmpeg decoder (decoded ahead in a thread) through the model in
batches, into an ffmpeg encoder (a video file) or into numbered PNG frames (a frames folder, resumed frame by
frame). A job that fails leaves no output file (`--frames`: the whole frames written so far stay)."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

from sscn.images import megapixels, to_uint8
from sscn.models.colorizer import batched
from sscn.models.outputs import atomic_write

from .errors import item_error
from .formats import VIDEO_OUTPUT_FORMATS
from .frames import FRAME_NAME, claim_frames_folder, remove_frames_after
from .images import write_image
from .targets import Job
from .video import FrameReader, FrameWriter, VideoError, VideoInfo, probe, stop_all
from .window import Window, prefetch

if TYPE_CHECKING:
    import torch

    from .engine import Engine
    from .shots import ShotSchedule


class VideoJob:
    """One video through the engine's model, writer pool, summary and display."""

    def __init__(self, engine: Engine, job: Job, schedule: ShotSchedule | None) -> None:
        self.engine, self.job, self.schedule = engine, job, schedule
        self.settings, self.display = engine.settings, engine.display

    def run(self) -> None:
        job = self.job
        try:
            info = probe(job.source)
            if info.width * info.height > self.settings.max_pixels:
                raise VideoError(f"{job.source}: frames too large ({info.width}x{info.height} = "
                                 f"{megapixels(info.width * info.height)}; --max-pixels is "
                                 f"{megapixels(self.settings.max_pixels)}: raise it to colorize this one)")
            self.display.grow((info.frame_count or 1) - 1)
            frames = self._to_frames(info) if job.frames else self._to_file(info)
        except Exception as error:
            item_error(error, self.settings.debug)
            self.engine.failed(job, str(error) if isinstance(error, VideoError) else f"{job.source}: {error}")
            return
        self.engine.summary.images += frames
        # a frames folder whose frames all exist already counts as skipped
        self.engine.summary.record(job, "done" if frames or not job.frames else "skipped", frames=frames)

    def _batches(self, reader: FrameReader, keep: Callable[[int], bool] | None = None) -> Iterator[list]:
        """(index, (3, H, W) uint8 frame) batches, decoded ahead in a thread; `keep(index)` filters frames."""
        frames = ((index, frame.permute(2, 0, 1)) for index, frame in enumerate(reader, start=1)
                  if keep is None or keep(index))
        return prefetch(batched(frames, self.settings.batch_size), depth=2)

    def _colorize(self, batch: list[tuple[int, torch.Tensor]]) -> list:
        """(1-based index, (3, H, W) frame) pairs -> results, shot by shot when the group says so."""
        if self.schedule is None:
            return self.engine.colorizer.colorize([frame for _, frame in batch])
        return self.schedule.colorize(self.engine.colorizer, batch)

    def _to_file(self, info: VideoInfo) -> int:
        count = 0

        def encode(tmp: str) -> None:
            nonlocal count
            try:
                count = self._encode(info, tmp)
            except BaseException:
                stop_all()      # before atomic_write removes `tmp`: no encoder may write it again
                raise

        atomic_write(self.job.output, encode)
        self.display.grow(count - (info.frame_count or 1))
        return count

    def _encode(self, info: VideoInfo, tmp: str) -> int:
        """Stream the video through the model into `tmp`; returns the number of frames."""
        fmt = VIDEO_OUTPUT_FORMATS[self.job.output.suffix.lower()]
        count = 0
        with FrameReader(self.job.source, info) as reader, FrameWriter(tmp, fmt, info, self.job.source) as writer, \
                ThreadPoolExecutor(1, thread_name_prefix="sscn-encode") as encoder:
            encodes = Window(2, _wait)
            try:
                for batch in self._batches(reader):
                    encodes.add(None, encoder.submit(_write_frames, writer, self._colorize(batch)))
                    count += len(batch)
                    self.display.advance(len(batch), colorized=len(batch))
                encodes.drain()
            except BaseException:
                encoder.shutdown(wait=False, cancel_futures=True)
                raise
        return count

    def _to_frames(self, info: VideoInfo) -> int:
        job = self.job

        def missing(index: int) -> bool:
            if self.settings.overwrite or not (job.output / FRAME_NAME.format(index)).exists():
                return True
            self.display.advance()
            return False

        count = 0
        writes = Window(2 * self.settings.batch_size, _wait)
        claim_frames_folder(job.output, job.source)
        with FrameReader(job.source, info) as reader:
            for batch in self._batches(reader, missing):
                for (index, _), result in zip(batch, self._colorize(batch)):
                    writes.add(None, self.engine.writers.submit(write_image, job.output / FRAME_NAME.format(index),
                                                                result.rgb))
                count += len(batch)
                self.display.advance(len(batch), colorized=len(batch))
            writes.drain()
            self.display.grow(reader.frames_read - (info.frame_count or 1))
        if self.settings.overwrite:
            remove_frames_after(job.output, reader.frames_read)
        return count


def _wait(key: None, future: Future) -> None:
    future.result()


def _write_frames(writer: FrameWriter, results: list) -> None:
    for result in results:
        writer.write(to_uint8(result.rgb))
