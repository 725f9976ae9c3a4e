"""`sscn palette` end to end: the installed command on real photos (tiny random weights, small working size)."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image
from skimage.color import rgb2lab


@pytest.fixture(scope="module")
def fast(tiny_weights) -> list[str]:
    return ["--weights", str(tiny_weights), "--size", "64"]


def assert_same_lightness(source_path, output_path) -> None:
    source = np.asarray(Image.open(source_path).convert("RGB")) / 255.0
    output = np.asarray(Image.open(output_path).convert("RGB")) / 255.0
    assert output.shape == source.shape
    assert np.abs(rgb2lab(output)[..., 0] - rgb2lab(source)[..., 0]).mean() < 0.5


def test_help_has_examples(run_sscn):
    result = run_sscn("palette", "--help")
    assert result.returncode == 0 and "Examples" in result.stdout and "--save-reference" in result.stdout


def test_hex_colours_with_shares(run_sscn, tmp_path, data_dir, fast):
    target = tmp_path / "campus1.jpg"
    shutil.copy(data_dir / "campus1.jpg", target)
    result = run_sscn("palette", target, "--colors", "#e63946,#f1faee,#a8dadc", "--shares", "0.5,0.3,0.2",
                      "--save-reference", tmp_path / "swatch.png", *fast, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["done"] == 1
    assert_same_lightness(target, tmp_path / "campus1_color.png")
    swatch = np.asarray(Image.open(tmp_path / "swatch.png"))
    assert swatch.shape == (64, 64, 3)
    assert swatch[0, 0].tolist() == [230, 57, 70] and swatch[0, -1].tolist() == [168, 218, 220]
    assert swatch[0, 31].tolist() == [230, 57, 70] and swatch[0, 33].tolist() == [241, 250, 238]   # 50 % red


def test_gpl_palette_on_folder(run_sscn, tmp_path, data_dir, fast):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("flowers.jpg", "tomato.jpg"):
        shutil.copy(data_dir / name, folder / name)
    gpl = tmp_path / "sunset.gpl"
    gpl.write_text("GIMP Palette\nName: sunset\nColumns: 2\n#\n255 94 77\tcoral\n 32  48 96\tnavy\n")
    result = run_sscn("palette", folder, "--palette", gpl, "-o", tmp_path / "out", *fast)
    assert result.returncode == 0, result.stderr
    assert "2 done, 0 skipped, 0 failed" in result.stderr
    for name in ("flowers", "tomato"):
        assert_same_lightness(folder / f"{name}.jpg", tmp_path / "out" / f"{name}.png")


def test_image_palette_reference_only(run_sscn, tmp_path, data_dir):
    """--save-reference without targets builds the swatch and loads no model."""
    result = run_sscn("palette", "--palette", data_dir / "tomato.jpg", "--count", "4",
                      "--save-reference", tmp_path / "swatch.png", "--weights", tmp_path / "absent.safetensors")
    assert result.returncode == 0, result.stderr
    swatch = np.asarray(Image.open(tmp_path / "swatch.png"))
    assert swatch.shape == (256, 256, 3) and len(np.unique(swatch[0], axis=0)) == 4


@pytest.mark.parametrize("args, message", [
    (["--colors", "#e63946,#12345"], "malformed colour '#12345'"),
    (["--colors", "#e63946,#f1faee", "--shares", "1,2,3"], "3 weights for 2 colours"),
    (["--colors", "#e63946", "--palette", "x.gpl"], "exactly one of --colors and --palette"),
    (["--palette", "absent.gpl"], "absent.gpl: palette file not found"),
])
def test_bad_palette(run_sscn, data_dir, tmp_path, args, message):
    result = run_sscn("palette", data_dir / "campus1.jpg", *args, "-o", tmp_path / "out.png", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("sscn: error: ") and message in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "out.png").exists()
