"""Self-augmented training pairs, built on the device for a whole batch at once (paper §4.1, [19], [004]).

From one photo: target = random resized crop + flip; reference = thin-plate-spline warp of the same photo with
random rotation / crop and mild appearance noise. A share of pairs is violently deformed to imitate unrelated
references (supplementary: 20 %), and a small share uses palette swatches of the photo's dominant colours.

Two more kinds teach the network to follow the reference rather than a prior of what colour things usually
are (real references are different photos, not warped copies): a share of pairs has target *and* reference
recoloured by the same random hue rotation and saturation gain in Lab (so the truth is only knowable from the
reference), and a share has a rectangle of another pair's reference pasted into its own (so the reference only
partly matches the target, and the network must not copy colour from the unrelated part).

Class pairs are the real task itself: the reference is another photo of the target's class (two campus
buildings, two fish), augmented as a mild pair, so the truth is only partly in the reference and the network must
find what corresponds.

Every geometric transform is expressed as a sampling grid for `grid_sample` in normalised [-1, 1] coordinates
(x right, y down), so a pair costs one `grid_sample` per image side, with no per-sample Python loop.
All randomness comes from one `torch.Generator` living on the batch's device.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from sscn.models.color import lab_to_rgb_keep_lightness, rgb_to_lab
from sscn.models.palette import dominant_colors, swatch_images


def _uniform(shape: tuple[int, ...], low: float, high: float, generator: torch.Generator, device) -> torch.Tensor:
    return torch.rand(shape, generator=generator, device=device) * (high - low) + low


def identity_grid(batch: int, height: int, width: int, device, dtype=torch.float32) -> torch.Tensor:
    """(B, H, W, 2) pixel-centre coordinates in [-1, 1] (align_corners=False convention)."""
    ys = (torch.arange(height, device=device, dtype=dtype) + 0.5) / height * 2 - 1
    xs = (torch.arange(width, device=device, dtype=dtype) + 0.5) / width * 2 - 1
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)        # (H, W, 2) as (x, y)
    return grid.expand(batch, height, width, 2)


def _tps_kernel(distance_sq: torch.Tensor) -> torch.Tensor:
    """Thin-plate radial basis U(r) = r^2 log r^2 (0 at r = 0)."""
    return distance_sq * torch.log(distance_sq.clamp(min=1e-12))


def tps_transform(control: torch.Tensor, displaced: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """The thin-plate spline that maps `control` points (B, N, 2) to `displaced`, evaluated at `points` (B, P, 2)
    -> (B, P, 2). Exact at the control points; in between it interpolates with minimum bending energy."""
    batch, count, _ = control.shape
    kernel = _tps_kernel(torch.cdist(control, control) ** 2)                                # (B, N, N)
    affine = torch.cat([torch.ones_like(control[..., :1]), control], dim=-1)                # (B, N, 3)
    system = torch.zeros(batch, count + 3, count + 3, device=control.device, dtype=control.dtype)
    system[:, :count, :count] = kernel
    system[:, :count, count:] = affine
    system[:, count:, :count] = affine.transpose(1, 2)
    rhs = torch.cat([displaced, displaced.new_zeros(batch, 3, 2)], dim=1)                   # (B, N+3, 2)
    # solve_ex: plain `solve` checks for singular systems, which would synchronise with the device every step.
    weights = torch.linalg.solve_ex(system, rhs).result                                      # (B, N+3, 2)
    basis = torch.cat([_tps_kernel(torch.cdist(points, control) ** 2),
                       torch.ones_like(points[..., :1]), points], dim=-1)                   # (B, P, N+3)
    return basis @ weights


def tps_grid(control: torch.Tensor, displaced: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Thin-plate-spline sampling grid (B, H, W, 2) that maps `control` points (B, N, 2) to `displaced`:
    the output pixel at a control point samples the input at the displaced point. control == displaced gives
    the identity grid."""
    batch = control.shape[0]
    grid = identity_grid(batch, height, width, control.device, control.dtype).reshape(batch, -1, 2)  # (B, HW, 2)
    return tps_transform(control, displaced, grid).view(batch, height, width, 2)


def control_points(batch: int, per_side: int, device, dtype=torch.float32) -> torch.Tensor:
    """A regular per_side x per_side lattice of control points in [-1, 1], (B, per_side^2, 2)."""
    axis = torch.linspace(-1, 1, per_side, device=device, dtype=dtype)
    lattice = torch.stack(torch.meshgrid(axis, axis, indexing="xy"), dim=-1).reshape(-1, 2)
    return lattice.expand(batch, -1, -1)


def random_tps_grid(batch: int, height: int, width: int, strength: torch.Tensor, generator: torch.Generator,
                    per_side: int = 5, resolution: int = 48) -> torch.Tensor:
    """TPS grid (B, H, W, 2) with control points displaced uniformly by up to `strength` (B,) ([-1, 1] units).

    The spline through a few control points is smooth, so its displacement is evaluated on an at most
    `resolution`-sided lattice spanning the outermost pixel centres and upsampled bilinearly (corners
    aligned, so nothing is extrapolated): at 256 x 256 that is ~28x less kernel evaluation.
    """
    device = strength.device
    control = control_points(batch, per_side, device)
    jitter = _uniform((batch, per_side * per_side, 2), -1.0, 1.0, generator, device)
    displaced = control + jitter * strength[:, None, None]
    coarse_h, coarse_w = min(height, resolution), min(width, resolution)
    if (coarse_h, coarse_w) == (height, width):
        return tps_grid(control, displaced, height, width)
    ys = torch.linspace(-1 + 1 / height, 1 - 1 / height, coarse_h, device=device)
    xs = torch.linspace(-1 + 1 / width, 1 - 1 / width, coarse_w, device=device)
    lattice = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1).reshape(1, -1, 2).expand(batch, -1, -1)
    displacement = (tps_transform(control, displaced, lattice) - lattice).view(batch, coarse_h, coarse_w, 2)
    displacement = F.interpolate(displacement.permute(0, 3, 1, 2), size=(height, width), mode="bilinear",
                                 align_corners=True).permute(0, 2, 3, 1)                   # (B, H, W, 2)
    return identity_grid(batch, height, width, device) + displacement


def affine_matrices(angle: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """(B, 2, 3) matrices mapping output coordinates to input: rotate by `angle` (radians), zoom to `scale`
    (< 1 crops), translate by `shift` (B, 2), mirror horizontally where `flip` (B,) is True."""
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    mirror = 1.0 - 2.0 * flip.to(angle.dtype)
    row_x = torch.stack([cos * mirror, -sin, shift[:, 0]], dim=-1)
    row_y = torch.stack([sin * mirror, cos, shift[:, 1]], dim=-1)
    return torch.stack([row_x, row_y], dim=1)


def apply_affine(grid: torch.Tensor, matrices: torch.Tensor) -> torch.Tensor:
    """Compose: sample at A @ [grid; 1]. grid (B, H, W, 2), matrices (B, 2, 3)."""
    return torch.einsum("bhwj,bij->bhwi", grid, matrices[:, :, :2]) + matrices[:, None, None, :, 2]


def compose_affine(outer: torch.Tensor, inner: torch.Tensor) -> torch.Tensor:
    """(B, 2, 3) matrices of `outer` after `inner`: apply_affine(g, compose_affine(o, i)) equals
    apply_affine(apply_affine(g, i), o), at the cost of one pass over the grid."""
    return torch.cat([outer[:, :, :2] @ inner[:, :, :2],
                      outer[:, :, :2] @ inner[:, :, 2:] + outer[:, :, 2:]], dim=2)


def random_crop_matrices(batch: int, min_scale: float, max_scale: float, generator: torch.Generator, device,
                         flip_prob: float = 0.0, max_angle: float = 0.0) -> torch.Tensor:
    """Random resized crop (scale = side of the crop relative to the image), optional flip and rotation.

    The shift keeps the crop's centre such that its (unrotated) window stays inside the image.
    """
    scale = _uniform((batch,), min_scale, max_scale, generator, device)
    shift = _uniform((batch, 2), -1.0, 1.0, generator, device) * (1.0 - scale)[:, None]
    angle = _uniform((batch,), -max_angle, max_angle, generator, device)
    flip = torch.rand(batch, generator=generator, device=device) < flip_prob
    return affine_matrices(angle, scale, shift, flip)


def appearance_noise(rgb: torch.Tensor, strength: float, generator: torch.Generator) -> torch.Tensor:
    """Mild per-image brightness / contrast jitter and pixel noise; rgb (B, 3, H, W) in [0, 1]."""
    if strength == 0:
        return rgb
    batch, device = rgb.shape[0], rgb.device
    gain = 1.0 + _uniform((batch, 1, 1, 1), -strength, strength, generator, device)
    offset = _uniform((batch, 1, 1, 1), -strength, strength, generator, device) * 0.5
    noise = torch.randn(rgb.shape, generator=generator, device=device) * (strength * 0.1)
    mean = rgb.mean(dim=(1, 2, 3), keepdim=True)
    return ((rgb - mean) * gain + mean + offset + noise).clamp(0.0, 1.0)


@dataclass(frozen=True)
class PairSettings:
    size: int = 256                 # side of target and reference
    target_scale: tuple[float, float] = (0.6, 1.0)
    tps_strength: float = 0.1       # control-point displacement, [-1, 1] units
    max_rotation_deg: float = 15.0
    ref_scale: tuple[float, float] = (0.75, 1.0)
    appearance: float = 0.05
    violent_share: float = 0.2      # supplementary: ~20 % violently deformed pairs
    violent_tps_strength: float = 0.4
    palette_share: float = 0.05
    palette_colors: int = 6
    recolor_share: float = 0.0      # same hue rotation + saturation gain on target and reference
    recolor_saturation: tuple[float, float] = (0.6, 1.4)
    paste_share: float = 0.0        # a rectangle of another pair's reference pasted into the reference
    paste_side: tuple[float, float] = (0.3, 0.6)   # rectangle side, relative to the image side
    class_share: float = 0.0        # reference from another photo of the target's class (needs partners)


def recolor(rgb: torch.Tensor, angle: torch.Tensor, gain: torch.Tensor) -> torch.Tensor:
    """Rotate each image's ab by `angle` (B,) radians and scale it by `gain` (B,); rgb (B, 3, H, W) in [0, 1].
    L is kept exactly: colours pushed out of the sRGB gamut are pulled towards grey."""
    lab = rgb_to_lab(rgb)
    cos, sin = (torch.cos(angle) * gain)[:, None, None], (torch.sin(angle) * gain)[:, None, None]   # (B, 1, 1)
    a, b = lab[:, 1], lab[:, 2]
    shifted = torch.stack([lab[:, 0], cos * a - sin * b, sin * a + cos * b], dim=1)
    return lab_to_rgb_keep_lightness(shifted)


def paste_rectangles(images: torch.Tensor, donors: torch.Tensor, side: tuple[float, float],
                     generator: torch.Generator) -> torch.Tensor:
    """Each image (B, 3, S, S) with a random square of side `side` x S copied from the same place in its donor."""
    batch, _, height, width = images.shape
    device = images.device
    extent = _uniform((batch, 1, 1), *side, generator, device)                      # half-size in [-1, 1] units
    centre = _uniform((batch, 2, 1, 1), -1.0, 1.0, generator, device) * (1.0 - extent[:, None])
    grid = identity_grid(1, height, width, device)[0]                              # (S, S, 2) as (x, y)
    inside = ((grid[None, :, :, 0] - centre[:, 0]).abs() < extent) & ((grid[None, :, :, 1] - centre[:, 1]).abs() < extent)
    return torch.where(inside[:, None], donors, images)


@dataclass
class TrainingPair:
    target: torch.Tensor      # (B, 3, S, S) colour truth in [0, 1]; its L is the network input
    reference: torch.Tensor   # (B, 3, S, S) in [0, 1]
    violent: torch.Tensor     # (B,) bool: reference violently deformed
    palette: torch.Tensor     # (B,) bool: reference is a swatch of the target's dominant colours
    crossed: torch.Tensor     # (B,) bool: reference made from another photo of the target's class


def _unit_float(photos: torch.Tensor) -> torch.Tensor:
    return photos.float() / 255.0 if photos.dtype == torch.uint8 else photos.float()


def make_pairs(photos: torch.Tensor, settings: PairSettings, generator: torch.Generator,
               partners: torch.Tensor | None = None) -> TrainingPair:
    """photos (B, 3, H, W) uint8 or float in [0, 1] on the device -> a batch of (target, reference) pairs.
    partners (B, 3, H, W), another photo of each photo's class, is where `class_share` of the references come from."""
    photos = _unit_float(photos)
    batch, device, size = photos.shape[0], photos.device, settings.size
    crossed = torch.zeros(batch, dtype=torch.bool, device=device)
    ref_photos = photos
    if partners is not None:
        crossed = torch.rand(batch, generator=generator, device=device) < settings.class_share
        ref_photos = torch.where(crossed[:, None, None, None], _unit_float(partners), photos)
    base = identity_grid(batch, size, size, device)
    crop = random_crop_matrices(batch, *settings.target_scale, generator, device, flip_prob=0.5)
    target = F.grid_sample(photos, apply_affine(base, crop), mode="bilinear", padding_mode="reflection",
                           align_corners=False)

    violent = (torch.rand(batch, generator=generator, device=device) < settings.violent_share) & ~crossed
    strength = torch.where(violent, settings.violent_tps_strength, settings.tps_strength)
    max_angle = math.radians(settings.max_rotation_deg)
    angle_limit = torch.where(violent, math.pi, max_angle)
    ref_affine = random_crop_matrices(batch, *settings.ref_scale, generator, device, flip_prob=0.0)
    angle = _uniform((batch,), -1.0, 1.0, generator, device) * angle_limit
    rotation = affine_matrices(angle, torch.ones_like(angle), torch.zeros(batch, 2, device=device),
                               torch.zeros(batch, dtype=torch.bool, device=device))
    warp = random_tps_grid(batch, size, size, strength, generator)
    ref_grid = apply_affine(warp, compose_affine(crop, compose_affine(ref_affine, rotation)))
    reference = F.grid_sample(ref_photos, ref_grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    reference = appearance_noise(reference, settings.appearance, generator)

    palette = torch.zeros_like(violent)
    if settings.palette_share > 0:
        palette = torch.rand(batch, generator=generator, device=device) < settings.palette_share
        colors, shares = dominant_colors(target, settings.palette_colors, generator)
        swatches = swatch_images(colors, shares, size, size)
        reference = torch.where(palette[:, None, None, None], swatches, reference)
    target = target.clamp(0.0, 1.0)
    if settings.paste_share > 0 and batch > 1:
        pasted = torch.rand(batch, generator=generator, device=device) < settings.paste_share
        partial = paste_rectangles(reference, reference.roll(1, dims=0), settings.paste_side, generator)
        reference = torch.where((pasted & ~palette)[:, None, None, None], partial, reference)
    if settings.recolor_share > 0:
        recolored = torch.rand(batch, generator=generator, device=device) < settings.recolor_share
        angle = _uniform((batch,), -math.pi, math.pi, generator, device)
        gain = _uniform((batch,), *settings.recolor_saturation, generator, device)
        both = recolor(torch.cat([target, reference]), angle.repeat(2), gain.repeat(2)).split(batch)
        target, reference = (torch.where(recolored[:, None, None, None], new, old)
                             for new, old in zip(both, (target, reference)))
    return TrainingPair(target, reference, violent, palette, crossed & ~palette)
