"""The one way sscn writes a file: never onto an input, always whole.

`atomic_write` is the guard every writer goes through (images, frames, videos, reports, sheets, swatches,
checkpoints, training run files). It refuses a path that is one of the files registered with `protect` (the
run's inputs and weights, however named: hard links and symlinks are the same file), then writes a temporary
file `.NAME.PID.XXXXXXXX.part` beside the output and renames it into place, so an interrupted write never
leaves a partial output. `remove_stale_parts` deletes such temporary files left by a run that was killed
(their PID is no longer running), so a re-run leaves no stray files.
"""
from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

_PART = re.compile(r"^\.(?P<name>.+?)\.(?:(?P<pid>\d+)\.)?[a-z0-9_]{8}\.part$")
_protected: dict[tuple[int, int], Path] = {}


class OutputError(ValueError):
    """An output path that must not or cannot be written; the message names it."""


def _new_file_mode() -> int:
    """0o666 less the process umask: the mode `open()` gives a new file (mkstemp's is a private 0o600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


_NEW_FILE_MODE = _new_file_mode()   # read once at import: os.umask is process-wide, not thread-safe


def _file_id(path: Path) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)
    except (OSError, ValueError):
        return None
    return stat.st_dev, stat.st_ino


def protect(paths: Iterable[Path | str | None]) -> None:
    """Register the run's input files (and weights): `atomic_write` refuses to write any of them. Folders are
    not registered (their files are, one by one); paths that do not exist are ignored."""
    for path in paths:
        if path is not None and os.path.isfile(path):
            file_id = _file_id(Path(path))
            if file_id is not None:
                _protected.setdefault(file_id, Path(path))


def unprotect_all() -> None:
    """Forget every registered input (each command starts with its own set)."""
    _protected.clear()


def is_protected(path: Path) -> bool:
    file_id = _file_id(Path(path))
    return file_id is not None and file_id in _protected


def check_output(path: Path) -> None:
    """OutputError when writing `path` would replace a protected input or cannot be done where it is."""
    path = Path(path)
    file_id = _file_id(path)
    if file_id is not None and file_id in _protected:
        raise OutputError(f"{path}: output path is an input ({_protected[file_id]}); refusing to overwrite it")
    if path.is_dir():
        raise OutputError(f"{path}: is a folder; cannot write a file there")
    check_folder(path.parent, path)


def check_folder(folder: Path, output: Path | None = None) -> None:
    """OutputError (naming `output`, default the folder) unless `folder` is a writable folder or can be
    created: its nearest existing ancestor is a writable folder."""
    existing = Path(folder)
    while not os.path.lexists(existing) and existing != existing.parent:
        existing = existing.parent
    name = output or folder
    if not existing.is_dir():
        raise OutputError(f"{name}: cannot write there: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"{name}: cannot write there: {existing} is not writable (permission denied)")


def atomic_write(path: Path | str, write: Callable[[str], None]) -> None:
    """Call `write(tmp_path)` then rename onto `path`, so an interrupted write never leaves a partial file;
    OutputError (before anything is written) when `path` is a protected input or its folder cannot be made."""
    path = Path(path)
    check_output(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(f"{path}: cannot create its folder ({error.strerror})") from None
    tmp = None
    try:  # mkstemp inside the try: an interrupt right after it must not leave the empty temporary file
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".part", dir=path.parent)
        os.close(fd)
        write(tmp)
        os.chmod(tmp, _NEW_FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:         # alive, but another user's
        return True
    return True


def remove_stale_parts(folder: Path, names: Iterable[str] | None = None) -> int:
    """Delete the temporary files of writes to `folder` (of outputs called `names`, default any) that a killed
    run left behind: ours by their name pattern, stale because their process is gone. Returns how many."""
    wanted = None if names is None else set(names)
    try:
        entries = os.listdir(folder)
    except OSError:
        return 0
    removed = 0
    for entry in entries:
        match = _PART.match(entry)
        if match is None or (wanted is not None and match["name"] not in wanted):
            continue
        if match["pid"] is not None and _running(int(match["pid"])):
            continue
        try:
            os.unlink(os.path.join(folder, entry))
            removed += 1
        except OSError:
            pass
    return removed
