"""What can be told of an input image from its path alone, before any decoder (or torch) is loaded.

Torch-free, so the command line checks every reference before it loads the model: a mistyped path fails in a
fraction of a second. `read_image` (sscn.images) runs the same check first, so both report a problem alike.
"""
from __future__ import annotations

from pathlib import Path


class ImageError(ValueError):
    """An input image that cannot be used; the message names the file and the problem."""


def check_image_file(path: Path) -> None:
    """ImageError unless `path` is an existing, non-empty file that may be read."""
    try:
        if path.is_dir():
            raise ImageError(f"{path}: is a folder, not an image")
        if path.stat().st_size == 0:
            raise ImageError(f"{path}: empty file (0 bytes)")
    except OSError as error:
        raise file_system_error(path, error) from None


def file_system_error(path: Path, error: OSError) -> ImageError:
    """The ImageError for an error of the file system (one with an errno: not found, permission, a symlink loop,
    a name too long, an I/O error), as opposed to the decoder's."""
    if isinstance(error, FileNotFoundError):
        return ImageError(f"{path}: no such file")
    if isinstance(error, PermissionError):
        return ImageError(f"{path}: cannot read (permission denied)")
    return ImageError(f"{path}: cannot read ({error.strerror})")
