"""Images in and out of sscn, one home for the CLI, evaluation, training and library users alike.

- Which files are photos and videos (`IMAGE_SUFFIXES`, `VIDEO_SUFFIXES`, defined in the torch-free `sscn.constants`
  for the command line): what `sscn colorize DIR`, `sscn evaluate DIR` and `sscn train DIR` look for.
- The one decoder of image files (`read_image`): whatever Pillow opens (any suffix), the EXIF orientation
  applied, gray sources as (1, H, W), colour as (3, H, W); 8-bit as uint8, 16-bit grayscale as float32 in
  [0, 1] so no precision is lost before Lab; alpha kept aside; sizes checked against `max_pixels` from the
  header, before decoding. Every problem is an `ImageError` (a ValueError) whose message names the file.
- What library users pass (`as_pixels`): a PIL image, a numpy array (H, W[, C]) of uint8, uint16 or float in
  [0, 1], a torch tensor (C, H, W), or a path (read with `read_image`; an in-memory PIL image is taken as it is,
  without EXIF rotation); and results back in the caller's own type (`like_input`): PIL image -> PIL RGB image,
  array -> (H, W, 3) uint8 array, tensor -> (3, H, W) uint8 tensor, path -> PIL RGB image.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np
import torch
from PIL import Image, ImageOps

# the suffixes are re-exported: `sscn.images.IMAGE_SUFFIXES` / `VIDEO_SUFFIXES` were public before they moved
from sscn.constants import DEFAULT_MAX_PIXELS, IMAGE_SUFFIXES, LARGEST_MAX_PIXELS, VIDEO_SUFFIXES  # noqa: F401
from sscn.image_files import ImageError, check_image_file, file_system_error

_GRAY_MODES = {"1", "L", "LA", "La"}
_SIXTEEN_BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N", "I"}

ImageInput = Union[Image.Image, np.ndarray, torch.Tensor, str, Path]


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
    # Pillow's own bomb check (on open, before ours) warns beyond its limit and fails beyond twice that: it
    # must not refuse what `max_pixels` allows, so it sits at the largest limit (unless switched off)
    if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < LARGEST_MAX_PIXELS:
        Image.MAX_IMAGE_PIXELS = LARGEST_MAX_PIXELS
    try:
        check_image_file(path)
        with Image.open(path) as image:
            check_dimensions(path, *image.size, max_pixels)
            image.load()
            ImageOps.exif_transpose(image, in_place=True)
            return picture_from_pil(image, path)
    except ImageError:
        raise
    except Image.UnidentifiedImageError:
        raise ImageError(f"{path}: not an image (or a format that cannot be read)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"{path}: image too large (more than {megapixels(LARGEST_MAX_PIXELS)})") from None
    except OSError as error:
        if error.errno is not None:     # the file system's (permission, an I/O error), not the decoder's
            raise file_system_error(path, error) from None
        raise ImageError(f"{path}: corrupt or truncated image ({error})") from None
    except Exception as error:  # decoders raise many types (OSError, SyntaxError, struct.error) on bad data
        raise ImageError(f"{path}: corrupt or truncated image ({error})") from None


def _rgb_profile(image: Image.Image) -> bytes | None:
    """The image's ICC profile when it describes RGB: a gray (or CMYK) profile cannot be carried into the RGB
    output, which is then plain sRGB."""
    profile = image.info.get("icc_profile")
    return profile if profile and profile[16:20] == b"RGB " else None


def picture_from_pil(image: Image.Image, name: str | Path) -> Picture:
    """A decoded PIL image as a `Picture` (modes as in the module docstring); ImageError naming `name`."""
    icc_profile = _rgb_profile(image)
    if image.mode in _SIXTEEN_BIT_MODES:
        # 16-bit grayscale; mode "I" is read as the same 0..65535 range
        values = np.asarray(image).astype(np.float32)
        pixels = torch.from_numpy(np.clip(values / 65535.0, 0.0, 1.0))[None]        # (1, H, W)
        return Picture(pixels, None, icc_profile)
    if image.mode == "F":
        raise ImageError(f"{name}: unsupported image mode F (32-bit floating point)")
    has_alpha = "A" in image.getbands() or "transparency" in image.info
    if image.mode in _GRAY_MODES:
        target_mode = "LA" if has_alpha else "L"
    else:
        target_mode = "RGBA" if has_alpha else "RGB"
    if image.mode != target_mode:
        try:
            image = image.convert(target_mode)
        except ValueError:
            raise ImageError(f"{name}: unsupported image mode {image.mode}") from None
    array = torch.from_numpy(np.array(image))              # (H, W) or (H, W, C) uint8
    if array.dim() == 2:
        return Picture(array[None], None, icc_profile)
    channels = array.permute(2, 0, 1)                        # (C, H, W), a view
    if has_alpha:
        return Picture(channels[:-1], channels[-1], icc_profile)
    return Picture(channels, None, icc_profile)


def check_tensor(image: torch.Tensor, what: str = "image") -> torch.Tensor:
    """`image` itself if it is an image tensor the engine takes: (1|3, H, W), uint8 or float in [0, 1]."""
    if image.dim() != 3 or image.shape[0] not in (1, 3):
        raise ValueError(f"{what}: expected an image tensor of shape (1|3, H, W), got {tuple(image.shape)}")
    if image.dtype != torch.uint8 and not image.is_floating_point():
        raise ValueError(f"{what}: unsupported image dtype {image.dtype} (use uint8, or float in [0, 1])")
    return image


def image_to_float(image: torch.Tensor) -> torch.Tensor:
    """(1|3, H, W) uint8 or float image -> float32 in [0, 1] with 3 channels."""
    image = check_tensor(image)
    image = image.float() / 255.0 if image.dtype == torch.uint8 else image.float()
    return image.expand(3, -1, -1) if image.shape[0] == 1 else image


def float_to_bytes(rgb: torch.Tensor) -> torch.Tensor:
    """A float image in [0, 1] (values outside it clipped) -> uint8 of the same shape, each value at its nearest
    level: the 8-bit image a user saves."""
    return rgb.float().clamp(0.0, 1.0).mul_(255.0).round_().to(torch.uint8)


def to_uint8(rgb: torch.Tensor) -> np.ndarray:
    """(3, H, W) uint8, or float in [0, 1], on the CPU -> (H, W, 3) uint8 array (a view of channels-last uint8
    input)."""
    if rgb.dtype != torch.uint8:
        rgb = float_to_bytes(rgb)
    return rgb.permute(1, 2, 0).contiguous().numpy()


def _array_pixels(array: np.ndarray, what: str) -> torch.Tensor:
    """(H, W), (H, W, 1), (H, W, 3) or (H, W, 4) (alpha ignored) uint8 / uint16 / float in [0, 1] ->
    (1|3, H, W): uint8 kept (a view), the others as float32 in [0, 1]."""
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise ValueError(f"{what}: expected an array of shape (H, W) or (H, W, 1|3|4), got {array.shape}")
    if array.shape[0] < 1 or array.shape[1] < 1:
        raise ValueError(f"{what}: the array has no pixels ({array.shape})")
    array = array[:, :, :3]
    if array.dtype == np.uint8:
        pixels = torch.from_numpy(np.ascontiguousarray(array) if array.flags.writeable else array.copy())
    elif array.dtype == np.uint16:
        pixels = torch.from_numpy(array.astype(np.float32) / 65535.0)
    elif np.issubdtype(array.dtype, np.floating):
        values = array.astype(np.float32)
        if not (np.isfinite(values).all() and values.min() >= 0.0 and values.max() <= 1.0):
            raise ValueError(f"{what}: float arrays must hold values in [0, 1] (got {np.nanmin(values):.3g} .. "
                             f"{np.nanmax(values):.3g}; divide 8-bit levels by 255)")
        pixels = torch.from_numpy(values)
    else:
        raise ValueError(f"{what}: unsupported array dtype {array.dtype} (use uint8, uint16, or float in [0, 1])")
    return pixels.permute(2, 0, 1)                                                   # (C, H, W), a view


def as_pixels(image: ImageInput, what: str = "image") -> torch.Tensor:
    """Any `ImageInput` -> the (1|3, H, W) tensor the engine takes (uint8, or float in [0, 1]); a tensor is
    checked and returned as it is. `what` names the image in errors ("target 2", ...)."""
    if isinstance(image, torch.Tensor):
        return check_tensor(image, what)
    if isinstance(image, Image.Image):
        return picture_from_pil(image, what).pixels
    if isinstance(image, np.ndarray):
        return _array_pixels(image, what)
    if isinstance(image, (str, Path)):
        return read_image(image).pixels
    raise TypeError(f"{what}: expected a PIL image, a numpy array, a torch tensor or a path, "
                    f"got {type(image).__name__}")


def like_input(rgb: torch.Tensor, original: ImageInput) -> torch.Tensor | np.ndarray | Image.Image:
    """A result (3, H, W) uint8 on the CPU in the type of the input it was made from (module docstring)."""
    if isinstance(original, torch.Tensor):
        return rgb
    if isinstance(original, np.ndarray):
        return to_uint8(rgb)
    return Image.fromarray(to_uint8(rgb))
