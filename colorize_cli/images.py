"""Reading and writing still images for the CLI.

Reading accepts whatever Pillow opens (any suffix), applies the EXIF orientation and returns the pixels as a
tensor the `Colorizer` takes: gray sources as (1, H, W), colour as (3, H, W); 8-bit as uint8, 16-bit
grayscale as float32 in [0, 1] so no precision is lost before Lab. Alpha is kept aside and put back on
write. Every problem is an `ImageError` whose message names the file.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from sscn.models.outputs import atomic_write

from .limits import DEFAULT_MAX_PIXELS, LARGEST_MAX_PIXELS

# Sizes are checked against --max-pixels from the header, before decoding. Pillow's own bomb check warns
# beyond its limit and fails beyond twice that: set it to the largest --max-pixels, and make its warning an
# error so that it is one line too (for readers that do not check first)
Image.MAX_IMAGE_PIXELS = LARGEST_MAX_PIXELS
warnings.filterwarnings("error", category=Image.DecompressionBombWarning)

WRITE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".tif": "TIFF",
                 ".tiff": "TIFF", ".bmp": "BMP"}
_ALPHA_FORMATS = {"PNG", "WEBP", "TIFF"}
_SAVE_OPTIONS = {
    "PNG": {"compress_level": 1},  # lossless either way; level 1 writes several times faster than 6
    "JPEG": {"quality": 95},
    "WEBP": {"quality": 95},
    "TIFF": {"compression": "tiff_deflate"},
    "BMP": {},
}
_GRAY_MODES = {"1", "L", "LA", "La"}
_SIXTEEN_BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N", "I"}


class ImageError(ValueError):
    """An input image that cannot be used; the message names the file and the problem."""


@dataclass
class Picture:
    pixels: torch.Tensor              # (1|3, H, W): uint8, or float32 in [0, 1] for 16-bit sources
    alpha: torch.Tensor | None        # (H, W) uint8, when the source has transparency
    icc_profile: bytes | None         # carried over so the output is read in the input's colour space


def megapixels(pixels: int) -> str:
    return f"{pixels / 1e6:.3g} Mpx"


def check_dimensions(path: Path, width: int, height: int, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    """Refuse sizes that cost more memory than allowed (decompression bombs, corrupt headers, huge scans)."""
    if width < 1 or height < 1:
        raise ImageError(f"{path}: image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise ImageError(f"{path}: image too large ({width}x{height} = {megapixels(width * height)}; "
                         f"--max-pixels is {megapixels(max_pixels)}: raise it to colorize this one)")


def read_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> Picture:
    """Decode `path` with its EXIF orientation applied; ImageError on any problem. Images of more than
    `max_pixels` are refused from their header, before decoding."""
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise ImageError(f"{path}: empty file (0 bytes)")
        with Image.open(path) as image:
            check_dimensions(path, *image.size, max_pixels)
            image.load()
            ImageOps.exif_transpose(image, in_place=True)
            return _to_picture(path, image)
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ImageError(f"{path}: is a folder, not an image") from None
    except PermissionError:
        raise ImageError(f"{path}: cannot read (permission denied)") from None
    except Image.UnidentifiedImageError:
        raise ImageError(f"{path}: not an image (or a format that cannot be read)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"{path}: image too large (more than {megapixels(LARGEST_MAX_PIXELS)})") from None
    except OSError as error:
        if error.errno is not None:     # the file system's (a symlink loop, an I/O error), not the decoder's
            raise ImageError(f"{path}: cannot read ({error.strerror})") from None
        raise ImageError(f"{path}: corrupt or truncated image ({error})") from None
    except Exception as error:  # decoders raise many types (OSError, SyntaxError, struct.error) on bad data
        raise ImageError(f"{path}: corrupt or truncated image ({error})") from None


def _rgb_profile(image: Image.Image) -> bytes | None:
    """The image's ICC profile when it describes RGB: a gray (or CMYK) profile cannot be carried into the RGB
    output, which is then plain sRGB."""
    profile = image.info.get("icc_profile")
    return profile if profile and profile[16:20] == b"RGB " else None


def _to_picture(path: Path, image: Image.Image) -> Picture:
    icc_profile = _rgb_profile(image)
    if image.mode in _SIXTEEN_BIT_MODES:
        # 16-bit grayscale; mode "I" is read as the same 0..65535 range
        values = np.asarray(image).astype(np.float32)
        pixels = torch.from_numpy(np.clip(values / 65535.0, 0.0, 1.0))[None]        # (1, H, W)
        return Picture(pixels, None, icc_profile)
    if image.mode == "F":
        raise ImageError(f"{path}: unsupported image mode F (32-bit floating point)")
    has_alpha = "A" in image.getbands() or "transparency" in image.info
    if image.mode in _GRAY_MODES:
        target_mode = "LA" if has_alpha else "L"
    else:
        target_mode = "RGBA" if has_alpha else "RGB"
    if image.mode != target_mode:
        try:
            image = image.convert(target_mode)
        except ValueError:
            raise ImageError(f"{path}: unsupported image mode {image.mode}") from None
    array = torch.from_numpy(np.array(image))              # (H, W) or (H, W, C) uint8
    if array.dim() == 2:
        return Picture(array[None], None, icc_profile)
    channels = array.permute(2, 0, 1)                        # (C, H, W), a view
    if has_alpha:
        return Picture(channels[:-1], channels[-1], icc_profile)
    return Picture(channels, None, icc_profile)


def output_format(path: Path) -> str:
    """Pillow format name for an output path, from its suffix; ValueError for suffixes not written."""
    try:
        return WRITE_FORMATS[path.suffix.lower()]
    except KeyError:
        raise ValueError(f"{path}: cannot write images with suffix {path.suffix or '(none)'!r}; use one of "
                         f"{', '.join(sorted(WRITE_FORMATS))}") from None


def to_uint8(rgb: torch.Tensor) -> np.ndarray:
    """(3, H, W) uint8, or float in [0, 1], -> (H, W, 3) uint8 array (a view of channels-last uint8 input)."""
    if rgb.dtype != torch.uint8:
        rgb = rgb.mul(255.0).round_().clamp_(0, 255).to(torch.uint8)
    return rgb.permute(1, 2, 0).contiguous().numpy()


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
