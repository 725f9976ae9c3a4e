"""`sscn train --time-limit`: a run that trains for a span of time instead of (or as well as) a number of steps.

The budget counts the run's training time over `--resume` (the checkpoint keeps what was spent), and the cosine
decay of the learning rate follows whichever runs out first, `--steps` or the time, so a run stopped by the clock
still ends at the low learning rate that gives its best weights instead of being cut off at its peak (the
budget-aware schedule of Li et al., "Budgeted Training: Rethinking Deep Neural Network Training Under Resource
Constraints", ICLR 2020).
"""
from __future__ import annotations

import math
import re
import time

_UNIT_SECONDS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
_DURATION = re.compile(rf"(?:{_NUMBER}[smhd])+|{_NUMBER}")


def parse_duration(text: str) -> float:
    """'45s', '20m', '8h', '1h30m', '1.5h', '2d' -> seconds; a bare number is minutes (as SLURM reads it).
    ValueError (one line, naming the text) for anything else or a duration of zero."""
    compact = text.replace(" ", "").lower()
    if not _DURATION.fullmatch(compact):
        raise ValueError(f"--time-limit {text!r}: not a duration; write it as e.g. 45m, 8h or 1h30m")
    if compact[-1] in _UNIT_SECONDS:
        seconds = sum(float(number) * _UNIT_SECONDS[unit]
                      for number, unit in re.findall(rf"({_NUMBER})([smhd])", compact))
    else:
        seconds = float(compact) * 60.0
    if not (seconds > 0.0 and math.isfinite(seconds)):
        raise ValueError(f"--time-limit {text!r}: must be longer than zero")
    return seconds


def format_duration(seconds: float) -> str:
    """3725 -> '1h02m05s', 90 -> '1m30s', 4.2 -> '4s'."""
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class TimeBudget:
    """Training time spent against a limit, in seconds (limit None: no limit; `fraction` stays 0)."""

    def __init__(self, limit: float | None, spent_before: float = 0.0) -> None:
        self.limit = limit
        self.spent_before = spent_before       # by earlier processes of the run (the checkpoint's count)
        self._started = time.monotonic()

    def start(self) -> None:
        """Start this process's clock (the training loop begins; building the model does not count)."""
        self._started = time.monotonic()

    def spent(self) -> float:
        return self.spent_before + time.monotonic() - self._started

    def fraction(self, spent: float | None = None) -> float:
        """Share of the limit spent (of `spent` seconds if given), capped at 1."""
        if self.limit is None:
            return 0.0
        return min(1.0, (self.spent() if spent is None else spent) / self.limit)
