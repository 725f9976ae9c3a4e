"""Where and how the network runs: the device, the precision, the model's layout and the autocast, one home each
(`Colorizer`, evaluation, `sscn bench` and training all resolve them here)."""
from __future__ import annotations

import contextlib

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from sscn.constants import PRECISIONS

from .sscn import SSCN


def resolve_device(device: str = "auto") -> torch.device:
    """'auto' picks CUDA when present; 'cpu', 'cuda', 'cuda:N' are taken as given (and checked)."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise ValueError(f"unknown device {device!r} (use auto, cpu, cuda or cuda:N)") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but CUDA is not available here")
    if resolved.type not in ("cpu", "cuda"):
        raise ValueError(f"unsupported device {device!r} (use auto, cpu, cuda or cuda:N)")
    return resolved


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes in bf16 natively (AVX-512 BF16 or AMX): there oneDNN's bf16 convolutions and
    matrix products run several times faster than fp32; elsewhere bf16 is emulated, and slower."""
    native = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return torch.backends.mkldnn.is_available() and any(check is not None and check() for check in native)


def resolve_precision(precision: str, device: torch.device) -> str:
    """'auto' is bf16 on CUDA and on CPUs with native bf16, fp32 on other CPUs; fp32, bf16 and fp16 are taken
    as given."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        return "bf16" if device.type == "cuda" or cpu_has_native_bf16() else "fp32"
    return precision


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """The autocast of a resolved precision, for inference and training alike: none in fp32, else bf16 / fp16
    on `device`'s type."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


def input_layout(device: torch.device, precision: str) -> tuple[torch.dtype, torch.memory_format]:
    """dtype and memory format of the network's inputs, those of a `prepare_model` model's weights: a mismatch
    would cost a conversion at every layer."""
    return (torch.bfloat16 if device.type == "cpu" and precision == "bf16" else torch.float32, torch.channels_last)


def prepare_model(model: SSCN, device: torch.device, precision: str) -> SSCN:
    """`model`, in place, on `device`, in eval mode and laid out for inference at `precision`: channels_last
    everywhere (cuDNN's and oneDNN's fast kernels work in that layout), and on the CPU its BatchNorms folded into
    their convolutions (`fold_batch_norms`) and, in bf16, its weights converted to bf16 once (autocast would
    convert them at every call). On a CPU without native bf16 the fp32 engine runs a 256² image 1.5x faster than
    the model as loaded (NCHW, BatchNorms as layers)."""
    model = model.to(device).eval()
    if device.type == "cpu":
        fold_batch_norms(model)
        dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        return model.to(dtype=dtype, memory_format=torch.channels_last)
    return model.to(memory_format=torch.channels_last)


def fold_batch_norms(model: nn.Module) -> nn.Module:
    """`model` (in eval mode) with every BatchNorm2d that directly follows a Conv2d in an nn.Sequential folded
    into that convolution's weights and bias, and replaced by an identity: E's 49 normalisations cost a pass over
    their feature maps each (about 4 % of a bf16 forward on the CPU), and a bias costs the convolution nothing.
    In place; for inference only (the statistics and the affine are baked in)."""
    for sequence in [module for module in model.modules() if isinstance(module, nn.Sequential)]:
        for index in range(len(sequence) - 1):
            conv, norm = sequence[index], sequence[index + 1]
            if isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d):
                sequence[index] = fuse_conv_bn_eval(conv, norm)
                sequence[index + 1] = nn.Identity()
    return model


def working_size(size: int) -> int:
    """The network's square working resolution: `size` rounded to a multiple of 32 (E's stride)."""
    if not 32 <= size <= 4096:
        raise ValueError(f"working size must be between 32 and 4096 (got {size})")
    return max(32, round(size / 32) * 32)
