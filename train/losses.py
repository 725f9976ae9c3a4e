"""The training objective of eq. 6: Smooth-L1 on both stages (eq. 4), classification / CAM term,
ab-histogram cross-entropy (eq. 5) and total variation on the final ab. Weights default to §4.1's.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from sscn.models.color import ab_to_bin, denormalize_ab
from sscn.models.sscn import SSCNOutput


@dataclass(frozen=True)
class LossWeights:
    stage1: float = 100.0
    stage2: float = 100.0
    cls: float = 0.1
    tv: float = 10.0
    his: float = 1.0
    smooth_l1_beta: float = 1.0 / 11.0   # delta of eq. 4 in ab/110 units (10 Lab units)


def total_variation(ab: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between neighbouring pixels of (B, C, H, W)."""
    return (ab[..., 1:, :] - ab[..., :-1, :]).abs().mean() + (ab[..., :, 1:] - ab[..., :, :-1]).abs().mean()


def histogram_loss(bin_logits: torch.Tensor, ab_true: torch.Tensor, grid: int) -> torch.Tensor:
    """Eq. 5: per-pixel cross-entropy between predicted bin distribution (B, Q, h, w) and the true ab's bin
    (ab_true in ab/110 units, downsampled to h x w); averaged over pixels."""
    ab_small = F.adaptive_avg_pool2d(ab_true.float(), bin_logits.shape[-2:])
    truth = ab_to_bin(denormalize_ab(ab_small), grid).flatten()                   # (B*h*w,)
    # (B*h*w, Q): a view for channels_last logits, so the softmax runs over contiguous rows
    per_pixel = bin_logits.permute(0, 2, 3, 1).reshape(-1, bin_logits.shape[1])
    return F.cross_entropy(per_pixel.float(), truth)


def classification_loss(logits: torch.Tensor, labels: torch.Tensor | None,
                        teacher_logits: torch.Tensor | None) -> torch.Tensor:
    """Label cross-entropy when labels are known; otherwise distillation (KL) against a frozen classifier's
    scores, which keeps a pretrained CAM meaningful while E is fine-tuned. Zero when neither is given."""
    if labels is not None:
        return F.cross_entropy(logits.float(), labels)
    if teacher_logits is not None:
        return F.kl_div(logits.float().log_softmax(-1), teacher_logits.float().log_softmax(-1),
                        log_target=True, reduction="batchmean")
    return logits.new_zeros(())


def sscn_loss(output: SSCNOutput, ab_true: torch.Tensor, ref_logits: torch.Tensor, weights: LossWeights,
              ab_grid: int, labels: torch.Tensor | None = None,
              teacher_logits: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Eq. 6 on ab_true (B, 2, H, W) in ab/110 units. Returns the total and each term, unweighted and detached,
    as 0-dim tensors: converting them to floats waits for the device, so callers do it only when logging."""
    terms = {
        "stage1": F.smooth_l1_loss(output.ab_coarse.float(), ab_true, beta=weights.smooth_l1_beta),
        "stage2": F.smooth_l1_loss(output.ab.float(), ab_true, beta=weights.smooth_l1_beta),
        "cls": classification_loss(ref_logits, labels, teacher_logits),
        "tv": total_variation(output.ab.float()),
        "his": histogram_loss(output.bin_logits, ab_true, ab_grid) if output.bin_logits is not None
        else ab_true.new_zeros(()),
    }
    total = sum(getattr(weights, name) * value for name, value in terms.items())
    return total, {name: value.detach() for name, value in terms.items()}
