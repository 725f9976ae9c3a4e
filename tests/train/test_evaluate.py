"""The self-augmentation benchmark (train.evaluate) and `sscn evaluate` end to end, with the tiny model."""
from __future__ import annotations

import csv
import json
import shutil

import pytest
import torch

from sscn.models.color import rgb_to_lab
from sscn.train import evaluate as bench
from sscn.train import methods as table
from sscn.train.data import load_square
from sscn.train.evaluate_video import evaluate_video
from sscn.train.metrics import cdc

SIZE = 64


@pytest.fixture(scope="module")
def tiny_methods(tiny_weights):
    specs = table.method_specs(["sscn", "dense", "stage1", "welsh", "copy-gray"], sweep=[(200, 200)])
    return table.build_methods(specs, tiny_weights, torch.device("cpu"), SIZE)


class TestProtocol:
    def test_pair_seed_is_stable(self):
        # fixed values: the pairs must not change between runs, machines or Python processes
        assert bench.pair_seed("flowers.jpg", "tps", 0) == 8564987064115168430
        assert bench.pair_seed("flowers.jpg", "rr", 0) == 4626252008965660471
        assert bench.pair_seed("flowers.jpg", "tps", 1) != bench.pair_seed("flowers.jpg", "tps", 0)

    @pytest.mark.parametrize("kind", bench.REFERENCE_KINDS)
    def test_references_are_seeded(self, kind, photo_paths):
        photo = load_square(photo_paths[0], SIZE).float() / 255
        first = bench.make_reference(photo, kind, 7)
        assert first.shape == photo.shape and 0 <= first.min() and first.max() <= 1
        assert torch.equal(first, bench.make_reference(photo, kind, 7))
        assert not torch.equal(first, photo)
        if kind != "palette":      # k-means from another start may well land on the same colours
            assert not torch.equal(first, bench.make_reference(photo, kind, 8))

    def test_palette_reference_holds_few_colours(self, photo_paths):
        photo = load_square(photo_paths[0], SIZE).float() / 255
        swatch = bench.make_reference(photo, "palette", 3)
        assert len(torch.unique(swatch.flatten(1), dim=1).T) <= 6

    def test_unknown_reference_kind(self, photo_paths):
        with pytest.raises(ValueError, match="unknown reference kind"):
            bench.make_reference(torch.rand(3, 32, 32), "flip", 0)

    def test_method_specs(self):
        specs = table.method_specs(["sscn", "copy-gray", "sscn"], k=8, r=4, sweep=table.parse_sweep("16:0, 2:2"))
        assert [s.name for s in specs] == ["sscn", "copy-gray", "sscn k=16 r=0", "sscn k=2 r=2"]
        assert (specs[0].k, specs[0].r) == (8, 4)
        with pytest.raises(ValueError, match="unknown method 'foo'"):
            table.method_specs(["foo"])
        with pytest.raises(ValueError, match="malformed --sweep"):
            table.parse_sweep("64-64")

    def test_merge_keeps_lightness(self, photo_paths):
        photo = load_square(photo_paths[1], SIZE)[None].float() / 255
        lab = rgb_to_lab(photo)
        merged = table.merge_lightness(lab[:, :1], lab[:, 1:] * 1.5)     # partly out of gamut
        torch.testing.assert_close(rgb_to_lab(merged)[:, :1], lab[:, :1], atol=0.05, rtol=0)


class TestPhotoBenchmark:
    def test_scores_and_summary(self, tiny_methods, photo_paths):
        report = bench.evaluate_photos(photo_paths[:2], tiny_methods, size=SIZE, batch_size=8)
        names = tiny_methods.names
        assert len(report.scores) == 2 * len(bench.REFERENCE_KINDS) * len(names)
        summary = report.summary()
        for name in names:
            mean = summary[name]["mean"]["psnr"]
            expected = sum(summary[name][kind]["psnr"] for kind in bench.MEAN_KINDS) / 3
            assert mean == pytest.approx(expected)
            assert set(summary[name]) == {*bench.REFERENCE_KINDS, "mean"}
        # k + r beyond the 256 positions of a 64 x 64 reference: the sparse row is the dense one
        assert summary["sscn k=200 r=200"] == summary["dense"]
        assert len(report.sheet) == 2 and set(report.sheet[0].results) == set(names)

    def test_independent_of_batching(self, tiny_methods, photo_paths):
        one = bench.evaluate_photos(photo_paths[:1], tiny_methods, size=SIZE, batch_size=1)
        four = bench.evaluate_photos(photo_paths[:1], tiny_methods, size=SIZE, batch_size=4)
        for a, b in zip(one.scores, four.scores):
            assert (a["image"], a["reference"], a["method"]) == (b["image"], b["reference"], b["method"])
            for metric in table.METRICS:
                assert a[metric] == pytest.approx(b[metric], abs=1e-3)

    def test_baselines_beat_copy_gray_on_real_photos(self, photo_paths):
        methods = table.build_methods(table.method_specs(["copy-gray", "reinhard", "welsh"]), None,
                                      torch.device("cpu"), SIZE)
        summary = bench.evaluate_photos(photo_paths, methods, size=SIZE).summary()
        assert summary["copy-gray"]["mean"]["psnr"] < summary["reinhard"]["mean"]["psnr"]
        assert summary["copy-gray"]["mean"]["psnr"] < summary["welsh"]["mean"]["psnr"]

    def test_unreadable_photo_is_skipped(self, tmp_path, photo_paths):
        (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
        methods = table.build_methods(table.method_specs(["copy-gray"]), None, torch.device("cpu"), SIZE)
        report = bench.evaluate_photos([tmp_path / "broken.jpg", photo_paths[0]], methods, size=SIZE)
        assert [f["file"] for f in report.failed] == [str(tmp_path / "broken.jpg")]
        assert {s["image"] for s in report.scores} == {photo_paths[0].name}


@pytest.mark.cuda
def test_cuda_matches_cpu(tiny_weights, photo_paths):
    """Same pairs on any device; baselines agree closely, the network within bf16 autocast's error."""
    specs = table.method_specs(["sscn", "stage1", "welsh", "reinhard", "copy-gray"])
    reports = {device: bench.evaluate_photos(photo_paths[:2], table.build_methods(specs, tiny_weights,
                                                                                  torch.device(device), SIZE),
                                             size=SIZE, device=torch.device(device))
               for device in ("cpu", "cuda")}
    for cpu, cuda in zip(reports["cpu"].scores, reports["cuda"].scores):
        tolerance = 1.0 if cpu["method"] in ("sscn", "stage1") else 0.05
        assert cpu["psnr"] == pytest.approx(cuda["psnr"], abs=tolerance)


def test_video_flicker_and_scores(tiny_methods, data_dir):
    from sscn.cli.video import FrameReader, probe

    path = data_dir / "tree-2s.mp4"
    with FrameReader(path, probe(path)) as reader:
        frames = [frame.permute(2, 0, 1) for frame in reader][::6]       # the clip's frames hold for ~7 reads
    report = evaluate_video(frames, frames[2], tiny_methods, batch_size=4)
    summary = report.summary()
    assert len(report.frames) == len(frames) * len(tiny_methods.names)
    assert summary["copy-gray"]["flicker"] < 1e-3          # grey stays grey
    assert summary["welsh"]["flicker"] > 0
    assert all(0 <= row["his"] <= 1 and row["psnr"] > 10 for row in summary.values())
    # the CDC of the source is the clip's own, streamed across batches
    assert report.cdc["source"] == pytest.approx(cdc(torch.stack(frames)), rel=1e-9)
    assert all(row["cdc"] >= 0 and row["de00"] > 0 for row in summary.values())


# --- the installed CLI --------------------------------------------------------------------------------

def _photo_folder(tmp_path, photo_paths, count=2):
    folder = tmp_path / "photos"
    folder.mkdir()
    for path in photo_paths[:count]:
        shutil.copy(path, folder / path.name)
    return folder


def test_cli_outputs_are_identical_on_two_runs(run_sscn, tiny_weights, photo_paths, tmp_path):
    folder = _photo_folder(tmp_path, photo_paths)
    outputs = []
    for run in ("a", "b"):
        result = run_sscn("evaluate", folder, "--weights", tiny_weights, "--size", SIZE,
                          "--methods", "sscn,welsh,copy-gray", "--sweep", "8:8",
                          "--json-out", tmp_path / f"{run}.json", "--csv", tmp_path / f"{run}.csv",
                          "--sheet", tmp_path / f"{run}.png")
        assert result.returncode == 0, result.stderr
        assert result.stdout == ""
        outputs.append(json.loads((tmp_path / f"{run}.json").read_text()))
    assert outputs[0]["pairs"] == outputs[1]["pairs"]
    assert outputs[0]["summary"] == outputs[1]["summary"]
    assert (tmp_path / "a.csv").read_text() == (tmp_path / "b.csv").read_text()
    assert "sscn k=8 r=8" in result.stderr and "TPS" in result.stderr

    rows = list(csv.DictReader((tmp_path / "a.csv").open()))
    assert len(rows) == 2 * 4 * 4 and set(rows[0]) == {"image", "reference", "method", *table.METRICS}
    from PIL import Image

    with Image.open(tmp_path / "a.png") as sheet:
        assert sheet.width == SIZE * (2 + 4 + 1)


def test_cli_gate_sets_the_exit_code(run_sscn, photo_paths, tmp_path):
    folder = _photo_folder(tmp_path, photo_paths, count=1)
    failed = run_sscn("evaluate", folder, "--size", SIZE, "--methods", "copy-gray,reinhard",
                      "--gate-method", "reinhard", "--min-psnr", 60)
    assert failed.returncode == 1
    [line] = [line for line in failed.stderr.splitlines() if line.startswith("sscn: error")]
    assert "reinhard" in line and "below --min-psnr 60.00" in line

    passed = run_sscn("evaluate", folder, "--size", SIZE, "--methods", "copy-gray", "--min-psnr", 10,
                      "--gate-method", "copy-gray", "--json")
    assert passed.returncode == 0, passed.stderr
    assert json.loads(passed.stdout)["summary"]["copy-gray"]["mean"]["psnr"] > 10


def test_cli_video(run_sscn, tiny_weights, data_dir, tmp_path):
    result = run_sscn("evaluate", data_dir / "tree-2s.mp4", "--weights", tiny_weights, "--size", SIZE,
                      "--methods", "stage1,copy-gray", "--limit", 16, "--json-out", tmp_path / "video.json")
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "video.json").read_text())
    assert report["mode"] == "video" and report["reference"].startswith("middle frame")
    assert report["frames"] == 16 and len(report["per_frame"]) == 2 * 16
    assert report["summary"]["copy-gray"]["flicker"] < 1e-3
    assert report["summary"]["stage1"]["flicker"] > 0
    assert "flicker" in result.stderr


def test_cli_skips_an_unreadable_photo(run_sscn, photo_paths, tmp_path):
    folder = _photo_folder(tmp_path, photo_paths, count=1)
    (folder / "zero.jpg").write_bytes(b"")
    result = run_sscn("evaluate", folder, "--size", SIZE, "--methods", "copy-gray")
    assert result.returncode == 1
    assert "zero.jpg: skipped" in result.stderr and "1 of 2 photos could not be read" in result.stderr


@pytest.mark.parametrize("args, message", [
    (["{empty}"], "no photos found"),
    (["{photos}", "--methods", "sscn,foo"], "unknown method 'foo'"),
    (["{photos}", "--methods", "copy-gray", "--min-psnr", "20"], "--gate-method 'sscn' is not among"),
    (["{missing}"], "no such file or folder"),
])
def test_cli_bad_input(run_sscn, photo_paths, tmp_path, args, message):
    (tmp_path / "empty").mkdir()
    places = {"empty": tmp_path / "empty", "photos": _photo_folder(tmp_path, photo_paths, count=1),
              "missing": tmp_path / "missing"}
    result = run_sscn("evaluate", *[arg.format(**places) for arg in args])
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("sscn: error: ")
    assert message in result.stderr and "Traceback" not in result.stderr


def test_full_size_protocol_scores_each_upsampling(run_sscn, tiny_weights, photo_paths, tmp_path):
    folder = _photo_folder(tmp_path, photo_paths, count=1)
    result = run_sscn("evaluate", folder, "--weights", tiny_weights, "--size", SIZE, "--full-size", 2 * SIZE,
                      "--methods", "sscn,copy-gray", "--json", tmp_path / "full.json")
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "full.json").read_text())
    assert report["full_size"] == 2 * SIZE and report["methods"] == ["sscn guided", "sscn bilinear", "copy-gray"]
    for row in report["summary"].values():
        assert row["mean"]["psnr"] > 10 and 0 < row["mean"]["de00"] < 50


def test_precision_is_recorded(run_sscn, tiny_weights, photo_paths, tmp_path):
    folder = _photo_folder(tmp_path, photo_paths, count=1)
    result = run_sscn("evaluate", folder, "--weights", tiny_weights, "--size", SIZE, "--methods", "sscn",
                      "--precision", "fp32", "--json", "-")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["precision"] == "fp32"
