"""Video probing and ffmpeg pipes (colorize_cli.video), without the model."""
from __future__ import annotations

import json
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from sscn.cli.video import FrameReader, FrameWriter, VideoError, ffmpeg_exe, probe
from sscn.cli.video_info import parse_ffmpeg_report, parse_ffprobe_json

CLIP = Path("clip.mp4")
REPORT = "\n".join([    # `ffmpeg -i clip.mp4` on a rotated phone clip with cover art and sound
    "Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'clip.mp4':",
    "  Duration: 00:01:02.50, start: 0.000000, bitrate: 43 kb/s",
    "  Stream #0:0[0x1](und): Video: mjpeg (Baseline), yuvj420p, 300x300, 90k tbr, 90k tbn (attached pic)",
    "  Stream #0:1[0x2](und): Video: h264 (High) (avc1 / 0x31637661), yuv420p(progressive), 1920x1080 "
    "[SAR 1:1 DAR 16:9], 33 kb/s, 29.97 fps, 29.97 tbr, 30k tbn (default)",
    "    Side data:",
    "      displaymatrix: rotation of -90.00 degrees",
    "  Stream #0:2[0x3](und): Audio: aac (LC) (mp4a / 0x6134706D), 44100 Hz, stereo, fltp, 128 kb/s (default)",
    "At least one output file must be specified",
])


class TestFfmpegReport:
    def test_fields(self):
        info = parse_ffmpeg_report(REPORT, CLIP)
        assert (info.width, info.height) == (1080, 1920)          # display rotation applied
        assert info.fps == Fraction(30000, 1001)
        assert info.duration == pytest.approx(62.5)
        assert info.stream_index == 1                              # the cover art is skipped
        assert info.audio_codec == "aac"
        assert info.frame_count == round(62.5 * 30000 / 1001)

    def test_timebase_like_nominal_rate_falls_back_to_average(self):
        report = REPORT.replace("29.97 fps, 29.97 tbr", "25 fps, 1k tbr")
        assert parse_ffmpeg_report(report, CLIP).fps == 25

    def test_variable_rate_uses_nominal(self):
        report = REPORT.replace("29.97 fps, 29.97 tbr", "2.07 fps, 15 tbr")
        assert parse_ffmpeg_report(report, CLIP).fps == 15

    def test_no_video(self):
        report = "\n".join(line for line in REPORT.splitlines() if "Video:" not in line)
        with pytest.raises(VideoError, match="clip.mp4: no video stream"):
            parse_ffmpeg_report(report, CLIP)

    def test_unreadable(self):
        with pytest.raises(VideoError, match="clip.mp4: not a readable video \\(clip.mp4: Invalid data"):
            parse_ffmpeg_report("clip.mp4: Invalid data found when processing input\n", CLIP)


def test_ffprobe_json():
    data = {"format": {"duration": "2.000000"},
            "streams": [{"index": 0, "codec_type": "video", "width": 160, "height": 120, "r_frame_rate": "15/1",
                         "avg_frame_rate": "31/15", "side_data_list": [{"rotation": 90}]},
                        {"index": 1, "codec_type": "audio", "codec_name": "opus"}]}
    info = parse_ffprobe_json(json.dumps(data), CLIP)
    assert (info.width, info.height, info.fps, info.duration) == (120, 160, 15, 2.0)
    assert (info.stream_index, info.audio_codec, info.frame_count) == (0, "opus", 30)


def test_probe_bundled_clip(data_dir):
    info = probe(data_dir / "tree-2s.mp4")
    assert (info.width, info.height, info.fps, info.audio_codec) == (160, 120, 15, None)


def test_round_trip_through_pipes(tmp_path, data_dir):
    """Decode the clip, re-encode its frames with an audio track, decode again: same count, close pixels."""
    source = tmp_path / "with_audio.mp4"
    subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-i", str(data_dir / "tree-2s.mp4"), "-f", "lavfi",
                    "-i", "sine=duration=2", "-vf", "fps=15", "-c:v", "libx264", "-c:a", "aac", "-shortest",
                    str(source)], check=True)
    info = probe(source)
    assert info.audio_codec == "aac"
    with FrameReader(source, info) as reader:
        frames = list(reader)
    assert len(frames) == info.frame_count == 30
    assert frames[0].shape == (120, 160, 3) and frames[0].dtype == torch.uint8
    output = tmp_path / "copy.mkv"
    with FrameWriter(str(output), "matroska", info, source) as writer:
        for frame in frames:
            writer.write(frame.numpy())
    again = probe(output)
    assert (again.fps, again.audio_codec) == (15, "aac")
    with FrameReader(output, again) as reader:
        decoded = list(reader)
    assert len(decoded) == 30
    difference = np.abs(decoded[10].numpy().astype(int) - frames[10].numpy().astype(int)).mean()
    assert difference < 4


def test_empty_file(tmp_path):
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(VideoError, match="empty file"):
        probe(tmp_path / "empty.mp4")
