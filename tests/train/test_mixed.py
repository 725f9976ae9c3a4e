"""train.mixed: the bf16 compute copy of a model with fp32 master weights, depthwise convolutions kept fp32."""
from __future__ import annotations

import torch
import torch.nn as nn

from sscn.train.mixed import Bf16Compute, Fp32Conv2d


def mbconv_like() -> nn.Sequential:
    """A pointwise -> depthwise -> pointwise stack, as in EfficientNet's MBConv blocks."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 1), nn.ReLU(), nn.Conv2d(8, 8, 5, 2, 2, groups=8, bias=False),
                         nn.ReLU(), nn.Conv2d(8, 4, 1))


def test_depthwise_convolutions_stay_fp32_in_the_bf16_copy():
    master = mbconv_like()
    mixed = Bf16Compute(master)
    layers = list(mixed.compute)
    assert type(layers[2]) is Fp32Conv2d and layers[2].weight.dtype == torch.float32
    assert [layers[i].weight.dtype for i in (0, 4)] == [torch.bfloat16, torch.bfloat16]
    assert type(master[2]) is nn.Conv2d          # the master model is left as it was
    assert list(mixed.compute.state_dict()) == list(master.state_dict())


def test_bf16_copy_follows_fp32_forward_and_backward():
    """Output in bf16 under autocast; gradients moved to the fp32 master agree with fp32 ones to bf16 precision."""
    master = mbconv_like()
    x = torch.rand(2, 3, 32, 32)
    master(x).square().mean().backward()
    expected = [p.grad.clone() for p in master.parameters()]
    master.zero_grad(set_to_none=True)

    mixed = Bf16Compute(master)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = mixed.compute(x.to(torch.bfloat16).contiguous(memory_format=torch.channels_last))
    assert out.dtype == torch.bfloat16
    out.float().square().mean().backward()
    mixed.gradients_to_master()
    for got, want in zip(master.parameters(), expected):
        assert got.grad.dtype == torch.float32
        assert torch.allclose(got.grad, want, rtol=0.05, atol=0.05 * want.abs().max().item())
