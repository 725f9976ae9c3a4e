"""`--frames DIR`: a video written as numbered PNG frames into a folder that holds that video only.

`.sscn-frames.json` in the folder names the video whose frames it holds. A run goes ahead into an empty (or
new) folder, or into one holding the same video's frames, which it resumes frame by frame; a folder holding
anything else (another video's frames, other files) is refused unless --overwrite, which rewrites every frame
and, once the whole video is written, removes numbered frames beyond its end (left by a longer video).
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

from sscn.models.outputs import atomic_write, is_protected, remove_stale_parts

from .errors import CLIError

FRAME_NAME = "frame_{:06d}.png"
MANIFEST = ".sscn-frames.json"
_FRAME = re.compile(r"^frame_(\d{6,})\.png$")


def _identity(source: Path) -> dict:
    return {"source": os.path.realpath(source), "bytes": os.path.getsize(source)}


def _owner(folder: Path) -> dict | None:
    try:
        return json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def check_frames_folder(folder: Path, source: Path, overwrite: bool) -> None:
    """CLIError unless `folder` may receive `source`'s frames (see the module docstring)."""
    remove_stale_parts(folder)
    try:
        entries = [entry for entry in os.listdir(folder) if entry != MANIFEST]
    except FileNotFoundError:
        return
    except NotADirectoryError:
        raise CLIError(f"{folder}: --frames needs a folder, and this is a file") from None
    if not entries or overwrite:
        return
    owner = _owner(folder)
    if owner is not None and source.is_file() and owner == _identity(source):
        return
    holds = f"frames of {owner['source']}" if owner else f"{len(entries)} other file{'s' * (len(entries) > 1)}"
    raise CLIError(f"{folder}: holds {holds}; --frames needs an empty folder, or the same video's frames to "
                   "resume (--overwrite replaces them)")


def claim_frames_folder(folder: Path, source: Path) -> None:
    """Record that `folder` holds `source`'s frames (before the first frame is written)."""
    text = json.dumps(_identity(source))
    atomic_write(folder / MANIFEST, lambda tmp: Path(tmp).write_text(text))


def remove_frames_after(folder: Path, count: int) -> None:
    """Delete numbered frames beyond `count` (a longer video's, in a folder being overwritten; never an
    input)."""
    for entry in os.listdir(folder):
        match = _FRAME.match(entry)
        if match and int(match.group(1)) > count and not is_protected(folder / entry):
            (folder / entry).unlink(missing_ok=True)
