"""Video, one reference per shot: cut detection (colorize_cli.shots), FILE@TIME references, per-shot runs."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sscn.cli.errors import CLIError
from sscn.cli.reference_specs import parse_reference
from sscn.cli.shots import detect_shots, lightness_histogram, shot_starts
from sscn.cli.video import ffmpeg_exe, probe

CUT = 12        # first frame (0-based) of the second shot
FRAMES = 24


def _shot_frames(photo: Path, count: int, size: tuple[int, int] = (96, 64)) -> list[np.ndarray]:
    """`count` frames of a slow pan over `photo` (H, W, 3) uint8: within a shot, frames differ a little."""
    image = np.asarray(Image.open(photo).convert("RGB").resize((size[0] + count * 2, size[1])))
    return [np.ascontiguousarray(image[:, 2 * i:2 * i + size[0]]) for i in range(count)]


@pytest.fixture(scope="module")
def two_shot_clip(tmp_path_factory, data_dir) -> Path:
    """A 12 fps gray clip: CUT frames panning over campus1, then FRAMES - CUT over flowers."""
    frames = _shot_frames(data_dir / "campus1.jpg", CUT) + _shot_frames(data_dir / "flowers.jpg", FRAMES - CUT)
    gray = [np.repeat(np.asarray(Image.fromarray(f).convert("L"))[..., None], 3, axis=2) for f in frames]
    path = tmp_path_factory.mktemp("clip") / "two_shots.mp4"
    subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "96x64",
                    "-r", "12", "-i", "pipe:", "-pix_fmt", "yuv420p", "-crf", "18", str(path)],
                   input=b"".join(f.tobytes() for f in gray), check=True)
    return path


def test_cut_found_within_one_frame(two_shot_clip):
    shots = detect_shots(two_shot_clip, probe(two_shot_clip), threshold=0.2)
    assert len(shots.starts) == 2 and shots.starts[0] == 0 and abs(shots.starts[1] - CUT) <= 1
    assert len(shots.first_frames) == 2 and shots.fps == 12


def test_hysteresis_makes_one_cut_of_a_flicker():
    dark, bright = torch.zeros(64), torch.zeros(64)
    dark[5], bright[60] = 1.0, 1.0
    assert shot_starts([dark, dark, bright, dark, bright, bright, bright], 0.35) == [0, 2]
    assert shot_starts([dark, dark, bright, bright, dark, dark], 0.35) == [0, 2, 4]


def test_histogram_sums_to_one(data_dir):
    frame = torch.from_numpy(np.asarray(Image.open(data_dir / "tomato.jpg").convert("RGB")).copy())
    assert float(lightness_histogram(frame).sum()) == pytest.approx(1.0)


@pytest.mark.parametrize("spec, expected", [("a.jpg", None), ("a.jpg@0", 0.0), ("a.jpg@2.5", 2.5),
                                            ("a.jpg@01:23.5", 83.5), ("a.jpg@1:00:02", 3602.0)])
def test_parse_reference(spec, expected):
    assert parse_reference(spec) == (Path("a.jpg"), expected)


@pytest.mark.parametrize("spec", ["a.jpg@", "a.jpg@1:2:3:4", "a.jpg@soon", "a.jpg@01:75", "a.jpg@-3"])
def test_parse_reference_rejects_bad_times(spec):
    with pytest.raises(CLIError, match="bad time"):
        parse_reference(spec)


def test_cli_bad_time_is_one_line(run_sscn, two_shot_clip, data_dir, tmp_path):
    result = run_sscn("colorize", two_shot_clip, "--ref", f"{data_dir / 'campus2.jpg'}@1:xx", "-o", tmp_path / "o.mp4")
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "bad time" in result.stderr
    assert not (tmp_path / "o.mp4").exists()


def test_cli_reference_per_shot(run_sscn, two_shot_clip, data_dir, tiny_weights, tmp_path):
    out = tmp_path / "frames"
    result = run_sscn("colorize", two_shot_clip, "--ref", f"{data_dir / 'campus2.jpg'}@0",
                      "--ref", f"{data_dir / 'tomato.jpg'}@00:01.5", "--frames", out, "--weights", tiny_weights,
                      "--size", "64", "--batch-size", "5", "--json")
    assert result.returncode == 0, result.stderr
    [item] = json.loads(result.stdout)["items"]
    assert [Path(shot["reference"][0]).name for shot in item["shots"]] == ["campus2.jpg", "tomato.jpg"]
    assert abs(item["shots"][1]["start_frame"] - (CUT + 1)) <= 1 and item["frames"] == FRAMES
    assert len(list(out.glob("frame_*.png"))) == FRAMES


def test_cli_library_per_shot(run_sscn, two_shot_clip, data_dir, tiny_weights, tmp_path, monkeypatch):
    monkeypatch.setenv("SSCN_CACHE_DIR", str(tmp_path / "cache"))
    library = tmp_path / "library"
    library.mkdir()
    for name in ("campus2.jpg", "tomato.jpg"):
        (library / name).write_bytes((data_dir / name).read_bytes())
    result = run_sscn("colorize", two_shot_clip, "--ref-dir", library, "-o", tmp_path / "out.mp4",
                      "--weights", tiny_weights, "--size", "64", "--json")
    assert result.returncode == 0, result.stderr
    [item] = json.loads(result.stdout)["items"]
    assert len(item["shots"]) == 2 and all(len(shot["reference"]) == 1 for shot in item["shots"])
    assert item["frames"] == FRAMES and (tmp_path / "out.mp4").is_file()
