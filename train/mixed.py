"""bf16 training with fp32 master weights.

The network runs forward and backward as a bf16, channels_last copy of the model, so every convolution and
matrix product gets bf16 weights and bf16 activations with no per-step casts (under autocast alone, each
layer's fp32 weights are cast on every call, and on a CPU that costs most of what bf16 gains). The optimiser
keeps updating the fp32 model: after backward the bf16 gradients are copied to it as fp32, the step runs on the
fp32 weights, and the bf16 copy is refreshed from them. bf16 has fp32's exponent range, so no loss scaling.

Depthwise convolutions (EfficientNet's MBConv blocks in E) stay fp32 in the copy: oneDNN has no fast bf16
kernel for their backward on CPUs without AMX, and there fp32 channels_last runs forward + backward 2-6x
faster than bf16 (`scripts/bench_train.py`; measured on an AVX-512 BF16 EPYC, B = 8 at 256²).
"""
from __future__ import annotations

import copy

import torch
import torch.nn as nn


class Fp32Conv2d(nn.Conv2d):
    """A convolution that computes in fp32 inside a bf16 network: bf16 in, bf16 out, autocast off."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        with torch.autocast(input.device.type, enabled=False):
            return super().forward(input.float()).to(input.dtype)


def keep_depthwise_fp32(model: nn.Module) -> None:
    """Turn every depthwise convolution of `model` (groups == input channels) into an fp32 `Fp32Conv2d`, in
    place: same parameters and state-dict keys, so the copy still lines up with its master."""
    for module in model.modules():
        if type(module) is nn.Conv2d and module.groups > 1 and module.groups == module.in_channels:
            module.float()
            module.__class__ = Fp32Conv2d


class Bf16Compute:
    """A bf16, channels_last copy of `master` for forward and backward; `master` holds the fp32 weights."""

    def __init__(self, master: nn.Module) -> None:
        self.master = master
        self.compute = copy.deepcopy(master).to(dtype=torch.bfloat16, memory_format=torch.channels_last)
        if next(master.parameters()).device.type == "cpu":
            keep_depthwise_fp32(self.compute)
        self._trainable = [(mine, theirs) for mine, theirs in zip(master.parameters(), self.compute.parameters())
                           if mine.requires_grad]

    @torch.no_grad()
    def gradients_to_master(self) -> None:
        """Move the bf16 gradients onto the fp32 weights (as fp32) and clear them on the copy."""
        for master, compute in self._trainable:
            master.grad = None if compute.grad is None else compute.grad.float()
            compute.grad = None

    @torch.no_grad()
    def weights_from_master(self) -> None:
        """Refresh the bf16 copy from the fp32 weights (after every optimiser step, and after loading them)."""
        for master, compute in self._trainable:
            compute.copy_(master)

    @torch.no_grad()
    def buffers_to_master(self) -> None:
        """BatchNorm running statistics live on the copy while training: bring them back before a checkpoint."""
        for master, compute in zip(self.master.buffers(), self.compute.buffers()):
            master.copy_(compute)
