"""Writing still images for the CLI; reading is sscn.images' (`read_image`: the one decoder, for the CLI,
evaluation and training alike).

Written images keep the alpha and the ICC profile their input had, where the format can hold them.
"""
from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

from sscn.images import to_uint8
from sscn.models.outputs import atomic_write

from .formats import output_format

_ALPHA_FORMATS = {"PNG", "WEBP", "TIFF"}
_SAVE_OPTIONS = {
    "PNG": {"compress_level": 1},  # lossless either way; level 1 writes several times faster than 6
    "JPEG": {"quality": 95},
    "WEBP": {"quality": 95},
    "TIFF": {"compression": "tiff_deflate"},
    "BMP": {},
}


def write_image(path: Path, rgb: torch.Tensor, alpha: torch.Tensor | None = None,
                icc_profile: bytes | None = None) -> None:
    """Write rgb (3, H, W) uint8 or float in [0, 1] (plus alpha (H, W) uint8 where the format keeps it)
    atomically."""
    fmt = output_format(path)
    image = Image.fromarray(to_uint8(rgb))
    if alpha is not None and fmt in _ALPHA_FORMATS:
        image.putalpha(Image.fromarray(alpha.numpy()))
    options = dict(_SAVE_OPTIONS[fmt])
    if icc_profile and fmt != "BMP":
        options["icc_profile"] = icc_profile
    atomic_write(path, lambda tmp: image.save(tmp, format=fmt, **options))
