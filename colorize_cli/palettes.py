"""Palettes for `sscn palette`: colours from the command line or from a file.

Files: GIMP `.gpl`; plain text of hex colours (one or more a line, `#` followed by a space starts a
comment); JSON (a list of hex strings or [r, g, b] triples, or {"colors": [...], "weights": [...]});
or an image, whose dominant colours (k-means, `models.palette.dominant_colors`) are taken with their
pixel shares as weights.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from sscn.constants import IMAGE_SUFFIXES
from sscn.images import image_to_float, read_image
from sscn.models.palette import check_weights, dominant_colors, parse_hex_color

RGB = tuple[int, int, int]
IMAGE_PALETTE_SUFFIXES = IMAGE_SUFFIXES | {".gif"}      # the photos', and GIF: a palette format itself
_COMMENT = re.compile(r"^\s*(#\s|#$|//|;)")
_SEPARATORS = re.compile(r"[\s,]+")


@dataclass
class Palette:
    colors: list[RGB]
    weights: list[float] | None


def parse_colors(text: str) -> list[RGB]:
    """'#e63946,#f1faee a8dadc' -> [(230, 57, 70), ...]; ValueError names the malformed colour."""
    tokens = [t for t in _SEPARATORS.split(text.strip()) if t]
    if not tokens:
        raise ValueError("no colours given (e.g. --colors '#e63946,#f1faee,#a8dadc')")
    return [parse_hex_color(token) for token in tokens]


def parse_weights(text: str) -> list[float]:
    """'0.5,0.3,0.2' -> [0.5, 0.3, 0.2]; ValueError on anything but non-negative numbers."""
    weights = []
    for token in (t for t in _SEPARATORS.split(text.strip()) if t):
        try:
            weight = float(token)
        except ValueError:
            raise ValueError(f"malformed weight {token!r} (expected numbers such as 0.5,0.3,0.2)") from None
        if not weight >= 0 or weight == float("inf"):
            raise ValueError(f"weight {token!r} must be a finite number >= 0")
        weights.append(weight)
    if not weights:
        raise ValueError("no weights given (e.g. --weights 0.5,0.3,0.2)")
    return weights


def read_palette(path: Path, count: int = 5, seed: int = 0) -> Palette:
    """A palette file (see the module docstring); ValueError naming the file on any problem."""
    if path.suffix.lower() in IMAGE_PALETTE_SUFFIXES:
        return _image_palette(path, count, seed)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ValueError(f"{path}: palette file not found") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a palette file (not text, and not an image by its suffix)") from None
    except OSError as error:
        raise ValueError(f"{path}: cannot read ({error.strerror})") from None
    try:
        if text.lstrip().startswith("GIMP Palette"):
            palette = _gpl_palette(text)
        elif text.lstrip()[:1] in ("[", "{"):
            palette = _json_palette(text)
        else:
            palette = Palette(_text_colors(text), None)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    if not palette.colors:
        raise ValueError(f"{path}: no colours found")
    return palette


def _text_colors(text: str) -> list[RGB]:
    lines = [line for line in text.splitlines() if line.strip() and not _COMMENT.match(line)]
    return [color for line in lines for color in parse_colors(line)]


def _gpl_palette(text: str) -> Palette:
    """GIMP palette: a header, optional `Name:` / `Columns:` lines, then `R G B [name]` rows."""
    colors = []
    for number, line in enumerate(text.splitlines()[1:], start=2):
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or re.match(r"^(Name|Columns)\s*:", stripped):
            continue
        fields = stripped.split()
        try:
            rgb = tuple(int(v) for v in fields[:3])
        except ValueError:
            rgb = ()
        if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
            raise ValueError(f"line {number}: malformed GIMP palette row {stripped!r} (expected 'R G B name')")
        colors.append(rgb)
    return Palette(colors, None)


def _json_palette(text: str) -> Palette:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"malformed JSON ({error})") from None
    weights = None
    if isinstance(data, dict):
        if "colors" not in data:
            raise ValueError('JSON palette object needs a "colors" list')
        weights = data.get("weights")
        data = data["colors"]
    if not isinstance(data, list):
        raise ValueError("JSON palette must be a list of colours or {\"colors\": [...], \"weights\": [...]}")
    colors = [_json_color(item) for item in data]
    if weights is not None:
        if not isinstance(weights, list) or not all(isinstance(w, (int, float)) for w in weights):
            raise ValueError('"weights" must be a list of numbers')
        weights = [float(w) for w in weights]
        check_weights(weights, len(colors))
    return Palette(colors, weights)


def _json_color(item) -> RGB:
    if isinstance(item, str):
        return parse_hex_color(item)
    if (isinstance(item, list) and len(item) == 3 and all(isinstance(v, int) and 0 <= v <= 255 for v in item)):
        return tuple(item)  # type: ignore[return-value]
    raise ValueError(f"malformed colour {item!r} (expected '#rrggbb' or [r, g, b] with 0-255 values)")


def _image_palette(path: Path, count: int, seed: int) -> Palette:
    if not 1 <= count <= 64:
        raise ValueError(f"--count must be between 1 and 64 (got {count})")
    rgb = image_to_float(read_image(path).pixels)                     # (3, H, W) in [0, 1]
    centers, shares = dominant_colors(rgb[None], count, torch.Generator().manual_seed(seed),
                                      iterations=10, thumbnail=64)            # (1, count, 3), (1, count)
    colors = [tuple(int(round(v * 255)) for v in center.tolist()) for center in centers[0]]
    return Palette(colors, shares[0].tolist())  # type: ignore[arg-type]
