"""`sscn palette` (being written)."""
from __future__ import annotations

from .errors import CLIError


def palette() -> None:
    """Not written yet."""
    raise CLIError("sscn palette is not available yet")
