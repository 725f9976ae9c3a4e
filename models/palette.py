"""Palette references: a list of colours (and optional weights) drawn as a swatch image (paper [36]).

The swatch image goes through the same reference path as a photo. Colours are laid out as vertical
stripes whose widths follow the weights.
"""
from __future__ import annotations

import math
import re

import torch
import torch.nn.functional as F

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


def check_weights(weights: list[float], count: int) -> None:
    """ValueError unless there is one finite weight >= 0 per colour, not all zero."""
    if len(weights) != count:
        raise ValueError(f"{len(weights)} weights for {count} colours")
    if not all(math.isfinite(w) and w >= 0 for w in weights) or sum(weights) <= 0:
        raise ValueError(f"palette weights must be finite numbers >= 0, not all zero (got {weights})")


def palette_image(colors: list[tuple[int, int, int]], weights: list[float] | None = None,
                  size: int = 256) -> torch.Tensor:
    """Swatch reference (3, size, size) in [0, 1]: one stripe per colour, widths proportional to weights."""
    if not colors:
        raise ValueError("a palette needs at least one colour")
    if weights is None:
        weights = [1.0] * len(colors)
    check_weights(weights, len(colors))
    rgb = torch.tensor(colors, dtype=torch.float32)[None] / 255.0                           # (1, K, 3)
    shares = torch.tensor(weights, dtype=torch.float32)[None] / sum(weights)                # (1, K)
    return swatch_images(rgb, shares, size, size)[0]


def swatch_images(colors: torch.Tensor, shares: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Vertical stripes, widths proportional to `shares` (summing to 1): colors (B, K, 3) -> (B, 3, H, W)."""
    edges = shares.cumsum(dim=1)                                                            # (B, K)
    xs = (torch.arange(width, device=colors.device, dtype=colors.dtype) + 0.5) / width
    stripe = torch.searchsorted(edges.contiguous(), xs.expand(colors.shape[0], -1).contiguous())
    stripe = stripe.clamp(max=colors.shape[1] - 1)                                          # (B, W)
    row = colors.gather(1, stripe[..., None].expand(-1, -1, 3))                            # (B, W, 3)
    return row.transpose(1, 2)[:, :, None, :].expand(-1, -1, height, -1).contiguous()


def dominant_colors(rgb: torch.Tensor, count: int, generator: torch.Generator | None = None,
                    iterations: int = 6, thumbnail: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Batched k-means in RGB over a thumbnail of each image: rgb (B, 3, H, W) in [0, 1] -> colours (B, count, 3)
    and their pixel shares (B, count), sorted by share, largest first.

    One implementation serves palette images at inference and palette pairs in training and evaluation.
    """
    thumb = F.adaptive_avg_pool2d(rgb.float(), thumbnail).flatten(2).transpose(1, 2)        # (B, T*T, 3)
    batch, pixels, _ = thumb.shape
    count = min(count, pixels)
    # Farthest-point seeding from one random pixel: random seeds often start two centres on one colour,
    # and k-means never separates them again.
    start = torch.randint(0, pixels, (batch, 1), generator=generator, device=rgb.device)
    centers = thumb.gather(1, start[..., None].expand(-1, -1, 3))                          # (B, 1, 3)
    for _ in range(count - 1):
        farthest = torch.cdist(thumb, centers).amin(dim=-1).argmax(dim=1, keepdim=True)    # (B, 1)
        centers = torch.cat([centers, thumb.gather(1, farthest[..., None].expand(-1, -1, 3))], dim=1)
    for _ in range(iterations):
        assign = torch.cdist(thumb, centers).argmin(dim=-1)                                 # (B, T*T)
        one_hot = F.one_hot(assign, count).to(thumb.dtype)                                  # (B, T*T, count)
        members = one_hot.sum(dim=1)                                                        # (B, count)
        sums = one_hot.transpose(1, 2) @ thumb                                              # (B, count, 3)
        centers = torch.where(members[..., None] > 0, sums / members.clamp(min=1)[..., None], centers)
    shares = F.one_hot(torch.cdist(thumb, centers).argmin(dim=-1), count).to(thumb.dtype).mean(dim=1)
    shares, order = shares.sort(dim=1, descending=True)
    return centers.gather(1, order[..., None].expand(-1, -1, 3)), shares
