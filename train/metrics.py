"""Image-quality metrics of `sscn evaluate` and of training: PSNR, SSIM, histogram intersection (HIS), CIEDE2000,
colourfulness and the temporal colour distribution consistency (CDC) of a clip.

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
- ΔE00: CIEDE2000 (Sharma, Wu & Dalal 2005; kL = kC = kH = 1, as scikit-image's `deltaE_ciede2000`) between
  each pixel of the result and of the truth in CIE Lab (D65), averaged over the pixels of an image.
- Colourfulness (Hasler & Süsstrunk 2003) of an image on its 0-255 levels: with rg = R - G and
  yb = (R + G) / 2 - B over all pixels, M = sqrt(std(rg)^2 + std(yb)^2) + 0.3 sqrt(mean(rg)^2 + mean(yb)^2)
  (population std). The ratio result / truth says how much of the truth's colour a result has: below 1 is
  washed out, above 1 garish; it is undefined (NaN) for a truth with colourfulness below
  `COLORFULNESS_MIN_TRUTH` (a grey photo has no colour to compare with).
- CDC (colour distribution consistency, NTIRE 2023 video colorization challenge): every frame's per-channel
  RGB histogram (256 levels, normalised), the Jensen-Shannon divergence (natural log) between frames t and
  t + d, averaged over t, then over d in {1, 2, 4} (the gaps a clip is long enough for) and over the three
  channels. 0 for a clip whose colour distribution never changes; compare a result's CDC with its source's.
"""
from __future__ import annotations

import functools
import math

import torch

from sscn.models.color import rgb_to_lab

PSNR_CAP_DB = 100.0
SSIM_SIGMA, SSIM_TRUNCATE, SSIM_K1, SSIM_K2 = 1.5, 3.5, 0.01, 0.03
HIS_BIN, HIS_CELLS = 10.0, 23       # cells centred on -110, -100, ..., 110
COLORFULNESS_MIN_TRUTH = 1.0        # on 0-255 levels; "not colourful" photos score about 0-15
CDC_GAPS = (1, 2, 4)


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


def ciede2000(lab_a: torch.Tensor, lab_b: torch.Tensor) -> torch.Tensor:
    """CIEDE2000 colour difference of Lab images (*, 3, H, W) -> (*, H, W), computed in float64.

    Term by term as scikit-image's `deltaE_ciede2000` (kL = kC = kH = 1): a* is stretched by 1 + G, then
    lightness, chroma and hue differences are weighted by S_L, S_C, S_H and the blue-region rotation R_T."""
    if lab_a.shape != lab_b.shape or lab_a.dim() < 3 or lab_a.shape[-3] != 3:
        raise ValueError(f"expected two Lab images of one shape (*, 3, H, W), got {tuple(lab_a.shape)} "
                         f"and {tuple(lab_b.shape)}")
    l1, a1, b1 = lab_a.double().unbind(-3)
    l2, a2, b2 = lab_b.double().unbind(-3)
    chroma_mean7 = (0.5 * (torch.hypot(a1, b1) + torch.hypot(a2, b2))) ** 7
    stretch = 1.5 - 0.5 * torch.sqrt(chroma_mean7 / (chroma_mean7 + 25.0 ** 7))      # 1 + G
    c1, h1 = _polar(a1 * stretch, b1)
    c2, h2 = _polar(a2 * stretch, b2)

    lightness_mean = (0.5 * (l1 + l2) - 50) ** 2
    l_term = (l2 - l1) / (1 + 0.015 * lightness_mean / torch.sqrt(20 + lightness_mean))
    chroma_mean = 0.5 * (c1 + c2)
    c_term = (c2 - c1) / (1 + 0.045 * chroma_mean)

    chroma_product = c1 * c2
    achromatic = chroma_product == 0
    h_diff, h_sum = h2 - h1, h1 + h2
    # the hue difference the short way round the circle; none when either colour is grey
    dh = torch.where(h_diff > math.pi, h_diff - 2 * math.pi,
                     torch.where(h_diff < -math.pi, h_diff + 2 * math.pi, h_diff))
    dh = torch.where(achromatic, torch.zeros_like(dh), dh)
    # the mean hue, also the short way round; the sum itself when either colour is grey
    wrapped_sum = torch.where(h_sum < 2 * math.pi, h_sum + 2 * math.pi, h_sum - 2 * math.pi)
    h_mean = torch.where(achromatic, 2 * h_sum, torch.where(h_diff.abs() > math.pi, wrapped_sum, h_sum)) / 2
    t = (1 - 0.17 * torch.cos(h_mean - math.radians(30)) + 0.24 * torch.cos(2 * h_mean)
         + 0.32 * torch.cos(3 * h_mean + math.radians(6)) - 0.20 * torch.cos(4 * h_mean - math.radians(63)))
    h_term = 2 * torch.sqrt(chroma_product) * torch.sin(dh / 2) / (1 + 0.015 * chroma_mean * t)

    chroma_mean7 = chroma_mean ** 7
    rotation_c = 2 * torch.sqrt(chroma_mean7 / (chroma_mean7 + 25.0 ** 7))
    dtheta = math.radians(30) * torch.exp(-((torch.rad2deg(h_mean) - 275) / 25) ** 2)
    r_term = -torch.sin(2 * dtheta) * rotation_c * c_term * h_term
    return (l_term ** 2 + c_term ** 2 + h_term ** 2 + r_term).clamp(min=0).sqrt()


def _polar(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Radius and angle in [0, 2 pi)."""
    angle = torch.atan2(y, x)
    return torch.hypot(x, y), torch.where(angle < 0, angle + 2 * math.pi, angle)


def mean_delta_e00(pred: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Mean CIEDE2000 per image between RGB batches (B, 3, H, W) (module docstring) -> (B,)."""
    pred_levels, truth_levels = _check_pair(pred, truth)
    return ciede2000(rgb_to_lab(pred_levels / 255.0), rgb_to_lab(truth_levels / 255.0)).mean(dim=(1, 2)).float()


def colorfulness(rgb: torch.Tensor) -> torch.Tensor:
    """Hasler & Süsstrunk colourfulness per image of an RGB batch (B, 3, H, W) -> (B,), on 0-255 levels."""
    red, green, blue = to_levels(rgb).double().unbind(1)
    rg = (red - green).flatten(1)                                                        # (B, H*W)
    yb = (0.5 * (red + green) - blue).flatten(1)
    spread = torch.sqrt(rg.var(dim=1, unbiased=False) + yb.var(dim=1, unbiased=False))
    return (spread + 0.3 * torch.hypot(rg.mean(dim=1), yb.mean(dim=1))).float()


def colorfulness_ratio(pred: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Colourfulness of each result over its truth's, (B, 3, H, W) pair -> (B,); NaN for a grey truth."""
    _check_pair(pred, truth)
    truth_score = colorfulness(truth)
    ratio = colorfulness(pred) / truth_score.clamp(min=COLORFULNESS_MIN_TRUTH)
    return torch.where(truth_score < COLORFULNESS_MIN_TRUTH, torch.full_like(ratio, math.nan), ratio)


def channel_histograms(rgb: torch.Tensor) -> torch.Tensor:
    """Normalised 256-level histogram of each channel of an RGB batch (B, 3, H, W) -> (B, 3, 256), float64."""
    levels = to_levels(rgb).long().flatten(2)                                            # (B, 3, H*W)
    offsets = torch.arange(levels.shape[0] * 3, device=levels.device).view(-1, 3, 1) * 256
    counts = torch.bincount((levels + offsets).flatten(), minlength=levels.shape[0] * 3 * 256)
    return counts.view(-1, 3, 256).double() / levels.shape[2]


def js_divergence(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Jensen-Shannon divergence (natural log, 0 log 0 = 0) of distributions along the last dimension."""
    middle = 0.5 * (p + q)

    def kl(x: torch.Tensor) -> torch.Tensor:
        return (x * torch.log(torch.where(x > 0, x / middle, 1.0))).sum(dim=-1)

    return 0.5 * kl(p) + 0.5 * kl(q)


class CDCMeter:
    """The CDC of a clip fed in order, a batch of frames at a time (module docstring); keeps the
    histograms of the last max(CDC_GAPS) frames only."""

    def __init__(self) -> None:
        self.recent: torch.Tensor | None = None                # (<= 4, 3, 256) histograms of the last frames
        self.sums = {gap: 0.0 for gap in CDC_GAPS}
        self.counts = {gap: 0 for gap in CDC_GAPS}

    def add(self, frames: torch.Tensor) -> None:
        """Frames (T, 3, H, W) uint8 or float in [0, 1], the next ones of the clip."""
        hists = channel_histograms(frames)
        if self.recent is not None:
            hists = torch.cat([self.recent, hists])
        new = len(frames)
        for gap in CDC_GAPS:
            # pairs (t, t + gap) whose later frame is new: (P, 3) divergences, averaged over the channels
            later = hists[max(gap, len(hists) - new):]
            earlier = hists[len(hists) - len(later) - gap:len(hists) - gap]
            self.sums[gap] += float(js_divergence(earlier, later).mean(dim=1).sum())
            self.counts[gap] += len(later)
        self.recent = hists[-max(CDC_GAPS):]

    def value(self) -> float | None:
        """Mean over the gaps the clip was long enough for; None for a single frame."""
        means = [self.sums[gap] / self.counts[gap] for gap in CDC_GAPS if self.counts[gap]]
        return sum(means) / len(means) if means else None


def cdc(frames: torch.Tensor) -> float | None:
    """The CDC of a whole clip (T, 3, H, W) uint8 or float in [0, 1]; None for a single frame."""
    meter = CDCMeter()
    meter.add(frames)
    return meter.value()
