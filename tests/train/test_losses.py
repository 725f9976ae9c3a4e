"""The objective of eq. 6 (train.losses): paper weights, each term against a direct computation."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sscn.models.color import ab_bin_centers, ab_to_bin, normalize_ab
from sscn.models.sscn import SSCNOutput
from sscn.train.losses import LossWeights, classification_loss, histogram_loss, sscn_loss, total_variation


def test_default_weights_are_the_papers():
    weights = LossWeights()
    assert (weights.stage1, weights.stage2, weights.cls, weights.tv, weights.his) == (100.0, 100.0, 0.1, 10.0, 1.0)


class TestTotalVariation:
    def test_matches_numpy(self):
        ab = torch.rand(2, 2, 5, 7, generator=torch.Generator().manual_seed(0))
        array = ab.numpy()
        expected = np.abs(np.diff(array, axis=2)).mean() + np.abs(np.diff(array, axis=3)).mean()
        assert math.isclose(float(total_variation(ab)), expected, rel_tol=1e-6)

    def test_zero_on_flat_ab(self):
        assert float(total_variation(torch.full((1, 2, 8, 8), 0.3))) == 0.0


class TestHistogramLoss:
    def test_confident_right_bins_cost_nothing(self):
        ab_true = normalize_ab(torch.tensor([20.0, -30.0]).view(1, 2, 1, 1).expand(2, 2, 16, 16))
        bins = ab_to_bin(torch.tensor([20.0, -30.0]).view(1, 2, 1, 1), 10).item()
        logits = torch.full((2, len(ab_bin_centers(10)), 4, 4), -50.0)
        logits[:, bins] = 50.0
        assert float(histogram_loss(logits, ab_true, 10)) < 1e-6

    def test_uniform_prediction_costs_log_q(self):
        q = len(ab_bin_centers(10))
        loss = histogram_loss(torch.zeros(1, q, 4, 4), torch.zeros(1, 2, 16, 16), 10)
        assert math.isclose(float(loss), math.log(q), rel_tol=1e-5)


class TestClassificationLoss:
    def test_labels_give_cross_entropy(self):
        logits, labels = torch.randn(4, 10), torch.tensor([0, 3, 9, 1])
        assert torch.allclose(classification_loss(logits, labels, None), F.cross_entropy(logits, labels))

    def test_distillation_against_itself_is_zero(self):
        logits = torch.randn(4, 1000)
        assert float(classification_loss(logits, None, logits.clone())) == pytest.approx(0.0, abs=1e-5)
        assert float(classification_loss(logits, None, torch.randn(4, 1000))) > 0.1

    def test_neither_gives_zero(self):
        assert float(classification_loss(torch.randn(2, 10), None, None)) == 0.0


def fake_output(ab_true: torch.Tensor, noise: float, q: int) -> SSCNOutput:
    generator = torch.Generator().manual_seed(1)
    shift = lambda: noise * torch.randn(ab_true.shape, generator=generator)  # noqa: E731
    bins = torch.randn(ab_true.shape[0], q, ab_true.shape[2] // 4, ab_true.shape[3] // 4, generator=generator)
    return SSCNOutput((ab_true + shift()).requires_grad_(), (ab_true + shift()).requires_grad_(),
                      bins.requires_grad_(), torch.randn(ab_true.shape[0], 10, requires_grad=True))


class TestSSCNLoss:
    def test_total_is_the_weighted_sum_of_detached_terms(self):
        ab_true = torch.rand(2, 2, 16, 16) * 0.4 - 0.2
        output = fake_output(ab_true, 0.1, len(ab_bin_centers(10)))
        labels = torch.tensor([1, 2])
        weights = LossWeights()
        total, terms = sscn_loss(output, ab_true, output.reference_logits, weights, 10, labels=labels)
        assert set(terms) == {"stage1", "stage2", "cls", "tv", "his"}
        assert all(isinstance(v, torch.Tensor) and v.dim() == 0 and not v.requires_grad for v in terms.values())
        expected = sum(getattr(weights, name) * value for name, value in terms.items())
        assert torch.allclose(total.detach(), expected)
        assert torch.allclose(terms["stage1"], F.smooth_l1_loss(output.ab_coarse, ab_true, beta=1 / 11))
        total.backward()
        for tensor in (output.ab_coarse, output.ab, output.bin_logits, output.reference_logits):
            assert tensor.grad is not None and tensor.grad.abs().sum() > 0

    def test_perfect_stages_cost_nothing_there(self):
        ab_true = torch.rand(1, 2, 16, 16) * 0.4 - 0.2
        output = fake_output(ab_true, 0.0, len(ab_bin_centers(10)))
        _, terms = sscn_loss(output, ab_true, output.reference_logits, LossWeights(), 10)
        assert float(terms["stage1"]) == float(terms["stage2"]) == float(terms["cls"]) == 0.0
        assert float(terms["his"]) > 0
