"""Self-augmented pairs (train.pairs): each transform against an independent reference (torch's affine_grid,
scikit-image's thin-plate spline), identity at zero strength, bounds, determinism, and the pair mix."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sscn.train.data import load_square
from sscn.models.palette import dominant_colors, swatch_images
from sscn.models.color import rgb_to_lab
from sscn.train.pairs import (PairSettings, affine_matrices, appearance_noise, apply_affine, compose_affine,
                         control_points, identity_grid, make_pairs, random_crop_matrices, random_tps_grid,
                         paste_rectangles, recolor, tps_grid)


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def skimage_tps(src: np.ndarray, dst: np.ndarray):
    from skimage.transform import ThinPlateSplineTransform

    if hasattr(ThinPlateSplineTransform, "from_estimate"):
        return ThinPlateSplineTransform.from_estimate(src, dst)
    transform = ThinPlateSplineTransform()
    transform.estimate(src, dst)
    return transform


@pytest.fixture(scope="module")
def photos(photo_paths) -> torch.Tensor:
    return torch.stack([load_square(path, 80) for path in photo_paths])        # (4, 3, 80, 80) uint8


class TestIdentityGrid:
    def test_matches_affine_grid(self):
        theta = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]]).expand(2, -1, -1)
        expected = F.affine_grid(theta, [2, 3, 5, 7], align_corners=False)
        assert torch.allclose(identity_grid(2, 5, 7, "cpu"), expected, atol=1e-6)

    def test_sampling_at_identity_returns_the_image(self, photos):
        image = photos[:2].float() / 255
        out = F.grid_sample(image, identity_grid(2, 80, 80, "cpu"), align_corners=False)
        assert torch.allclose(out, image, atol=1e-5)


class TestTPS:
    def test_identity_when_control_equals_displaced(self):
        control = control_points(3, 5, "cpu")
        assert torch.allclose(tps_grid(control, control, 16, 12), identity_grid(3, 16, 12, "cpu"), atol=1e-5)

    def test_zero_strength_is_identity(self):
        grid = random_tps_grid(2, 16, 16, torch.zeros(2), generator(0))
        assert torch.allclose(grid, identity_grid(2, 16, 16, "cpu"), atol=1e-5)

    def test_matches_scikit_image(self):
        src = control_points(1, 4, "cpu")[0].double().numpy()
        dst = src + np.random.default_rng(0).uniform(-0.2, 0.2, src.shape)
        grid = tps_grid(torch.tensor(src)[None].float(), torch.tensor(dst)[None].float(), 16, 12)
        where = identity_grid(1, 16, 12, "cpu")[0].reshape(-1, 2).double().numpy()
        expected = skimage_tps(src, dst)(where).reshape(16, 12, 2)
        np.testing.assert_allclose(grid[0].numpy(), expected, atol=1e-4)

    def test_interpolates_the_control_points(self):
        # control points on pixel centres of an 8x8 grid, so the sampling grid passes through them exactly
        centres = (torch.tensor([1, 3, 6]) + 0.5) / 8 * 2 - 1
        control = torch.stack(torch.meshgrid(centres, centres, indexing="xy"), dim=-1).reshape(1, -1, 2)
        displaced = control + torch.rand(control.shape, generator=generator(1)) * 0.2 - 0.1
        grid = tps_grid(control, displaced, 8, 8)
        at_controls = grid[0, [1, 1, 1, 3, 3, 3, 6, 6, 6], [1, 3, 6] * 3]            # rows = y, columns = x
        assert torch.allclose(at_controls, displaced[0], atol=1e-4)

    def test_displacement_is_bounded_by_strength(self):
        strength = torch.tensor([0.05, 0.1, 0.4])
        grid = random_tps_grid(3, 32, 32, strength, generator(2))
        shift = (grid - identity_grid(3, 32, 32, "cpu")).abs().amax(dim=(1, 2, 3))
        assert (shift > 0).all()
        assert (shift <= 1.5 * strength).all()

    def test_coarse_solve_matches_the_exact_spline(self):
        strength = torch.tensor([0.1, 0.4])
        coarse = random_tps_grid(2, 128, 96, strength, generator(9))
        exact = random_tps_grid(2, 128, 96, strength, generator(9), resolution=128)
        error = (coarse - exact).abs()
        assert error.max() < 2 / 128 and error.mean() < 1e-3          # under a pixel anywhere at 128 px

    def test_deterministic(self):
        strength = torch.full((2,), 0.1)
        first = random_tps_grid(2, 16, 16, strength, generator(3))
        assert torch.equal(first, random_tps_grid(2, 16, 16, strength, generator(3)))
        assert not torch.equal(first, random_tps_grid(2, 16, 16, strength, generator(4)))


class TestAffine:
    def test_identity(self):
        matrices = affine_matrices(torch.zeros(2), torch.ones(2), torch.zeros(2, 2), torch.zeros(2, dtype=torch.bool))
        grid = identity_grid(2, 6, 6, "cpu")
        assert torch.allclose(apply_affine(grid, matrices), grid, atol=1e-6)

    def test_matches_affine_grid(self):
        angle, scale = torch.tensor([0.3, -1.0]), torch.tensor([0.8, 0.6])
        shift, flip = torch.tensor([[0.1, -0.2], [0.0, 0.3]]), torch.tensor([False, True])
        matrices = affine_matrices(angle, scale, shift, flip)
        expected = F.affine_grid(matrices, [2, 3, 9, 9], align_corners=False)
        assert torch.allclose(apply_affine(identity_grid(2, 9, 9, "cpu"), matrices), expected, atol=1e-5)

    def test_composition_equals_applying_in_turn(self):
        inner = random_crop_matrices(3, 0.5, 1.0, generator(10), "cpu", flip_prob=0.5, max_angle=1.0)
        outer = random_crop_matrices(3, 0.5, 1.0, generator(11), "cpu", flip_prob=0.5, max_angle=1.0)
        grid = identity_grid(3, 7, 5, "cpu")
        assert torch.allclose(apply_affine(grid, compose_affine(outer, inner)),
                              apply_affine(apply_affine(grid, inner), outer), atol=1e-6)

    def test_flip_mirrors(self, photos):
        image = photos[:1].float() / 255
        matrices = affine_matrices(torch.zeros(1), torch.ones(1), torch.zeros(1, 2), torch.ones(1, dtype=torch.bool))
        out = F.grid_sample(image, apply_affine(identity_grid(1, 80, 80, "cpu"), matrices), align_corners=False)
        assert torch.allclose(out, image.flip(-1), atol=1e-5)

    def test_crop_stays_inside_the_image(self):
        matrices = random_crop_matrices(500, 0.6, 1.0, generator(5), "cpu")
        scale = matrices[:, 0, 0]
        assert scale.min() >= 0.6 and scale.max() <= 1.0
        assert (matrices[:, :, 2].abs() + scale[:, None] <= 1.0 + 1e-6).all()

    def test_full_scale_crop_without_flip_or_rotation_is_identity(self):
        matrices = random_crop_matrices(4, 1.0, 1.0, generator(6), "cpu")
        assert torch.allclose(matrices, affine_matrices(torch.zeros(4), torch.ones(4), torch.zeros(4, 2),
                                                        torch.zeros(4, dtype=torch.bool)))

    def test_rotation_bounded(self):
        matrices = random_crop_matrices(500, 1.0, 1.0, generator(7), "cpu", max_angle=math.radians(15))
        angle = torch.atan2(matrices[:, 1, 0], matrices[:, 1, 1])
        assert angle.abs().max() <= math.radians(15) + 1e-6
        assert angle.abs().max() > math.radians(10)


class TestAppearance:
    def test_zero_strength_is_identity(self, photos):
        image = photos.float() / 255
        assert torch.equal(appearance_noise(image, 0.0, generator(0)), image)

    def test_in_range_and_deterministic(self, photos):
        image = photos.float() / 255
        out = appearance_noise(image, 0.3, generator(1))
        assert out.min() >= 0 and out.max() <= 1
        assert not torch.equal(out, image)
        assert torch.equal(out, appearance_noise(image, 0.3, generator(1)))


class TestPalette:
    COLORS = torch.tensor([[0.9, 0.1, 0.1], [0.1, 0.8, 0.2], [0.2, 0.3, 0.9]])

    def three_colour_image(self) -> torch.Tensor:
        """(1, 3, 64, 64): half red, a quarter green, a quarter blue."""
        image = torch.empty(1, 3, 64, 64)
        image[..., :32] = self.COLORS[0].view(3, 1, 1)
        image[..., 32:48] = self.COLORS[1].view(3, 1, 1)
        image[..., 48:] = self.COLORS[2].view(3, 1, 1)
        return image

    def test_dominant_colours_of_a_flat_image(self):
        colors, shares = dominant_colors(self.three_colour_image(), 3, generator(0), iterations=10)
        assert torch.allclose(shares[0], torch.tensor([0.5, 0.25, 0.25]))
        assert torch.allclose(colors[0, 0], self.COLORS[0], atol=1e-5)
        found = {tuple(c) for c in colors[0].mul(10).round().tolist()}
        assert found == {tuple(c) for c in self.COLORS.mul(10).round().tolist()}

    def test_swatch_holds_only_the_dominant_colours(self):
        colors, shares = dominant_colors(self.three_colour_image(), 3, generator(0), iterations=10)
        swatch = swatch_images(colors, shares, 16, 40)                                         # (1, 3, 16, 40)
        pixels = swatch[0].flatten(1).T                                                        # (640, 3)
        matches = (pixels[:, None] == colors[0][None]).all(dim=-1)                            # (640, 3)
        assert matches.any(dim=1).all()
        # stripe widths follow the shares: half the width is the largest colour
        assert matches[:, 0].float().mean() == 0.5
        assert torch.equal(swatch, swatch[:, :, :1].expand_as(swatch))     # vertical stripes

    def test_palette_references_in_pairs_are_swatches(self, photos):
        settings = PairSettings(size=32, palette_share=1.0, palette_colors=4)
        pair = make_pairs(photos, settings, generator(8))
        assert pair.palette.all()
        assert torch.equal(pair.reference, pair.reference[:, :, :1].expand_as(pair.reference))
        for reference, target in zip(pair.reference, pair.target):
            columns = reference[:, 0].T.unique(dim=0)                     # the stripe colours, (<= 4, 3)
            assert len(columns) <= 4
            # each is the mean of a cluster of the target, so it lies within the target's colour range
            assert (columns >= target.flatten(1).amin(1) - 1e-5).all()
            assert (columns <= target.flatten(1).amax(1) + 1e-5).all()


class TestMakePairs:
    def test_zero_strength_reference_equals_target(self, photos):
        settings = PairSettings(size=80, target_scale=(1.0, 1.0), tps_strength=0.0, max_rotation_deg=0.0,
                                ref_scale=(1.0, 1.0), appearance=0.0, violent_share=0.0, palette_share=0.0,
                                recolor_share=0.0, paste_share=0.0)
        pair = make_pairs(photos, settings, generator(0))
        truth = photos.float() / 255
        assert torch.allclose(pair.reference, pair.target, atol=1e-4)
        for target, photo in zip(pair.target, truth):                       # targets may be mirrored
            assert torch.allclose(target, photo, atol=1e-4) or torch.allclose(target, photo.flip(-1), atol=1e-4)

    def test_shapes_and_ranges(self, photos):
        pair = make_pairs(photos, PairSettings(size=64, palette_share=0.5), generator(1))
        for image in (pair.target, pair.reference):
            assert image.shape == (4, 3, 64, 64) and image.dtype == torch.float32
            assert image.min() >= 0 and image.max() <= 1
        assert pair.violent.shape == pair.palette.shape == (4,)

    def test_uint8_and_float_photos_agree(self, photos):
        settings = PairSettings(size=32)
        from_bytes = make_pairs(photos, settings, generator(2))
        from_floats = make_pairs(photos.float() / 255, settings, generator(2))
        assert torch.allclose(from_bytes.reference, from_floats.reference, atol=1e-6)

    def test_same_seed_same_pairs_other_seed_other_pairs(self, photos):
        settings = PairSettings(size=32, palette_share=0.5)
        first = make_pairs(photos, settings, generator(3))
        again = make_pairs(photos, settings, generator(3))
        other = make_pairs(photos, settings, generator(4))
        assert torch.equal(first.target, again.target) and torch.equal(first.reference, again.reference)
        assert not torch.equal(first.target, other.target)
        assert not torch.equal(first.reference, other.reference)

    def test_violent_and_palette_shares(self, photos):
        settings = PairSettings(size=32)
        pair = make_pairs(photos.repeat(150, 1, 1, 1), settings, generator(5))               # 600 pairs
        assert 0.15 < pair.violent.float().mean() < 0.25
        assert 0.02 < pair.palette.float().mean() < 0.09

    def test_violent_references_are_further_from_the_target(self, photos):
        plain = dict(size=32, palette_share=0.0, recolor_share=0.0, paste_share=0.0)
        calm = make_pairs(photos.repeat(8, 1, 1, 1), PairSettings(violent_share=0.0, **plain), generator(6))
        wild = make_pairs(photos.repeat(8, 1, 1, 1), PairSettings(violent_share=1.0, **plain), generator(6))
        assert wild.violent.all() and not calm.violent.any()
        calm_gap = (calm.reference - calm.target).abs().mean()
        wild_gap = (wild.reference - wild.target).abs().mean()
        assert wild_gap > 1.3 * calm_gap


class TestRealReferenceAugmentations:
    """Recolouring (same hue / saturation change on both images) and pasted rectangles (partial matches)."""

    def test_recolor_keeps_lightness_and_rotates_hue(self, photos):
        rgb = photos.float() / 255
        angle = torch.full((4,), math.pi / 2)
        shifted = recolor(rgb, angle, torch.ones(4))
        lab, lab_shifted = rgb_to_lab(rgb), rgb_to_lab(shifted)
        assert torch.allclose(lab_shifted[:, 0], lab[:, 0], atol=0.05)
        # where the rotated colour stays in gamut, a' = -b and b' = a
        chroma, chroma_shifted = lab[:, 1:].norm(dim=1), lab_shifted[:, 1:].norm(dim=1)
        kept = (chroma_shifted - chroma).abs() < 0.5
        assert kept.float().mean() > 0.5
        assert torch.allclose(lab_shifted[:, 1][kept], -lab[:, 2][kept], atol=1.0)
        assert torch.allclose(lab_shifted[:, 2][kept], lab[:, 1][kept], atol=1.0)

    def test_recolored_pairs_change_target_and_reference_alike(self, photos):
        still = dict(size=48, target_scale=(1.0, 1.0), tps_strength=0.0, max_rotation_deg=0.0, ref_scale=(1.0, 1.0),
                     appearance=0.0, violent_share=0.0, palette_share=0.0, paste_share=0.0)
        plain = make_pairs(photos, PairSettings(recolor_share=0.0, **still), generator(7))
        recolored = make_pairs(photos, PairSettings(recolor_share=1.0, **still), generator(7))
        # the same change on both: equal but where a pixel sits on the gamut's edge in one and a hair outside it in
        # the other; the pull's 1/4096 of ab there is up to a few thousandths in sRGB near black
        difference = (recolored.reference - recolored.target).abs()
        assert difference.max() < 5e-3 and difference.mean() < 1e-5
        assert (recolored.target - plain.target).abs().mean() > 0.01                   # and it is a change

    def test_pasted_rectangle_comes_from_the_donor(self):
        images, donors = torch.zeros(6, 3, 40, 40), torch.ones(6, 3, 40, 40)
        pasted = paste_rectangles(images, donors, (0.3, 0.6), generator(8))
        share = pasted.mean(dim=(1, 2, 3))                                 # area of each square / image area
        assert ((share > 0.3 ** 2 * 0.8) & (share < 0.6 ** 2 * 1.2)).all()
        assert set(pasted.unique().tolist()) == {0.0, 1.0}

    def test_paste_share_leaves_targets_alone(self, photos):
        settings = PairSettings(size=32, paste_share=1.0, recolor_share=0.0)
        pasted = make_pairs(photos, settings, generator(9))
        plain = make_pairs(photos, PairSettings(size=32, paste_share=0.0, recolor_share=0.0), generator(9))
        assert torch.equal(pasted.target, plain.target)

    def test_class_pairs_take_the_reference_from_the_partner(self, photos):
        still = dict(size=48, target_scale=(1.0, 1.0), tps_strength=0.0, max_rotation_deg=0.0, ref_scale=(1.0, 1.0),
                     appearance=0.0, violent_share=0.0, palette_share=0.0)
        partners = photos.roll(1, dims=0)
        own = make_pairs(photos, PairSettings(class_share=0.0, **still), generator(10), partners)
        crossed = make_pairs(photos, PairSettings(class_share=1.0, **still), generator(10), partners)
        swapped = make_pairs(partners, PairSettings(class_share=0.0, **still), generator(10), photos)
        assert crossed.crossed.all() and not own.crossed.any()
        assert torch.equal(crossed.target, own.target)                            # the truth is still the photo
        assert torch.allclose(crossed.reference, swapped.reference, atol=1e-6)  # the reference is the partner
        assert not torch.allclose(crossed.reference, own.reference, atol=1e-2)

    def test_class_share_without_partners_is_self_augmentation(self, photos):
        settings = PairSettings(size=32, class_share=1.0)
        assert not make_pairs(photos, settings, generator(11)).crossed.any()
