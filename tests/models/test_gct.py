"""AdaIN (eq. 1) against the direct formula in float64."""
from __future__ import annotations

import pytest
import torch

from sscn.models.gct import adain


def _direct(x: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    x = x.double()
    mean = x.mean(dim=(2, 3), keepdim=True)
    std = (x.var(dim=(2, 3), keepdim=True, unbiased=False) + eps).sqrt()
    return scale.double()[:, :, None, None] * (x - mean) / std + bias.double()[:, :, None, None]


def _inputs(dtype: torch.dtype, mean: float = 0.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, 8, 12, 10, generator=generator) * 0.3 + mean
    scale, bias = 1.0 + torch.randn(2, 2, 8, generator=generator)
    return x.to(dtype), scale, bias


@pytest.mark.parametrize("channels_last", [False, True])
def test_matches_direct_formula_fp32(channels_last):
    x, scale, bias = _inputs(torch.float32)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    out = adain(x, scale, bias)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out.double(), _direct(x, scale, bias), atol=1e-5, rtol=1e-5)


def test_bf16_statistics_are_exact_when_the_mean_dwarfs_the_spread():
    # mean 10, std 0.3: sigma^2 from bf16 squares would be several percent off, and a bf16 x * gain + shift
    # would cancel away most digits; computed in fp32, the only error left is the output's rounding to bf16
    x, scale, bias = _inputs(torch.bfloat16, mean=10.0)
    x = x.contiguous(memory_format=torch.channels_last)
    scale, bias = scale.bfloat16(), bias.bfloat16()
    out = adain(x, scale, bias)
    assert out.dtype == torch.bfloat16 and out.is_contiguous(memory_format=torch.channels_last)
    expected = _direct(x, scale, bias)
    assert ((out.double() - expected).abs() <= expected.abs() * 2.0 ** -8 + 1e-4).all()


def test_gradients():
    x, scale, bias = (t.double().requires_grad_() for t in _inputs(torch.float64))
    assert torch.autograd.gradcheck(adain, (x, scale, bias))
