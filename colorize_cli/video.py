"""Video through ffmpeg pipes: probe, decode to raw RGB frames, encode raw RGB frames (audio copied).

Frames are never all in memory nor on disk: a decoder process writes rgb24 frames to a pipe, an encoder
process reads rgb24 frames from another and muxes the source's audio (`-map 1:a?`) into the output. The
ffmpeg binary is the one on PATH, else the one bundled with `imageio-ffmpeg`; probing uses ffprobe when it
is on PATH, else parses `ffmpeg -i`'s report (imageio-ffmpeg ships no ffprobe); both answers are read by `video_info`.

Frames are read at the source's nominal frame rate (`fps` filter), so variable-frame-rate sources come out
at a constant rate with the same duration; for constant-rate sources frame count, fps and duration are kept.
"""
from __future__ import annotations

import collections
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from .video_info import VideoError, VideoInfo, last_line, parse_ffmpeg_report, parse_ffprobe_json

# audio codecs each muxer takes as they are; others are re-encoded with the fallback encoder
_AUDIO_COPY = {
    "mp4": {"aac", "mp3", "alac", "ac3", "eac3", "opus", "flac"},
    "mov": {"aac", "mp3", "alac", "ac3", "eac3", "pcm_s16le", "pcm_s16be", "pcm_s24le", "pcm_s24be"},
    "matroska": None,
    "webm": {"opus", "vorbis"},
    "avi": {"mp3", "ac3", "pcm_s16le", "aac"},
}
_AUDIO_FALLBACK = {"mp4": "aac", "mov": "aac", "matroska": "aac", "webm": "libopus", "avi": "libmp3lame"}
# Decoded frames may fall short of duration x fps by rounding and by audio outlasting the picture; more
# missing than this is a truncated or corrupt file (ffmpeg decodes what it can and exits 0)
_SHORTFALL_SHARE, _SHORTFALL_FRAMES = 0.05, 2
_STDERR_LINES = 30


def ffmpeg_exe() -> str:
    found = shutil.which("ffmpeg")
    if found:
        return found
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def probe(path: Path) -> VideoInfo:
    """Size, frame rate, duration and audio of `path`; VideoError naming the file on any problem."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise VideoError(f"{path}: no such file") from None
    except OSError as error:
        raise VideoError(f"{path}: cannot read ({error.strerror})") from None
    if not path.is_file():
        raise VideoError(f"{path}: is a folder, not a video")
    if size == 0:
        raise VideoError(f"{path}: empty file (0 bytes)")
    ffprobe = shutil.which("ffprobe")
    if ffprobe:
        completed = subprocess.run([ffprobe, "-v", "error", "-print_format", "json", "-show_format",
                                    "-show_streams", f"file:{path}"], capture_output=True, text=True)
        if completed.returncode != 0:
            raise VideoError(f"{path}: not a readable video ({last_line(completed.stderr)})")
        return parse_ffprobe_json(completed.stdout, path)
    completed = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", f"file:{path}"],
                               capture_output=True, text=True, errors="replace")
    return parse_ffmpeg_report(completed.stderr, path)


_running: set[subprocess.Popen] = set()      # ffmpeg children not yet waited for


def stop_all() -> None:
    """Kill every ffmpeg child still running (after an interrupt, before its temporary output is removed,
    so no encoder writes the file again)."""
    for process in list(_running):
        if process.poll() is None:
            process.kill()
        process.wait()
        _running.discard(process)


class _Process:
    """An ffmpeg child whose stderr is drained by a thread (a full stderr pipe would block it)."""

    def __init__(self, args: list[str], stdin: bool, stdout: bool) -> None:
        self.process = subprocess.Popen(args, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                        stdout=subprocess.PIPE if stdout else subprocess.DEVNULL,
                                        stderr=subprocess.PIPE)
        _running.add(self.process)
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=_STDERR_LINES)
        self._drain = threading.Thread(target=self._read_stderr, daemon=True)
        self._drain.start()

    def _read_stderr(self) -> None:
        for line in self.process.stderr:
            self.stderr_tail.append(line.decode(errors="replace").rstrip())

    def error(self) -> str:
        self._drain.join(timeout=5)
        return last_line("\n".join(self.stderr_tail))

    def wait(self) -> int:
        code = self.process.wait()
        _running.discard(self.process)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.wait()
        self._drain.join(timeout=5)


class FrameReader:
    """Decoded frames of a video, in order, as (H, W, 3) uint8 tensors; use as a context manager."""

    def __init__(self, path: Path, info: VideoInfo) -> None:
        import ffmpeg

        self.path, self.info = path, info
        stream = (ffmpeg.input(f"file:{path}")[str(info.stream_index)]
                  .filter("fps", fps=str(info.fps))
                  .output("pipe:", format="rawvideo", pix_fmt="rgb24"))
        self._process = _Process([ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error",
                                  *ffmpeg.get_args(stream)], stdin=False, stdout=True)
        self.frames_read = 0

    def __enter__(self) -> "FrameReader":
        return self

    def __exit__(self, *exc) -> None:
        self._process.kill()

    def __iter__(self) -> Iterator[torch.Tensor]:
        frame_bytes = self.info.width * self.info.height * 3
        pipe = self._process.process.stdout
        while True:
            frame = torch.empty(self.info.height, self.info.width, 3, dtype=torch.uint8)
            view = memoryview(frame.numpy()).cast("B")
            filled = 0
            while filled < frame_bytes:
                count = pipe.readinto(view[filled:])
                if not count:
                    break
                filled += count
            if filled < frame_bytes:
                break
            self.frames_read += 1
            yield frame
        if self._process.wait() != 0:
            raise VideoError(f"{self.path}: decoding failed after {self.frames_read} frames "
                             f"({self._process.error()})")
        if self.frames_read == 0:
            raise VideoError(f"{self.path}: no frames could be decoded (empty or corrupt video)")
        expected = self.info.frame_count
        if expected is not None and self.frames_read < expected - max(_SHORTFALL_FRAMES, expected * _SHORTFALL_SHARE):
            raise VideoError(f"{self.path}: the video ends early: {self.frames_read} of its {expected} frames "
                             "could be decoded (truncated or corrupt file)")


class FrameWriter:
    """Encodes (H, W, 3) uint8 frames into `output` (muxer `fmt`), with `source`'s audio; a context manager
    that, on a clean exit, waits for the encoder and raises VideoError if it failed."""

    def __init__(self, output: str, fmt: str, info: VideoInfo, source: Path) -> None:
        import ffmpeg

        self.output = output
        video = ffmpeg.input("pipe:", format="rawvideo", pix_fmt="rgb24", s=f"{info.width}x{info.height}",
                             framerate=str(info.fps))
        streams = [_to_yuv(video, info)]
        options = dict(_video_codec(fmt, info))
        if info.audio_codec:
            streams.append(ffmpeg.input(f"file:{source}")["a?"])
            copy = _AUDIO_COPY[fmt]
            options["acodec"] = "copy" if copy is None or info.audio_codec in copy else _AUDIO_FALLBACK[fmt]
        stream = ffmpeg.output(*streams, f"file:{output}", format=fmt, **options)
        self._process = _Process([ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
                                  *ffmpeg.get_args(stream)], stdin=True, stdout=False)

    def write(self, frame: np.ndarray) -> None:
        """frame: (H, W, 3) uint8, C-contiguous."""
        try:
            self._process.process.stdin.write(memoryview(frame).cast("B"))
        except (BrokenPipeError, OSError):
            self._process.kill()
            raise VideoError(f"{self.output}: encoding failed ({self._process.error()})") from None

    def __enter__(self) -> "FrameWriter":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is not None:
            self._process.kill()
            return
        try:
            self._process.process.stdin.close()
        except BrokenPipeError:
            pass
        if self._process.wait() != 0:
            raise VideoError(f"{self.output}: encoding failed ({self._process.error()})")


def _to_yuv(video, info: VideoInfo):
    """RGB -> YUV with the BT.709 matrix, tagged as such (ffmpeg's implicit default is untagged BT.601)."""
    return (video.filter("scale", out_color_matrix="bt709", out_range="tv")
            .filter("format", _pixel_format(info))
            .filter("setparams", colorspace="bt709", color_primaries="bt709", color_trc="bt709", range="tv"))


def _pixel_format(info: VideoInfo) -> str:
    # 4:2:0 needs even sides; odd-sized videos keep their size with 4:4:4
    return "yuv420p" if info.width % 2 == 0 and info.height % 2 == 0 else "yuv444p"


def _video_codec(fmt: str, info: VideoInfo) -> dict[str, str | int]:
    if fmt == "webm":
        return {"vcodec": "libvpx-vp9", "crf": 30, "b:v": 0, "row-mt": 1}
    codec: dict[str, str | int] = {"vcodec": "libx264", "crf": 18}
    if fmt in ("mp4", "mov"):
        codec["movflags"] = "+faststart"
    return codec
