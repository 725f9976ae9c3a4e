"""The rows of `sscn evaluate`'s tables and their scores, shared by its three protocols (train.evaluate,
train.evaluate_pairs, train.evaluate_video).

A row is a baseline (train.baselines) or the network, run through `Colorizer` like every other use of it: as
sscn (sparse attention with the row's k / r, §3.3), dense (every reference region) or stage1 (GCT alone, §3.2).
Per batch of (target, reference) pairs the references are encoded once (`Colorizer.encode_reference_batch`, row i
for target i, its random picks seeded by the pair's seed, so a pair's selection does not depend on its batch) and
every network row is derived from that one encoding. Every row's result is the target's own L merged with its ab
(out-of-gamut ab pulled towards grey, as `Colorizer` does), scored against the truth: PSNR, SSIM, mean
CIEDE2000 and the colourfulness ratio in RGB uint8, and HIS between the result and the reference
(train.metrics states the definitions).
"""
from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from sscn.constants import METHODS, NETWORK_METHODS
from sscn.models.checkpoint import default_weights_path, load_checkpoint
from sscn.models.color import lab_to_rgb_keep_lightness, rgb_to_lab
from sscn.models.colorizer import Colorizer
from sscn.models.ldt import check_selection
from sscn.models.sscn import SSCN
from sscn.models.upsample import UPSAMPLERS

from .baselines import BASELINES
from .metrics import ab_histogram, colorfulness_ratio, intersect, mean_delta_e00, psnr, ssim

# method -> the attention the network runs with
NETWORK_KINDS = dict(zip(NETWORK_METHODS, ("sparse", "dense", "stage1"), strict=True))
METRICS = ("psnr", "ssim", "his", "de00", "colorfulness_ratio")


@dataclass(frozen=True)
class MethodSpec:
    """One row of the table: a baseline, or the network as sscn (sparse k/r), dense or stage1."""
    name: str
    kind: str                        # "sparse" | "dense" | "stage1" | "baseline"
    k: int | None = None
    r: int | None = None
    upsample: str | None = None      # network rows: ab to the target's size (models.upsample); None: the colorizer's


def with_upsamplers(specs: list[MethodSpec]) -> list[MethodSpec]:
    """Each network row once per upsampling method ("sscn bilinear", "sscn guided"), baselines once: the rows of
    the full-resolution protocol."""
    return [dataclasses.replace(spec, name=f"{spec.name} {method}", upsample=method) if method else spec
            for spec in specs for method in (UPSAMPLERS if spec.kind != "baseline" else (None,))]


def parse_sweep(text: str) -> list[tuple[int, int]]:
    """'64:64,128:128' -> [(64, 64), (128, 128)]."""
    pairs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        match = re.fullmatch(r"(\d+):(\d+)", item)
        if not match:
            raise ValueError(f"malformed --sweep entry {item!r} (expected k:r, e.g. 128:128)")
        pairs.append((int(match.group(1)), int(match.group(2))))
    if not pairs:
        raise ValueError("--sweep needs at least one k:r entry")
    return pairs


def method_specs(names: list[str], k: int | None = None, r: int | None = None,
                 sweep: list[tuple[int, int]] = ()) -> list[MethodSpec]:
    """Table rows for `--methods` (plus `--sweep` rows `sscn k=.. r=..`), validated; k / r None = the model's."""
    specs = []
    for name in names:
        if name not in METHODS:
            raise ValueError(f"unknown method {name!r}; choose from {', '.join(METHODS)}")
        if name in {spec.name for spec in specs}:
            continue
        kind = NETWORK_KINDS.get(name, "baseline")
        specs.append(MethodSpec(name, kind, k, r) if kind == "sparse" else MethodSpec(name, kind))
    for sweep_k, sweep_r in sweep:
        check_selection(sweep_k, sweep_r)
        specs.append(MethodSpec(f"sscn k={sweep_k} r={sweep_r}", "sparse", sweep_k, sweep_r))
    if not specs:
        raise ValueError("no methods to evaluate")
    return specs


def merge_lightness(lightness: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """The result image, as `Colorizer` makes it: L (B, 1, H, W) in [0, 100] with ab (B, 2, H, W) in Lab units
    -> RGB (B, 3, H, W) in [0, 1], out-of-gamut ab pulled towards grey so that L is kept."""
    return lab_to_rgb_keep_lightness(torch.cat([lightness, ab.to(lightness.dtype)], dim=1))


def as_float(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) uint8 or float in [0, 1] -> float32 in [0, 1]."""
    return images.float() / 255.0 if images.dtype == torch.uint8 else images.float()


class MethodSet:
    """Every requested method, applied to one batch of (target, reference) pairs (module docstring); the network
    rows need a `Colorizer`, the baselines run on `device`."""

    def __init__(self, specs: list[MethodSpec], colorizer: Colorizer | None, device: torch.device) -> None:
        self.specs = specs
        self.network_specs = [spec for spec in specs if spec.kind != "baseline"]
        if self.network_specs and colorizer is None:
            raise ValueError("network methods need a model")
        self.colorizer = colorizer
        self.device = device

    @property
    def names(self) -> list[str]:
        return [spec.name for spec in self.specs]

    @torch.inference_mode()
    def colorize(self, targets: torch.Tensor, references: torch.Tensor, seeds: list[int]) -> dict[str, torch.Tensor]:
        """Targets (B, 3, H, W) uint8 or float in [0, 1] (their L is the input, their colours the truth),
        references (B | 1, 3, Hr, Wr) in [0, 1], one seed per target -> {name: RGB (B, 3, H, W) in [0, 1] on
        `device`}."""
        lightness = rgb_to_lab(as_float(targets.to(self.device)))[:, :1]                    # (B, 1, H, W)
        results = {}
        if self.network_specs:
            reference = self.colorizer.encode_reference_batch(list(references), seeds[:len(references)])
            for spec in self.network_specs:
                rows = self.colorizer.colorize(list(targets), reference, k=spec.k, r=spec.r,
                                               dense=spec.kind != "sparse", stage1_only=spec.kind == "stage1",
                                               upsample=spec.upsample)
                results[spec.name] = as_float(torch.stack([row.rgb for row in rows]).to(self.device))
        for spec in self.specs:
            if spec.kind == "baseline":
                ab = BASELINES[spec.name](lightness, references.to(self.device), seeds)
                results[spec.name] = merge_lightness(lightness, ab)
        return {name: results[name] for name in self.names}


def load_network(specs: list[MethodSpec], weights: str | Path | None) -> tuple[SSCN | None, list[MethodSpec]]:
    """The model, loaded only when a network method is asked for (baselines need no weights), and the specs
    with the checkpoint's k / r filled in where a sparse row has none (checked)."""
    if all(spec.kind == "baseline" for spec in specs):
        return None, specs
    model = load_checkpoint(weights or default_weights_path())
    specs = [dataclasses.replace(spec, k=model.config.k if spec.k is None else spec.k,
                                 r=model.config.r if spec.r is None else spec.r)
             if spec.kind == "sparse" else spec for spec in specs]
    for spec in specs:
        if spec.kind == "sparse":
            check_selection(spec.k, spec.r)
    return model, specs


def build_methods(specs: list[MethodSpec], weights: str | Path | None, device: torch.device,
                  size: int, precision: str = "auto", upsample: str = "guided") -> MethodSet:
    """Every method of `specs` for batches of (target, reference) pairs (load_network); the network at working
    size `size`, `precision` and `upsample` as `Colorizer` takes them."""
    model, specs = load_network(specs, weights)
    colorizer = None if model is None else Colorizer(model=model, device=str(device), precision=precision,
                                                      size=size, upsample=upsample)
    return MethodSet(specs, colorizer, device)


def score_results(results: dict[str, torch.Tensor], truth: torch.Tensor,
                  references: torch.Tensor) -> dict[str, dict[str, list[float | None]]]:
    """{name: {metric: one score per image}} (METRICS) for results (B, 3, H, W) against the truth (B, 3, H, W)
    and the references (B | 1, 3, Hr, Wr), whose histograms are computed once for all methods; an undefined
    colourfulness ratio (grey truth) is None."""
    ref_hist = ab_histogram(references)
    return {name: {"psnr": psnr(rgb, truth).tolist(), "ssim": ssim(rgb, truth).tolist(),
                   "his": intersect(ab_histogram(rgb), ref_hist).tolist(),
                   "de00": mean_delta_e00(rgb, truth).tolist(),
                   "colorfulness_ratio": [None if math.isnan(value) else value
                                          for value in colorfulness_ratio(rgb, truth).tolist()]}
            for name, rgb in results.items()}


def score_rows(scores: dict[str, dict[str, list[float | None]]], index: int, **labels) -> list[dict]:
    """One row per method for image `index` of a scored batch: the labels, "method", then every metric."""
    return [{**labels, "method": name, **{metric: columns[metric][index] for metric in METRICS}}
            for name, columns in scores.items()]


def mean_scores(rows: list[dict]) -> dict[str, float | None]:
    """{metric: mean over `rows`} for every metric; undefined values (None) are left out of their mean."""
    means = {}
    for metric in METRICS:
        values = [row[metric] for row in rows if row[metric] is not None]
        means[metric] = sum(values) / len(values) if values else None
    return means
