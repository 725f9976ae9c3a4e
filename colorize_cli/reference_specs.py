"""`--ref FILE@TIME`: a reference for the shot of a video at TIME. Torch-free, so the references are named and
checked before the model is loaded."""
from __future__ import annotations

import re
from pathlib import Path

from .errors import CLIError

_TIME = re.compile(r"^(?:(?:(\d+):)?(\d+):)?(\d+(?:\.\d*)?)$")     # [[HH:]MM:]SS[.s]


def parse_reference(spec: str) -> tuple[Path, float | None]:
    """`FILE` or `FILE@TIME` (TIME: seconds, MM:SS or HH:MM:SS, with decimals) -> (path, seconds or None).
    A file whose own name holds an '@' is taken whole when it exists."""
    if "@" not in spec or Path(spec).exists():
        return Path(spec), None
    name, _, time = spec.rpartition("@")
    match = _TIME.match(time)
    if not name or not match:
        raise CLIError(f"--ref {spec}: bad time {time!r} (use seconds, MM:SS or HH:MM:SS, "
                       f"e.g. {name or 'a.jpg'}@01:23.5)")
    hours, minutes, seconds = match.groups()
    if minutes is not None and float(seconds) >= 60:
        raise CLIError(f"--ref {spec}: bad time {time!r} (seconds must be below 60 after a colon)")
    return Path(name), int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds)
