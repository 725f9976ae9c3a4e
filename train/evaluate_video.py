"""Video protocols of `sscn evaluate`: a colour clip's frames are greyed, colorized with one reference and scored
against their own colours (frames decoded by the CLI, colorize_cli.video).

- Plain: the reference is the clip's middle frame, or a given image.
- Keyframe (the real use, a film colorized from one colour still): the colour frame at the keyframe is the
  reference; the frames at the given gaps after it are the pairs reported on their own, so the table shows
  how the colours hold up as the scene moves away from the still.

Either way every frame of the clip is colorized and scored (PSNR, SSIM, ΔE00 and colourfulness ratio against
the source frame, HIS against the reference; train.evaluate), and the clip gets two temporal scores:
- flicker = sum_t mean|ab_t - ab_(t-1)| of the result / the same sum for the source (1 = as steady as the
  source; undefined for a source whose colours never change);
- CDC (train.metrics: Jensen-Shannon divergence of per-channel RGB histograms of frames t and t + d, d in
  {1, 2, 4}) of the result, next to the CDC of the source itself: a result far above its source's
  changes its colour distribution where the scene does not.
"""
from __future__ import annotations

import re
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from fractions import Fraction

import torch

from sscn.images import image_to_float
from sscn.models.color import rgb_to_lab
from sscn.models.colorizer import batched

from .evaluate import SheetRow, protocol, sheet_row
from .methods import METRICS, MethodSet, mean_scores, score_results, score_rows
from .metrics import CDCMeter

DEFINITIONS = {
    "flicker": "sum_t mean|ab_t - ab_(t-1)| of the result / the same for the source",
    "cdc": "colour distribution consistency (NTIRE 2023): Jensen-Shannon divergence (natural log) of the "
           "per-channel 256-level RGB histograms of frames t and t+d, mean over t, then over d in {1, 2, 4} "
           "and the channels; cdc_source is the source clip's own",
}
_TIME = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(s?)")


def frame_offset(text: str, fps: Fraction) -> int:
    """A time as a number of frames: '15' is 15 frames, '1.5s' is 1.5 seconds (rounded to a frame)."""
    match = _TIME.fullmatch(text.strip())
    if not match or (not match.group(2) and "." in match.group(1)):
        raise ValueError(f"malformed time {text!r} (frames, e.g. 15, or seconds, e.g. 1.5s)")
    number, seconds = match.groups()
    return round(Fraction(number) * fps) if seconds else int(number)


def parse_gaps(text: str, fps: Fraction) -> dict[str, int]:
    """'1,1s,3s' -> {label: frames after the keyframe}, in the order given; every gap at least one frame."""
    gaps = {}
    for label in filter(None, (part.strip() for part in text.split(","))):
        offset = frame_offset(label, fps)
        if offset < 1:
            raise ValueError(f"gap {label!r} is less than one frame after the keyframe")
        gaps[label] = offset
    if not gaps:
        raise ValueError("--gaps needs at least one gap, e.g. 1,1s,3s")
    return gaps


class _Steadiness:
    """Frame-to-frame change of one clip (the source, or one method's result): the flicker sum and the CDC."""

    def __init__(self) -> None:
        self.previous_ab: torch.Tensor | None = None                  # (1, 2, H, W), the last frame's
        self.change = 0.0
        self.cdc = CDCMeter()

    def add(self, rgb: torch.Tensor) -> None:
        """The clip's next frames (B, 3, H, W) in [0, 1]."""
        ab = rgb_to_lab(rgb)[:, 1:]
        if self.previous_ab is not None:
            ab = torch.cat([self.previous_ab, ab])
        self.change += float((ab[1:] - ab[:-1]).abs().mean(dim=(1, 2, 3)).sum())
        self.previous_ab = ab[-1:]
        self.cdc.add(rgb)


@dataclass
class VideoReport:
    methods: list[str]
    frames: list[dict]                         # {"frame", "method", *METRICS}
    flicker: dict[str, float | None]
    cdc: dict[str, float | None]               # per method, and "source"
    gaps: dict[str, int] = field(default_factory=dict)       # keyframe protocol: {label: frame index}
    sheet: list[SheetRow] = field(default_factory=list)
    settings: dict = field(default_factory=dict)
    elapsed_s: float = 0.0

    def summary(self) -> dict[str, dict[str, float | None]]:
        """{method: {metric: mean over frames, "flicker", "cdc"}}."""
        return {method: {**mean_scores([f for f in self.frames if f["method"] == method]),
                         "flicker": self.flicker[method], "cdc": self.cdc[method]} for method in self.methods}

    def gap_summary(self) -> dict[str, dict[str, dict[str, float | None]]]:
        """Keyframe protocol: {method: {gap label: {metric: score of the frame that far after the keyframe}}}."""
        by_frame = {(f["frame"], f["method"]): f for f in self.frames}
        return {method: {label: {m: by_frame[index, method][m] for m in METRICS}
                         for label, index in self.gaps.items() if (index, method) in by_frame}
                for method in self.methods}

    def to_json(self) -> dict:
        definitions = {**{key: protocol()[key] for key in METRICS}, **DEFINITIONS}
        payload = {"mode": "video", **self.settings, "methods": self.methods, "protocol": definitions,
                   "summary": self.summary(), "cdc_source": self.cdc["source"]}
        if self.gaps:
            payload["gap_frames"] = self.gaps
            payload["gaps"] = self.gap_summary()
        return {**payload, "per_frame": self.frames, "elapsed_s": round(self.elapsed_s, 3)}


def evaluate_video(frames: Iterable[torch.Tensor], reference: torch.Tensor, methods: MethodSet, seed: int = 0,
                   batch_size: int = 16, device: torch.device = torch.device("cpu"),
                   sheet_frames: Collection[int] = range(4), gaps: dict[str, int] | None = None,
                   progress: Callable[[int], None] | None = None) -> VideoReport:
    """Greyed frames (3, H, W) uint8 colorized with one reference (1|3, Hr, Wr) (uint8 or float in [0, 1]);
    `gaps` ({label: frame index}) are reported on their own (keyframe protocol); `progress(n)` after every n
    frames. The contact sheet shows the frames in `sheet_frames`."""
    started = time.perf_counter()
    report = VideoReport(methods.names, [], {}, {}, dict(gaps or {}))
    ref = image_to_float(reference)[None].to(device)                                   # (1, 3, Hr, Wr)
    steadiness = {name: _Steadiness() for name in ["source", *methods.names]}
    captions = {index: f"frame {index} (keyframe + {label})" for label, index in report.gaps.items()}
    count = 0
    for batch in batched(frames, batch_size):
        targets = torch.stack(batch)                                                    # (B, 3, H, W) uint8
        results = methods.colorize(targets, ref, [seed] * len(batch))
        truth = targets.to(device).float() / 255.0
        lightness = rgb_to_lab(truth)[:, :1]
        for name, rgb in [("source", truth), *results.items()]:
            steadiness[name].add(rgb)
        scores = score_results(results, truth, ref)
        for offset in range(len(batch)):
            report.frames.extend(score_rows(scores, offset, frame=count + offset))
            if count + offset in sheet_frames:
                caption = captions.get(count + offset, f"frame {count + offset}")
                report.sheet.append(sheet_row(lightness, ref[0], results, truth, offset, caption))
        count += len(batch)
        if progress is not None:
            progress(len(batch))
    if count == 0:
        raise ValueError("the video has no frames")
    source = steadiness["source"]
    # flicker relative to the source; undefined for a video whose colours never change
    report.flicker = {name: (steadiness[name].change / source.change if source.change > 1e-9 else None)
                      for name in methods.names}
    report.cdc = {name: meter.cdc.value() for name, meter in steadiness.items()}
    report.elapsed_s = time.perf_counter() - started
    return report
