"""The output guard (`models.outputs`): atomic writes, protected inputs, output locations, stale temporary files."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sscn.models.outputs import (OutputError, atomic_write, check_folder, check_output, protect, remove_stale_parts,
                            unprotect_all)


@pytest.fixture(autouse=True)
def _fresh_guard():
    unprotect_all()
    yield
    unprotect_all()


def test_interrupted_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"old")

    def fail_halfway(tmp: str) -> None:
        with open(tmp, "wb") as handle:
            handle.write(b"partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, fail_halfway)
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]


def test_ordinary_file_permissions(tmp_path):
    umask = os.umask(0)
    os.umask(umask)
    target = tmp_path / "out.txt"
    atomic_write(target, lambda tmp: Path(tmp).write_text("done"))
    assert target.read_text() == "done"
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_temporary_file_names_its_output_and_process(tmp_path):
    seen = []
    atomic_write(tmp_path / "a.png", lambda tmp: seen.append(Path(tmp).name) or Path(tmp).write_text("x"))
    assert seen[0].startswith(f".a.png.{os.getpid()}.") and seen[0].endswith(".part")


def test_protected_inputs_are_never_written(tmp_path):
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"input")
    (tmp_path / "link.jpg").symlink_to(photo)
    os.link(photo, tmp_path / "hard.jpg")
    protect([photo, None, tmp_path / "absent.jpg", tmp_path])
    for name in ("photo.jpg", "link.jpg", "hard.jpg"):
        with pytest.raises(OutputError, match=f"{name}: output path is an input"):
            atomic_write(tmp_path / name, lambda tmp: Path(tmp).write_text("report"))
    assert photo.read_bytes() == b"input"
    atomic_write(tmp_path / "other.json", lambda tmp: Path(tmp).write_text("{}"))      # others are fine


def test_locations(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="cannot write there: .*file is a file, not a folder"):
        check_output(tmp_path / "file" / "deeper" / "out.png")
    with pytest.raises(OutputError, match="is a folder"):
        check_output(tmp_path)
    check_folder(tmp_path / "new" / "deeper")          # created on the first write


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_unwritable_folder(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(OutputError, match="not writable"):
        check_output(locked / "out.png")


def test_stale_parts_of_dead_processes_are_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    names = [f".a.png.{dead}.abcd1234.part",          # a killed run's
             ".a.png.k3j2h1g0.part",                  # an older release's (no PID)
             f".a.png.{os.getpid()}.abcd1234.part",   # a live process's: kept
             f".b.png.{dead}.abcd1234.part",          # another output's: kept when names are given
             ".a.png.notes", "a.png"]                 # not ours
    for name in names:
        (tmp_path / name).write_text("x")
    assert remove_stale_parts(tmp_path, {"a.png"}) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names[2:])
    assert remove_stale_parts(tmp_path) == 1            # any output's
    assert remove_stale_parts(tmp_path / "absent") == 0
