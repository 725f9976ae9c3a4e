"""Video through ffmpeg pipes: probe, decode to raw RGB frames, encode raw RGB frames (audio copied).

Frames are never all in memory nor on disk: a decoder process writes rgb24 frames to a pipe, an encoder
process reads rgb24 frames from another and muxes the source's audio (`-map 1:a?`) into the output. The
ffmpeg binary is the one on PATH, else the one bundled with `imageio-ffmpeg`; probing uses ffprobe when it
is on PATH, else parses `ffmpeg -i`'s report (imageio-ffmpeg ships no ffprobe).

Frames are read at the source's nominal frame rate (`fps` filter), so variable-frame-rate sources come out
at a constant rate with the same duration; for constant-rate sources frame count, fps and duration are kept.
"""
from __future__ import annotations

import collections
import json
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

# output suffix -> ffmpeg muxer
VIDEO_OUTPUT_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm",
                        ".avi": "avi"}
# audio codecs each muxer takes as they are; others are re-encoded with the fallback encoder
_AUDIO_COPY = {
    "mp4": {"aac", "mp3", "alac", "ac3", "eac3", "opus", "flac"},
    "mov": {"aac", "mp3", "alac", "ac3", "eac3", "pcm_s16le", "pcm_s16be", "pcm_s24le", "pcm_s24be"},
    "matroska": None,
    "webm": {"opus", "vorbis"},
    "avi": {"mp3", "ac3", "pcm_s16le", "aac"},
}
_AUDIO_FALLBACK = {"mp4": "aac", "mov": "aac", "matroska": "aac", "webm": "libopus", "avi": "libmp3lame"}
_MAX_NOMINAL_FPS = 240      # above this a stream's nominal rate is a timebase artefact; use its average
# Decoded frames may fall short of duration x fps by rounding and by audio outlasting the picture; more
# missing than this is a truncated or corrupt file (ffmpeg decodes what it can and exits 0)
_SHORTFALL_SHARE, _SHORTFALL_FRAMES = 0.05, 2
_STDERR_LINES = 30


class VideoError(ValueError):
    """A video that cannot be read or written; the message names the file."""


@dataclass(frozen=True)
class VideoInfo:
    width: int                   # of the decoded (display-rotated) frames
    height: int
    fps: Fraction                # the rate frames are read and written at
    duration: float | None       # seconds
    stream_index: int            # the video stream (cover art skipped)
    audio_codec: str | None      # first audio stream's codec, None without audio

    @property
    def frame_count(self) -> int | None:
        """Frames the decoder will deliver (exact for constant-rate sources)."""
        return None if self.duration is None else max(1, round(self.duration * self.fps))


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
            raise VideoError(f"{path}: not a readable video ({_last_line(completed.stderr)})")
        return parse_ffprobe_json(completed.stdout, path)
    completed = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", f"file:{path}"],
                               capture_output=True, text=True, errors="replace")
    return parse_ffmpeg_report(completed.stderr, path)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no details"


def choose_fps(nominal: Fraction | None, average: Fraction | None, path: Path) -> Fraction:
    if nominal and 0 < nominal <= _MAX_NOMINAL_FPS:
        return nominal
    if average and average > 0:
        return average
    raise VideoError(f"{path}: the video's frame rate is unknown")


def _ntsc(value: float) -> Fraction:
    """ffmpeg prints rates rounded (29.97); restore the exact NTSC fraction (30000/1001) where it is one."""
    scaled = value * 1001 / 1000
    if abs(scaled - round(scaled)) < 0.005 and abs(value - round(value)) > 0.005:
        return Fraction(round(scaled) * 1000, 1001)
    return Fraction(value).limit_denominator(1000)


def _report_rate(text: str | None) -> Fraction | None:
    if not text:
        return None
    number, kilo = text
    value = float(number) * (1000 if kilo else 1)
    return _ntsc(value) if value > 0 else None


_STREAM = re.compile(r"^\s*Stream #0:(\d+)[^:]*: (Video|Audio): (\w+)(.*)$")


def parse_ffmpeg_report(report: str, path: Path) -> VideoInfo:
    """VideoInfo from the stderr of `ffmpeg -i path` (no output file)."""
    if "Input #0" not in report:
        raise VideoError(f"{path}: not a readable video ({_last_line(report)})")
    duration = None
    match = re.search(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)", report)
    if match:
        hours, minutes, seconds = match.groups()
        duration = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    video, audio_codec, rotation = None, None, 0.0
    lines = report.splitlines()
    for number, line in enumerate(lines):
        stream = _STREAM.match(line)
        if not stream:
            continue
        index, kind, codec, rest = stream.groups()
        if kind == "Audio":
            audio_codec = audio_codec or codec
        elif video is None and "(attached pic)" not in rest:
            video = (int(index), rest)
            following = "\n".join(lines[number + 1:number + 6])
            turn = re.search(r"rotation of (-?\d+(?:\.\d+)?) degrees", following)
            rotation = float(turn.group(1)) if turn else 0.0
    if video is None:
        raise VideoError(f"{path}: no video stream")
    index, rest = video
    size = re.search(r", (\d+)x(\d+)(?=[\s,\[]|$)", rest)
    if not size:
        raise VideoError(f"{path}: cannot tell the video's frame size")
    width, height = int(size.group(1)), int(size.group(2))
    average = _report_rate(_rate_field(rest, "fps"))
    nominal = _report_rate(_rate_field(rest, "tbr"))
    if round(abs(rotation)) % 180 == 90:
        width, height = height, width
    return VideoInfo(width, height, choose_fps(nominal, average, path), duration, index, audio_codec)


def _rate_field(text: str, unit: str) -> tuple[str, str] | None:
    match = re.search(rf"(\d+(?:\.\d+)?)(k?) {unit}\b", text)
    return match.groups() if match else None  # type: ignore[return-value]


def parse_ffprobe_json(text: str, path: Path) -> VideoInfo:
    """VideoInfo from `ffprobe -print_format json -show_format -show_streams`."""
    data = json.loads(text)
    streams = data.get("streams", [])
    videos = [s for s in streams if s.get("codec_type") == "video"
              and not s.get("disposition", {}).get("attached_pic")]
    if not videos:
        raise VideoError(f"{path}: no video stream")
    video = videos[0]
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    width, height = int(video.get("width", 0)), int(video.get("height", 0))
    if width < 1 or height < 1:
        raise VideoError(f"{path}: cannot tell the video's frame size")
    rotation = float(video.get("tags", {}).get("rotate", 0))
    for side_data in video.get("side_data_list", []):
        rotation = float(side_data.get("rotation", rotation))
    if round(abs(rotation)) % 180 == 90:
        width, height = height, width
    duration = data.get("format", {}).get("duration") or video.get("duration")
    return VideoInfo(width, height, choose_fps(_fraction(video.get("r_frame_rate")),
                                               _fraction(video.get("avg_frame_rate")), path),
                     float(duration) if duration else None, int(video["index"]),
                     audio.get("codec_name") if audio else None)


def _fraction(text: str | None) -> Fraction | None:
    try:
        return Fraction(text) if text else None
    except (ValueError, ZeroDivisionError):
        return None


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
        return _last_line("\n".join(self.stderr_tail))

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
