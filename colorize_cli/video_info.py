"""What a video is, as ffprobe (JSON) or `ffmpeg -i` (its report) describe it: size, frame rate, duration,
audio codec; every problem a `VideoError` naming the file."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

_MAX_NOMINAL_FPS = 240      # above this a stream's nominal rate is a timebase artefact; use its average


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


def last_line(text: str) -> str:
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
        raise VideoError(f"{path}: not a readable video ({last_line(report)})")
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
