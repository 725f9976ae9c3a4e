"""The real-reference protocol of `sscn evaluate --pairs`: a target photo colorized from a *different* photo.

Self-augmentation (train.evaluate) says how well colours are copied from a warped copy of the target itself;
real pairs say how well they are chosen from another photo of a related scene, as users colorize. Each row of
a pairs file names a target (a colour photo: the truth), a reference and an optional kind (campus, fish, ...):
- the target is resized to short side `size` (aspect kept, no crop) and quantised to 8 bits; every method gets
  its lightness, and its own colours are the truth;
- the reference is used whole, as `sscn colorize` uses it: the network rows run through `Colorizer` (the
  reference resized to the working size there, one seed for every pair, as `sscn colorize --seed`; one
  encoding serves sscn, dense and stage1, train.methods); the baselines get the full-resolution reference;
- scores as in train.evaluate: PSNR, SSIM, mean ΔE00 and colourfulness ratio against the target, HIS against
  the reference; means per kind and over all pairs.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from sscn.images import float_to_bytes, image_to_float
from sscn.models.color import rgb_to_lab

from .evaluate import SheetRow, protocol, sheet_row
from .methods import METRICS, MethodSet, mean_scores, score_results, score_rows

SHEET_ROWS = 8


@dataclass(frozen=True)
class Pair:
    target: str             # as written in the pairs file (relative to its root folder)
    reference: str
    kind: str               # "" when the row names none
    line: int               # in the pairs file, for messages


def pairs_protocol() -> dict:
    """The protocol's definitions, written into every JSON report."""
    definitions = protocol()
    return {
        "target": "colour photo resized to short side `size` (aspect kept, no crop), 8-bit; its L is the input "
                  "and its colours the truth",
        "reference": "another photo, whole, read and encoded as `sscn colorize` does (network rows through "
                     "Colorizer with one seed for all pairs); baselines get it at full resolution",
        **{metric: definitions[metric] for metric in METRICS},
        "mean": "mean over all pairs (per kind: over that kind's pairs)",
    }


def resize_short_side(image: torch.Tensor, size: int) -> torch.Tensor:
    """(1|3, H, W) uint8 or float in [0, 1] -> (3, H', W') uint8 with min(H', W') = size, aspect kept."""
    rgb = image_to_float(image)
    height, width = rgb.shape[-2:]
    scale = size / min(height, width)
    resized = F.interpolate(rgb[None], size=(max(1, round(height * scale)), max(1, round(width * scale))),
                            mode="bilinear", align_corners=False, antialias=True)[0]
    return float_to_bytes(resized)


@dataclass
class PairsReport:
    methods: list[str]
    scores: list[dict]                          # {"target", "reference", "kind", "method", *METRICS}
    sheet: list[SheetRow] = field(default_factory=list)
    settings: dict = field(default_factory=dict)
    elapsed_s: float = 0.0

    @property
    def kinds(self) -> list[str]:
        """The pairs' kinds in the order they first appear (rows without one are only in the mean)."""
        return list(dict.fromkeys(row["kind"] for row in self.scores if row["kind"]))

    def summary(self) -> dict[str, dict[str, dict[str, float | None]]]:
        """{method: {kind | "mean": {metric: mean over pairs}}}; "mean" is over every pair."""
        table = {}
        for method in self.methods:
            rows = [row for row in self.scores if row["method"] == method]
            table[method] = {kind: mean_scores([row for row in rows if row["kind"] == kind]) for kind in self.kinds}
            table[method]["mean"] = mean_scores(rows)
        return table

    def to_json(self) -> dict:
        return {"mode": "pairs", **self.settings, "methods": self.methods, "protocol": pairs_protocol(),
                "summary": self.summary(), "pairs": self.scores, "elapsed_s": round(self.elapsed_s, 3)}


def evaluate_pairs(pairs: Iterable[tuple[Pair, torch.Tensor, torch.Tensor]], methods: MethodSet, size: int = 256,
                   seed: int = 0, sheet_rows: int = SHEET_ROWS,
                   progress: Callable[[int], None] | None = None) -> PairsReport:
    """Score every method on (pair, target pixels, reference pixels), each image (1|3, H, W) uint8 or float in
    [0, 1] as decoded, one pair at a time, `seed` seeding every pair's sparse selection (as `sscn colorize
    --seed`); `progress(1)` after each pair. The contact sheet shows the first pair of each kind (and every pair
    without one), at most `sheet_rows`."""
    started = time.perf_counter()
    report = PairsReport(methods.names, [])
    on_sheet: set[str] = set()
    for pair, target_pixels, reference_pixels in pairs:
        target = resize_short_side(target_pixels, size)[None]                                # (1, 3, H, W) uint8
        reference = image_to_float(reference_pixels)[None]                                   # (1, 3, Hr, Wr)
        results = methods.colorize(target, reference, [seed])
        truth, reference = target.to(methods.device).float() / 255.0, reference.to(methods.device)
        scores = score_results(results, truth, reference)
        report.scores.extend(score_rows(scores, 0, target=pair.target, reference=pair.reference, kind=pair.kind))
        if (not pair.kind or pair.kind not in on_sheet) and len(report.sheet) < sheet_rows:
            on_sheet.add(pair.kind)
            lightness = rgb_to_lab(truth)[:, :1]
            report.sheet.append(sheet_row(lightness, reference[0], results, truth, 0,
                                          f"{pair.target} <- {pair.reference}"))
        if progress is not None:
            progress(1)
    if not report.scores:
        raise ValueError("no pairs to evaluate")
    report.elapsed_s = time.perf_counter() - started
    return report
