"""ab upsampling: the guided filter against a direct (slow) implementation, banded bilinear against F.interpolate."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sscn.models.upsample import (AbUpsampler, BilinearRows, box_mean, guided_filter, guided_filter_coefficients,
                             upsample_ab)


def _window_means_slow(image: np.ndarray, radius: int) -> np.ndarray:
    """(H, W) -> mean over each pixel's clipped (2r+1)^2 window, by explicit loops."""
    height, width = image.shape
    out = np.empty_like(image)
    for y in range(height):
        for x in range(width):
            out[y, x] = image[max(0, y - radius):y + radius + 1, max(0, x - radius):x + radius + 1].mean()
    return out


def _guided_filter_slow(guide: np.ndarray, source: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """He et al. eqs. 7-8 literally: per window w_k the least-squares a_k, b_k of source ~ a guide + b, then each
    pixel averages the a_k, b_k of the windows that contain it."""
    height, width = guide.shape
    a = np.empty_like(guide)
    b = np.empty_like(guide)
    for y in range(height):
        for x in range(width):
            window = (slice(max(0, y - radius), y + radius + 1), slice(max(0, x - radius), x + radius + 1))
            i, p = guide[window], source[window]
            a[y, x] = ((i * p).mean() - i.mean() * p.mean()) / (i.var() + eps)
            b[y, x] = p.mean() - a[y, x] * i.mean()
    return _window_means_slow(a, radius) * guide + _window_means_slow(b, radius)


class TestBoxMean:
    @pytest.mark.parametrize("radius", [1, 2, 4, 9])
    def test_against_loops(self, radius):
        image = torch.rand(1, 1, 13, 17, generator=torch.Generator().manual_seed(radius), dtype=torch.float64)
        expected = _window_means_slow(image[0, 0].numpy(), radius)
        np.testing.assert_allclose(box_mean(image, radius)[0, 0].numpy(), expected, rtol=1e-12, atol=1e-12)

    def test_batched_channels(self):
        image = torch.rand(2, 3, 9, 11)
        expected = F.avg_pool2d(image, 5, stride=1, padding=2, count_include_pad=False)
        torch.testing.assert_close(box_mean(image, 2), expected)


class TestGuidedFilter:
    @pytest.mark.parametrize("radius, eps", [(1, 1e-3), (2, 1e-2), (3, 1e-4)])
    def test_against_direct_implementation(self, radius, eps):
        generator = torch.Generator().manual_seed(radius)
        guide = torch.rand(1, 1, 14, 19, generator=generator, dtype=torch.float64)
        source = torch.rand(1, 2, 14, 19, generator=generator, dtype=torch.float64)
        result = guided_filter(guide, source, radius, eps)
        for channel in range(2):
            expected = _guided_filter_slow(guide[0, 0].numpy(), source[0, channel].numpy(), radius, eps)
            np.testing.assert_allclose(result[0, channel].numpy(), expected, rtol=1e-9, atol=1e-9)

    def test_linear_source_is_reproduced(self):
        """A source that is a linear function of the guide is kept exactly (eps -> 0): the model's premise."""
        guide = torch.rand(1, 1, 20, 20, dtype=torch.float64)
        source = torch.cat([3 * guide - 1, -2 * guide + 0.5], dim=1)
        torch.testing.assert_close(guided_filter(guide, source, 2, 1e-12), source)


class TestBilinearRows:
    @pytest.mark.parametrize("size", [(301, 407), (64, 48), (5, 3)])
    def test_bands_match_interpolate(self, size):
        maps = torch.rand(2, 4, 37, 29)
        expected = F.interpolate(maps, size=size, mode="bilinear", align_corners=False)
        rows = BilinearRows(maps, *size)
        bands = torch.cat([rows.band(slice(top, top + 7)) for top in range(0, size[0], 7)], dim=-2)
        torch.testing.assert_close(bands, expected, atol=1e-5, rtol=0)


class TestAbUpsampler:
    def test_guided_applies_upsampled_coefficients_to_full_lightness(self):
        ab = torch.randn(1, 2, 32, 32) * 30
        guide = torch.rand(1, 1, 32, 32) * 100
        lightness = torch.rand(1, 1, 100, 80) * 100
        mean_a, mean_b = guided_filter_coefficients(guide / 100, ab)
        up = lambda x: F.interpolate(x, size=(100, 80), mode="bilinear", align_corners=False)  # noqa: E731
        expected = up(mean_a) * lightness / 100 + up(mean_b)
        torch.testing.assert_close(upsample_ab(ab, guide, lightness, "guided"), expected, atol=1e-3, rtol=1e-4)

    @pytest.mark.parametrize("size", [(32, 32), (20, 30)])
    def test_no_upscaling_is_bilinear(self, size):
        ab, guide = torch.randn(1, 2, 32, 32), torch.rand(1, 1, 32, 32) * 100
        lightness = torch.rand(1, 1, *size) * 100
        assert not AbUpsampler(ab, guide, *size, "guided").guided
        torch.testing.assert_close(upsample_ab(ab, guide, lightness, "guided"),
                                   F.interpolate(ab, size=size, mode="bilinear", align_corners=False))

    def test_colour_edge_follows_lightness_edge(self):
        """A step in L (dark | bright) with different colours either side: at 8x, guided keeps the colour step
        within a pixel or two of the L edge; bilinear ramps it over a working pixel (8 px)."""
        full = 256
        lightness = torch.full((1, 1, full, full), 20.0)
        lightness[..., 130:] = 80.0                                               # edge off the working grid
        truth_ab = torch.where(lightness > 50, torch.tensor(40.0), torch.tensor(-40.0)).expand(1, 2, full, full)
        guide = F.interpolate(lightness, size=(32, 32), mode="bilinear", antialias=True, align_corners=False)
        ab = F.interpolate(truth_ab, size=(32, 32), mode="bilinear", antialias=True, align_corners=False)
        errors = {method: (upsample_ab(ab, guide, lightness, method) - truth_ab).abs().mean().item()
                  for method in ("guided", "bilinear")}
        assert errors["guided"] < 0.5 * errors["bilinear"]

    def test_unknown_method(self):
        with pytest.raises(ValueError, match="unknown upsampling 'nearest'"):
            AbUpsampler(torch.zeros(1, 2, 8, 8), torch.zeros(1, 1, 8, 8), 16, 16, "nearest")
