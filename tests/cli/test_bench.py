"""`sscn bench` and its timing core (tools.benchmark)."""
from __future__ import annotations

import json

import pytest
import torch

from sscn.models import SSCN, get_config
from sscn.models.runtime import resolve_precision
from sscn.tools import benchmark
from sscn.tools.benchmark import measure, peak_tflops


@pytest.fixture(scope="module")
def tiny() -> SSCN:
    torch.manual_seed(0)
    return SSCN(get_config("tiny")).eval()


@pytest.mark.parametrize("mode, positions", [("sparse", 32), ("dense", 256)])
def test_measure(tiny, mode, positions):
    timing = measure(tiny, 64, mode, batch_size=2, runs=2, warmup=1, device="cpu")
    assert (timing.size, timing.mode, timing.batch_size, timing.positions, timing.runs) == (64, mode, 2, positions, 2)
    assert timing.ms_per_image > 0 and timing.images_per_second == pytest.approx(1000 / timing.ms_per_image)
    assert timing.peak_memory_mb > 0 and timing.peak_fraction is None and timing.error is None
    assert timing.achieved_tflops == pytest.approx(timing.gflops_per_image * timing.images_per_second / 1000)


def test_measure_rejects_bad_settings(tiny):
    with pytest.raises(ValueError, match="unknown attention mode"):
        measure(tiny, 64, "banded", device="cpu")
    with pytest.raises(ValueError, match="runs >= 1"):
        measure(tiny, 64, "sparse", runs=0, device="cpu")


def test_warmup_runs_are_left_out_of_the_median(tiny, monkeypatch):
    from sscn.tools.benchmark import time_predict
    from sscn.models.colorizer import Colorizer

    colorizer = Colorizer(model=tiny, device="cpu", size=64)
    colorizer.set_reference(torch.rand(3, 64, 64))
    calls = []
    predict = colorizer.predict
    monkeypatch.setattr(colorizer, "predict", lambda l_norm: calls.append(l_norm.shape) or predict(l_norm))
    assert len(time_predict(colorizer, batch_size=3, runs=4, warmup=2)) == 6
    assert calls == [(3, 1, 64, 64)] * 6
    monkeypatch.setattr(benchmark, "time_predict", lambda *args: [9.0, 7.0, 0.2, 0.1, 0.3])
    timing = measure(tiny, 64, "sparse", batch_size=2, runs=3, warmup=2, device="cpu")
    assert timing.ms_per_image == pytest.approx(100.0) and timing.compile_seconds is None


@pytest.mark.parametrize("name, precision, peak", [
    ("NVIDIA H100 80GB HBM3", "bf16", 989.0), ("NVIDIA H100 PCIe", "fp16", 756.0), ("NVIDIA H200", "bf16", 989.0),
    ("NVIDIA A100-SXM4-80GB", "bf16", 312.0), ("NVIDIA L40S", "bf16", 362.0), ("NVIDIA L4", "bf16", 121.0),
    ("NVIDIA H100 80GB HBM3", "fp32", None), ("Some Future GPU", "bf16", None),
])
def test_peak_tflops(monkeypatch, name, precision, peak):
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)
    assert peak_tflops(torch.device("cuda"), precision) == peak
    assert peak_tflops(torch.device("cpu"), precision) is None


def test_benchmark_sorts_sizes_and_reports_each(tiny, monkeypatch):
    seen = []
    monkeypatch.setattr(benchmark, "measure", lambda model, size, mode, **kw: (size, mode))
    results = benchmark.benchmark(tiny, [128, 64], ("sparse", "dense"), on_result=seen.append)
    assert results == seen == [(64, "sparse"), (64, "dense"), (128, "sparse"), (128, "dense")]


@pytest.mark.cuda
def test_measure_cuda(tiny):
    timing = measure(tiny, 128, "dense", runs=3, device="cuda", precision="bf16")
    assert timing.peak_memory_mb > 0 and timing.achieved_tflops > 0


def test_cli_json(run_sscn, tiny_weights):
    result = run_sscn("bench", "--device", "cpu", "--weights", tiny_weights, "--sizes", "64", "--runs", "1",
                      "--warmup", "0", "--threads", "1", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["config"] == "tiny" and report["weights"] == str(tiny_weights)
    default = resolve_precision("auto", torch.device("cpu"))
    assert report["precision"] == default and report["torch"] == torch.__version__ and report["date"]
    # a CPU with native bf16 shows fp32 beside it, each pair back to back
    assert report["precisions"] == (["fp32", "bf16"] if default == "bf16" else ["fp32"])
    assert report["device"].endswith("(1 thread)")
    assert [(row["size"], row["mode"], row["precision"]) for row in report["network"]] == [
        (64, mode, precision) for mode in ("sparse", "dense") for precision in report["precisions"]]
    assert all(row["ms_per_image"] > 0 and row["gflops_per_image"] > 0 for row in report["network"])
    assert "ms/image" in result.stderr and "sscn bench" in result.stderr     # the table, on stderr


def test_markdown_tables():
    from sscn.cli.bench_tables import markdown

    row = {"size": 512, "mode": "sparse", "positions": 512, "ms_per_image": 1.234, "images_per_second": 810.4,
           "peak_memory_mb": 2048.4, "gflops_per_image": 24.23, "achieved_tflops": 19.6, "peak_fraction": 0.0198,
           "compile_seconds": 41.0, "error": None}
    report = {"config": "base", "weights": "shipped", "precision": "bf16", "compile": True, "batch_size": 64,
              "runs": 10, "device": "NVIDIA H100 80GB HBM3", "torch": "2.11.0", "date": "2026-11-22T00:00:00+00:00",
              "network": [row, {**row, "mode": "dense", "error": "out of memory"}],
              "end_to_end": [{"source": "photos", "kind": "folder", "files": 2048, "images": 2048, "size": 256,
                              "seconds": 2.5, "images_per_second": 1010.0}]}
    lines = markdown(report).splitlines()
    assert lines[0] == ("sscn bench: base (shipped), bf16, compiled, batch 64, median of 10 runs; NVIDIA H100 80GB "
                        "HBM3, torch 2.11.0, 2026-11-22T00:00:00+00:00; memory: CUDA max allocated, CPU peak RSS of "
                        "the process so far.")
    assert lines[2].startswith("| size | mode |") and lines[2].endswith("| of peak | compile s |")
    assert lines[3] == "|" + "|".join(["---"] * 10) + "|"
    assert lines[4] == "| 512² | sparse | 512 | 1.23 | 810.4 | 2048 | 24.23 | 19.600 | 2.0 % | 41.0 |"
    assert lines[5] == "| 512² | dense | 512 | out of memory |" + "  |" * 6
    assert lines[-1] == "| photos | folder | 2048 | 2048 | 256² | 2.50 | 1010.00 |"


def test_cli_random_weights_and_end_to_end(run_sscn, data_dir, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("flowers.jpg", "tomato.jpg"):
        (folder / name).write_bytes((data_dir / name).read_bytes())
    result = run_sscn("bench", "--device", "cpu", "--config", "tiny", "--sizes", "64", "--modes", "sparse",
                      "--runs", "1", "--warmup", "0", "--threads", "1", "--batch-size", "2",
                      "--folder", folder, "--video", data_dir / "tree-2s.mp4", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["weights"] == "random weights" and "random weights" in result.stderr
    precisions = report["precisions"]
    assert [(row["mode"], row["precision"]) for row in report["network"]] == [("sparse", p) for p in precisions]
    assert [(run["kind"], run["precision"]) for run in report["end_to_end"]] == [
        (kind, precision) for kind in ("folder", "video") for precision in precisions]
    for run in report["end_to_end"]:
        assert (run["files"], run["images"]) == ((2, 2) if run["kind"] == "folder" else (1, 30))
        assert run["images_per_second"] > 0 and run["seconds"] > 0
    assert sorted(p.name for p in folder.iterdir()) == ["flowers.jpg", "tomato.jpg"]    # nothing written there


@pytest.mark.parametrize("args, message", [
    (["--sizes", "100"], "--sizes '100': each size must be a multiple of 32 between 32 and 4096"),
    (["--config", "tiny", "--weights", "x.safetensors"], "give --weights or --config (random weights), not both"),
    (["--weights", "missing.safetensors"], "missing.safetensors: weights file not found"),
])
def test_cli_bad_input(run_sscn, tmp_path, args, message):
    result = run_sscn("bench", "--device", "cpu", *args, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == f"sscn: error: {message}"
    assert result.stdout == ""


@pytest.mark.parametrize("args, message", [
    (["--sizes", "a,b"], "expected comma-separated integers"),
    (["--sizes", ""], "each size must be a multiple of 32"),
    (["--modes", "fast"], "--modes 'fast': choose sparse, dense"),
    (["--runs", "0"], "--runs must be at least 1"),
    (["--batch-size", "0"], "--batch-size must be at least 1"),
    (["--threads", "0"], "--threads must be at least 1"),
    (["--precision", "fp8"], "unknown precision 'fp8'"),
    (["--device", "tpu"], "unknown device 'tpu'"),
    (["--config", "huge"], "unknown config 'huge'"),
    (["--config", "tiny", "--folder", "no-such-folder"], "no-such-folder: no such folder"),
    (["--compile", "--warmup", "0"], "--compile needs --warmup 1 or more: the first run compiles (got 0)"),
    (["--json", "--markdown"], "give --json or --markdown, not both"),
])
def test_cli_bad_options(args, message):
    """The same checks, in-process (fast); the subprocess tests above cover the real console script."""
    from typer.testing import CliRunner

    from sscn.cli.app import app

    result = CliRunner().invoke(app, ["bench", "--device", "cpu", *args])
    assert result.exit_code == 2
    assert "sscn: error: " in result.output and message in result.output


def test_markdown_shows_fp32_beside_the_default():
    from sscn.cli.bench_tables import markdown

    row = {"size": 256, "mode": "sparse", "positions": 512, "ms_per_image": 90.0, "images_per_second": 11.1,
           "peak_memory_mb": 600.0, "gflops_per_image": 10.0, "achieved_tflops": 0.1, "peak_fraction": None,
           "compile_seconds": None, "error": None, "precision": "fp32"}
    report = {"config": "base", "weights": "shipped", "precision": "bf16", "precisions": ["fp32", "bf16"],
              "compile": False, "batch_size": 1, "runs": 3, "device": "AMD EPYC (2 threads)", "torch": "2.14.1",
              "date": "2026-12-02T00:00:00+00:00",
              "network": [row, {**row, "precision": "bf16", "ms_per_image": 30.0}], "end_to_end": []}
    lines = markdown(report).splitlines()
    assert "fp32 and bf16" in lines[0]
    assert lines[2].startswith("| size | mode | precision |") and lines[2].endswith("| of peak | × fp32 |")
    assert lines[4].startswith("| 256² | sparse | fp32 | 512 | 90.00 |") and lines[4].endswith("| 1.00× |")
    assert lines[5].endswith("| 3.00× |")
