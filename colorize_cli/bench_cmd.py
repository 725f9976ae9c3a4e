"""`sscn bench` (being written)."""
from __future__ import annotations

from .errors import CLIError


def bench() -> None:
    """Not written yet."""
    raise CLIError("sscn bench is not available yet")
