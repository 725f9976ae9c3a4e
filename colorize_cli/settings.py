"""The settings of a `sscn colorize` / `sscn palette` run (what the engine needs; how the summary is printed is the
command's), checked up front, before any model is loaded."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sscn.constants import DEFAULT_MAX_PIXELS, LARGEST_MAX_PIXELS
from sscn.models.checkpoint import default_weights_path
from sscn.models.outputs import protect, remove_stale_parts
from sscn.models.runtime import resolve_device, resolve_precision, working_size
from sscn.models.upsample import UPSAMPLERS

from .errors import CLIError
from .frames import check_frames_folder
from .options import check_seed
from .targets import Job


@dataclass
class RunSettings:
    weights: Path | None = None
    device: str = "auto"
    precision: str = "auto"
    size: int = 256
    k: int | None = None
    r: int | None = None
    dense: bool = False
    seed: int = 0
    batch_size: int = 8
    max_pixels: int = DEFAULT_MAX_PIXELS   # larger images are refused; a batch holds at most this many pixels
    workers: int = 0                 # reader and writer threads each; 0: one per CPU core, at most 8
    compile: bool = False            # torch.compile the network
    upsample: str = "guided"         # models.upsample.UPSAMPLERS
    overwrite: bool = False
    quiet: bool = False              # no progress bar
    debug: bool = False              # a failed item stops the run with its traceback

    def check(self) -> None:
        """Refuse bad settings up front, even when every output exists already and no model is loaded."""
        resolve_precision(self.precision, resolve_device(self.device))
        working_size(self.size)
        if self.upsample not in UPSAMPLERS:
            raise CLIError(f"--upsample {self.upsample!r}: choose one of {', '.join(UPSAMPLERS)}")
        for name, value in (("k", self.k), ("r", self.r)):
            if value is not None and value < 0:
                raise CLIError(f"--{name} must be >= 0 (got {value})")
        if not self.dense and self.k == 0 and self.r == 0:
            raise CLIError("--k and --r cannot both be 0 (attend to some positions, or use --dense)")
        if self.batch_size < 1:
            raise CLIError(f"--batch-size must be at least 1 (got {self.batch_size})")
        if self.workers < 0:
            raise CLIError(f"--workers must be 0 (automatic) or more (got {self.workers})")
        check_seed(self.seed)
        if not 1 <= self.max_pixels <= LARGEST_MAX_PIXELS:
            raise CLIError(f"--max-pixels must be between 1 and {LARGEST_MAX_PIXELS} (got {self.max_pixels})")

    def check_jobs(self, jobs: list[Job]) -> None:
        """Start-up checks of a run, before the model is loaded: the weights exist (and are never written),
        stale temporary files of a killed run are removed, frames folders hold nothing else."""
        if self.weights is not None and not self.weights.is_file():
            raise CLIError(f"{self.weights}: weights file not found")
        protect([self.weights or default_weights_path()])
        for folder, names in _output_names(jobs).items():
            remove_stale_parts(folder, names)
        for job in jobs:
            if job.frames:
                check_frames_folder(job.output, job.source, self.overwrite)


def _output_names(jobs: list[Job]) -> dict[Path, set[str]]:
    """Output file names by folder (frames folders are cleaned by their own check)."""
    names: dict[Path, set[str]] = {}
    for job in jobs:
        if not job.frames:
            names.setdefault(job.output.parent, set()).add(job.output.name)
    return names
