"""The self-augmentation benchmark of `sscn evaluate` (paper §4.2, Table 1), methods side by side.

Photos: each photo is resized to short side `size` and centre-cropped to size x size; its L is the target and
four references are made from the photo itself:
  tps      thin-plate-spline warp: 5 x 5 control points moved uniformly by up to 0.1 (in [-1, 1] units)
  rr       random rotation, uniform in [-30, 30] degrees, borders filled by reflection
  rc       random crop, side 50-80 % of the photo's, anywhere inside it, resized back to size x size
  palette  the photo's 6 dominant colours (k-means) as stripes whose widths follow their shares
Every reference of a photo comes from its own CPU generator seeded by `pair_seed(file name, kind, seed)`
(SHA-256, not Python's salted hash), so every run, device, batch size and method sees the same pairs; the
sparse selection of the network's random positions uses the same seed.

Every method (train.methods: the network through `Colorizer`, and the baselines) colorizes the target's L and is
scored against the photo: PSNR, SSIM, mean CIEDE2000 and the colourfulness ratio against the photo in RGB uint8,
and HIS between the result and the reference (train.metrics states the definitions). The "mean" column is the
mean over tps / rr / rc, as in Table 1; the palette column stands apart (it has no spatial information).

The other protocols share the methods, the scores and the report files: real reference photos
(train.evaluate_pairs) and video (train.evaluate_video).
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from sscn.images import to_uint8
from sscn.models.color import rgb_to_lab
from sscn.models.outputs import atomic_write
from sscn.models.palette import dominant_colors, swatch_images

from .data import load_square
from .methods import METRICS, MethodSet, mean_scores, merge_lightness, score_results, score_rows
from .metrics import COLORFULNESS_MIN_TRUTH, PSNR_CAP_DB
from .pairs import affine_matrices, apply_affine, identity_grid, random_crop_matrices, random_tps_grid

REFERENCE_KINDS = ("tps", "rr", "rc", "palette")
KIND_TITLES = {"tps": "TPS", "rr": "RR", "rc": "RC", "palette": "palette", "mean": "mean"}
MEAN_KINDS = ("tps", "rr", "rc")            # Table 1's "Mean"


@dataclass(frozen=True)
class ReferenceSettings:
    tps_strength: float = 0.1       # control-point displacement, [-1, 1] units (training's ordinary pairs)
    tps_points: int = 5             # control points per side
    max_rotation_deg: float = 30.0
    crop_scale: tuple[float, float] = (0.5, 0.8)
    palette_colors: int = 6


def protocol(settings: ReferenceSettings = ReferenceSettings()) -> dict:
    """The benchmark's definitions, written into every JSON report."""
    low, high = settings.crop_scale
    return {
        "target": "photo resized to short side `size`, centre-cropped; its L is the input",
        "references": {
            "tps": f"thin-plate-spline warp, {settings.tps_points}x{settings.tps_points} control points displaced "
                   f"by up to {settings.tps_strength} ([-1, 1] units)",
            "rr": f"rotation uniform in +-{settings.max_rotation_deg:g} degrees, reflected borders",
            "rc": f"crop of {low:.0%}-{high:.0%} of the side, resized to the full size",
            "palette": f"{settings.palette_colors} dominant colours (k-means) as stripes, widths = shares",
        },
        "seed": "per image and reference: sha256('{seed}:{file name}:{kind}')",
        "psnr": f"RGB uint8, 10 log10(255^2 / MSE), capped at {PSNR_CAP_DB:g} dB",
        "ssim": "RGB uint8, Gaussian window sigma 1.5 (11 taps), K1 0.01, K2 0.03, data range 255, population "
                "covariance, per channel, 5-pixel border excluded, mean over channels (= scikit-image "
                "structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False))",
        "his": "ab histogram intersection of result and reference, 23x23 cells of side 10 centred on multiples "
               "of 10",
        "de00": "mean over the pixels of CIEDE2000 (kL = kC = kH = 1) between result and truth in CIE Lab (D65)",
        "colorfulness_ratio": "Hasler-Süsstrunk colourfulness (RGB 0-255) of the result / of the truth; null for "
                              f"a truth below {COLORFULNESS_MIN_TRUTH:g}",
        "full_size": "with --full-size N: the truth and the target's L at short side N (centre-cropped), the "
                     "references as above at `size`, the network at `size`; its ab is upsampled to N by each "
                     "method (bilinear, guided)",
        "mean": "mean over tps, rr, rc (Table 1)",
    }


def pair_seed(name: str, kind: str, seed: int = 0) -> int:
    """A stable 63-bit seed for one (image, reference kind), the same in every process and on every machine."""
    digest = hashlib.sha256(f"{seed}:{name}:{kind}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def make_reference(photo: torch.Tensor, kind: str, seed: int,
                   settings: ReferenceSettings = ReferenceSettings()) -> torch.Tensor:
    """One self-augmented reference (3, S, S) in [0, 1] of a photo (3, S, S) in [0, 1] (CPU tensors)."""
    generator = torch.Generator().manual_seed(seed)
    batch = photo[None]                                                          # (1, 3, S, S)
    height, width = photo.shape[-2:]
    if kind == "palette":
        colors, shares = dominant_colors(batch, settings.palette_colors, generator)
        return swatch_images(colors, shares, height, width)[0]
    if kind == "tps":
        grid = random_tps_grid(1, height, width, torch.tensor([settings.tps_strength]), generator,
                               per_side=settings.tps_points)
    elif kind == "rr":
        limit = math.radians(settings.max_rotation_deg)
        angle = (torch.rand(1, generator=generator) * 2 - 1) * limit
        rotation = affine_matrices(angle, torch.ones(1), torch.zeros(1, 2), torch.zeros(1, dtype=torch.bool))
        grid = apply_affine(identity_grid(1, height, width, "cpu"), rotation)
    elif kind == "rc":
        crop = random_crop_matrices(1, *settings.crop_scale, generator, "cpu")
        grid = apply_affine(identity_grid(1, height, width, "cpu"), crop)
    else:
        raise ValueError(f"unknown reference kind {kind!r}; choose one of {', '.join(REFERENCE_KINDS)}")
    warped = F.grid_sample(batch, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    return warped[0].clamp(0.0, 1.0)


# --- photo benchmark ---------------------------------------------------------------------------------

@dataclass
class SheetRow:
    gray: torch.Tensor                         # (3, S, S) in [0, 1]
    reference: torch.Tensor
    results: dict[str, torch.Tensor]
    truth: torch.Tensor
    label: str


def sheet_row(lightness: torch.Tensor, reference: torch.Tensor, results: dict[str, torch.Tensor],
               truth: torch.Tensor, index: int, label: str) -> SheetRow:
    """Pair `index` of a batch (its reference given as (3, Hr, Wr)), copied to the CPU for the contact sheet."""
    gray = merge_lightness(lightness[index:index + 1], lightness.new_zeros(1, 2, *lightness.shape[-2:]))[0]
    return SheetRow(gray.cpu(), reference.cpu(), {name: rgb[index].cpu() for name, rgb in results.items()},
                    truth[index].cpu(), label)


@dataclass
class PhotoReport:
    methods: list[str]
    scores: list[dict]                         # {"image", "reference", "method", "psnr", "ssim", "his"}
    failed: list[dict] = field(default_factory=list)   # {"file", "error"}
    sheet: list[SheetRow] = field(default_factory=list)
    settings: dict = field(default_factory=dict)
    elapsed_s: float = 0.0

    def summary(self) -> dict[str, dict[str, dict[str, float]]]:
        """{method: {kind | "mean": {metric: mean over images}}}; "mean" averages tps / rr / rc."""
        table: dict[str, dict[str, dict[str, float]]] = {}
        for method in self.methods:
            rows = [s for s in self.scores if s["method"] == method]
            columns = {}
            for kind in REFERENCE_KINDS:
                picked = [s for s in rows if s["reference"] == kind]
                if picked:
                    columns[kind] = mean_scores(picked)
            means = [columns[kind] for kind in MEAN_KINDS if kind in columns]
            if means:
                columns["mean"] = mean_scores(means)
            table[method] = columns
        return table

    def to_json(self) -> dict:
        return {"mode": "photos", **self.settings, "methods": self.methods, "protocol": protocol(),
                "summary": self.summary(), "pairs": self.scores, "failed": self.failed,
                "elapsed_s": round(self.elapsed_s, 3)}


def _photo_batches(paths: list[Path], photos_per_batch: int, size: int,
                   failed: list[dict]) -> Iterator[tuple[list[Path], torch.Tensor]]:
    """Decoded photos (P, 3, S, S) uint8 in groups; unreadable files are recorded in `failed` and skipped."""
    from PIL import Image

    group: list[tuple[Path, torch.Tensor]] = []
    for index, path in enumerate(paths):
        try:
            group.append((path, load_square(path, size)))
        except (OSError, ValueError, Image.DecompressionBombError) as error:
            failed.append({"file": str(path), "error": str(error) or type(error).__name__})
        if group and (len(group) == photos_per_batch or index == len(paths) - 1):
            yield [p for p, _ in group], torch.stack([photo for _, photo in group])
            group = []


def evaluate_photos(paths: list[Path], methods: MethodSet, size: int = 256, seed: int = 0,
                    batch_size: int = 16, device: torch.device = torch.device("cpu"), sheet_rows: int = 4,
                    progress: Callable[[int], None] | None = None, full_size: int | None = None) -> PhotoReport:
    """Run every method on the four references of every photo; `progress(n)` after each n photos. With
    `full_size` the truth and the target are the photo at that size (the references stay at `size`)."""
    started = time.perf_counter()
    report = PhotoReport(methods.names, [])
    photos_per_batch = max(1, batch_size // len(REFERENCE_KINDS))
    for names, photos in _photo_batches(paths, photos_per_batch, size, report.failed):
        pairs = [(name, kind, pair_seed(name.name, kind, seed)) for name in names for kind in REFERENCE_KINDS]
        references = torch.stack([make_reference(photos[i // len(REFERENCE_KINDS)].float() / 255.0, kind, pair)
                                  for i, (_, kind, pair) in enumerate(pairs)])           # (P*4, 3, S, S)
        if full_size is not None:
            photos = torch.stack([load_square(name, full_size) for name in names])      # (P, 3, N, N)
        targets = photos.repeat_interleave(len(REFERENCE_KINDS), dim=0)                  # (P*4, 3, S, S) uint8
        results = methods.colorize(targets, references, [pair for _, _, pair in pairs])
        truth, references = targets.to(device).float() / 255.0, references.to(device)
        lightness = rgb_to_lab(truth)[:, :1]
        scores = score_results(results, truth, references)
        for index, (path, kind, _) in enumerate(pairs):
            report.scores.extend(score_rows(scores, index, image=path.name, reference=kind))
        for photo_index, path in enumerate(names):
            if len(report.sheet) < sheet_rows:
                # one pair per photo on the sheet, cycling through the reference kinds
                kind_index = len(report.sheet) % len(REFERENCE_KINDS)
                pick = photo_index * len(REFERENCE_KINDS) + kind_index
                report.sheet.append(sheet_row(lightness, references[pick], results, truth, pick,
                                               f"{path.name} / {KIND_TITLES[REFERENCE_KINDS[kind_index]]}"))
        if progress is not None:
            progress(len(names))
    report.elapsed_s = time.perf_counter() - started
    return report


# --- outputs -----------------------------------------------------------------------------------------

def write_json(path: Path, payload: dict) -> None:
    text = json.dumps(payload, indent=2) + "\n"
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def write_csv(path: Path, rows: list[dict]) -> None:
    """One line per row of `rows` (per image and reference, or per frame), columns from the first row."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else ["method", *METRICS],
                            lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(path, lambda tmp: Path(tmp).write_text(buffer.getvalue()))


def save_sheet(path: Path, rows: list[SheetRow], methods: list[str]) -> None:
    """Contact sheet PNG: a header line, then one pair per row: gray | reference | each method | truth. Cells are
    as large as the largest truth; each image is fitted into its cell with its aspect ratio kept."""
    from PIL import Image, ImageDraw

    if not rows:
        raise ValueError("nothing to put on the contact sheet")
    titles = ["gray", "reference", *methods, "truth"]
    tile_h = max(row.truth.shape[-2] for row in rows)
    tile_w = max(row.truth.shape[-1] for row in rows)
    header, caption = 16, 14
    sheet = Image.new("RGB", (tile_w * len(titles), header + len(rows) * (tile_h + caption)), "white")
    draw = ImageDraw.Draw(sheet)
    for column, title in enumerate(titles):
        draw.text((column * tile_w + 3, 2), title, fill="black")
    for row_index, row in enumerate(rows):
        top = header + row_index * (tile_h + caption)
        draw.text((3, top + 1), row.label, fill="black")
        tiles = [row.gray, row.reference, *(row.results[m] for m in methods), row.truth]
        for column, tile in enumerate(tiles):
            scale = min(tile_h / tile.shape[-2], tile_w / tile.shape[-1])
            fitted = (max(1, round(tile.shape[-2] * scale)), max(1, round(tile.shape[-1] * scale)))
            tile = F.interpolate(tile[None].float(), size=fitted, mode="bilinear", align_corners=False,
                                 antialias=True)[0]
            sheet.paste(Image.fromarray(to_uint8(tile)), (column * tile_w + (tile_w - fitted[1]) // 2,
                                                  top + caption + (tile_h - fitted[0]) // 2))
    atomic_write(path, lambda tmp: sheet.save(tmp, format="PNG"))
