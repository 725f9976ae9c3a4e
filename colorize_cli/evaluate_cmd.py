"""`sscn evaluate` (being written)."""
from __future__ import annotations

from .errors import CLIError


def evaluate() -> None:
    """Not written yet."""
    raise CLIError("sscn evaluate is not available yet")
