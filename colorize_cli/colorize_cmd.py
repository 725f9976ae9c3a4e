"""`sscn colorize` (being written)."""
from __future__ import annotations

from .errors import CLIError


def colorize() -> None:
    """Not written yet."""
    raise CLIError("sscn colorize is not available yet")
