"""sRGB <-> CIE Lab (D65) in torch, and the network's Lab scaling.

Same formulas and constants as scikit-image's `rgb2lab` / `lab2rgb` (the test oracle). Every function
takes `(*, 3, H, W)` tensors (channel dim at -3), is differentiable, batched and device-agnostic.
Ranges: RGB in [0, 1]; L in [0, 100]; a, b roughly in [-110, 110].

The network sees L as `L/50 - 1` and predicts ab as `ab/110` (DESIGN.md, from the authors' code).
"""
from __future__ import annotations

import functools

import torch

_XYZ_FROM_RGB = torch.tensor([
    [0.412453, 0.357580, 0.180423],
    [0.212671, 0.715160, 0.072169],
    [0.019334, 0.119193, 0.950227],
], dtype=torch.float64)
_RGB_FROM_XYZ = torch.linalg.inv(_XYZ_FROM_RGB)
_WHITE_D65 = torch.tensor([0.95047, 1.0, 1.08883], dtype=torch.float64)
_XYZ_OVER_WHITE_FROM_RGB = _XYZ_FROM_RGB / _WHITE_D65[:, None]   # (X/Xn, Y/Yn, Z/Zn) of linear RGB
_RGB_FROM_XYZ_OVER_WHITE = _RGB_FROM_XYZ * _WHITE_D65         # linear RGB of (X/Xn, Y/Yn, Z/Zn)
_F_FROM_LAB = torch.tensor([
    [1 / 116, 1 / 500, 0.0],
    [1 / 116, 0.0, 0.0],
    [1 / 116, 0.0, -1 / 200],
], dtype=torch.float64)
_F_FLOOR = torch.tensor([-torch.inf, -torch.inf, 0.0], dtype=torch.float64)

L_SCALE, AB_SCALE = 50.0, 110.0


def _check(image: torch.Tensor) -> None:
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"expected a torch.Tensor, got {type(image).__name__}")
    if image.dim() < 3 or image.shape[-3] != 3:
        raise ValueError(f"expected shape (*, 3, H, W), got {tuple(image.shape)}")


@functools.lru_cache(maxsize=None)
def _constant_on(value: torch.Tensor, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """A module constant copied to a device once: a copy per call would wait for the GPU at every step."""
    with torch.inference_mode(False):   # a tensor made under inference mode could not be saved for backward
        return value.to(device, dtype)


def _constant(value: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    if torch.compiler.is_compiling():       # traced into the graph as a constant; no cache needed there
        return value.to(like.device, like.dtype)
    return _constant_on(value, like.device, like.dtype)


def _mix(matrix: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """Apply a 3x3 colour matrix over the channel dim of a (*, 3, H, W) tensor: one (3, 3) @ (*, 3, HW) product,
    on the CPU several times faster than the equivalent einsum (which permutes its operands into copies)."""
    return torch.matmul(_constant(matrix, image), image.flatten(-2)).view(image.shape)


def srgb_to_linear(rgb: torch.Tensor) -> torch.Tensor:
    return torch.where(rgb > 0.04045, ((rgb.clamp(min=0.04045) + 0.055) / 1.055) ** 2.4, rgb / 12.92)


def linear_to_srgb(rgb: torch.Tensor) -> torch.Tensor:
    return torch.where(rgb > 0.0031308, 1.055 * rgb.clamp(min=0.0031308) ** (1 / 2.4) - 0.055, rgb * 12.92)


SRGB_BYTE_CELLS = 4096      # table cells over linear [0, 1]: each holds at most one byte boundary (see below)


@functools.cache
def _srgb_byte_tables() -> tuple[torch.Tensor, torch.Tensor]:
    """For the SRGB_BYTE_CELLS + 1 cells of width 1/4096 over linear light: the sRGB byte at each cell's lower
    edge, and the linear value at which the next byte starts (inside the cell, or beyond it). The boundaries are
    the linear light of the byte midpoints (v + 0.5) / 255, in float64; the closest two, near black, are
    1 / (12.92 * 255) = 3.0e-4 apart, more than a cell, so no cell holds two."""
    boundaries = srgb_to_linear((torch.arange(255, dtype=torch.float64) + 0.5) / 255.0)           # (255,)
    edges = torch.arange(SRGB_BYTE_CELLS + 1, dtype=torch.float64) / SRGB_BYTE_CELLS
    byte_at_edge = torch.searchsorted(boundaries, edges, right=True)                                # (cells,)
    next_boundary = torch.cat([boundaries, torch.tensor([2.0], dtype=torch.float64)])[byte_at_edge]
    rounded = next_boundary.float()     # rounded up to a float32, so that x >= it exactly when x >= the boundary
    rounded = torch.where(rounded.double() < next_boundary, torch.nextafter(rounded, torch.tensor(2.0)), rounded)
    return byte_at_edge.to(torch.uint8), rounded


def linear_to_srgb_bytes(linear: torch.Tensor) -> torch.Tensor:
    """Linear light (any shape, taken as float32, clipped to [0, 1]) -> its sRGB encoding as uint8, rounded to
    the nearest byte: `round(255 * linear_to_srgb(x))`, from two small tables and one comparison per value
    (about twice as fast on the CPU as the power and the rounding), exact against float64 boundaries."""
    byte_at_edge, next_boundary = (_constant_on(table, linear.device, table.dtype) for table in _srgb_byte_tables())
    values = linear.float().clamp(0.0, 1.0).reshape(-1)
    cell = values.mul(SRGB_BYTE_CELLS).int()
    result = byte_at_edge.index_select(0, cell) + (values >= next_boundary.index_select(0, cell)).to(torch.uint8)
    return result.view(linear.shape)


def _f(t: torch.Tensor) -> torch.Tensor:
    """The CIE Lab companding function of XYZ / white."""
    eps = 0.008856
    return torch.where(t > eps, t.clamp(min=eps) ** (1 / 3), 7.787 * t + 16.0 / 116.0)


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB (*, 3, H, W) in [0, 1] -> Lab (*, 3, H, W), L in [0, 100]."""
    _check(rgb)
    fx, fy, fz = _f(_mix(_XYZ_OVER_WHITE_FROM_RGB, srgb_to_linear(rgb))).unbind(-3)
    # 116 f(y) - 16 on both branches (= 903.29 y below eps), exactly as scikit-image
    return torch.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], dim=-3)


def rgb_to_lightness(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB (*, 3, H, W) in [0, 1] -> L (*, 1, H, W): channel 0 of `rgb_to_lab`, at a third of the cost."""
    _check(rgb)
    y = torch.matmul(_constant(_XYZ_FROM_RGB, rgb)[1], srgb_to_linear(rgb).flatten(-2))   # (*, HW); white Y is 1
    y = y.view(*rgb.shape[:-3], *rgb.shape[-2:])
    return _lightness_of_luminance(y).unsqueeze(-3)


def _lightness_of_luminance(y: torch.Tensor) -> torch.Tensor:
    """L in [0, 100] of the relative luminance Y (white = 1)."""
    return 116.0 * _f(y) - 16.0


@functools.lru_cache(maxsize=None)
def _byte_tables() -> tuple[torch.Tensor, torch.Tensor]:
    """For the 256 byte values v: linear light of v/255 (sRGB decoding), and L of the grey (v, v, v)."""
    linear = srgb_to_linear(torch.arange(256, dtype=torch.float64) / 255.0)
    grey_lightness = _lightness_of_luminance(linear * _XYZ_FROM_RGB[1].sum())     # the Y row sums to 1 (white)
    return linear.float(), grey_lightness.float()


def _is_grey(rgb: torch.Tensor) -> bool:
    """Whether the three channels of (*, 3, H, W) are equal. Decoded photos and frames are (H, W, 3) in memory,
    where numpy compares the interleaved channels several times faster than torch.equal."""
    channels_last = rgb.movedim(-3, -1)
    if rgb.device.type == "cpu" and channels_last.is_contiguous():
        pixels = channels_last.numpy()
        return bool((pixels[..., 0] == pixels[..., 1]).all() and (pixels[..., 0] == pixels[..., 2]).all())
    return torch.equal(rgb.select(-3, 0), rgb.select(-3, 1)) and torch.equal(rgb.select(-3, 0), rgb.select(-3, 2))


def bytes_to_lightness(rgb: torch.Tensor) -> torch.Tensor:
    """uint8 sRGB (*, 1|3, H, W) -> L (*, 1, H, W), as `rgb_to_lightness` of rgb / 255 but with table lookups in
    place of the per-pixel sRGB decoding; one lookup per pixel for grey images (one channel, or three equal)."""
    linear_of, lightness_of = (_constant(table, rgb.new_empty((), dtype=torch.float32)) for table in _byte_tables())

    def look_up(table: torch.Tensor, channel: int) -> torch.Tensor:
        """(*, H, W) table values of one channel's bytes; index_select is the fast gather."""
        values = rgb.select(-3, channel)
        return table.index_select(0, values.reshape(-1).int()).view(values.shape)

    if rgb.shape[-3] == 1 or _is_grey(rgb):
        return look_up(lightness_of, 0).unsqueeze(-3)
    weights = _XYZ_FROM_RGB[1].tolist()
    y = sum(weight * look_up(linear_of, channel) for channel, weight in enumerate(weights))
    return _lightness_of_luminance(y).unsqueeze(-3)


def lab_to_linear_rgb(lab: torch.Tensor) -> torch.Tensor:
    """Lab -> linear-light RGB, unclipped (values outside [0, 1] are out of the sRGB gamut)."""
    _check(lab)
    # (f(X/Xn), f(Y/Yn), f(Z/Zn)) = (fy + a/500, fy, fy - b/200) with fy = (L + 16)/116: one affine map of Lab;
    # f(Z/Zn) is kept >= 0, as scikit-image does
    f = (_mix(_F_FROM_LAB, lab) + 16.0 / 116.0).clamp(min=_constant(_F_FLOOR, lab).view(3, 1, 1))
    xyz_over_white = torch.where(f > 0.2068966, f.clamp(min=0.2068966) ** 3, (f - 16.0 / 116.0) / 7.787)
    return _mix(_RGB_FROM_XYZ_OVER_WHITE, xyz_over_white)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """Lab (*, 3, H, W) -> sRGB in [0, 1] (out-of-gamut values clipped, as scikit-image does)."""
    return linear_to_srgb(lab_to_linear_rgb(lab).clamp(0.0, 1.0))


def lab_to_rgb_keep_lightness(lab: torch.Tensor, steps: int = 12) -> torch.Tensor:
    """Lab -> sRGB, pulling out-of-gamut ab towards grey instead of clipping RGB.

    Clipping RGB changes lightness; here each out-of-gamut pixel's ab is scaled by the largest factor
    in [0, 1] (bisection, `steps` halvings) that keeps it in gamut, so the output's L is the input's L.
    On the CPU only the out-of-gamut pixels (usually a few percent) are bisected; on a GPU every pixel is,
    since gathering them would need their count on the host (a wait for the GPU at every call).
    Not differentiable (inference only).
    """
    with torch.no_grad():
        linear = lab_to_linear_rgb(lab)
        outside = out_of_gamut(linear)                                          # (*, H, W)
        if lab.device.type != "cpu":
            linear = torch.where(outside.unsqueeze(-3), pull_into_gamut(lab, steps), linear)
        elif outside.any():
            linear.movedim(-3, -1)[outside] = pull_pixels_into_gamut(lab.movedim(-3, -1)[outside], steps)
        return linear_to_srgb(linear.clamp(0.0, 1.0))


def out_of_gamut(linear: torch.Tensor) -> torch.Tensor:
    """Which pixels (*, H, W) of linear RGB (*, 3, H, W) lie outside the sRGB gamut."""
    return ((linear < 0) | (linear > 1)).any(dim=-3)


def pull_pixels_into_gamut(lab: torch.Tensor, steps: int = 12) -> torch.Tensor:
    """`pull_into_gamut` of a list of Lab pixels (n, 3) -> their linear RGB (n, 3)."""
    return pull_into_gamut(lab.T[:, :, None], steps)[:, :, 0].T                 # as one (3, n, 1) image


def pull_into_gamut(lab: torch.Tensor, steps: int = 12) -> torch.Tensor:
    """Linear RGB of Lab (*, 3, H, W) with each pixel's ab scaled by the largest factor in [0, 1] that keeps
    it in gamut, found by `steps` bisection halvings (in-gamut pixels come out scaled by about 1 - 2^-steps)."""
    lightness, ab = lab.split([1, 2], dim=-3)
    lo = torch.zeros_like(lightness)
    hi = torch.ones_like(lightness)
    for _ in range(steps):
        mid = (lo + hi) / 2
        rgb_mid = lab_to_linear_rgb(torch.cat([lightness, ab * mid], dim=-3))
        fits = ((rgb_mid >= 0) & (rgb_mid <= 1)).all(dim=-3, keepdim=True)
        lo = torch.where(fits, mid, lo)
        hi = torch.where(fits, hi, mid)
    return lab_to_linear_rgb(torch.cat([lightness, ab * lo], dim=-3))


def normalize_l(lightness: torch.Tensor) -> torch.Tensor:
    """L in [0, 100] -> network input in [-1, 1]."""
    return lightness / L_SCALE - 1.0


def denormalize_l(l_norm: torch.Tensor) -> torch.Tensor:
    return (l_norm + 1.0) * L_SCALE


def normalize_ab(ab: torch.Tensor) -> torch.Tensor:
    return ab / AB_SCALE


def denormalize_ab(ab_norm: torch.Tensor) -> torch.Tensor:
    return ab_norm * AB_SCALE


def rgb_to_network_lab(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """sRGB (B, 3, H, W) -> (L scaled to [-1, 1] (B, 1, H, W), ab scaled by 1/110 (B, 2, H, W))."""
    lab = rgb_to_lab(rgb)
    return normalize_l(lab[:, :1]), normalize_ab(lab[:, 1:])


def network_lab_to_rgb(l_norm: torch.Tensor, ab_norm: torch.Tensor) -> torch.Tensor:
    """Inverse of `rgb_to_network_lab`, differentiable (RGB clipped to [0, 1])."""
    return lab_to_rgb(torch.cat([denormalize_l(l_norm), denormalize_ab(ab_norm)], dim=1))


# --- quantised ab bins for the histogram loss (eq. 5) -------------------------------------------

@functools.lru_cache(maxsize=None)
def ab_bin_centers(grid: int = 10, limit: float = 110.0) -> torch.Tensor:
    """Centres (Q, 2) of the in-gamut cells of the ab plane quantised with `grid`.

    A cell is kept when its centre is inside the sRGB gamut for at least one L in [1, 99]; with grid 10 over
    [-110, 110] that gives Q = 225 of the 23 x 23 cells. (The paper's Q = 313 comes from Zhang et al.'s hull,
    which keeps every cell any in-gamut colour falls into; a centre test is stricter and needs no data file.)
    """
    axis = torch.arange(-limit, limit + 1e-6, grid, dtype=torch.float64)
    a, b = torch.meshgrid(axis, axis, indexing="ij")
    centers = torch.stack([a.flatten(), b.flatten()], dim=1)                 # (G*G, 2)
    lightness = torch.linspace(1.0, 99.0, 99, dtype=torch.float64)
    lab = torch.stack([
        lightness[:, None].expand(-1, len(centers)),
        centers[None, :, 0].expand(len(lightness), -1),
        centers[None, :, 1].expand(len(lightness), -1),
    ])[None]                                                                   # (1, 3, nL, G*G)
    linear = lab_to_linear_rgb(lab)[0]
    in_gamut = ((linear >= 0) & (linear <= 1)).all(dim=0).any(dim=0)           # (G*G,)
    return centers[in_gamut].float()


def ab_to_bin(ab: torch.Tensor, grid: int = 10) -> torch.Tensor:
    """ab (B, 2, H, W) in Lab units -> index (B, H, W) of the nearest in-gamut bin centre."""
    centers = _constant(ab_bin_centers(grid), ab)                              # (Q, 2)
    flat = ab.permute(0, 2, 3, 1).reshape(-1, 2)                               # (B*H*W, 2)
    nearest = torch.cdist(flat, centers).argmin(dim=1)
    return nearest.view(ab.shape[0], *ab.shape[2:])
