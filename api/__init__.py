"""sscn: colorize grayscale photos and video from a colour reference (SSCN, ECCV 2022).

    >>> import sscn
    >>> result = sscn.colorize(Image.open("gray.jpg"), Image.open("reference.jpg"))      # a PIL image

`Colorizer` loads the model once and encodes references once (`Reference`) for many targets; images may be PIL
images, numpy arrays, torch tensors or paths (`sscn.images`). The installed package maps the repository's
folders: `sscn` ← `api/`, `sscn.models` ← `models/`, `sscn.train` ← `train/`, `sscn.cli` ← `colorize_cli/`,
`sscn.tools` ← `tools/` (pyproject.toml, `[tool.setuptools.package-dir]`). The names below are imported on
first use (`sscn.lazy`), so the command line starts without loading torch.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from sscn.lazy import lazy_exports

if TYPE_CHECKING:
    from sscn.image_files import ImageError
    from sscn.images import read_image
    from sscn.models.colorizer import ColorizeResult, Colorizer
    from sscn.models.references import Reference
    from sscn.quick import colorize

__all__ = ["ColorizeResult", "Colorizer", "ImageError", "Reference", "colorize", "read_image"]
__getattr__, __dir__ = lazy_exports(__name__, {
    "ColorizeResult": "sscn.models.colorizer", "Colorizer": "sscn.models.colorizer", "ImageError": "sscn.image_files",
    "Reference": "sscn.models.references", "colorize": "sscn.quick", "read_image": "sscn.images",
})
