"""The real-reference protocol (`sscn evaluate --pairs`, train.evaluate_pairs) and the video keyframe protocol
(`sscn evaluate VIDEO --keyframe`, train.evaluate_video), with the tiny model and the bundled fixtures."""
from __future__ import annotations

import csv
import json
from fractions import Fraction

import pytest
import torch

from sscn.train import methods as table
from sscn.train.evaluate_pairs import Pair, evaluate_pairs, resize_short_side
from sscn.train.evaluate_video import frame_offset, parse_gaps
from sscn.train.metrics import psnr

SIZE = 64
ROWS = ("target,reference,kind\n"
        "campus1.jpg,campus2.jpg,campus\n"
        "campus2.jpg,campus1.jpg,campus\n"
        "flowers.jpg,tomato.jpg,plants\n")


def _read(path):
    from sscn.images import read_image

    return read_image(path).pixels


@pytest.fixture()
def pairs_csv(tmp_path):
    path = tmp_path / "pairs.csv"
    path.write_text(ROWS)
    return path


class TestPairsProtocol:
    def test_resize_keeps_aspect(self):
        resized = resize_short_side(torch.rand(3, 120, 180), SIZE)
        assert resized.shape == (3, SIZE, 96) and resized.dtype == torch.uint8
        assert resize_short_side(torch.zeros(1, 300, 100, dtype=torch.uint8), SIZE).shape == (3, 192, SIZE)

    def test_scores_and_summary(self, tiny_weights, data_dir):
        specs = table.method_specs(["sscn", "dense", "stage1", "reinhard", "copy-gray"])
        methods = table.build_methods(specs, tiny_weights, torch.device("cpu"), SIZE)
        pairs = [Pair("campus1.jpg", "campus2.jpg", "campus", 2), Pair("flowers.jpg", "tomato.jpg", "", 3)]
        report = evaluate_pairs(((p, _read(data_dir / p.target), _read(data_dir / p.reference)) for p in pairs),
                                methods, size=SIZE)
        assert len(report.scores) == 2 * 5 and report.kinds == ["campus"]
        summary = report.summary()
        for name in methods.names:
            rows = [row for row in report.scores if row["method"] == name]
            assert set(summary[name]) == {"campus", "mean"}
            assert summary[name]["mean"]["de00"] == pytest.approx(sum(row["de00"] for row in rows) / 2)
            assert summary[name]["campus"]["psnr"] == rows[0]["psnr"]
        assert all(row["colorfulness_ratio"] < 0.01 for row in report.scores if row["method"] == "copy-gray")
        assert len(report.sheet) == 2 and report.sheet[0].truth.shape == (3, SIZE, 96)

    def test_sscn_row_is_what_sscn_colorize_writes(self, run_sscn, tiny_weights, data_dir, tmp_path):
        """The reference goes through the path of `sscn colorize`: colorizing the resized target with the CLI
        gives the protocol's own PSNR."""
        from sscn.cli.images import write_image

        target = tmp_path / "target.png"
        write_image(target, resize_short_side(_read(data_dir / "campus1.jpg"), SIZE))
        result = run_sscn("colorize", target, "--ref", data_dir / "campus2.jpg", "--weights", tiny_weights,
                          "--size", SIZE, "-o", tmp_path / "out.png")
        assert result.returncode == 0, result.stderr
        methods = table.build_methods(table.method_specs(["sscn"]), tiny_weights, torch.device("cpu"), SIZE)
        report = evaluate_pairs([(Pair("target.png", "campus2.jpg", "", 2), _read(target),
                                  _read(data_dir / "campus2.jpg"))], methods, size=SIZE)
        written = psnr(_read(tmp_path / "out.png")[None], _read(target)[None]).item()
        assert report.scores[0]["psnr"] == pytest.approx(written, abs=1e-4)


def test_cli_pairs_identical_on_two_runs(run_sscn, tiny_weights, data_dir, pairs_csv, tmp_path):
    outputs = []
    for run in ("a", "b"):
        result = run_sscn("evaluate", "--pairs", pairs_csv, "--root", data_dir, "--weights", tiny_weights,
                          "--size", SIZE, "--methods", "sscn,welsh,copy-gray", "--json-out", tmp_path / f"{run}.json",
                          "--csv", tmp_path / f"{run}.csv", "--sheet", tmp_path / f"{run}.png")
        assert result.returncode == 0, result.stderr
        assert result.stdout == ""
        outputs.append(json.loads((tmp_path / f"{run}.json").read_text()))
    assert outputs[0]["pairs"] == outputs[1]["pairs"] and outputs[0]["summary"] == outputs[1]["summary"]
    assert (tmp_path / "a.csv").read_text() == (tmp_path / "b.csv").read_text()
    report = outputs[0]
    assert report["mode"] == "pairs" and report["pairs"][0]["target"] == "campus1.jpg"
    assert list(report["summary"]["sscn"]) == ["campus", "plants", "mean"]
    rows = list(csv.DictReader((tmp_path / "a.csv").open()))
    assert len(rows) == 3 * 3 and set(rows[0]) == {"target", "reference", "kind", "method", *table.METRICS}
    assert "real references: 3 pairs" in result.stderr and "ΔE00" in result.stderr
    from PIL import Image

    with Image.open(tmp_path / "a.png") as sheet:     # one row per kind; cells as wide as the widest target
        assert sheet.width == 96 * (2 + 3 + 1)


def test_cli_pairs_gates(run_sscn, data_dir, pairs_csv):
    args = ("evaluate", "--pairs", pairs_csv, "--root", data_dir, "--size", SIZE, "--methods", "copy-gray,reinhard",
            "--gate-method", "reinhard")
    failed = run_sscn(*args, "--max-de00", 1)
    assert failed.returncode == 1
    [line] = [line for line in failed.stderr.splitlines() if line.startswith("sscn: error")]
    assert "reinhard mean over pairs ΔE00" in line and "above --max-de00 1.00" in line
    failed = run_sscn(*args, "--min-psnr", 60)
    assert failed.returncode == 1 and "below --min-psnr 60.00" in failed.stderr
    passed = run_sscn(*args, "--max-de00", 60, "--min-psnr", 10, "--json")
    assert passed.returncode == 0, passed.stderr
    assert json.loads(passed.stdout)["summary"]["reinhard"]["mean"]["de00"] <= 60
    assert passed.stderr.count("quality gate passed") == 2


def test_cli_pairs_tolerates_blank_lines_and_a_bom(run_sscn, data_dir, pairs_csv, tmp_path):
    messy = tmp_path / "messy.csv"
    messy.write_bytes(b"\xef\xbb\xbf" + ROWS.replace("\n", "\n\n", 2).replace("\n", "\r\n").encode())
    reports = [json.loads(run_sscn("evaluate", "--pairs", path, "--root", data_dir, "--size", SIZE, "--methods",
                                   "reinhard", "--json").stdout) for path in (pairs_csv, messy)]
    assert reports[0]["pairs"] == reports[1]["pairs"] and len(reports[0]["pairs"]) == 3


@pytest.mark.parametrize("rows, message", [
    (ROWS + "campus1.jpg,missing.jpg,campus\n", "pairs.csv: line 5: {root}/missing.jpg: no such file"),
    (ROWS + "campus1.jpg\n", "pairs.csv: line 5 'campus1.jpg' is not target,reference[,kind]"),
    (ROWS + "campus1.jpg,campus2.jpg,campus,extra\n", "line 5 'campus1.jpg,campus2.jpg,campus,extra' is not"),
    ("target,reference\n", "pairs.csv: no rows"),
])
def test_cli_bad_pairs_file(run_sscn, data_dir, tmp_path, rows, message):
    (tmp_path / "pairs.csv").write_text(rows)
    result = run_sscn("evaluate", "--pairs", tmp_path / "pairs.csv", "--root", data_dir, "--methods", "copy-gray")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("sscn: error: ")
    assert message.format(root=data_dir) in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("args, message", [
    (["{photos}", "--pairs", "{csv}"], "--pairs replaces INPUT"),
    ([], "give an INPUT"),
    (["--pairs", "{csv}", "--root", "{csv}"], "--root is not a folder"),
    (["{photos}", "--root", "{photos}"], "--root is for --pairs"),
    (["--pairs", "{csv}", "--keyframe", "1s"], "--keyframe and --gaps are for video input"),
    (["{video}", "--gaps", "1"], "--gaps needs --keyframe"),
    (["{video}", "--keyframe", "1s", "--ref", "{photo}"], "leave out --ref"),
    (["{video}", "--keyframe", "1.5", "--methods", "copy-gray"], "malformed time '1.5'"),
    (["{video}", "--keyframe", "1s", "--gaps", "1s", "--methods", "copy-gray"],
     "keyframe 1s + 1s is frame 30, past the last frame evaluated (29)"),
])
def test_cli_bad_options(run_sscn, data_dir, pairs_csv, args, message):
    places = {"photos": data_dir, "csv": pairs_csv, "video": data_dir / "tree-2s.mp4",
              "photo": data_dir / "campus1.jpg"}
    result = run_sscn("evaluate", *[arg.format(**places) for arg in args])
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr


class TestKeyframeProtocol:
    def test_times(self):
        fps = Fraction(15)
        assert [frame_offset(text, fps) for text in ("7", "1s", "0.5s", " 2s ", ".2s")] == [7, 15, 8, 30, 3]
        assert frame_offset("1.001s", Fraction(30000, 1001)) == 30
        for bad in ("1.5", "-1", "s", "1m"):
            with pytest.raises(ValueError, match="malformed time"):
                frame_offset(bad, fps)
        assert parse_gaps("1, 1s,3s", fps) == {"1": 1, "1s": 15, "3s": 45}
        with pytest.raises(ValueError, match="less than one frame"):
            parse_gaps("0s", fps)

    def test_cli(self, run_sscn, tiny_weights, data_dir, tmp_path):
        result = run_sscn("evaluate", data_dir / "tree-2s.mp4", "--keyframe", "0.5s", "--gaps", "1,0.5s,1s",
                          "--weights", tiny_weights, "--size", SIZE, "--methods", "stage1,copy-gray",
                          "--json-out", tmp_path / "clip.json", "--sheet", tmp_path / "clip.png")
        assert result.returncode == 0, result.stderr
        report = json.loads((tmp_path / "clip.json").read_text())
        assert report["reference"] == "keyframe 0.5s (frame 8)" and report["keyframe_frame"] == 8
        assert report["gap_frames"] == {"1": 9, "0.5s": 16, "1s": 23} and report["frames"] == 30
        frames = {(row["frame"], row["method"]): row for row in report["per_frame"]}
        for method in ("stage1", "copy-gray"):
            for label, index in report["gap_frames"].items():
                assert report["gaps"][method][label] == {m: frames[index, method][m] for m in table.METRICS}
        assert report["cdc_source"] > 0 and report["summary"]["stage1"]["cdc"] > 0
        assert "keyframe 0.5s (frame 8) as the reference" in result.stderr and "+0.5s (frame 16)" in result.stderr
        from PIL import Image

        with Image.open(tmp_path / "clip.png") as sheet:     # one row per gap
            assert sheet.height == 16 + 3 * (120 + 14)
