"""The full-resolution side of `Colorizer`: targets up to the device, their L, and the merge of each target's
own L with the ab predicted at the working size (upsampled by models.upsample), as uint8 RGB.

Large photos never have all their float temporaries at once: L and the merge run in bands of rows holding
about `MERGE_PIXELS` pixels (all targets of a size together): cache-sized on the CPU (a quarter faster than 4x
larger bands), few kernel launches on a GPU.
"""
from __future__ import annotations

import torch

from sscn.images import image_to_float

from .color import (
    bytes_to_lightness,
    denormalize_ab,
    lab_to_linear_rgb,
    lab_to_rgb_keep_lightness,
    linear_to_srgb_bytes,
    out_of_gamut,
    pull_pixels_into_gamut,
    rgb_to_lightness,
)
from .upsample import AbUpsampler

MERGE_PIXELS = {"cpu": 1 << 18, "cuda": 1 << 22}


def upload(image: torch.Tensor, device: torch.device) -> torch.Tensor:
    """An image (C, H, W) to the device as it is (uint8 stays uint8: a quarter of float's bytes), from a
    contiguous pinned copy, so the transfer is asynchronous."""
    if device.type == "cpu" or image.device.type != "cpu":     # nothing to pin: there already, or on a device
        return image.to(device)
    hwc = image.permute(1, 2, 0)
    if hwc.is_contiguous():     # decoded photos and frames are (H, W, C) in memory: copy those bytes as they are
        return hwc.pin_memory().to(device, non_blocking=True).permute(2, 0, 1)
    return image.contiguous().pin_memory().to(device, non_blocking=True)


def lightness(image: torch.Tensor) -> torch.Tensor:
    """L (1, 1, H, W) of an image (C, H, W) on its device, converted in bands of rows: the float RGB of a large
    photo, and its temporaries, never exist at once."""
    height, width = image.shape[-2:]
    result = torch.empty(1, 1, height, width, device=image.device)
    rows = max(1, MERGE_PIXELS[image.device.type] // width)
    for top in range(0, height, rows):
        band = image[:, top:top + rows]                                                # (C, h, W)
        result[..., top:top + rows, :] = (bytes_to_lightness(band) if band.dtype == torch.uint8
                                          else rgb_to_lightness(image_to_float(band)))
    return result


def to_bytes(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1] -> uint8."""
    return rgb.mul(255.0).round_().to(torch.uint8)


class GamutPulls:
    """The out-of-gamut pixels of a CPU merge, pulled into gamut (`pull_into_gamut`) a few thousand at once: its
    twelve bisection steps cost about the same for 50 pixels as for 5000, so one call per band of rows (a dozen
    per batch of video frames) spent more time in call overhead than in arithmetic. Memory stays bounded: the
    pixels waiting are pulled as soon as they reach `MERGE_PIXELS`."""

    def __init__(self, pixels: torch.Tensor) -> None:
        self.pixels = pixels.view(-1, 3)                 # (G*H*W, 3) uint8 view of the merge's (G, H, W, 3)
        self.height, self.width = pixels.shape[1:3]
        self.waiting: list[tuple[torch.Tensor, torch.Tensor]] = []       # (flat indices (n,), Lab (n, 3))
        self.count = 0

    def add(self, lab: torch.Tensor, outside: torch.Tensor, top: int) -> None:
        """Out-of-gamut pixels `outside` (G, h, W) of the band of Lab (G, 3, h, W) that starts at row `top`."""
        frame, row, column = outside.nonzero(as_tuple=True)
        if not len(frame):
            return
        index = (frame * self.height + top + row) * self.width + column
        self.waiting.append((index, lab.movedim(1, -1)[outside]))
        self.count += len(index)
        if self.count >= MERGE_PIXELS["cpu"]:
            self.finish()

    def finish(self) -> None:
        """Pull the waiting pixels and write their bytes."""
        if not self.waiting:
            return
        index, lab = (torch.cat(parts) for parts in zip(*self.waiting))
        self.pixels[index] = linear_to_srgb_bytes(pull_pixels_into_gamut(lab))
        self.waiting, self.count = [], 0


def merge(lightness_full: list[torch.Tensor], l_work: torch.Tensor, ab_norm: torch.Tensor,
          upsample: str) -> list[torch.Tensor]:
    """Each target's full-resolution L (1, 1, H, W) with its predicted ab (B, 2, S, S) (the network's scaling)
    upsampled to H x W (`upsample`, guided by the working-size L `l_work` (B, 1, S, S)), as RGB (3, H, W) uint8
    on the CPU (pinned, copied without waiting, from a GPU). Targets of one size are merged together (a folder of
    photos from one camera, a video's frames); rows go in bands, so a large photo never has its full-size ab or
    float RGB at once."""
    device = ab_norm.device
    by_size: dict[tuple[int, int], list[int]] = {}
    for index, l_full in enumerate(lightness_full):
        by_size.setdefault(tuple(l_full.shape[-2:]), []).append(index)
    merged: list[torch.Tensor] = [torch.empty(0)] * len(lightness_full)
    for (height, width), indices in by_size.items():
        l_full = torch.cat([lightness_full[index] for index in indices])                   # (G, 1, H, W)
        ab_work = denormalize_ab(ab_norm[indices].float())                                 # (G, 2, S, S)
        upsampler = AbUpsampler(ab_work, l_work[indices], height, width, upsample)
        pixels = torch.empty(len(indices), height, width, 3, dtype=torch.uint8, device=device)
        rows = max(1, MERGE_PIXELS[device.type] // (len(indices) * width))
        pulls = GamutPulls(pixels) if device.type == "cpu" else None
        for top in range(0, height, rows):
            band = slice(top, top + rows)
            l_band = l_full[..., band, :]                                                  # (G, 1, h, W)
            lab = torch.cat([l_band, upsampler.band(band, l_band)], dim=1)                 # (G, 3, h, W)
            if pulls is None:
                pixels[:, band] = to_bytes(lab_to_rgb_keep_lightness(lab)).permute(0, 2, 3, 1)   # (G, h, W, 3)
            else:           # the out-of-gamut pixels, clipped here, are redone by `pulls`
                linear = lab_to_linear_rgb(lab)
                pixels[:, band] = linear_to_srgb_bytes(linear).permute(0, 2, 3, 1)
                pulls.add(lab, out_of_gamut(linear), top)
        if pulls is not None:
            pulls.finish()
        if device.type == "cuda":
            pixels = torch.empty(pixels.shape, dtype=torch.uint8, pin_memory=True).copy_(pixels, non_blocking=True)
        for index, image in zip(indices, pixels.permute(0, 3, 1, 2)):                      # (3, H, W) views
            merged[index] = image
    return merged
