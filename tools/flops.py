"""Parameter and FLOP counts of SSCN, per config.

FLOPs are counted by `torch.utils.flop_counter.FlopCounterMode` (a multiply-add is 2 FLOPs; convolutions,
matrix products and attention are counted, element-wise work is not) on a copy of the model on the `meta`
device, so counting costs no compute and no memory at any size. Attention is counted as its two matrix
products (the math kernel of `scaled_dot_product_attention`): which fused kernel a device would pick, and
whether a torch release's counter knows it, changes from release to release, the work does not. The reference
is counted apart from the targets because `Colorizer` encodes it once and reuses it for every target.

    python -m sscn.tools.flops            # markdown table for every config at 256x256
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from sscn.models.color import ab_bin_centers
from sscn.models.config import CONFIGS, SSCNConfig, get_config
from sscn.models.sscn import SSCN


@dataclass(frozen=True)
class FlopCount:
    """FLOPs for one image of `size` x `size`."""
    size: int
    reference: int   # encode_reference: E(I_r), style vector, CAM, keys/values
    target: int      # one forward with the encoded reference: stage 1, E(I_c), attention, decoder


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def checkpoint_bytes(model: nn.Module, float_bytes: int = 2) -> int:
    """Size of the model's state dict with floating-point tensors stored at `float_bytes` each (fp16: 2)."""
    return sum(t.numel() * (float_bytes if t.is_floating_point() else t.element_size())
               for t in model.state_dict().values())


def meta_model(config: SSCNConfig) -> SSCN:
    """The architecture of `config` on the meta device: shapes only, no weights, no memory."""
    # The bin centres are computed from real values (and cached), which the meta device cannot do.
    ab_bin_centers(config.ab_grid)
    with torch.device("meta"):
        return SSCN(config).eval()


def count_flops(model: SSCN, size: int = 256, dense: bool = False, k: int | None = None,
                r: int | None = None) -> FlopCount:
    """FLOPs to encode one `size`² reference and to colorize one `size`² target (size a multiple of 32).

    Sparse attention uses the config's k / r unless given; `dense` attends to every reference position.
    """
    if size % 32:
        raise ValueError(f"size must be a multiple of 32 (got {size})")
    meta = meta_model(model.config)
    ref_rgb = torch.empty(1, 3, size, size, device="meta")
    l_norm = torch.empty(1, 1, size, size, device="meta")
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH):
        with FlopCounterMode(display=False) as counter:
            reference = meta.encode_reference(ref_rgb, k, r, dense)
        reference_flops = counter.get_total_flops()
        with FlopCounterMode(display=False) as counter:
            meta(l_norm, reference)
        target_flops = counter.get_total_flops()
    return FlopCount(size, reference_flops, target_flops)


def config_table(size: int = 256) -> str:
    """Markdown table: params, fp16 checkpoint size and GFLOPs per `size`² image for every config."""
    rows = [
        "| config | params | fp16 size (MB) | reference GFLOPs | target GFLOPs, sparse | target GFLOPs, dense |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name in CONFIGS:
        model = meta_model(get_config(name))
        sparse = count_flops(model, size)
        dense = count_flops(model, size, dense=True)
        rows.append(f"| {name} | {count_parameters(model) / 1e6:.2f} M | {checkpoint_bytes(model) / 1e6:.1f} "
                    f"| {sparse.reference / 1e9:.2f} | {sparse.target / 1e9:.2f} | {dense.target / 1e9:.2f} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sscn.tools.flops", description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256, help="side of the square images (multiple of 32)")
    args = parser.parse_args(argv)
    print(f"FLOPs per {args.size}x{args.size} image (sparse: the config's k + r positions; dense: all).\n")
    print(config_table(args.size))


if __name__ == "__main__":
    main()
