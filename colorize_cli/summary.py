"""The summary of a `sscn colorize` / `sscn palette` run: counts, timing and every item; printed by the command
(a closing line on stderr, `--json` on stdout), read by `sscn bench`."""
from __future__ import annotations

import collections
import json
import time
from pathlib import Path

import typer

from .errors import EXIT_BAD_INPUT, EXIT_FAILED_ITEMS
from .targets import Job


class Summary:
    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.colorizing_started: float | None = None   # after the model is loaded
        self.items: list[dict] = []
        self.counts = collections.Counter()
        self.images = 0                # images and video frames colorized
        self.notes: dict[Path, dict] = {}   # Group.notes of every group

    def record(self, job: Job, status: str, error: str | None = None, frames: int | None = None) -> None:
        self.counts[status] += 1
        item = {"input": str(job.source), "output": str(job.output), "status": status}
        if frames is not None:
            item["frames"] = frames
        item.update(self.notes.get(job.source, {}))
        if error:
            item["error"] = error
        self.items.append(item)

    def as_dict(self) -> dict:
        """`seconds` is the whole run; `images_per_second` counts from the moment the model is ready."""
        now = time.perf_counter()
        working = now - (self.colorizing_started or now)
        return {"done": self.counts["done"], "skipped": self.counts["skipped"], "failed": self.counts["failed"],
                "total": len(self.items), "images": self.images, "seconds": round(now - self.started, 3),
                "images_per_second": round(self.images / working, 3) if working > 0 else 0.0,
                "items": self.items}

    def line(self) -> str | None:
        """The closing line on stderr; None after a lone failure (its error line says it all)."""
        data = self.as_dict()
        if data["total"] == 1 and data["failed"] == 1:
            return None
        if data["total"] == 1 and data["done"] == 1:
            return f"sscn: wrote {self.items[0]['output']} in {data['seconds']:.1f} s"
        if data["total"] == 1 and data["skipped"] == 1:
            return f"sscn: skipped {self.items[0]['input']}: {self.items[0]['output']} exists (--overwrite to redo)"
        return (f"sscn: {data['done']} done, {data['skipped']} skipped, {data['failed']} failed in "
                f"{data['seconds']:.1f} s ({data['images_per_second']:.2f} images/s)")

    def exit_code(self) -> int:
        if not self.counts["failed"]:
            return 0
        return EXIT_BAD_INPUT if len(self.items) == 1 else EXIT_FAILED_ITEMS

    def print(self, quiet: bool, as_json: bool) -> int:
        """The closing line (stderr, unless `quiet`) and the JSON summary (stdout, with `as_json`); the exit code."""
        line = self.line()
        if line and not quiet:
            typer.echo(line, err=True)
        if as_json:
            typer.echo(json.dumps(self.as_dict(), indent=2))
        return self.exit_code()
