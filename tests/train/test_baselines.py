"""train.baselines: copy-gray, Reinhard (global Lab statistics) and Welsh et al. 2002, on real photos."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sscn.models.color import rgb_to_lab
from sscn.train.baselines import BASELINES, copy_gray, jittered_positions, local_std, reinhard, welsh
from sscn.train.data import load_square
from sscn.train.methods import merge_lightness
from sscn.train.metrics import psnr


@pytest.fixture(scope="module")
def photos(photo_paths) -> torch.Tensor:
    """(4, 3, 64, 64) float in [0, 1]."""
    return torch.stack([load_square(path, 64) for path in photo_paths]).float() / 255


def _lightness(rgb: torch.Tensor) -> torch.Tensor:
    return rgb_to_lab(rgb)[:, :1]


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_shapes_with_references_of_other_sizes(name, photos):
    lightness = _lightness(photos)
    for reference in (photos.flip(-1), photos[:1, :, :40, :], photos[:, :, ::2, :]):
        ab = BASELINES[name](lightness, reference, list(range(len(photos))))
        assert ab.shape == (len(photos), 2, 64, 64)
        assert torch.isfinite(ab).all()


def test_copy_gray_is_gray(photos):
    ab = copy_gray(_lightness(photos), photos, [0] * len(photos))
    assert (ab == 0).all()


def test_reinhard_paints_the_reference_mean_chroma(photos):
    from skimage.color import rgb2lab

    reference = photos.roll(1, dims=0)
    ab = reinhard(_lightness(photos), reference, [0] * len(photos))
    for i in range(len(photos)):
        expected = rgb2lab(reference[i].permute(1, 2, 0).double().numpy())[..., 1:].mean(axis=(0, 1))
        np.testing.assert_allclose(ab[i].mean(dim=(1, 2)).numpy(), expected, atol=1e-3)
        assert ab[i].std(dim=(1, 2)).max() < 1e-4


def test_local_std_matches_numpy(photos):
    from scipy.ndimage import generic_filter

    lightness = _lightness(photos[:1, :, :24, :20])
    # torch's "reflect" padding is scipy's "mirror" (the edge pixel is not repeated)
    expected = generic_filter(lightness[0, 0].double().numpy(), np.std, size=5, mode="mirror")
    np.testing.assert_allclose(local_std(lightness)[0, 0].numpy(), expected, atol=1e-2)   # L units (0-100)


def test_jittered_positions_cover_the_image_evenly():
    generator = torch.Generator().manual_seed(3)
    picks = jittered_positions(60, 80, 200, generator)
    assert 180 <= len(picks) <= 220
    assert picks.min() >= 0 and picks.max() < 60 * 80
    rows, cols = picks // 80, picks % 80
    quadrants = torch.bincount((rows >= 30).long() * 2 + (cols >= 40).long(), minlength=4)
    assert (quadrants - len(picks) / 4).abs().max() <= 0.1 * len(picks)


def test_welsh_transfers_reference_colours_deterministically(photos):
    lightness = _lightness(photos)
    reference = photos.flip(-1)
    first = welsh(lightness, reference, [1, 2, 3, 4])
    assert torch.equal(first, welsh(lightness, reference, [1, 2, 3, 4]))
    assert not torch.equal(first, welsh(lightness, reference, [5, 6, 7, 8]))
    # every transferred ab is one of the reference's pixels
    ref_ab = rgb_to_lab(reference)[:, 1:].flatten(2)                                # (B, 2, HW)
    for i in range(len(photos)):
        colours = set(map(tuple, ref_ab[i].T.tolist()))
        assert set(map(tuple, first[i].flatten(1).T.tolist())) <= colours


def test_baselines_beat_copy_gray_on_real_photos(photos):
    """With the photo itself (mirrored) as reference, colour transfer must beat no colour at all."""
    lightness = _lightness(photos)
    reference = photos.flip(-1)
    seeds = list(range(len(photos)))
    scores = {name: float(psnr(merge_lightness(lightness, method(lightness, reference, seeds)), photos).mean())
              for name, method in BASELINES.items()}
    assert scores["copy-gray"] < scores["reinhard"]
    assert scores["copy-gray"] < scores["welsh"]
