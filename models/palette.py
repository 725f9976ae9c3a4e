"""Palette references: a list of colours (and optional weights) drawn as a swatch image (paper [36]).

The swatch image goes through the same reference path as a photo. Colours are laid out as vertical
stripes whose widths follow the weights.
"""
from __future__ import annotations

import re

import torch

_HEX = re.compile(r"^#?([0-9a-fA-F]{6}|[0-9a-fA-F]{3})$")


def parse_hex_color(text: str) -> tuple[int, int, int]:
    """'#e63946', 'e63946' or '#e39' -> (230, 57, 70). ValueError names the bad colour."""
    match = _HEX.match(text.strip())
    if not match:
        raise ValueError(f"malformed colour {text!r} (expected a hex colour such as #e63946)")
    digits = match.group(1)
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    return tuple(int(digits[i:i + 2], 16) for i in (0, 2, 4))  # type: ignore[return-value]


def palette_image(colors: list[tuple[int, int, int]], weights: list[float] | None = None,
                  size: int = 256) -> torch.Tensor:
    """Swatch reference (3, size, size) in [0, 1]: one stripe per colour, widths proportional to weights."""
    if not colors:
        raise ValueError("a palette needs at least one colour")
    if weights is None:
        weights = [1.0] * len(colors)
    if len(weights) != len(colors):
        raise ValueError(f"{len(weights)} weights for {len(colors)} colours")
    if any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError("palette weights must be >= 0 and not all zero")
    total = sum(weights)
    edges = [0]
    for w in weights:
        edges.append(edges[-1] + w / total * size)
    bounds = [round(e) for e in edges]
    image = torch.zeros(3, size, size)
    for color, start, stop in zip(colors, bounds[:-1], bounds[1:]):
        image[:, :, start:stop] = torch.tensor(color, dtype=torch.float32).view(3, 1, 1) / 255.0
    return image


def dominant_colors(rgb: torch.Tensor, count: int = 5, iterations: int = 10,
                    generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """k-means in RGB over an image (3, H, W) in [0, 1] -> colours (count, 3) and their pixel shares (count,).

    Colours come back sorted by share, largest first.
    """
    pixels = rgb.flatten(1).T.float()                                   # (H*W, 3)
    if pixels.shape[0] > 4096:
        pick = torch.randperm(pixels.shape[0], generator=generator)[:4096]
        pixels = pixels[pick]
    count = min(count, pixels.shape[0])
    centers = pixels[torch.randperm(pixels.shape[0], generator=generator)[:count]].clone()
    for _ in range(iterations):
        assign = torch.cdist(pixels, centers).argmin(dim=1)
        for c in range(count):
            members = pixels[assign == c]
            if len(members):
                centers[c] = members.mean(dim=0)
    assign = torch.cdist(pixels, centers).argmin(dim=1)
    shares = torch.bincount(assign, minlength=count).float() / len(pixels)
    order = shares.argsort(descending=True)
    return centers[order], shares[order]
