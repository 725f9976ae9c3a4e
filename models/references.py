"""Encoded references (`Reference`): one for every target, one per target, or several pooled into one attention
set, each encoded once and run as sparse (any k, r), dense or stage 1 alone.

The sparse attention of LDT (§3.3, eqs. 2-3) only ever sees the keys/values at S(C) = top-k(CAM) U r random
others, and those are a selection from the keys/values of every region: a `Reference` keeps the dense encoding
and the seeds of its random picks, and selects S(C) for each (k, r) asked for (cached), so every variant comes
from one encoder pass. A seed fixes the picks on any device and in any batch (`select_positions` draws them on
the CPU from a generator seeded with it).

Several references for one target set: their selections are concatenated, so each query attends over the
union and takes each colour from whichever reference matches it best. Two ways to spend the budget:
- "each": S(C) of every reference as for one (top-k of its CAM plus r random, one generator drawing for all of
  them in order), M = n (k + r) positions;
- "shared": one budget of k + r over all references, the top k of their pooled CAMs (each CAM min-max scaled
  to [0, 1] first, since the class activations of different photos are on different scales) plus r random.
With one reference both give exactly the single-reference encoding. The AdaIN style vector (§3.2, eq. 1) is
the mean of the references' style vectors.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch

from sscn.constants import BUDGETS

from .ldt import check_selection, gather_positions, select_positions
from .sscn import ReferenceEncoding


def check_budget(budget: str) -> None:
    if budget not in BUDGETS:
        raise ValueError(f"unknown reference budget {budget!r}; choose one of {', '.join(BUDGETS)}")


def select(dense: ReferenceEncoding, k: int, r: int, generators: list[torch.Generator]) -> ReferenceEncoding:
    """S(C) of each row of a dense encoding (Br rows, one generator each): keys/values (Br, k + r, .) at those
    positions; the encoding itself when k + r covers every position."""
    rows = [select_positions(dense.cam[i:i + 1], k, r, generator) for i, generator in enumerate(generators)]
    if rows[0] is None:
        return dense
    selected_idx = torch.cat(rows)                                                     # (Br, k + r)
    return dataclasses.replace(dense, keys=gather_positions(dense.keys, selected_idx),
                               values=gather_positions(dense.values, selected_idx), selected_idx=selected_idx)


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


def _seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@dataclass(eq=False)
class Reference:
    """One or more references encoded once by a `Colorizer` (`encode_reference`, `encode_references`,
    `encode_reference_batch`), ready for any number of `Colorizer.colorize` calls.

    Rows (`budget` None): `parts` is one dense encoding of Br references, row i's random picks seeded by
    `seeds[i]`; Br = 1 serves every target, Br = B gives target i its own row i. Pooled (`budget` "each" or
    "shared"): `parts` are the dense encodings (Br = 1) of references attending as one set, `seeds[0]` seeding
    all their picks (module docstring)."""
    parts: tuple[ReferenceEncoding, ...]
    seeds: tuple[int, ...]
    budget: str | None = None
    _variants: dict = field(default_factory=dict, init=False, repr=False)   # {(k, r) | "dense": encoding}

    def __post_init__(self) -> None:
        if self.budget is not None:
            check_budget(self.budget)
        elif len(self.seeds) != self.parts[0].style.shape[0]:
            raise ValueError(f"{len(self.seeds)} seeds for {self.parts[0].style.shape[0]} references")

    def __len__(self) -> int:
        """Rows of the encoding: 1 (one for every target) or one per target."""
        return 1 if self.budget is not None else self.parts[0].style.shape[0]

    def encoding(self, k: int, r: int, dense: bool = False) -> ReferenceEncoding:
        """The keys/values the network attends to: every region (`dense`), or S(C) with `k` top-CAM and `r`
        random positions per reference (§3.3); derived from the dense encoding once per (k, r)."""
        key = "dense" if dense else (k, r)
        if key not in self._variants:
            if not dense:
                check_selection(k, r)
            self._variants[key] = self._dense() if dense else self._sparse(k, r)
        return self._variants[key]

    def _dense(self) -> ReferenceEncoding:
        return self.parts[0] if self.budget is None else pool_encodings(list(self.parts))

    def _sparse(self, k: int, r: int) -> ReferenceEncoding:
        if self.budget is None:
            return select(self.parts[0], k, r, [_seeded(seed) for seed in self.seeds])
        generator = _seeded(self.seeds[0])
        if self.budget == "each" or len(self.parts) == 1:   # one reference: its own S(C), the budgets agree
            return pool_encodings([select(part, k, r, [generator]) for part in self.parts])
        # one budget over all: S(C) from the pooled, unit-range CAMs; the encoding keeps the references' own
        everything = self._dense()                                                        # every region of each
        scores = torch.cat([_unit_range(part.cam) for part in self.parts], dim=1)        # (1, sum N_i)
        chosen = select(dataclasses.replace(everything, cam=scores), k, r, [generator])
        return dataclasses.replace(chosen, cam=everything.cam)
