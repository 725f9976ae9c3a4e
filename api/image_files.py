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
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except PermissionError:
        raise ImageError(f"{path}: cannot read (permission denied)") from None
    except OSError as error:        # the file system's: a symlink loop, a name too long, an I/O error
        raise ImageError(f"{path}: cannot read ({error.strerror})") from None
