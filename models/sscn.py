"""The Semantic-Sparse Colorization Network (paper §3.1, Fig. 2): E, GCT (stage 1), LDT (stage 2).

Inputs and outputs live in the network's Lab scaling (models.color): L as L/50-1, ab as ab/110.
Spatial sizes must be multiples of 32 (E's deepest level has stride 32); `Colorizer` takes care of that.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .color import ab_bin_centers, network_lab_to_rgb, rgb_to_network_lab
from .config import SSCNConfig
from .encoder import build_encoder, load_lite0_imagenet_state
from .gct import GlobalColorTransfer
from .ldt import LocalDetailsTransfer, gather_positions, select_positions


@dataclass
class ReferenceEncoding:
    """Everything the network needs from I_r, computed once and reused for every target."""
    style: torch.Tensor              # (Br, S) AdaIN style vector
    keys: torch.Tensor               # (Br, M, attn_dim) W_k f^r at the selected positions
    values: torch.Tensor             # (Br, M, value_dim + 2) W_v f^r and the region's ab
    selected_idx: torch.Tensor | None  # (Br, M) indices into the HW/16 regions; None = dense
    num_positions: int               # N = HW/16 of the reference
    logits: torch.Tensor             # (Br, num_classes) classifier scores (classification loss)
    cam: torch.Tensor                # (Br, N) CAM at the correspondence resolution

    def expand(self, batch: int) -> "ReferenceEncoding":
        """Broadcast a single reference over a batch of targets (a view, no copy)."""
        if self.style.shape[0] == batch:
            return self
        if self.style.shape[0] != 1:
            raise ValueError(f"{self.style.shape[0]} references for {batch} targets")
        grow = lambda t: None if t is None else t.expand(batch, *t.shape[1:])  # noqa: E731
        return ReferenceEncoding(grow(self.style), grow(self.keys), grow(self.values), grow(self.selected_idx),
                                 self.num_positions, grow(self.logits), grow(self.cam))


@dataclass
class SSCNOutput:
    ab_coarse: torch.Tensor          # (B, 2, H, W) stage 1
    ab: torch.Tensor                 # (B, 2, H, W) stage 2
    bin_logits: torch.Tensor | None  # (B, Q, H/4, W/4) histogram head (training only)
    reference_logits: torch.Tensor   # (Br, num_classes) E's class scores for the reference


class SSCN(nn.Module):
    def __init__(self, config: SSCNConfig, pretrained_encoder: bool = False) -> None:
        super().__init__()
        self.config = config
        self.gct = GlobalColorTransfer(config.gray_widths)
        self.encoder = build_encoder(config, self.gct.decoder.style_dim)
        if pretrained_encoder and config.encoder == "effnet-lite0":
            self.encoder.load_imagenet(load_lite0_imagenet_state())
        self.num_bins = len(ab_bin_centers(config.ab_grid))
        self.ldt = LocalDetailsTransfer(self.encoder.level_widths, config.attn_dim, config.value_dim,
                                        config.decoder_widths, self.num_bins, config.temperature)

    def encode_reference(self, ref_rgb: torch.Tensor, k: int | None = None, r: int | None = None,
                         dense: bool = False, generator: torch.Generator | None = None) -> ReferenceEncoding:
        """E(I_r), the style vector, the CAM and the keys/values at S(C) for a reference (Br, 3, H, W) in [0, 1]."""
        k = self.config.k if k is None else k
        r = self.config.r if r is None else r
        encoded = self.encoder(ref_rgb)
        _, ref_ab = rgb_to_network_lab(ref_rgb.float())
        keys, values = self.ldt.reference_tokens(encoded.levels, ref_ab)   # (Br, N, .)
        corr_size = encoded.levels[1].shape[-2:]
        cam = F.interpolate(encoded.cam.float(), size=corr_size, mode="bilinear", align_corners=False).flatten(1)
        selected_idx = None if dense else select_positions(cam, k, r, generator)
        return ReferenceEncoding(
            style=encoded.style, keys=gather_positions(keys, selected_idx),
            values=gather_positions(values, selected_idx), selected_idx=selected_idx,
            num_positions=keys.shape[1], logits=encoded.logits, cam=cam,
        )

    def forward(self, l_norm: torch.Tensor, reference: ReferenceEncoding | torch.Tensor, with_bins: bool = False,
                stage1_only: bool = False, k: int | None = None, r: int | None = None, dense: bool = False,
                generator: torch.Generator | None = None) -> SSCNOutput:
        """L (B, 1, H, W) scaled to [-1, 1] and a reference -> stage-1 and stage-2 ab.

        `reference` is either an encoding from `encode_reference` (inference: encode once, reuse) or the
        reference image itself (B, 3, H, W) in [0, 1], encoded here with k / r / dense / generator (training,
        so that DDP sees one forward).
        """
        if isinstance(reference, torch.Tensor):
            reference = self.encode_reference(reference, k, r, dense, generator)
        reference = reference.expand(l_norm.shape[0])
        ab_coarse = self.gct(l_norm, reference.style)                              # stage 1 (§3.2)
        if stage1_only:
            return SSCNOutput(ab_coarse, ab_coarse, None, reference.logits)
        coarse_rgb = network_lab_to_rgb(l_norm.float(), ab_coarse.float()).to(l_norm.dtype)   # I_c
        coarse_levels = self.encoder.levels(coarse_rgb)                            # F_Ic
        ab, bin_logits = self.ldt(coarse_levels, reference.keys, reference.values, l_norm, ab_coarse, with_bins)
        return SSCNOutput(ab_coarse, ab, bin_logits, reference.logits)
