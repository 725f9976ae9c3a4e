"""Image-quality metrics of `sscn evaluate` and of training: PSNR, SSIM and histogram intersection (HIS).

Conventions (BasicSR-style: stated, checked, batched):
- Inputs are RGB batches (B, 3, H, W), either uint8 or float in [0, 1]. Float images are quantised to uint8
  levels first (`round(x * 255)`), so every score is the score of the 8-bit image a user would save.
- PSNR: 10 log10(255^2 / MSE) over all pixels and channels of an image, capped at `PSNR_CAP_DB` (100 dB);
  identical images score exactly the cap instead of infinity, so means stay finite.
- SSIM (Wang et al. 2004) as scikit-image's `structural_similarity(gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=255, channel_axis=...)`: Gaussian window sigma 1.5 truncated at
  3.5 sigma (11 taps), K1 0.01, K2 0.03, population (co)variances, computed per RGB channel; the SSIM map is
  averaged over the pixels whose window lies inside the image (a 5-pixel border is left out, as scikit-image
  crops it), then over the three channels.
- HIS (histogram intersection similarity, Swain & Ballard 1991, used by papers/001 to compare a result with its
  reference): the ab plane of CIE Lab is cut into 23 x 23 square cells of side 10 centred on -110, -100, ...,
  110 (the grid of the histogram loss; values beyond go to the edge cells, grey a = b = 0 sits mid-cell);
  each image's ab histogram is normalised to sum 1 and
  HIS = sum_q min(h_result(q), h_reference(q)), in [0, 1], 1 for identical colour distributions.
  The two images may differ in size.
"""
from __future__ import annotations

import functools
import math

import torch

from models.color import rgb_to_lab

PSNR_CAP_DB = 100.0
SSIM_SIGMA, SSIM_TRUNCATE, SSIM_K1, SSIM_K2 = 1.5, 3.5, 0.01, 0.03
HIS_BIN, HIS_CELLS = 10.0, 23       # cells centred on -110, -100, ..., 110


def to_levels(image: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) uint8 or float in [0, 1] -> float32 levels in {0, ..., 255}."""
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"expected a torch.Tensor, got {type(image).__name__}")
    if image.dim() != 4 or image.shape[1] != 3:
        raise ValueError(f"expected an RGB batch of shape (B, 3, H, W), got {tuple(image.shape)}")
    if image.dtype == torch.uint8:
        return image.float()
    if not image.is_floating_point():
        raise ValueError(f"expected uint8 or float images, got {image.dtype}")
    # a hair of tolerance: sRGB conversions land at 1 + 1e-7 and the like
    if image.numel() and (image.min() < -1e-3 or image.max() > 1 + 1e-3):
        raise ValueError(f"float images must be in [0, 1] (got {float(image.min()):.3g} .. {float(image.max()):.3g})")
    return (image.float().clamp(0.0, 1.0) * 255).round()


def _check_pair(pred: torch.Tensor, truth: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    pred_levels, truth_levels = to_levels(pred), to_levels(truth)
    if pred_levels.shape != truth_levels.shape:
        raise ValueError(f"shape mismatch: {tuple(pred.shape)} vs {tuple(truth.shape)}")
    return pred_levels, truth_levels


def psnr(pred: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """PSNR in dB per image, capped at 100 dB: (B, 3, H, W) pair -> (B,)."""
    pred_levels, truth_levels = _check_pair(pred, truth)
    mse = (pred_levels - truth_levels).pow(2).mean(dim=(1, 2, 3))
    scores = 10 * torch.log10(255.0 ** 2 / mse.clamp(min=1e-20))
    return scores.clamp(max=PSNR_CAP_DB)


@functools.lru_cache(maxsize=None)
def _gaussian_taps(sigma: float, truncate: float) -> torch.Tensor:
    """Normalised 1-D Gaussian (2r+1,), r = int(truncate * sigma + 0.5), as scipy.ndimage.gaussian_filter."""
    radius = int(truncate * sigma + 0.5)
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    taps = torch.exp(-0.5 * (offsets / sigma) ** 2)
    return taps / taps.sum()


@functools.lru_cache(maxsize=16)
def _band(length: int, taps: tuple[float, ...], device: torch.device) -> torch.Tensor:
    """(length, length - 2r) matrix whose column j holds the taps at rows j .. j+2r: x @ band is a 'valid'
    1-D convolution (a dense matmul is much faster than a depthwise conv2d on CPUs)."""
    band = torch.zeros(length, length - len(taps) + 1, dtype=torch.float32, device=device)
    for offset, tap in enumerate(taps):
        band.diagonal(-offset).fill_(tap)
    return band


def _blur_valid(images: torch.Tensor, taps: tuple[float, ...]) -> torch.Tensor:
    """Separable Gaussian, only where the window fits inside the image: (..., H, W) -> (..., H-2r, W-2r)."""
    height, width = images.shape[-2:]
    rows = images @ _band(width, taps, images.device)                                     # (..., H, W-2r)
    return (rows.transpose(-1, -2) @ _band(height, taps, images.device)).transpose(-1, -2)


def ssim(pred: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Mean SSIM per image (definition in the module docstring): (B, 3, H, W) pair -> (B,).

    Images need at least 11 x 11 pixels. Computed in float32 on data centred on each channel's mean (the
    (co)variances do not change, and centring keeps E[x^2] - E[x]^2 from cancelling away float32's digits).
    """
    pred_levels, truth_levels = _check_pair(pred, truth)
    taps = tuple(_gaussian_taps(SSIM_SIGMA, SSIM_TRUNCATE).tolist())
    if min(pred_levels.shape[-2:]) < len(taps):
        raise ValueError(f"SSIM needs images of at least {len(taps)} x {len(taps)} pixels, "
                         f"got {tuple(pred_levels.shape[-2:])}")
    shift_x = pred_levels.mean(dim=(2, 3), keepdim=True)                                  # (B, 3, 1, 1)
    shift_y = truth_levels.mean(dim=(2, 3), keepdim=True)
    x, y = pred_levels - shift_x, truth_levels - shift_y
    # one blur for the five moments: (B, 5*3, H', W')
    moments = _blur_valid(torch.cat([x, y, x * x, y * y, x * y], dim=1), taps)
    mean_x, mean_y, mean_xx, mean_yy, mean_xy = moments.chunk(5, dim=1)
    var_x, var_y = mean_xx - mean_x ** 2, mean_yy - mean_y ** 2
    cov_xy = mean_xy - mean_x * mean_y
    mean_x, mean_y = mean_x + shift_x, mean_y + shift_y
    c1, c2 = (SSIM_K1 * 255.0) ** 2, (SSIM_K2 * 255.0) ** 2
    ssim_map = ((2 * mean_x * mean_y + c1) * (2 * cov_xy + c2)
                / ((mean_x ** 2 + mean_y ** 2 + c1) * (var_x + var_y + c2)))
    return ssim_map.mean(dim=(1, 2, 3))


def ab_histogram(rgb: torch.Tensor) -> torch.Tensor:
    """Normalised ab histogram (B, Q) of an RGB batch (B, 3, H, W), Q = HIS_CELLS^2 cells centred on the
    multiples of HIS_BIN (the grid of the histogram loss, models.color.ab_bin_centers)."""
    lab = rgb_to_lab(to_levels(rgb) / 255.0)
    half = HIS_CELLS // 2
    cells = (lab[:, 1:] / HIS_BIN).round().long().clamp(-half, half) + half                 # (B, 2, H, W)
    index = (cells[:, 0] * HIS_CELLS + cells[:, 1]).flatten(1)                              # (B, H*W)
    batch, bins = index.shape[0], HIS_CELLS * HIS_CELLS
    offsets = torch.arange(batch, device=index.device)[:, None] * bins
    counts = torch.bincount((index + offsets).flatten(), minlength=batch * bins).view(batch, bins)
    return counts.float() / index.shape[1]


def intersect(hist_a: torch.Tensor, hist_b: torch.Tensor) -> torch.Tensor:
    """Histogram intersection of normalised histograms (B | 1, Q) -> (B,)."""
    return torch.minimum(hist_a, hist_b).sum(dim=1)


def histogram_intersection(result: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """HIS in [0, 1] per image between results (B, 3, H, W) and references (B | 1, 3, H', W') -> (B,)."""
    if reference.shape[0] not in (1, result.shape[0]):
        raise ValueError(f"{result.shape[0]} results for {reference.shape[0]} references")
    return intersect(ab_histogram(result), ab_histogram(reference))


def delta_e_ciede2000(lab1: torch.Tensor, lab2: torch.Tensor) -> torch.Tensor:
    """CIEDE2000 colour difference (Sharma, Wu & Dalal 2005; kL = kC = kH = 1) of Lab (..., 3, H, W) images,
    L in [0, 100] -> per-pixel ΔE00 (..., H, W). Matches scikit-image's `deltaE_ciede2000(channel_axis=-3)`."""
    if lab1.shape != lab2.shape or lab1.dim() < 3 or lab1.shape[-3] != 3:
        raise ValueError(f"expected two Lab tensors of one shape (..., 3, H, W), got {tuple(lab1.shape)} and "
                         f"{tuple(lab2.shape)}")
    l1, a1, b1 = lab1.double().unbind(-3)
    l2, a2, b2 = lab2.double().unbind(-3)
    chroma_mean = (torch.hypot(a1, b1) + torch.hypot(a2, b2)) / 2
    g = 0.5 * (1 - torch.sqrt(chroma_mean ** 7 / (chroma_mean ** 7 + 25.0 ** 7)))
    a1, a2 = a1 * (1 + g), a2 * (1 + g)                                          # a' (eq. 2-3)
    c1, c2 = torch.hypot(a1, b1), torch.hypot(a2, b2)
    h1 = torch.atan2(b1, a1) % (2 * math.pi)
    h2 = torch.atan2(b2, a2) % (2 * math.pi)
    grey = (c1 * c2) == 0                                                        # hue undefined
    dh = h2 - h1
    dh = torch.where(dh > math.pi, dh - 2 * math.pi, torch.where(dh < -math.pi, dh + 2 * math.pi, dh))
    dh = torch.where(grey, torch.zeros_like(dh), dh)
    d_hue = 2 * torch.sqrt(c1 * c2) * torch.sin(dh / 2)
    l_mean, c_mean = (l1 + l2) / 2, (c1 + c2) / 2
    h_sum = h1 + h2
    h_mean = torch.where(grey, h_sum,
                         torch.where((h1 - h2).abs() <= math.pi, h_sum / 2,
                                     torch.where(h_sum < 2 * math.pi, (h_sum + 2 * math.pi) / 2,
                                                 (h_sum - 2 * math.pi) / 2)))
    t = (1 - 0.17 * torch.cos(h_mean - math.radians(30)) + 0.24 * torch.cos(2 * h_mean)
         + 0.32 * torch.cos(3 * h_mean + math.radians(6)) - 0.20 * torch.cos(4 * h_mean - math.radians(63)))
    s_l = 1 + 0.015 * (l_mean - 50) ** 2 / torch.sqrt(20 + (l_mean - 50) ** 2)
    s_c = 1 + 0.045 * c_mean
    s_h = 1 + 0.015 * c_mean * t
    rotation = -torch.sin(math.radians(60) * torch.exp(-((torch.rad2deg(h_mean) - 275) / 25) ** 2)) \
        * 2 * torch.sqrt(c_mean ** 7 / (c_mean ** 7 + 25.0 ** 7))
    d_l, d_c, d_h = (l2 - l1) / s_l, (c2 - c1) / s_c, d_hue / s_h
    return torch.sqrt(d_l ** 2 + d_c ** 2 + d_h ** 2 + rotation * d_c * d_h).to(lab1.dtype)
