"""train.metrics against scikit-image / numpy: PSNR, SSIM, histogram intersection (HIS)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from train.data import load_square
from train.metrics import PSNR_CAP_DB, ab_histogram, delta_e_ciede2000, histogram_intersection, psnr, ssim


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
    def test_matches_skimage(self):
        from skimage.color import deltaE_ciede2000

        generator = torch.Generator().manual_seed(0)
        lab1 = torch.stack([torch.rand(40, 50, generator=generator) * 100,
                            (torch.rand(40, 50, generator=generator) - 0.5) * 200,
                            (torch.rand(40, 50, generator=generator) - 0.5) * 200]).double()
        lab2 = lab1 + torch.randn(3, 40, 50, generator=generator, dtype=torch.float64) \
            * torch.tensor([5.0, 20.0, 20.0], dtype=torch.float64)[:, None, None]
        lab1[1:, :3] = 0                                     # grey pixels: hue undefined on one side or both
        lab2[1:, :5] = 0
        expected = deltaE_ciede2000(lab1.numpy(), lab2.numpy(), channel_axis=0)
        np.testing.assert_allclose(delta_e_ciede2000(lab1[None], lab2[None])[0].numpy(), expected, atol=1e-9)

    def test_sharma_reference_pairs(self):
        """Pairs 1, 7 and 17 of Sharma, Wu & Dalal's test data (their Table 1)."""
        lab1 = torch.tensor([[50.0, 2.6772, -79.7751], [50.0, 0.0, 0.0], [50.0, 2.5, 0.0]])
        lab2 = torch.tensor([[50.0, 0.0, -82.7485], [50.0, -1.0, 2.0], [73.0, 25.0, -18.0]])
        result = delta_e_ciede2000(lab1.T[:, :, None], lab2.T[:, :, None])[:, 0]
        torch.testing.assert_close(result, torch.tensor([2.0425, 2.3669, 27.1492]), atol=1e-4, rtol=0)

    def test_identical_is_zero_and_shapes_are_checked(self):
        lab = torch.rand(2, 3, 4, 5) * 50
        assert delta_e_ciede2000(lab, lab).shape == (2, 4, 5) and delta_e_ciede2000(lab, lab).abs().max() < 1e-6
        with pytest.raises(ValueError, match="Lab tensors"):
            delta_e_ciede2000(lab, lab[:, :2])
