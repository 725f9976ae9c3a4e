"""`sscn colorize` end to end: the installed command on real photos (tiny random weights, small working size)."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps
from skimage.color import rgb2lab

from sscn.cli.video import ffmpeg_exe


@pytest.fixture(scope="module")
def fast(tiny_weights) -> list[str]:
    return ["--weights", str(tiny_weights), "--size", "64"]


def lightness(rgb: np.ndarray) -> np.ndarray:
    """L* (H, W) of an (H, W, 3) uint8 or float [0, 1] image, by scikit-image."""
    return rgb2lab(rgb / 255.0 if rgb.dtype == np.uint8 else rgb)[..., 0]


def assert_same_lightness(source: np.ndarray, output_path: Path) -> None:
    output = np.asarray(Image.open(output_path).convert("RGB"))
    assert output.shape[:2] == source.shape[:2]
    difference = np.abs(lightness(output) - lightness(source))
    assert difference.mean() < 0.5 and np.percentile(difference, 99) < 1.5


def rgb_of(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))


@pytest.fixture
def photos(tmp_path, data_dir) -> Path:
    """A folder with copies of the bundled photos."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("campus1.jpg", "flowers.jpg"):
        shutil.copy(data_dir / name, folder / name)
    return folder


def test_help_has_examples(run_sscn):
    result = run_sscn("colorize", "--help")
    assert result.returncode == 0 and "Examples" in result.stdout and "--pairs" in result.stdout


def test_single_photo(run_sscn, photos, data_dir, fast):
    target = photos / "campus1.jpg"
    before = target.read_bytes()
    result = run_sscn("colorize", target, "--ref", data_dir / "campus2.jpg", *fast, "--json")
    assert result.returncode == 0, result.stderr
    output = photos / "campus1_color.png"
    assert_same_lightness(rgb_of(target), output)
    assert target.read_bytes() == before
    summary = json.loads(result.stdout)
    assert (summary["done"], summary["failed"], summary["images"]) == (1, 0, 1)
    assert summary["items"] == [{"input": str(target), "output": str(output), "status": "done"}]
    assert "wrote" in result.stderr
    assert not [p for p in photos.iterdir() if p.name.startswith(".")]      # no temporary files left


def test_folder_with_bad_files(run_sscn, photos, data_dir, fast, tmp_path):
    (photos / "empty.jpg").write_bytes(b"")
    (photos / "notes.jpg").write_text("not a photo\n")
    (photos / "cut.jpg").write_bytes((data_dir / "tomato.jpg").read_bytes()[:4000])
    out = tmp_path / "out"
    result = run_sscn("colorize", photos, "--ref", data_dir / "campus2.jpg", "-o", out, *fast)
    assert result.returncode == 1
    assert f"{photos / 'empty.jpg'}: empty file (0 bytes)" in result.stderr
    assert f"{photos / 'notes.jpg'}: not an image" in result.stderr
    assert f"{photos / 'cut.jpg'}: corrupt or truncated image" in result.stderr
    assert "2 done, 0 skipped, 3 failed" in result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["campus1.png", "flowers.png"]


def test_rerun_skips_existing_outputs(run_sscn, photos, data_dir, fast, tmp_path):
    out = tmp_path / "out"
    args = ("colorize", photos, "--ref", data_dir / "campus2.jpg", "-o", out, *fast)
    assert run_sscn(*args).returncode == 0
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    again = run_sscn(*args)
    assert again.returncode == 0 and "0 done, 2 skipped, 0 failed" in again.stderr
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == stamps
    redo = run_sscn(*args, "--overwrite")
    assert redo.returncode == 0 and "2 done, 0 skipped" in redo.stderr


def test_unusual_image_kinds(run_sscn, tmp_path, data_dir, fast):
    """RGBA, 16-bit grayscale, palette-mode, EXIF-rotated and plain grayscale inputs all work."""
    photo = rgb_of(data_dir / "flowers.jpg")
    folder = tmp_path / "kinds"
    folder.mkdir()
    alpha = np.tile(np.linspace(0, 255, photo.shape[1]).astype(np.uint8), (photo.shape[0], 1))
    Image.fromarray(np.dstack([photo, alpha]), "RGBA").save(folder / "rgba.png")
    gray16 = (np.linspace(0, 1, photo.shape[1])[None] * np.ones((photo.shape[0], 1)) * 65535).astype(np.uint16)
    Image.fromarray(gray16).save(folder / "deep.png")
    Image.fromarray(photo).quantize(128).save(folder / "indexed.png")
    exif = Image.Exif()
    exif[0x0112] = 8     # rotate 90 CCW to display
    Image.fromarray(photo).save(folder / "rotated.jpg", exif=exif, quality=95)
    Image.fromarray(photo).convert("L").save(folder / "gray.png")
    out = tmp_path / "out"
    result = run_sscn("colorize", folder, "--ref", data_dir / "campus2.jpg", "-o", out, *fast)
    assert result.returncode == 0, result.stderr
    assert "5 done" in result.stderr
    for name in ("rgba.png", "indexed.png", "rotated.jpg", "gray.png"):
        assert_same_lightness(rgb_of(folder / name), out / f"{Path(name).stem}.png")
    assert Image.open(out / "rotated.png").size == (photo.shape[0], photo.shape[1])
    assert np.array_equal(np.asarray(Image.open(out / "rgba.png"))[..., 3], alpha)
    deep = np.asarray(Image.open(out / "deep.png").convert("RGB"))
    gray_float = np.repeat((gray16 / 65535.0)[..., None], 3, axis=2)     # the 16-bit values, unrounded
    assert np.abs(lightness(deep) - lightness(gray_float)).mean() < 0.5


def test_frames_folder(run_sscn, tmp_path, data_dir, fast):
    frames = tmp_path / "frames"
    frames.mkdir()
    subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-i", str(data_dir / "tree-2s.mp4"), "-vf", "fps=15",
                    "-frames:v", "12", str(frames / "%d.png")], check=True)
    result = run_sscn("colorize", frames, "--ref", data_dir / "campus2.jpg", "-o", tmp_path / "out", *fast)
    assert result.returncode == 0, result.stderr
    assert "12 done" in result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in frames.iterdir())


def test_pairs(run_sscn, photos, data_dir, fast, tmp_path):
    shutil.copy(data_dir / "campus2.jpg", photos / "ref_a.jpg")
    shutil.copy(data_dir / "tomato.jpg", photos / "ref_b.jpg")
    pairs = photos / "jobs.csv"
    pairs.write_text("target,reference,output\ncampus1.jpg,ref_a.jpg,\nflowers.jpg,ref_b.jpg,special.jpg\n"
                     "ref_b.jpg,ref_a.jpg\n")
    result = run_sscn("colorize", "--pairs", pairs, "-o", tmp_path / "out", *fast, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["done"] == 3
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["campus1.png", "ref_b.png", "special.jpg"]
    assert_same_lightness(rgb_of(photos / "flowers.jpg"), tmp_path / "out" / "special.jpg")


def test_stdin_targets(run_sscn, photos, data_dir, fast, tmp_path):
    (photos / "sub").mkdir()
    shutil.copy(data_dir / "tomato.jpg", photos / "sub" / "tomato.jpg")
    listing = f"{photos / 'campus1.jpg'}\n\n{photos / 'sub' / 'tomato.jpg'}\n"
    result = run_sscn("colorize", "-", "--ref", data_dir / "campus2.jpg", "-o", tmp_path / "out", *fast,
                      input=listing)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "campus1.png").is_file() and (tmp_path / "out" / "sub" / "tomato.png").is_file()


def test_refuses_to_overwrite_an_input(run_sscn, tmp_path, data_dir, fast):
    folder = tmp_path / "pngs"
    folder.mkdir()
    Image.open(data_dir / "campus1.jpg").save(folder / "campus1.png")
    before = (folder / "campus1.png").read_bytes()
    result = run_sscn("colorize", folder, "--ref", data_dir / "campus2.jpg", "-o", folder, *fast)
    assert result.returncode == 2
    assert f"{folder / 'campus1.png'}: output path is an input" in result.stderr
    assert (folder / "campus1.png").read_bytes() == before


def bad_weights(tmp_path: Path) -> Path:
    path = tmp_path / "garbage.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    return path


@pytest.mark.parametrize("case", ["zero-byte", "text", "bad-reference", "missing-weights", "corrupt-weights",
                                  "k-out-of-range"])
def test_bad_input(run_sscn, tmp_path, data_dir, tiny_weights, case):
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "notes.jpg").write_text("not a photo\n")
    photo, ref = data_dir / "campus1.jpg", data_dir / "campus2.jpg"
    weights = ["--weights", tiny_weights, "--size", "64"]
    args, message = {
        "zero-byte": ([tmp_path / "empty.jpg", "--ref", ref, *weights], "empty.jpg: empty file (0 bytes)"),
        "text": ([tmp_path / "notes.jpg", "--ref", ref, *weights], "notes.jpg: not an image"),
        "bad-reference": ([photo, "--ref", tmp_path / "notes.jpg", *weights], "reference "
                          f"{tmp_path / 'notes.jpg'}: not an image"),
        "missing-weights": ([photo, "--ref", ref, "--weights", tmp_path / "missing.safetensors"],
                            "missing.safetensors: weights file not found"),
        "corrupt-weights": ([photo, "--ref", ref, "--weights", bad_weights(tmp_path)],
                            "garbage.safetensors: not a readable safetensors file"),
        "k-out-of-range": ([photo, "--ref", ref, *weights, "--k", "-1"], "--k must be >= 0 (got -1)"),
    }[case]
    result = run_sscn("colorize", *args, "-o", tmp_path / "out.png")
    assert result.returncode == 2
    assert result.stderr.startswith("sscn: error: ") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "out.png").exists()


@pytest.mark.cuda
@pytest.mark.parametrize("precision", ["bf16", "fp16", "fp32"])
def test_cuda(run_sscn, photos, data_dir, fast, tmp_path, precision):
    result = run_sscn("colorize", photos, "--ref", data_dir / "campus2.jpg", "-o", tmp_path / "out", *fast,
                      "--device", "cuda", "--precision", precision)
    assert result.returncode == 0, result.stderr
    assert_same_lightness(rgb_of(photos / "campus1.jpg"), tmp_path / "out" / "campus1.png")


def test_compile(run_sscn, photos, data_dir, fast, tmp_path):
    """--compile over a folder whose last batch is short: the same pictures as without it."""
    shutil.copy(data_dir / "tomato.jpg", photos / "tomato.jpg")
    args = ("colorize", photos, "--ref", data_dir / "campus2.jpg", *fast, "--batch-size", "2")
    assert run_sscn(*args, "-o", tmp_path / "eager").returncode == 0
    result = run_sscn(*args, "-o", tmp_path / "compiled", "--compile")
    assert result.returncode == 0, result.stderr
    assert "3 done, 0 skipped, 0 failed" in result.stderr and "CUDA" not in result.stderr
    for name in ("campus1.png", "flowers.png", "tomato.png"):
        compiled, eager = rgb_of(tmp_path / "compiled" / name), rgb_of(tmp_path / "eager" / name)
        assert np.abs(compiled.astype(int) - eager.astype(int)).max() <= 2


def test_compile_failure_is_one_line(photos, data_dir, fast, tmp_path, monkeypatch):
    import torch
    from typer.testing import CliRunner

    from sscn.cli.app import app

    def broken(model, **options):
        def forward(*args):
            raise RuntimeError("C++ compiler not found")
        return forward

    monkeypatch.setattr(torch, "compile", broken)
    result = CliRunner().invoke(app, ["colorize", str(photos), "--ref", str(data_dir / "campus2.jpg"), *fast,
                                      "-o", str(tmp_path / "out"), "--compile", "--quiet"])
    assert result.exit_code == 2
    assert result.stderr.strip() == ("sscn: error: torch.compile failed (RuntimeError: C++ compiler not found); "
                                     "run without --compile")
