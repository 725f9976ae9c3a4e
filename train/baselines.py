"""Classical, learning-free colorization baselines for `sscn evaluate`, batched in torch.

Every baseline has the same signature as the network methods of train.evaluate:
    lightness (B, 1, H, W): the target's L in [0, 100]
    reference (B | 1, 3, Hr, Wr): RGB in [0, 1] (one reference may serve the whole batch)
    seeds: one int per target, for whatever randomness the method has
    -> ab (B, 2, H, W) in Lab units, to be merged with the target's own L.

- `copy_gray`: no colour at all (ab = 0), the floor every method should beat.
- `reinhard`: global Lab statistics transfer (Reinhard et al. 2001, in Lab): ab is shifted and scaled so that
  its per-image mean and standard deviation become the reference's. A grey target has ab = 0 everywhere,
  so on the colorization task this paints the reference's mean chroma over the whole image.
- `welsh`: Welsh, Ashikhmin & Mueller 2002, "Transferring color to greyscale images": the reference's L is
  remapped to the target's L mean / std, ~200 reference pixels are taken on a jittered grid, and every target
  pixel takes the ab of the sample minimising 0.5 |dL| + 0.5 |d sigma|, sigma being the standard deviation of
  L over a 5 x 5 neighbourhood.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from sscn.constants import BASELINE_METHODS
from sscn.models.color import rgb_to_lab

WELSH_SAMPLES = 200
WELSH_WINDOW = 5
_WELSH_PIXEL_CHUNK = 1 << 14     # target pixels matched at once: bounds the (B, chunk, samples) cost tensor


def _reference_lab(reference: torch.Tensor, batch: int) -> torch.Tensor:
    """(B | 1, 3, Hr, Wr) RGB -> (B, 3, Hr, Wr) Lab."""
    lab = rgb_to_lab(reference.float())
    return lab.expand(batch, -1, -1, -1) if lab.shape[0] == 1 else lab


def copy_gray(lightness: torch.Tensor, reference: torch.Tensor, seeds: list[int]) -> torch.Tensor:
    """ab = 0: the grey target itself."""
    return lightness.new_zeros(lightness.shape[0], 2, *lightness.shape[-2:])


def _mean_std(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image, per-channel statistics of (B, C, H, W) -> two (B, C, 1, 1)."""
    return values.mean(dim=(2, 3), keepdim=True), values.std(dim=(2, 3), unbiased=False, keepdim=True)


def reinhard(lightness: torch.Tensor, reference: torch.Tensor, seeds: list[int]) -> torch.Tensor:
    """Global Lab mean / std transfer: target ab = (ab - mean_t) * std_r / std_t + mean_r.

    The target is grey (ab = 0, std_t = 0), so the scaled spread vanishes and the reference's mean ab remains.
    """
    ref_ab = _reference_lab(reference, lightness.shape[0])[:, 1:]
    ref_mean, _ = _mean_std(ref_ab)
    return ref_mean.expand(-1, -1, *lightness.shape[-2:]).contiguous()


def local_std(lightness: torch.Tensor, window: int = WELSH_WINDOW) -> torch.Tensor:
    """Standard deviation of (B, 1, H, W) over a `window` x `window` neighbourhood (reflected at borders)."""
    pad = window // 2
    # centred first: E[x^2] - E[x]^2 of values near 0 keeps float32's digits
    centred = lightness - lightness.mean(dim=(2, 3), keepdim=True)
    padded = F.pad(centred, (pad, pad, pad, pad), mode="reflect")
    mean = F.avg_pool2d(padded, window, stride=1)
    mean_sq = F.avg_pool2d(padded * padded, window, stride=1)
    return (mean_sq - mean * mean).clamp(min=0).sqrt()


def jittered_positions(height: int, width: int, count: int, generator: torch.Generator) -> torch.Tensor:
    """About `count` flat pixel indices (M,), one uniformly placed in each cell of a near-square grid."""
    rows = max(1, round(math.sqrt(count * height / width)))
    cols = max(1, round(count / rows))
    cell_y = torch.arange(rows, dtype=torch.float64).repeat_interleave(cols)
    cell_x = torch.arange(cols, dtype=torch.float64).repeat(rows)
    jitter = torch.rand(2, rows * cols, generator=generator, dtype=torch.float64)
    ys = ((cell_y + jitter[0]) * height / rows).floor().long().clamp(max=height - 1)
    xs = ((cell_x + jitter[1]) * width / cols).floor().long().clamp(max=width - 1)
    return ys * width + xs


def welsh(lightness: torch.Tensor, reference: torch.Tensor, seeds: list[int],
          samples: int = WELSH_SAMPLES) -> torch.Tensor:
    """Welsh et al. 2002; each target's jittered samples are drawn from a CPU generator seeded with its seed."""
    batch, device = lightness.shape[0], lightness.device
    ref_lab = _reference_lab(reference, batch)
    ref_l = ref_lab[:, :1]
    # luminance remapping: the reference's L takes the target's mean / std
    target_mean, target_std = _mean_std(lightness)
    ref_mean, ref_std = _mean_std(ref_l)
    ref_l = (ref_l - ref_mean) * (target_std / ref_std.clamp(min=1e-6)) + target_mean

    height, width = ref_l.shape[-2:]
    picks = torch.stack([jittered_positions(height, width, samples, torch.Generator().manual_seed(seed))
                         for seed in seeds]).to(device)                                             # (B, M)
    ref_features = torch.cat([ref_l, local_std(ref_l)], dim=1).flatten(2)                   # (B, 2, Hr*Wr)
    sample_features = ref_features.gather(2, picks[:, None].expand(-1, 2, -1))               # (B, 2, M)
    sample_ab = ref_lab[:, 1:].flatten(2).gather(2, picks[:, None].expand(-1, 2, -1))        # (B, 2, M)

    target_features = torch.cat([lightness, local_std(lightness)], dim=1).flatten(2)         # (B, 2, H*W)
    best = []
    for start in range(0, target_features.shape[2], _WELSH_PIXEL_CHUNK):
        chunk = target_features[:, :, start:start + _WELSH_PIXEL_CHUNK]                      # (B, 2, P)
        cost = (chunk[:, :, :, None] - sample_features[:, :, None, :]).abs().mul(0.5).sum(dim=1)  # (B, P, M)
        best.append(cost.argmin(dim=2))
    best_idx = torch.cat(best, dim=1)                                                        # (B, H*W)
    ab = sample_ab.gather(2, best_idx[:, None].expand(-1, 2, -1))                            # (B, 2, H*W)
    return ab.view(batch, 2, *lightness.shape[-2:])


BASELINES = dict(zip(BASELINE_METHODS, (reinhard, welsh, copy_gray), strict=True))
