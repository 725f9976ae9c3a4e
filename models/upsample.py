"""Upsampling the predicted ab from the working size to the target's own size, a band of rows at a time.

`bilinear` interpolates ab alone: on a large photo every colour edge becomes a ramp as wide as one working pixel
(16 px at 4000 px from 256). `guided` is He et al.'s guided filter ("Guided Image Filtering", TPAMI 2013,
Alg. 1) with the lightness as the guide, in its fast subsampled form (He & Sun, "Fast Guided Filter", 2015):
the local linear model ab = a L + b is fitted at the working size, against the L the network saw, and its
coefficients are upsampled bilinearly and applied to the full-resolution L, so colour edges follow the edges
of the lightness. Either way the full-size ab exists only one band of rows at a time: a 4000 x 3000 scan
needs its low-resolution maps widened to the output width (a few MB), never (2, H, W) floats at once.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from sscn.constants import UPSAMPLERS

# Window radius (working pixels) and regulariser (guide as L / 100) of the guided filter, chosen on the
# full-resolution protocol of `sscn evaluate --full-size` (README, "Full resolution").
GUIDE_RADIUS = 2
GUIDE_EPS = 1e-3


def box_mean(image: torch.Tensor, radius: int) -> torch.Tensor:
    """Mean over the (2r+1)^2 window around each pixel of (B, C, H, W), the window clipped at the borders
    (He et al.'s box filter divided by the pixel count N). The clipped window and its count are separable:
    rows, then columns, each as 2r+1 shifted additions (on the CPU ten times faster than `avg_pool2d`)."""
    return _window_mean(_window_mean(image, radius, dim=-1), radius, dim=-2)


def _window_mean(image: torch.Tensor, radius: int, dim: int) -> torch.Tensor:
    """Mean over the 2r+1 neighbours along `dim` (-1 or -2), the window clipped at the ends."""
    length = image.shape[dim]
    padded = F.pad(image, (radius, radius) if dim == -1 else (0, 0, radius, radius))
    total = padded.narrow(dim, 0, length).clone()
    for shift in range(1, 2 * radius + 1):
        total += padded.narrow(dim, shift, length)
    position = torch.arange(length, device=image.device)
    count = (position + radius).clamp(max=length - 1) - (position - radius).clamp(min=0) + 1   # (length,)
    return total / (count if dim == -1 else count[:, None]).to(image.dtype)


def guided_filter_coefficients(guide: torch.Tensor, source: torch.Tensor, radius: int = GUIDE_RADIUS,
                               eps: float = GUIDE_EPS) -> tuple[torch.Tensor, torch.Tensor]:
    """The window-averaged linear coefficients of Alg. 1: guide I (B, 1, h, w), source p (B, C, h, w) ->
    mean_a, mean_b (B, C, h, w), so that the filtered output is q = mean_a * I + mean_b."""
    mean_i = box_mean(guide, radius)
    mean_p = box_mean(source, radius)
    var_i = box_mean(guide * guide, radius) - mean_i * mean_i
    cov_ip = box_mean(guide * source, radius) - mean_i * mean_p
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return box_mean(a, radius), box_mean(b, radius)


def guided_filter(guide: torch.Tensor, source: torch.Tensor, radius: int = GUIDE_RADIUS,
                  eps: float = GUIDE_EPS) -> torch.Tensor:
    """He et al.'s guided filter (Alg. 1): guide (B, 1, H, W), source (B, C, H, W) -> filtered (B, C, H, W)."""
    mean_a, mean_b = guided_filter_coefficients(guide, source, radius, eps)
    return mean_a * guide + mean_b


class BilinearRows:
    """Maps (B, C, h, w) upsampled bilinearly to (H, W) exactly as `F.interpolate(..., align_corners=False)`,
    produced a band of rows at a time: the maps are widened to W once, each band then blends two of those rows
    per output row."""

    def __init__(self, maps: torch.Tensor, height: int, width: int) -> None:
        batch, channels, low_height, low_width = maps.shape
        # each source row widened as a 1-D signal, straight into the (h, B, C, W) layout: a row is one block of
        # memory for the bands' gathers, and the wide maps need no permuted copy
        rows = maps.permute(2, 0, 1, 3).reshape(1, low_height * batch * channels, low_width)
        wide = F.interpolate(rows, size=width, mode="linear", align_corners=False)           # (1, h*B*C, W)
        self.wide = wide.view(low_height, batch, channels, width)                            # (h, B, C, W)
        source = ((torch.arange(height, device=maps.device, dtype=torch.float32) + 0.5)
                  * (low_height / height) - 0.5).clamp(min=0.0)                 # (H,) source row of each row
        self.upper = source.long()
        self.lower = (self.upper + 1).clamp(max=low_height - 1)
        self.weight = (source - self.upper).to(maps.dtype)[:, None, None, None]  # (H, 1, 1, 1)

    def band(self, rows: slice) -> torch.Tensor:
        """Rows `rows` of the upsampled maps: (B, C, n, W)."""
        upper = self.wide.index_select(0, self.upper[rows])                     # (n, B, C, W)
        lower = self.wide.index_select(0, self.lower[rows])
        return upper.lerp_(lower, self.weight[rows]).permute(1, 2, 0, 3)


class AbUpsampler:
    """ab (B, 2, S, S) at the working size -> ab at (H, W), a band of rows at a time (`band`).

    `guide` is the L (B, 1, S, S) in [0, 100] the network saw; `guided` applies only when the output is larger
    than the working size in some dimension (shrinking needs no edges restored)."""

    def __init__(self, ab: torch.Tensor, guide: torch.Tensor, height: int, width: int,
                 method: str = "guided") -> None:
        if method not in UPSAMPLERS:
            raise ValueError(f"unknown upsampling {method!r}; choose one of {', '.join(UPSAMPLERS)}")
        self.guided = method == "guided" and (height > ab.shape[-2] or width > ab.shape[-1])
        if self.guided:
            ab = ab.contiguous()        # the network's channels_last ab: the box filter's shifts run 2x faster so
            mean_a, mean_b = guided_filter_coefficients(guide / 100.0, ab)
            ab = torch.cat([mean_a / 100.0, mean_b], dim=1)     # (B, 4, S, S): slopes per unit of L, offsets
        self.rows = BilinearRows(ab, height, width)

    def band(self, rows: slice, lightness: torch.Tensor) -> torch.Tensor:
        """ab (B, 2, n, W) of rows `rows`, given the full-resolution L (B, 1, n, W) of those rows."""
        maps = self.rows.band(rows)
        if not self.guided:
            return maps
        slope, offset = maps.split(2, dim=1)
        return offset.addcmul_(slope, lightness)


def upsample_ab(ab: torch.Tensor, guide: torch.Tensor, lightness: torch.Tensor, method: str = "guided") -> torch.Tensor:
    """All of ab (B, 2, S, S) upsampled to the size of `lightness` (B, 1, H, W) at once (`AbUpsampler`)."""
    height, width = lightness.shape[-2:]
    return AbUpsampler(ab, guide, height, width, method).band(slice(None), lightness)
