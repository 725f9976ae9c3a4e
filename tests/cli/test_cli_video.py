"""`sscn colorize` on videos: the installed command on the bundled clip (tiny random weights)."""
from __future__ import annotations

import subprocess

import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image
from skimage.color import rgb2lab

from sscn.cli.video import FrameReader, ffmpeg_exe, probe

CLIP_FRAMES, CLIP_FPS, CLIP_SECONDS = 30, 15, 2.0      # tree-2s.mp4 read at its nominal 15 fps


@pytest.fixture(scope="module")
def fast(tiny_weights) -> list[str]:
    return ["--weights", str(tiny_weights), "--size", "64", "--batch-size", "16"]


def first_frame_lightness(path) -> np.ndarray:
    with FrameReader(path, probe(path)) as reader:
        frame = next(iter(reader)).numpy()
    return rgb2lab(frame / 255.0)[..., 0]


def test_clip_keeps_frames_fps_duration_and_lightness(run_sscn, tmp_path, data_dir, fast):
    source = data_dir / "tree-2s.mp4"
    output = tmp_path / "tree.mp4"
    result = run_sscn("colorize", source, "--ref", data_dir / "campus2.jpg", "-o", output, *fast, "--json")
    assert result.returncode == 0, result.stderr
    assert '"frames": 30' in result.stdout
    info = probe(output)
    assert (info.width, info.height, info.fps, info.audio_codec) == (160, 120, CLIP_FPS, None)
    frames, seconds = imageio_ffmpeg.count_frames_and_secs(str(output))
    assert frames == CLIP_FRAMES and seconds == pytest.approx(CLIP_SECONDS, abs=1 / CLIP_FPS)
    assert probe(source).fps == CLIP_FPS
    difference = np.abs(first_frame_lightness(output) - first_frame_lightness(source))
    assert difference.mean() < 2.0          # the luminance survives (up to H.264 loss)


def test_grayscale_clip_with_audio(run_sscn, tmp_path, data_dir, fast):
    """A grayscale source with an audio track (added here with ffmpeg's sine source) keeps its audio."""
    source = tmp_path / "gray_sound.mp4"
    subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-i", str(data_dir / "tree-2s.mp4"), "-f", "lavfi",
                    "-i", "sine=frequency=440:duration=2", "-vf", "fps=15,format=gray", "-c:v", "libx264",
                    "-c:a", "aac", "-shortest", str(source)], check=True)
    assert probe(source).audio_codec == "aac"
    result = run_sscn("colorize", source, "--ref", data_dir / "campus2.jpg", *fast)
    assert result.returncode == 0, result.stderr
    output = tmp_path / "gray_sound_color.mp4"
    info = probe(output)
    assert info.audio_codec == "aac" and info.fps == CLIP_FPS
    assert info.duration == pytest.approx(CLIP_SECONDS, abs=0.1)
    assert imageio_ffmpeg.count_frames_and_secs(str(output))[0] == CLIP_FRAMES


def test_frames_output(run_sscn, tmp_path, data_dir, fast):
    frames = tmp_path / "frames"
    result = run_sscn("colorize", data_dir / "tree-2s.mp4", "--ref", data_dir / "campus2.jpg", "--frames", frames,
                      *fast)
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in frames.glob("frame_*.png"))
    assert len(names) == CLIP_FRAMES and names[0] == "frame_000001.png"
    assert sorted(p.name for p in frames.iterdir()) == [".sscn-frames.json", *names]     # the folder's owner
    assert Image.open(frames / names[-1]).size == (160, 120)


def test_video_without_picture(run_sscn, tmp_path, data_dir, fast):
    sound = tmp_path / "sound.mp4"
    subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-f", "lavfi", "-i", "sine=duration=1", "-c:a", "aac",
                    str(sound)], check=True)
    result = run_sscn("colorize", sound, "--ref", data_dir / "campus2.jpg", *fast)
    assert result.returncode == 2
    assert result.stderr.strip() == f"sscn: error: {sound}: no video stream"
    assert not (tmp_path / "sound_color.mp4").exists()
