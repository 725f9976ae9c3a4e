"""train.metrics against scikit-image / numpy / scipy: PSNR, SSIM, histogram intersection (HIS), CIEDE2000,
colourfulness, CDC."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sscn.train.data import load_square
from sscn.train.metrics import (PSNR_CAP_DB, CDCMeter, ab_histogram, cdc, channel_histograms, ciede2000, colorfulness,
                           colorfulness_ratio, histogram_intersection, mean_delta_e00, psnr, ssim)


@pytest.fixture(scope="module")
def photos(photo_paths) -> torch.Tensor:
    """The bundled photos as a (4, 3, 96, 96) uint8 batch."""
    return torch.stack([load_square(path, 96) for path in photo_paths])


def _noisy(images: torch.Tensor, sigma: float, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (images.float() + torch.randn(images.shape, generator=generator) * sigma).clamp(0, 255).round().byte()


def _hwc(image: torch.Tensor) -> np.ndarray:
    return image.permute(1, 2, 0).numpy()


def _distorted_pairs(photos: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    flat = torch.full_like(photos[:2], 180)
    flat[..., 40:, :] = 181
    return [(photos, _noisy(photos, 12.0)), (photos, photos.flip(-1)), (photos, torch.roll(photos, 2, dims=-1)),
            (flat, flat.flip(-2)), (photos, photos.roll(1, dims=0))]


class TestPSNR:
    def test_matches_skimage(self, photos):
        from skimage.metrics import peak_signal_noise_ratio

        for pred, truth in _distorted_pairs(photos):
            ours = psnr(pred, truth)
            expected = [peak_signal_noise_ratio(truth[i].numpy(), pred[i].numpy(), data_range=255)
                        for i in range(len(pred))]
            torch.testing.assert_close(ours.double(), torch.tensor(expected).clamp(max=PSNR_CAP_DB),
                                       atol=1e-4, rtol=0)

    def test_identical_is_capped_at_100_db(self, photos):
        assert psnr(photos, photos).tolist() == [PSNR_CAP_DB] * len(photos)

    def test_float_is_quantised_like_uint8(self, photos):
        noisy = _noisy(photos, 5.0)
        torch.testing.assert_close(psnr(noisy.float() / 255, photos.float() / 255), psnr(noisy, photos))

    def test_cardinality(self):
        for shape in [(1, 3, 16, 16), (3, 3, 20, 33)]:
            assert psnr(torch.rand(shape), torch.rand(shape)).shape == (shape[0],)

    def test_rejects_bad_input(self, photos):
        with pytest.raises(ValueError, match="shape mismatch"):
            psnr(photos, photos[:, :, :50])
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            psnr(photos.float(), photos.float())          # 0-255 floats
        with pytest.raises(ValueError, match="RGB batch"):
            psnr(photos[:, :1], photos[:, :1])
        with pytest.raises(TypeError):
            psnr(photos.numpy(), photos.numpy())


class TestSSIM:
    def test_matches_skimage(self, photos):
        from skimage.metrics import structural_similarity

        for pred, truth in _distorted_pairs(photos):
            ours = ssim(pred, truth)
            expected = [structural_similarity(_hwc(pred[i]), _hwc(truth[i]), gaussian_weights=True, sigma=1.5,
                                              use_sample_covariance=False, data_range=255, channel_axis=2)
                        for i in range(len(pred))]
            torch.testing.assert_close(ours.double(), torch.tensor(expected, dtype=torch.float64),
                                       atol=1e-5, rtol=0)

    def test_non_square_matches_skimage(self, photos):
        from skimage.metrics import structural_similarity

        pred, truth = photos[:1, :, :40, :70], _noisy(photos[:1, :, :40, :70], 20.0)
        expected = structural_similarity(_hwc(pred[0]), _hwc(truth[0]), gaussian_weights=True, sigma=1.5,
                                         use_sample_covariance=False, data_range=255, channel_axis=2)
        assert abs(float(ssim(pred, truth)[0]) - expected) < 1e-5

    def test_identical_is_one(self, photos):
        torch.testing.assert_close(ssim(photos, photos), torch.ones(len(photos)))

    def test_each_image_scored_on_its_own(self, photos):
        noisy = _noisy(photos, 10.0)
        together = ssim(noisy, photos)
        alone = torch.cat([ssim(noisy[i:i + 1], photos[i:i + 1]) for i in range(len(photos))])
        torch.testing.assert_close(together, alone)

    def test_rejects_tiny_images(self):
        with pytest.raises(ValueError, match="at least 11"):
            ssim(torch.rand(1, 3, 10, 40), torch.rand(1, 3, 10, 40))


def _numpy_his(result: torch.Tensor, reference: torch.Tensor) -> float:
    """Independent HIS: scikit-image Lab, numpy 2-D histograms on the same 23 x 23 cells."""
    from skimage.color import rgb2lab

    edges = np.arange(-115, 116, 10)
    hists = []
    for image in (result, reference):
        lab = rgb2lab(_hwc(image))
        ab = np.clip(lab[..., 1:].reshape(-1, 2), -114.9, 114.9)
        hist, _, _ = np.histogram2d(ab[:, 0], ab[:, 1], bins=[edges, edges])
        hists.append(hist / hist.sum())
    return float(np.minimum(*hists).sum())


class TestHistogramIntersection:
    def test_identical_is_one(self, photos):
        torch.testing.assert_close(histogram_intersection(photos, photos), torch.ones(len(photos)))

    def test_different_images_score_lower(self, photos):
        gray = photos.float().mean(dim=1, keepdim=True).round().byte().expand(-1, 3, -1, -1)
        assert (histogram_intersection(photos, gray) < 0.9).all()
        assert (histogram_intersection(photos, photos.roll(1, dims=0)) < 1.0).all()

    def test_matches_numpy(self, photos):
        others = photos.roll(1, dims=0)
        ours = histogram_intersection(photos, others)
        expected = [_numpy_his(photos[i], others[i]) for i in range(len(photos))]
        torch.testing.assert_close(ours.double(), torch.tensor(expected, dtype=torch.float64), atol=2e-3, rtol=0)

    def test_symmetric_and_in_range(self, photos):
        others = photos.flip(0)
        forward, backward = histogram_intersection(photos, others), histogram_intersection(others, photos)
        torch.testing.assert_close(forward, backward)
        assert ((forward >= 0) & (forward <= 1)).all()

    def test_reference_of_another_size_and_broadcast(self, photos):
        small = photos[:1, :, ::2, ::2]
        scores = histogram_intersection(photos, small)
        assert scores.shape == (len(photos),)
        assert ab_histogram(photos).sum(dim=1).allclose(torch.ones(len(photos)))

    def test_rejects_batch_mismatch(self, photos):
        with pytest.raises(ValueError, match="references"):
            histogram_intersection(photos[:3], photos[:2])


class TestCIEDE2000:
    def test_matches_skimage_on_random_lab(self):
        from skimage.color import deltaE_ciede2000

        generator = torch.Generator().manual_seed(0)
        lab = torch.rand(2, 2, 3, 40, 50, generator=generator, dtype=torch.float64)
        lab = lab * torch.tensor([100.0, 256.0, 256.0], dtype=torch.float64).view(3, 1, 1) \
            - torch.tensor([0.0, 128.0, 128.0], dtype=torch.float64).view(3, 1, 1)
        lab[:, 1, :, :5] = lab[:, 0, :, :5]                      # identical colours
        lab[:, 1, 1:, :10, :10] = 0.0                            # greys: hue undefined
        lab[:, 0, 1:, :, 20:30] = 0.0
        ours = ciede2000(lab[:, 0], lab[:, 1])
        expected = deltaE_ciede2000(lab[:, 0].numpy(), lab[:, 1].numpy(), channel_axis=1)
        assert ours.shape == (2, 40, 50)
        np.testing.assert_allclose(ours.numpy(), expected, rtol=1e-9, atol=1e-9)

    def test_sharma_reference_values(self):
        # pairs 1, 7 and 17 of Sharma, Wu & Dalal's test data, with their published differences
        lab_a = torch.tensor([[50.0, 2.6772, -79.7751], [50.0, 0.0, 0.0], [50.0, 2.5, 0.0]]).T[:, :, None]
        lab_b = torch.tensor([[50.0, 0.0, -82.7485], [50.0, -1.0, 2.0], [73.0, 25.0, -18.0]]).T[:, :, None]
        torch.testing.assert_close(ciede2000(lab_a, lab_b).flatten().float(),
                                   torch.tensor([2.0425, 2.3669, 27.1492]), atol=1e-4, rtol=0)

    def test_mean_of_identical_images_is_zero(self, photos):
        assert (mean_delta_e00(photos, photos) == 0).all()
        assert (mean_delta_e00(photos, photos.roll(1, dims=0)) > 1).all()

    def test_rejects_bad_input(self, photos):
        with pytest.raises(ValueError, match="Lab images"):
            ciede2000(torch.zeros(2, 4, 4), torch.zeros(2, 4, 4))
        with pytest.raises(ValueError, match="shape mismatch"):
            mean_delta_e00(photos, photos[:, :, :-1])


class TestColorfulness:
    def test_matches_hand_computation(self, photos):
        rgb = photos[0].double()
        rg, yb = rgb[0] - rgb[1], 0.5 * (rgb[0] + rgb[1]) - rgb[2]
        expected = (math.hypot(rg.std(unbiased=False), yb.std(unbiased=False))
                    + 0.3 * math.hypot(rg.mean(), yb.mean()))
        assert colorfulness(photos[:1]).item() == pytest.approx(expected, rel=1e-5)

    def test_grey_is_zero_and_ratio(self, photos):
        gray = photos.float().mean(dim=1, keepdim=True).round().byte().expand(-1, 3, -1, -1)
        assert (colorfulness(gray) == 0).all()
        torch.testing.assert_close(colorfulness_ratio(photos, photos), torch.ones(len(photos)))
        assert (colorfulness_ratio(gray, photos) == 0).all()
        assert colorfulness_ratio(photos, gray).isnan().all()      # no colour in the truth to compare with


class TestCDC:
    def test_static_clip_is_zero(self, photos):
        assert cdc(photos[:1].expand(6, -1, -1, -1)) == 0.0
        assert cdc(photos[:1]) is None

    def test_two_frames_equal_hand_computation(self):
        # frame 0: half the pixels 0 and half 255 in every channel; frame 1: all 255 in red, unchanged otherwise
        first = torch.zeros(1, 3, 2, 2, dtype=torch.uint8)
        first[..., 1, :] = 255
        second = first.clone()
        second[:, 0] = 255
        # red: JS([1/2, 1/2], [0, 1]) with middle [1/4, 3/4]; green and blue: 0
        red = 0.5 * (0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)) + 0.5 * math.log(1 / 0.75)
        assert cdc(torch.cat([first, second])) == pytest.approx(red / 3, rel=1e-12)

    def test_streaming_equals_whole_clip_and_scipy(self, photos):
        from scipy.spatial.distance import jensenshannon

        clip = torch.cat([photos, photos.flip(-1).roll(3, dims=1), photos.roll(1, dims=0)])   # 12 frames
        meter = CDCMeter()
        for part in (clip[:1], clip[1:6], clip[6:7], clip[7:]):
            meter.add(part)
        assert meter.value() == pytest.approx(cdc(clip), rel=1e-12)
        hists = channel_histograms(clip).numpy()
        expected = np.mean([np.mean([jensenshannon(hists[t, c], hists[t + gap, c]) ** 2
                                     for t in range(len(clip) - gap) for c in range(3)]) for gap in (1, 2, 4)])
        assert cdc(clip) == pytest.approx(expected, rel=1e-9)
