"""Lab conversion (models.color) against scikit-image, kornia-style: a class per op with smoke, shapes,
exceptions, reference values, round trip and gradcheck."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.color import lab2rgb, rgb2lab

from sscn.models.color import (
    ab_bin_centers, ab_to_bin, bytes_to_lightness, lab_to_linear_rgb, lab_to_rgb, lab_to_rgb_keep_lightness,
    linear_to_srgb, linear_to_srgb_bytes, network_lab_to_rgb, pull_into_gamut, rgb_to_lab, rgb_to_lightness,
    rgb_to_network_lab, srgb_to_linear,
)
from sscn.models.merge import lightness as merge_lightness

SHAPES = [(3, 4, 5), (1, 3, 4, 5), (2, 3, 1, 7), (2, 2, 3, 4, 5)]


def _to_numpy(image: torch.Tensor) -> np.ndarray:
    """(3, H, W) tensor -> (H, W, 3) float64 array, the layout scikit-image expects."""
    return image.permute(1, 2, 0).double().numpy()


def _from_numpy(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(array).permute(2, 0, 1)


def _random_lab(generator: torch.Generator, *shape: int) -> torch.Tensor:
    """Lab (*, 3, H, W) with L in [0, 100], ab in [-110, 110], many of them out of the sRGB gamut."""
    lab = torch.rand(*shape, generator=generator, dtype=torch.float64)
    scale = torch.tensor([100.0, 220.0, 220.0], dtype=torch.float64).view(3, 1, 1)
    shift = torch.tensor([0.0, -110.0, -110.0], dtype=torch.float64).view(3, 1, 1)
    return lab * scale + shift


def _skimage_lab2rgb(lab: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # "negative Z values clipped": the behaviour we replicate
        return lab2rgb(lab)


@pytest.fixture(scope="module")
def photos(photo_paths) -> list[torch.Tensor]:
    """The bundled real photos as (3, H, W) float64 in [0, 1]."""
    return [_from_numpy(np.asarray(Image.open(path).convert("RGB"), dtype=np.float64) / 255.0)
            for path in photo_paths]


class TestRgbToLab:
    def test_smoke(self):
        lab = rgb_to_lab(torch.rand(3, 4, 5))
        assert lab.shape == (3, 4, 5) and lab.dtype == torch.float32
        assert 0.0 <= lab[0].min() and lab[0].max() <= 100.0

    @pytest.mark.parametrize("shape", SHAPES)
    def test_cardinality(self, shape):
        assert rgb_to_lab(torch.rand(shape)).shape == shape

    def test_exception(self):
        with pytest.raises(TypeError, match="torch.Tensor"):
            rgb_to_lab(np.zeros((3, 4, 4)))
        with pytest.raises(ValueError, match=r"\(\*, 3, H, W\)"):
            rgb_to_lab(torch.rand(4, 4, 4))
        with pytest.raises(ValueError, match=r"\(\*, 3, H, W\)"):
            rgb_to_lab(torch.rand(4, 3))

    def test_unit_values(self):
        white, black = torch.ones(3, 1, 1), torch.zeros(3, 1, 1)
        torch.testing.assert_close(rgb_to_lab(white).flatten(), torch.tensor([100.0, 0.0, 0.0]), atol=1e-2, rtol=0)
        torch.testing.assert_close(rgb_to_lab(black).flatten(), torch.zeros(3), atol=1e-4, rtol=0)

    def test_random_against_skimage(self):
        rgb = torch.rand(3, 32, 48, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        expected = _from_numpy(rgb2lab(_to_numpy(rgb)))
        torch.testing.assert_close(rgb_to_lab(rgb), expected, atol=1e-6, rtol=0)

    def test_photos_against_skimage(self, photos):
        for photo in photos:
            expected = _from_numpy(rgb2lab(_to_numpy(photo)))
            torch.testing.assert_close(rgb_to_lab(photo.float()).double(), expected, atol=2e-3, rtol=0)

    def test_batch_matches_single(self):
        rgb = torch.rand(2, 3, 5, 6, generator=torch.Generator().manual_seed(0))
        torch.testing.assert_close(rgb_to_lab(rgb)[1], rgb_to_lab(rgb[1]), atol=1e-4, rtol=0)

    def test_gradcheck(self):
        # away from the piecewise joints (sRGB 0.04045, XYZ 0.008856) where the derivative jumps
        rgb = (0.1 + 0.8 * torch.rand(1, 3, 2, 2, dtype=torch.float64)).requires_grad_()
        assert torch.autograd.gradcheck(rgb_to_lab, (rgb,))


class TestRgbToLightness:
    @pytest.mark.parametrize("shape", SHAPES)
    def test_cardinality(self, shape):
        assert rgb_to_lightness(torch.rand(shape)).shape == (*shape[:-3], 1, *shape[-2:])

    def test_exception(self):
        with pytest.raises(TypeError, match="torch.Tensor"):
            rgb_to_lightness(np.zeros((3, 4, 4)))
        with pytest.raises(ValueError, match=r"\(\*, 3, H, W\)"):
            rgb_to_lightness(torch.rand(1, 4, 4))

    def test_against_skimage(self, photos):
        rgb = torch.cat([torch.rand(3, 8, 8, dtype=torch.float64) * 0.05, torch.rand(3, 8, 8, dtype=torch.float64)],
                        dim=1)                                   # dark pixels too (the linear branch of f)
        for image in [rgb, *photos]:
            expected = torch.from_numpy(rgb2lab(_to_numpy(image))[..., 0])
            torch.testing.assert_close(rgb_to_lightness(image)[0], expected, atol=1e-6, rtol=0)

    def test_gradcheck(self):
        rgb = (0.1 + 0.8 * torch.rand(1, 3, 2, 2, dtype=torch.float64)).requires_grad_()
        assert torch.autograd.gradcheck(rgb_to_lightness, (rgb,))


class TestBytesToLightness:
    """The table path of the merge: uint8 photos and frames, laid out (H, W, 3) in memory as decoded."""

    @staticmethod
    def _decoded(pixels: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1)           # (3, H, W) view of HWC

    def test_colour_against_skimage(self, photos):
        every_value = np.arange(256 * 3, dtype=np.uint8).reshape(16, 16, 3)              # each byte in each channel
        for pixels in [every_value, *((_to_numpy(photo) * 255).round().astype(np.uint8) for photo in photos)]:
            expected = torch.from_numpy(rgb2lab(pixels)[..., 0]).float()
            torch.testing.assert_close(bytes_to_lightness(self._decoded(pixels))[0], expected, atol=1e-4, rtol=0)

    def test_grey_in_one_or_three_channels(self):
        grey = np.arange(256, dtype=np.uint8).reshape(16, 16)
        expected = torch.from_numpy(rgb2lab(np.stack([grey] * 3, axis=-1))[..., 0]).float()
        three = self._decoded(np.stack([grey] * 3, axis=-1))
        for image in (three, three.contiguous(), torch.from_numpy(grey)[None], three[None]):
            torch.testing.assert_close(bytes_to_lightness(image).reshape(16, 16), expected, atol=1e-4, rtol=0)

    def test_one_differing_pixel_is_not_grey(self):
        pixels = np.full((4, 4, 3), 120, dtype=np.uint8)
        pixels[3, 3] = (200, 30, 30)
        expected = torch.from_numpy(rgb2lab(pixels)[..., 0]).float()
        torch.testing.assert_close(bytes_to_lightness(self._decoded(pixels))[0], expected, atol=1e-4, rtol=0)

    def test_merge_lightness_takes_it_for_bytes(self, photos):
        pixels = (_to_numpy(photos[0]) * 255).round().astype(np.uint8)
        image = self._decoded(pixels)
        torch.testing.assert_close(merge_lightness(image), rgb_to_lightness(image.double() / 255)[None].float(),
                                   atol=1e-4, rtol=0)


class TestLabToRgb:
    def test_smoke(self):
        rgb = lab_to_rgb(_random_lab(torch.Generator().manual_seed(0), 3, 4, 5).float())
        assert rgb.shape == (3, 4, 5) and rgb.dtype == torch.float32
        assert 0.0 <= rgb.min() and rgb.max() <= 1.0

    @pytest.mark.parametrize("shape", SHAPES)
    def test_cardinality(self, shape):
        assert lab_to_rgb(torch.rand(shape) * 50).shape == shape

    def test_exception(self):
        with pytest.raises(TypeError, match="torch.Tensor"):
            lab_to_rgb([50.0, 0.0, 0.0])
        with pytest.raises(ValueError, match=r"\(\*, 3, H, W\)"):
            lab_to_rgb(torch.rand(1, 2, 4, 4))

    def test_random_against_skimage(self):
        lab = _random_lab(torch.Generator().manual_seed(1), 3, 32, 48)
        expected = _from_numpy(_skimage_lab2rgb(_to_numpy(lab)))
        torch.testing.assert_close(lab_to_rgb(lab), expected, atol=1e-6, rtol=0)

    def test_photos_against_skimage(self, photos):
        for photo in photos:
            lab = _from_numpy(rgb2lab(_to_numpy(photo)))
            expected = _from_numpy(_skimage_lab2rgb(_to_numpy(lab)))
            torch.testing.assert_close(lab_to_rgb(lab.float()).double(), expected, atol=1e-4, rtol=0)

    def test_round_trip(self, photos):
        for photo in photos:
            torch.testing.assert_close(lab_to_rgb(rgb_to_lab(photo)), photo, atol=1e-5, rtol=0)
        rgb = torch.rand(2, 3, 16, 16)
        torch.testing.assert_close(lab_to_rgb(rgb_to_lab(rgb)), rgb, atol=1e-4, rtol=0)

    def test_gradcheck(self):
        # an in-gamut colour (a warm grey) so no clipping, small perturbations stay on one side of every joint
        lab = torch.tensor([60.0, 10.0, 15.0], dtype=torch.float64).view(1, 3, 1, 1).repeat(1, 1, 2, 2)
        lab = (lab + torch.rand_like(lab)).requires_grad_()
        assert torch.autograd.gradcheck(lab_to_rgb, (lab,))


class TestLinearToSrgbBytes:
    def test_every_byte_boundary_against_float64(self):
        # float32 values on both sides of each byte's boundary, and a sweep with values outside [0, 1]
        boundaries = srgb_to_linear((torch.arange(255, dtype=torch.float64) + 0.5) / 255.0).float()
        around = torch.cat([torch.nextafter(boundaries, torch.tensor(0.0)), boundaries,
                            torch.nextafter(boundaries, torch.tensor(1.0)), torch.linspace(-0.5, 1.5, 100_001)])
        expected = (linear_to_srgb(around.double().clamp(0.0, 1.0)) * 255).round().to(torch.uint8)
        torch.testing.assert_close(linear_to_srgb_bytes(around), expected, atol=0, rtol=0)

    def test_shape_and_the_float_path(self, photos):
        linear = srgb_to_linear(photos[0].float()) * 1.1 - 0.05                # some values outside [0, 1]
        result = linear_to_srgb_bytes(linear)
        assert result.shape == linear.shape and result.dtype == torch.uint8
        rounded = (linear_to_srgb(linear.clamp(0.0, 1.0)) * 255).round().to(torch.uint8)
        assert (result.int() - rounded.int()).abs().max() <= 1     # float32 powers straddle a boundary now and then


class TestLabToRgbKeepLightness:
    def test_smoke(self):
        rgb = lab_to_rgb_keep_lightness(torch.tensor([50.0, 0.0, 0.0]).view(3, 1, 1))
        torch.testing.assert_close(rgb, torch.full((3, 1, 1), 0.4663), atol=1e-3, rtol=0)

    @pytest.mark.parametrize("shape", SHAPES)
    def test_cardinality(self, shape):
        assert lab_to_rgb_keep_lightness(torch.rand(shape) * 100).shape == shape

    def test_exception(self):
        with pytest.raises(TypeError, match="torch.Tensor"):
            lab_to_rgb_keep_lightness(np.zeros((3, 2, 2)))
        with pytest.raises(ValueError, match=r"\(\*, 3, H, W\)"):
            lab_to_rgb_keep_lightness(torch.rand(2, 2))

    def test_keeps_lightness_out_of_gamut(self):
        lab = _random_lab(torch.Generator().manual_seed(2), 2, 3, 64, 64).float()
        rgb = lab_to_rgb_keep_lightness(lab)
        assert 0.0 <= rgb.min() and rgb.max() <= 1.0
        assert (rgb_to_lab(rgb)[:, 0] - lab[:, 0]).abs().max() < 0.5
        # plain clipping, by contrast, moves L a lot for the same input
        assert (rgb_to_lab(lab_to_rgb(lab))[:, 0] - lab[:, 0]).abs().max() > 5.0

    def test_in_gamut_unchanged(self, photos):
        lab = rgb_to_lab(photos[0].float())
        # float32 rounding puts a few pixels a hair outside the gamut; they may move by ~1e-5
        torch.testing.assert_close(lab_to_rgb_keep_lightness(lab), lab_to_rgb(lab), atol=1e-4, rtol=0)

    def test_every_pixel_bisected_equals_out_of_gamut_only(self):
        # the GPU's way (bisect all, keep where out of gamut) against the CPU's (bisect the gathered few)
        lab = _random_lab(torch.Generator().manual_seed(3), 2, 3, 32, 48).float()
        linear = lab_to_linear_rgb(lab)
        outside = ((linear < 0) | (linear > 1)).any(dim=-3, keepdim=True)
        assert 0.05 < outside.float().mean() < 0.95
        every = linear_to_srgb(torch.where(outside, pull_into_gamut(lab), linear).clamp(0.0, 1.0))
        torch.testing.assert_close(every, lab_to_rgb_keep_lightness(lab), atol=1e-6, rtol=0)

    @pytest.mark.cuda
    def test_cuda_equals_cpu(self):
        lab = _random_lab(torch.Generator().manual_seed(4), 2, 3, 64, 64).float()
        on_gpu = lab_to_rgb_keep_lightness(lab.cuda()).cpu()
        torch.testing.assert_close(on_gpu, lab_to_rgb_keep_lightness(lab), atol=1e-4, rtol=0)

    def test_hue_kept(self):
        lab = torch.tensor([70.0, 100.0, -100.0]).view(3, 1, 1)      # far out of gamut
        kept = rgb_to_lab(lab_to_rgb_keep_lightness(lab)).flatten()
        angle = torch.atan2(kept[2], kept[1])
        assert abs(angle - torch.atan2(torch.tensor(-100.0), torch.tensor(100.0))) < 0.05


class TestNetworkScaling:
    def test_round_trip(self, photos):
        rgb = photos[1].float()[None]
        l_norm, ab_norm = rgb_to_network_lab(rgb)
        assert l_norm.shape == (1, 1, *rgb.shape[-2:]) and ab_norm.shape == (1, 2, *rgb.shape[-2:])
        assert -1.0 <= l_norm.min() and l_norm.max() <= 1.0 and ab_norm.abs().max() <= 1.0
        torch.testing.assert_close(network_lab_to_rgb(l_norm, ab_norm), rgb, atol=1e-4, rtol=0)


class TestAbBins:
    def test_centers_in_gamut_grid(self):
        centers = ab_bin_centers(10)
        assert centers.shape[1] == 2 and 150 < len(centers) < 484
        assert torch.all(centers.remainder(10) == 0)

    def test_nearest_bin(self):
        centers = ab_bin_centers(10)
        ab = centers[[0, 5, len(centers) - 1]].T.reshape(1, 2, 1, 3) + 2.0    # 2 units off three centres
        assert ab_to_bin(ab).flatten().tolist() == [0, 5, len(centers) - 1]
