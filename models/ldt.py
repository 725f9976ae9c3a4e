"""Local Details Transfer, the fine stage (paper §3.3, eqs. 2-3), with semantic-sparse selection.

Correspondence features: F1..F4 of E resized to H/4 and concatenated (d x H/4 x W/4), flattened to HW/16
regions. Queries come from the coarse result's features, keys/values from the reference's features at the
selected positions S(C) = top-k(CAM) U r random others. Attention is a cosine similarity with softmax
temperature 0.01 (the authors' choice), run through `scaled_dot_product_attention`. The attended features are
fused with E(I_c) at 1/16, 1/8, 1/4 and 1/2 in a U-Net decoder that predicts the final ab and, at 1/4, logits
over the quantised in-gamut ab bins (eq. 5).

Besides W_v f^r, every value carries the reference's own ab at that region, so the attention also returns
the reference colours warped onto the target ("warped ab"), which the decoder refines.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

# Largest attention matrix materialised at once (elements); dense attention on big inputs is chunked.
_ATTENTION_CHUNK_ELEMENTS = 1 << 25


def correspondence_features(levels: list[torch.Tensor]) -> torch.Tensor:
    """F1..F4 (strides 2, 4, 8, 16) -> concatenated at stride 4: (B, sum C_i, H/4, W/4)."""
    size = levels[1].shape[-2:]
    return torch.cat([F.interpolate(f, size=size, mode="bilinear", align_corners=False) if f.shape[-2:] != size
                      else f for f in levels], dim=1)


def check_selection(k: int, r: int) -> None:
    if k < 0 or r < 0:
        raise ValueError(f"k and r must be >= 0 (got k={k}, r={r})")
    if k + r == 0:
        raise ValueError("k + r must be at least 1 (or use dense attention)")


def select_positions(cam: torch.Tensor, k: int, r: int, generator: torch.Generator | None = None) -> torch.Tensor | None:
    """S(C) = T_k U T_r (§3.3): indices (B, k+r) of the k largest CAM scores and r distinct random others.

    cam: (B, N) flattened CAM at the correspondence resolution. Returns None ("use every position") when
    k + r >= N. The random picks are drawn on the CPU from `generator`, so a seed fixes them on any device.
    They are stratified: the N positions, in raster order, fall into r strata of about N/r, and each stratum's
    best draw is taken first, so the picks cover the image evenly instead of clumping (strata the top-k
    already fill are made up from the others).
    """
    check_selection(k, r)
    batch, positions = cam.shape
    if k + r >= positions:
        return None
    top = cam.topk(k, dim=1).indices if k else cam.new_empty(batch, 0, dtype=torch.long)   # (B, k)
    if not r:
        return top
    noise = torch.rand(batch, positions, generator=generator)
    if cam.device.type == "cuda":   # pinned + asynchronous: a plain copy would wait for the GPU every forward
        noise = noise.pin_memory()
    noise = noise.to(cam.device, non_blocking=True)
    noise.scatter_(1, top, -1.0)                   # never re-draw a top-k position
    stratum = (torch.arange(positions, device=cam.device) * r // positions).expand(batch, -1)  # (B, N)
    best = noise.new_full((batch, r), -2.0).scatter_reduce(1, stratum, noise, "amax")         # (B, r)
    first = (noise == best.gather(1, stratum)) & (noise >= 0)     # each stratum's best draw, top-k excluded
    others = (noise + first).topk(r, dim=1).indices                                           # (B, r)
    return torch.cat([top, others], dim=1)


def gather_positions(tokens: torch.Tensor, index: torch.Tensor | None) -> torch.Tensor:
    """tokens (B, N, C), index (B, M) -> (B, M, C); index None keeps all N."""
    if index is None:
        return tokens
    return tokens.gather(1, index[:, :, None].expand(-1, -1, tokens.shape[-1]))


def attend(queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, temperature: float) -> torch.Tensor:
    """Eqs. 2-3 with cosine similarity: softmax(q.k / T) v.

    queries (B, Nq, d), keys (B, M, d), values (B, M, dv) -> (B, Nq, dv). Queries are processed in chunks so
    that no more than `_ATTENTION_CHUNK_ELEMENTS` scores exist at once when the fused kernels are unavailable.
    """
    value_dim = values.shape[-1]
    # The fused (flash) kernels need one head width for q, k and v, a multiple of 8; zero padding changes
    # neither the dot products nor the first dv channels of the output, and without it the CPU falls back
    # to the math kernel, ~30x slower for dense attention.
    width = -(-max(queries.shape[-1], value_dim) // 8) * 8

    def head(x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, (0, width - x.shape[-1]))[:, None]                    # (B, 1, N, width): one head

    q = head(F.normalize(queries, dim=-1))
    k = head(F.normalize(keys, dim=-1))
    v = head(values)
    chunk = max(1, _ATTENTION_CHUNK_ELEMENTS // max(1, k.shape[2] * q.shape[0]))
    out = [F.scaled_dot_product_attention(q[:, :, s:s + chunk], k, v, scale=1.0 / temperature)
           for s in range(0, q.shape[2], chunk)]
    out = out[0] if len(out) == 1 else torch.cat(out, dim=2)    # one chunk (sparse attention): no copy
    return out[:, 0, :, :value_dim]


def _double_conv(in_ch: int, out_ch: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, padding=1), nn.ReLU(inplace=True),
                         nn.Conv2d(out_ch, out_ch, 3, padding=1), nn.ReLU(inplace=True))


class FusionUNetDecoder(nn.Module):
    """U-Net decoder fusing attended features with E(I_c) levels at 1/16, 1/8, 1/4, then 1/2 and full size."""

    def __init__(self, level_widths: tuple[int, ...], attended_dim: int, widths: tuple[int, ...], num_bins: int) -> None:
        super().__init__()
        c1, c2, c3, c4 = level_widths
        w16, w8, w4, w2 = widths
        self.fuse16 = _double_conv(c4 + attended_dim, w16)
        self.fuse8 = _double_conv(w16 + c3 + attended_dim, w8)
        self.fuse4 = _double_conv(w8 + c2 + attended_dim, w4)
        self.fuse2 = _double_conv(w4 + c1, w2)
        # Full size: one light convolution over (upsampled features, L, coarse ab) keeps edges sharp cheaply.
        self.fuse1 = nn.Sequential(nn.Conv2d(w2 + 3, w2, 3, padding=1), nn.ReLU(inplace=True))
        self.to_ab = nn.Conv2d(w2, 2, 3, padding=1)
        self.to_bins = nn.Conv2d(w4, num_bins, 1)

    def forward(self, levels: list[torch.Tensor], attended: torch.Tensor, l_norm: torch.Tensor,
                ab_coarse: torch.Tensor, with_bins: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        f1, f2, f3, f4 = levels

        def up(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
            return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)

        x = self.fuse16(torch.cat([f4, F.adaptive_avg_pool2d(attended, f4.shape[-2:])], dim=1))
        x = self.fuse8(torch.cat([up(x, f3), f3, F.adaptive_avg_pool2d(attended, f3.shape[-2:])], dim=1))
        x = self.fuse4(torch.cat([up(x, f2), f2, attended], dim=1))
        bins = self.to_bins(x) if with_bins else None
        x = self.fuse2(torch.cat([up(x, f1), f1], dim=1))
        # L arrives fp32; cat would promote the whole full-size stack to fp32 under bf16 autocast (a copy forward,
        # another backward), and the convolution would cast it straight back
        x = self.fuse1(torch.cat([up(x, l_norm), l_norm.to(x.dtype), ab_coarse.to(x.dtype)], dim=1))
        return self.to_ab(x), bins


class LocalDetailsTransfer(nn.Module):
    """Stage 2 projections (W_q, W_k, W_v) and the fusion decoder."""

    def __init__(self, level_widths: tuple[int, ...], attn_dim: int, value_dim: int,
                 decoder_widths: tuple[int, ...], num_bins: int, temperature: float) -> None:
        super().__init__()
        corr_dim = sum(level_widths)
        self.to_query = nn.Linear(corr_dim, attn_dim)
        self.to_key = nn.Linear(corr_dim, attn_dim)
        self.to_value = nn.Linear(corr_dim, value_dim)
        self.temperature = temperature
        self.decoder = FusionUNetDecoder(level_widths, value_dim + 2, decoder_widths, num_bins)

    def reference_tokens(self, ref_levels: list[torch.Tensor], ref_ab: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys (B, N, attn_dim) and values (B, N, value_dim + 2) for every reference region (N = HW/16)."""
        corr = correspondence_features(ref_levels)                       # (B, d, H/4, W/4)
        tokens = corr.flatten(2).transpose(1, 2)                         # (B, N, d)
        ab_regions = F.adaptive_avg_pool2d(ref_ab, corr.shape[-2:])     # (B, 2, H/4, W/4)
        ab_tokens = ab_regions.flatten(2).transpose(1, 2)                # (B, N, 2)
        values = torch.cat([self.to_value(tokens), ab_tokens.to(tokens.dtype)], dim=-1)
        return self.to_key(tokens), values

    def forward(self, coarse_levels: list[torch.Tensor], keys: torch.Tensor, values: torch.Tensor,
                l_norm: torch.Tensor, ab_coarse: torch.Tensor, with_bins: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        corr = correspondence_features(coarse_levels)                    # (B, d, H/4, W/4)
        batch, _, height, width = corr.shape
        queries = self.to_query(corr.flatten(2).transpose(1, 2))         # (B, HW/16, attn_dim)
        attended = attend(queries, keys, values, self.temperature)       # (B, HW/16, value_dim + 2)
        attended = attended.transpose(1, 2).reshape(batch, -1, height, width)
        return self.decoder(coarse_levels, attended, l_norm, ab_coarse, with_bins)
