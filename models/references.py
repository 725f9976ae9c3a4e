"""Several references for one target set: their selected keys/values pooled into one attention set.

The sparse attention of LDT (§3.3, eqs. 2-3) only ever sees the keys/values at S(C), so the selections of
several references can simply be concatenated: each query then attends over the union and takes each colour
from whichever reference matches it best. Two ways to spend the attention budget:
- "each": S(C) of every reference as for one (top-k of its CAM plus r random), M = n (k + r) positions;
- "shared": one budget of k + r over all references, the top k of their pooled CAMs (each CAM min-max scaled
  to [0, 1] first, since the class activations of different photos are on different scales) plus r random.
With one reference both give exactly the single-reference encoding. The AdaIN style vector (§3.2, eq. 1) is
the mean of the references' style vectors.
"""
from __future__ import annotations

import torch

from .ldt import gather_positions, select_positions
from .sscn import SSCN, ReferenceEncoding

BUDGETS = ("each", "shared")


def pool_encodings(encodings: list[ReferenceEncoding]) -> ReferenceEncoding:
    """One encoding attending over the selected positions of all `encodings` (each for one reference, Br = 1).

    selected_idx of the result indexes the references' regions laid end to end (reference i's region j is
    sum_{<i} N + j); it stays None (dense) only if every input is dense."""
    if not encodings:
        raise ValueError("no references to pool")
    if any(encoding.style.shape[0] != 1 for encoding in encodings):
        raise ValueError("pool_encodings takes one reference per encoding")
    selected_idx = None
    if any(encoding.selected_idx is not None for encoding in encodings):
        offsets, parts = 0, []
        for encoding in encodings:
            index = encoding.selected_idx
            if index is None:
                index = torch.arange(encoding.num_positions, device=encoding.keys.device)[None]
            parts.append(index + offsets)                                               # (1, M_i)
            offsets += encoding.num_positions
        selected_idx = torch.cat(parts, dim=1)                                         # (1, sum M_i)
    return ReferenceEncoding(
        style=torch.stack([encoding.style for encoding in encodings]).mean(dim=0),    # (1, S)
        keys=torch.cat([encoding.keys for encoding in encodings], dim=1),             # (1, sum M_i, attn_dim)
        values=torch.cat([encoding.values for encoding in encodings], dim=1),         # (1, sum M_i, value_dim + 2)
        selected_idx=selected_idx,
        num_positions=sum(encoding.num_positions for encoding in encodings),
        logits=torch.stack([encoding.logits for encoding in encodings]).mean(dim=0),  # (1, num_classes)
        cam=torch.cat([encoding.cam for encoding in encodings], dim=1),               # (1, sum N_i)
    )


def _unit_range(cam: torch.Tensor) -> torch.Tensor:
    """(1, N) CAM -> min-max scaled to [0, 1] (order kept, so one reference's top-k is unchanged)."""
    low, high = cam.min(dim=1, keepdim=True).values, cam.max(dim=1, keepdim=True).values
    return (cam - low) / (high - low).clamp_min(1e-12)


def encode_references(model: SSCN, references: list[torch.Tensor], k: int, r: int, dense: bool = False,
                      generator: torch.Generator | None = None, budget: str = "each") -> ReferenceEncoding:
    """Encode each reference (1, 3, H, W) in [0, 1] once and pool them (see the module docstring).

    The random picks come from `generator` in reference order, so a seed fixes the whole selection."""
    if budget not in BUDGETS:
        raise ValueError(f"unknown reference budget {budget!r}; choose one of {', '.join(BUDGETS)}")
    if dense or budget == "each":
        return pool_encodings([model.encode_reference(rgb, k, r, dense, generator) for rgb in references])
    encodings = [model.encode_reference(rgb, dense=True) for rgb in references]
    everything = pool_encodings(encodings)                                             # every region of each
    scores = torch.cat([_unit_range(encoding.cam) for encoding in encodings], dim=1)  # (1, sum N_i)
    selected_idx = select_positions(scores, k, r, generator)                           # (1, k + r) or None
    everything.keys = gather_positions(everything.keys, selected_idx)
    everything.values = gather_positions(everything.values, selected_idx)
    everything.selected_idx = selected_idx
    return everything

