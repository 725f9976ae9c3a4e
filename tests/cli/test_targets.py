"""Target discovery and output naming (colorize_cli.targets)."""
from __future__ import annotations

from pathlib import Path

import pytest

from sscn.cli.errors import CLIError
from sscn.models.outputs import OutputError
from sscn.cli.targets import check_outputs, discover, natural_key, plan_jobs, plan_pairs, read_pairs


def touch(*paths: Path) -> None:
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")


@pytest.fixture
def shots(tmp_path) -> Path:
    """shots/{a.jpg, frame_2.png, frame_10.png, clip.mp4, notes.txt, .hidden.jpg, sub/b.jpg}"""
    root = tmp_path / "shots"
    touch(root / "a.jpg", root / "frame_2.png", root / "frame_10.png", root / "clip.mp4", root / "notes.txt",
          root / ".a.png.x1.part", root / "sub" / "b.jpg")
    return root


def plan(names, out=None, frames=None, recursive=False, stdin=()):
    return plan_jobs(discover([str(n) for n in names], recursive, [], stdin), out, frames)


def test_natural_order():
    names = ["f10.png", "f2.png", "F1.png"]
    assert sorted(names, key=lambda n: natural_key(Path(n))) == ["F1.png", "f2.png", "f10.png"]


def test_folder_default_is_sibling_folder(shots):
    jobs = plan([shots])
    assert [j.source.name for j in jobs] == ["a.jpg", "clip.mp4", "frame_2.png", "frame_10.png"]
    sibling = shots.parent / "shots_color"
    assert [j.output for j in jobs] == [sibling / "a.png", sibling / "clip.mp4", sibling / "frame_2.png",
                                        sibling / "frame_10.png"]
    assert [j.video for j in jobs] == [False, True, False, False]


def test_recursive_mirrors_into_out(shots, tmp_path):
    jobs = plan([shots], out=str(tmp_path / "out"), recursive=True)
    assert tmp_path / "out" / "sub" / "b.png" in [j.output for j in jobs]


def test_out_folder_inside_targets_is_not_searched(shots):
    touch(shots / "colored" / "a.png")
    jobs = plan_jobs(discover([str(shots)], True, [shots / "colored"], []), str(shots / "colored"), None)
    assert all("colored" not in j.source.parts for j in jobs)


def test_loose_files_beside_input(shots):
    jobs = plan([shots / "a.jpg", shots / "clip.mp4"])
    assert [j.output for j in jobs] == [shots / "a_color.png", shots / "clip_color.mp4"]


def test_loose_files_mirror_below_common_folder(shots, tmp_path):
    jobs = plan([shots / "a.jpg", shots / "sub" / "b.jpg"], out=str(tmp_path / "out"))
    assert [j.output for j in jobs] == [tmp_path / "out" / "a.png", tmp_path / "out" / "sub" / "b.png"]


def test_stdin_targets(shots):
    jobs = plan(["-"], stdin=[f"{shots / 'a.jpg'}\n", "\n", f"  {shots / 'sub' / 'b.jpg'}  \n"])
    assert [j.source.name for j in jobs] == ["a.jpg", "b.jpg"]


def test_out_file_for_one_target(shots, tmp_path):
    [job] = plan([shots / "a.jpg"], out=str(tmp_path / "result.jpg"))
    assert job.output == tmp_path / "result.jpg"


def test_out_file_with_many_targets_refused(shots, tmp_path):
    with pytest.raises(CLIError, match="names a file"):
        plan([shots / "a.jpg", shots / "sub" / "b.jpg"], out=str(tmp_path / "result.png"))


def test_video_to_image_suffix_refused(shots, tmp_path):
    with pytest.raises(CLIError, match="video suffix"):
        plan([shots / "clip.mp4"], out=str(tmp_path / "clip.png"))


def test_frames_folder_for_video(shots, tmp_path):
    [job] = plan([shots / "clip.mp4"], frames=tmp_path / "frames")
    assert job.frames and job.output == tmp_path / "frames"


def test_frames_without_video_refused(shots, tmp_path):
    with pytest.raises(CLIError, match="--frames applies to video"):
        plan([shots / "a.jpg"], frames=tmp_path / "frames")


def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(CLIError, match="no images or videos found"):
        plan([tmp_path / "empty"])


def test_collision_refused(tmp_path):
    touch(tmp_path / "p.jpg", tmp_path / "p.tif")
    with pytest.raises(CLIError, match="would both be written"):
        check_outputs(plan([tmp_path], out=str(tmp_path / "out")), [])


def test_output_equal_to_input_refused(shots):
    touch(shots / "c.png")
    with pytest.raises(OutputError, match="output path is an input"):
        check_outputs(plan([shots / "c.png"], out=str(shots)), [])


def test_output_equal_to_reference_refused(shots):
    touch(shots / "a_color.png")
    with pytest.raises(OutputError, match="output path is an input"):
        check_outputs(plan([shots / "a.jpg"]), [shots / "a_color.png"])


class TestPairs:
    def test_rows(self, shots):
        csv = shots / "pairs.csv"
        csv.write_text("target,reference,output\na.jpg,frame_2.png,\nsub/b.jpg,frame_10.png,b_out.jpg\n")
        jobs = plan_pairs(csv, read_pairs(csv), None, None)
        assert [(j.source, j.reference, j.output) for j in jobs] == [
            (shots / "a.jpg", shots / "frame_2.png", shots / "a_color.png"),
            (shots / "sub" / "b.jpg", shots / "frame_10.png", shots / "b_out.jpg")]

    def test_bad_row(self, shots):
        csv = shots / "pairs.csv"
        csv.write_text("a.jpg\n")
        with pytest.raises(CLIError, match="line 1"):
            read_pairs(csv)
