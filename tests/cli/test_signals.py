"""Stopping the installed command: SIGINT (Ctrl-C), SIGTERM and SIGKILL during a folder run and during a
video, then a re-run that completes and leaves no stray file (no `.part`, nothing half-written).

SIGINT and SIGTERM unwind alike (exit 130 and 143): the write under way is discarded, finished outputs are
kept. SIGKILL cannot be handled: its temporary file stays until the re-run removes it on start.
"""
from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from sscn.cli.video import ffmpeg_exe

SIGNALS = [(signal.SIGINT, 130, "sscn: error: interrupted"),
           (signal.SIGTERM, 143, "sscn: error: interrupted (SIGTERM)"),
           (signal.SIGKILL, -signal.SIGKILL, None)]
PATIENCE = 180          # seconds to wait for a run to make progress, on a loaded machine


def _default_signals() -> None:
    # a background shell starts children with SIGINT ignored; a user's terminal does not
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)


def sscn(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "sscn", *map(str, args)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_default_signals)


def stop_when(process: subprocess.Popen, ready: Callable[[], bool], signum: int) -> str:
    """Send `signum` once `ready()` holds; the process's stderr after it exits."""
    deadline = time.monotonic() + PATIENCE
    while not ready():
        assert process.poll() is None, f"finished before it could be stopped: {process.stderr.read()}"
        assert time.monotonic() < deadline, "no progress"
        time.sleep(0.02)
    process.send_signal(signum)
    return process.communicate(timeout=PATIENCE)[1]


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in folder.iterdir()}


def _settled(path_glob: Callable[[], list[Path]]) -> None:
    """Wait until the temporary files a killed run left stop growing (its ffmpeg encoder, orphaned, finishes
    the file it was writing once its input pipe closes)."""
    sizes, deadline = None, time.monotonic() + 30
    while time.monotonic() < deadline:
        current = {p: p.stat().st_size for p in path_glob() if p.exists()}
        if current == sizes:
            return
        sizes = current
        time.sleep(0.5)


@pytest.fixture(scope="module")
def fast(tiny_weights) -> list[str]:
    return ["--weights", tiny_weights, "--size", "64"]


def test_folder_run(tmp_path, data_dir, fast):
    photos = tmp_path / "photos"
    photos.mkdir()
    small = Image.open(data_dir / "campus1.jpg").resize((72, 48))
    for index in range(60):
        small.save(photos / f"p{index:03d}.png")
    inputs = _digests(photos)
    out = tmp_path / "out"
    args = ["colorize", photos, "--ref", data_dir / "campus2.jpg", "-o", out, *fast, "--batch-size", 1,
            "--workers", 1]
    done = 0
    for signum, code, line in SIGNALS:
        before = done
        process = sscn(*args)
        stderr = stop_when(process, lambda: len(list(out.glob("*.png"))) > before, signum)
        assert process.returncode == code, stderr
        if line is not None:
            assert stderr.strip().splitlines()[-1] == line and "Traceback" not in stderr
            assert not list(out.glob(".*"))                 # nothing half-written
        finished = sorted(out.glob("*.png"))
        for path in finished:                               # every output whole
            Image.open(path).load()
        done = len(finished)
    assert done < 60, "every photo was done before the last signal"
    result = subprocess.run([sys.executable, "-m", "sscn", *map(str, args)], capture_output=True,
                            text=True, timeout=PATIENCE)
    assert result.returncode == 0, result.stderr
    assert f"{60 - done} done, {done} skipped, 0 failed" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(inputs)      # no stray file
    assert _digests(photos) == inputs


def test_video_run(tmp_path, data_dir, fast):
    source = tmp_path / "long.mp4"
    subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=25",
                    "-t", "6", "-pix_fmt", "yuv420p", str(source)], check=True)
    digest = hashlib.md5(source.read_bytes()).hexdigest()
    out = tmp_path / "out"
    args = ["colorize", source, "--ref", data_dir / "campus2.jpg", "-o", out / "long.mp4", *fast]

    def parts() -> list[Path]:
        return list(out.glob(".long.mp4.*.part"))

    for signum, code, line in SIGNALS:
        process = sscn(*args)
        stderr = stop_when(process, lambda: any(p.exists() and p.stat().st_size for p in parts()), signum)
        assert process.returncode == code, stderr
        if line is not None:
            assert stderr.strip().splitlines()[-1] == line and "Traceback" not in stderr
            assert list(out.iterdir()) == []                # no output, no temporary file
    assert parts(), "SIGKILL leaves its temporary file"
    _settled(parts)
    result = subprocess.run([sys.executable, "-m", "sscn", *map(str, args)], capture_output=True,
                            text=True, timeout=PATIENCE)
    assert result.returncode == 0, result.stderr
    assert [p.name for p in out.iterdir()] == ["long.mp4"]              # the stale .part removed
    assert hashlib.md5(source.read_bytes()).hexdigest() == digest
