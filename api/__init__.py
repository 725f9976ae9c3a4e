"""sscn: colorize grayscale photos and video from a colour reference (SSCN, ECCV 2022).

The installed package maps the repository's folders: `sscn` ← `api/`, `sscn.models` ← `models/`,
`sscn.train` ← `train/`, `sscn.cli` ← `colorize_cli/` (pyproject.toml, `[tool.setuptools.package-dir]`).
"""
from sscn.models.colorizer import Colorizer

__all__ = ["Colorizer"]
