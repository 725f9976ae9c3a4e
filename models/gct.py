"""Global Color Transfer, the coarse stage (paper §3.2, eq. 1).

A VGG19-style gray encoder (sub-layers up to relu4_1, 1-channel input) encodes the target's L; a decoder of
symmetric shape with AdaIN after its convolutions re-styles the features with the reference's style vector
and inverts them to coarse ab. I_c = (L, ab_coarse) is then re-encoded by E for the fine stage.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def adain(x: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Eq. 1: y_s * (x - mu(x)) / sigma(x) + y_b, per sample and channel. x (B, C, H, W); scale, bias (B, C).

    Computed in fp32 whatever x's dtype, as one pass x * gain + shift over an fp32 copy of x, rounded once:
    sigma^2 = E[x^2] - mu^2 (bf16 squares would lose several percent of it when |mu| >> sigma; so would a bf16
    gain and shift, by cancellation). On the CPU several times faster, over bf16 channels_last maps, than var and
    four elementwise passes in bf16, and closer to the float64 result.
    """
    wide = x.to(torch.promote_types(x.dtype, torch.float32))
    mean = wide.mean(dim=(2, 3), keepdim=True)                                   # (B, C, 1, 1)
    variance = ((wide * wide).mean(dim=(2, 3), keepdim=True) - mean * mean).clamp(min=0.0)
    gain = scale[:, :, None, None].to(wide.dtype) * torch.rsqrt(variance + eps)
    shift = bias[:, :, None, None].to(wide.dtype) - mean * gain
    return torch.addcmul(shift, wide, gain).to(x.dtype)


def _conv_relu(in_ch: int, out_ch: int) -> list[nn.Module]:
    return [nn.Conv2d(in_ch, out_ch, 3, padding=1), nn.ReLU(inplace=True)]


class GrayEncoder(nn.Module):
    """VGG19 layers conv1_1 .. relu4_1 on the L channel; output stride 8."""

    def __init__(self, widths: tuple[int, ...]) -> None:
        super().__init__()
        w1, w2, w3, w4 = widths
        layers = (
            _conv_relu(1, w1) + _conv_relu(w1, w1) + [nn.MaxPool2d(2)]
            + _conv_relu(w1, w2) + _conv_relu(w2, w2) + [nn.MaxPool2d(2)]
            + _conv_relu(w2, w3) + _conv_relu(w3, w3) + _conv_relu(w3, w3) + _conv_relu(w3, w3) + [nn.MaxPool2d(2)]
            + _conv_relu(w3, w4)
        )
        self.net = nn.Sequential(*layers)

    def forward(self, l_norm: torch.Tensor) -> torch.Tensor:
        return self.net(l_norm)


class AdaINDecoder(nn.Module):
    """Mirror of the gray encoder; every 3x3 convolution is followed by AdaIN and ReLU."""

    def __init__(self, widths: tuple[int, ...]) -> None:
        super().__init__()
        w1, w2, w3, w4 = widths
        # (in, out, upsample before this conv)
        plan = [(w4, w3, False), (w3, w3, True), (w3, w3, False), (w3, w2, False),
                (w2, w2, True), (w2, w1, False), (w1, w1, True)]
        self.convs = nn.ModuleList(nn.Conv2d(i, o, 3, padding=1) for i, o, _ in plan)
        self.upsample_before = [up for _, _, up in plan]
        self.style_widths = [o for _, o, _ in plan]
        self.to_ab = nn.Conv2d(w1, 2, 3, padding=1)

    @property
    def style_dim(self) -> int:
        """Length of the style vector: a (scale, bias) pair per channel of every AdaIN layer."""
        return 2 * sum(self.style_widths)

    def forward(self, features: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        offset = 0
        x = features
        for conv, upsample, width in zip(self.convs, self.upsample_before, self.style_widths):
            if upsample:
                x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            scale = 1.0 + style[:, offset:offset + width]     # identity-centred scale
            bias = style[:, offset + width:offset + 2 * width]
            offset += 2 * width
            x = F.relu(adain(conv(x), scale, bias))
        return self.to_ab(x)


class GlobalColorTransfer(nn.Module):
    """Stage 1: L (B, 1, H, W) scaled to [-1, 1] + style vector (B, S) -> coarse ab (B, 2, H, W) scaled by 1/110.

    The coarse stage works at half resolution: it transfers global tones, and E's first level (stride 2) is
    all the fine stage reads from I_c, so full-resolution work here would be spent on detail nobody uses.
    """

    def __init__(self, widths: tuple[int, ...]) -> None:
        super().__init__()
        self.encoder = GrayEncoder(widths)
        self.decoder = AdaINDecoder(widths)

    def forward(self, l_norm: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        l_half = F.avg_pool2d(l_norm, 2)                                       # (B, 1, H/2, W/2)
        ab_half = self.decoder(self.encoder(l_half), style)                    # (B, 2, H/2, W/2)
        return F.interpolate(ab_half, size=l_norm.shape[-2:], mode="bilinear", align_corners=False)
