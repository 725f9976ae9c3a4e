"""Video, one reference per shot: shot boundaries on the gray frames, then a reference (set) per shot.

Boundaries: each frame's lightness histogram (64 bins, on a 64-pixel-wide thumbnail) against the previous
frame's; the distance is half their L1 difference (0 = same, 1 = disjoint). A cut is declared where it rises
above `threshold`, and the next cut only after it has fallen below `threshold / 2` again (hysteresis: a flash or
a fast pan that stays high makes one cut, not a run of them). Frames of a shot share one reference encoding,
so their selection is the same (no flicker from re-sampling) as for a whole video with one reference.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from sscn.models import Colorizer
from sscn.models.color import rgb_to_lightness
from sscn.models.colorizer import ColorizeResult
from sscn.models.library import ReferenceIndex

from .errors import CLIError
from .library_match import references_setter
from .runner import Group
from .targets import Job
from .video import FrameReader, VideoError, VideoInfo, probe

HISTOGRAM_BINS = 64
THUMBNAIL_WIDTH = 64


def lightness_histogram(frame: torch.Tensor) -> torch.Tensor:
    """(H, W, 3) uint8 frame -> (HISTOGRAM_BINS,) lightness histogram summing to 1."""
    rgb = frame.permute(2, 0, 1)[None].float() / 255.0                                    # (1, 3, H, W)
    height = max(1, round(frame.shape[0] * THUMBNAIL_WIDTH / frame.shape[1]))
    thumbnail = F.interpolate(rgb, size=(height, THUMBNAIL_WIDTH), mode="area")
    lightness = rgb_to_lightness(thumbnail).flatten()                                      # (h * w,) in [0, 100]
    histogram = torch.histc(lightness, bins=HISTOGRAM_BINS, min=0.0, max=100.0)
    return histogram / histogram.sum()


class ShotDetector:
    """Streaming cut detection with hysteresis (see the module docstring); `push` one histogram per frame."""

    def __init__(self, threshold: float) -> None:
        if not 0.0 < threshold < 1.0:
            raise CLIError(f"--shot-threshold must be between 0 and 1 (got {threshold})")
        self.threshold = threshold
        self.previous: torch.Tensor | None = None
        self.armed = True

    def push(self, histogram: torch.Tensor) -> bool:
        """True when this frame starts a new shot (never the first frame)."""
        previous, self.previous = self.previous, histogram
        if previous is None:
            return False
        distance = 0.5 * float((histogram - previous).abs().sum())
        if self.armed and distance > self.threshold:
            self.armed = False
            return True
        if distance < self.threshold / 2:
            self.armed = True
        return False


def shot_starts(histograms: list[torch.Tensor], threshold: float) -> list[int]:
    """0-based first frames of the shots (always starting with 0), from consecutive frames' histograms."""
    detector = ShotDetector(threshold)
    return [0] + [index for index, histogram in enumerate(histograms) if detector.push(histogram)]


@dataclass
class Shots:
    starts: list[int]                   # 0-based first frame of each shot
    first_frames: list[torch.Tensor]    # (H, W, 3) uint8, one per shot (for matching a library)
    fps: float


def shot_of(starts: list[int], frame: int) -> int:
    """The shot (index into `starts`, the 0-based first frames) holding 0-based `frame`."""
    return max(shot for shot, start in enumerate(starts) if start <= frame)


def detect_shots(path: Path, info: VideoInfo, threshold: float) -> Shots:
    """One decoding pass over the video, keeping only the last histogram and each shot's first frame."""
    detector = ShotDetector(threshold)
    shots = Shots([], [], float(info.fps))
    with FrameReader(path, info) as reader:
        for index, frame in enumerate(reader):
            if detector.push(lightness_histogram(frame)) or index == 0:
                shots.starts.append(index)
                shots.first_frames.append(frame)
    return shots


class ShotSchedule:
    """Colorizes a video's frames, in order, with each shot's own reference (set): the setter of a shot runs
    once when its first frame comes up, and a batch straddling a cut is split there."""

    def __init__(self, starts: list[int], setters: list[Callable[[Colorizer], None]]) -> None:
        self.starts, self.setters = starts, setters
        self.current: int | None = None

    def colorize(self, colorizer: Colorizer, batch: list[tuple[int, torch.Tensor]]) -> list[ColorizeResult]:
        """(1-based frame index, (3, H, W) frame) pairs in order -> their results."""
        results: list[ColorizeResult] = []
        run: list[torch.Tensor] = []
        for index, frame in batch:
            shot = shot_of(self.starts, index - 1)
            if shot != self.current:
                results += colorizer.colorize(run) if run else []
                run = []
                self.setters[shot](colorizer)
                self.current = shot
            run.append(frame)
        return results + colorizer.colorize(run)


def timed_choice(references: list[tuple[Path, float | None]]) -> Callable[[Shots], list[tuple[Path, ...]]]:
    """Shots -> references per shot from `--ref FILE@TIME` (no time: 0): each reference goes to the shot holding
    its time (several in one shot are pooled); a shot without one keeps the previous shot's (the first
    shots take the first given)."""
    def choose(shots: Shots) -> list[tuple[Path, ...]]:
        per_shot: list[list[Path]] = [[] for _ in shots.starts]
        for path, seconds in references:
            per_shot[shot_of(shots.starts, round((seconds or 0.0) * shots.fps))].append(path)
        first = next(chosen for chosen in per_shot if chosen)
        chosen: list[tuple[Path, ...]] = []
        for paths in per_shot:
            chosen.append(tuple(paths) if paths else (chosen[-1] if chosen else tuple(first)))
        return chosen

    return choose


def library_choice(index: ReferenceIndex, count: int) -> Callable[[Shots], list[tuple[Path, ...]]]:
    """Shots -> each shot's best `count` references of the library `index`, matched on the shot's first frame."""
    def choose(shots: Shots) -> list[tuple[Path, ...]]:
        return [tuple(match.path for match in index.match(frame.permute(2, 0, 1), count))
                for frame in shots.first_frames]

    return choose


def shot_group(job: Job, threshold: float, choose: Callable[[Shots], list[tuple[Path, ...]]], budget: str) -> Group:
    """The Group colorizing video `job` shot by shot; its --json item lists the shots and their references.
    A video that cannot be probed or decoded here gets no schedule: the engine reports it."""
    try:
        info = probe(job.source)
        shots = detect_shots(job.source, info, threshold)
    except VideoError:
        return Group(_no_reference, [job])
    chosen = choose(shots)
    note = {"shots": [{"start_frame": start + 1, "start_seconds": round(start / shots.fps, 3),
                       "reference": [str(path) for path in paths]} for start, paths in zip(shots.starts, chosen)]}
    schedule = ShotSchedule(shots.starts, [references_setter(paths, budget) for paths in chosen])
    return Group(_no_reference, [job], {job.source: note}, schedule)


def _no_reference(colorizer: Colorizer) -> None:
    """A shot-scheduled video sets its references itself, shot by shot."""
