"""`--frames DIR` ownership: an empty folder or the same video's frames (resumed); anything else refused."""
from __future__ import annotations

import pytest

from sscn.cli.errors import CLIError
from sscn.cli.frames import FRAME_NAME, MANIFEST, check_frames_folder, claim_frames_folder, remove_frames_after


@pytest.fixture
def videos(tmp_path):
    first, second = tmp_path / "a.mp4", tmp_path / "b.mp4"
    first.write_bytes(b"a" * 10)
    second.write_bytes(b"b" * 20)
    return first, second


def test_new_or_empty_folder(tmp_path, videos):
    check_frames_folder(tmp_path / "new", videos[0], overwrite=False)
    (tmp_path / "empty").mkdir()
    check_frames_folder(tmp_path / "empty", videos[0], overwrite=False)


def test_same_video_resumes_other_video_is_refused(tmp_path, videos):
    frames = tmp_path / "frames"
    claim_frames_folder(frames, videos[0])
    (frames / FRAME_NAME.format(1)).write_bytes(b"png")
    check_frames_folder(frames, videos[0], overwrite=False)
    with pytest.raises(CLIError, match=f"{frames}: holds frames of {videos[0]}; --frames needs an empty folder"):
        check_frames_folder(frames, videos[1], overwrite=False)
    check_frames_folder(frames, videos[1], overwrite=True)


def test_foreign_files_are_refused(tmp_path, videos):
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(CLIError, match="holds 1 other file;"):
        check_frames_folder(folder, videos[0], overwrite=False)
    with pytest.raises(CLIError, match="needs a folder"):
        check_frames_folder(folder / "notes.txt", videos[0], overwrite=False)


def test_overwrite_removes_a_longer_videos_frames(tmp_path):
    for index in (1, 2, 3):
        (tmp_path / FRAME_NAME.format(index)).write_bytes(b"png")
    (tmp_path / "frame_x.png").write_bytes(b"not ours")
    remove_frames_after(tmp_path, 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == [FRAME_NAME.format(1), FRAME_NAME.format(2), "frame_x.png"]
    assert not (tmp_path / MANIFEST).exists()
