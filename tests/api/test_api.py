"""The front door for library users: `sscn.colorize`, `Colorizer.from_pretrained`, inputs of any kind (PIL,
numpy, tensors, paths) with results in the input's own type, clear errors, and the README's example as
written."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import sscn
from sscn.images import as_pixels, read_image

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
SIZE = 64


@pytest.fixture(scope="module")
def engine(tiny_weights) -> sscn.Colorizer:
    return sscn.Colorizer.from_pretrained(tiny_weights, device="cpu", size=SIZE)


@pytest.fixture(scope="module")
def reference(engine, data_dir) -> sscn.Reference:
    return engine.encode_reference(Image.open(data_dir / "campus2.jpg"))


@pytest.fixture(scope="module")
def expected(engine, reference, data_dir) -> torch.Tensor:
    """campus1 colorized from its decoded (3, H, W) uint8 tensor: what every other input kind must give."""
    [result] = engine.colorize([read_image(data_dir / "campus1.jpg").pixels], reference)
    return result.rgb


def _inputs(data_dir) -> dict:
    path = data_dir / "campus1.jpg"
    pil = Image.open(path).convert("RGB")
    array = np.asarray(pil)
    return {"PIL": pil, "path": path, "str": str(path), "uint8 array": array,
            "float array": array.astype(np.float32) / np.float32(255.0),
            "RGBA array": np.dstack([array, np.full_like(array[..., 0], 7)]),      # alpha ignored
            "tensor": torch.from_numpy(array.copy()).permute(2, 0, 1)}


@pytest.mark.parametrize("kind", ["PIL", "path", "str", "uint8 array", "float array", "RGBA array", "tensor"])
def test_every_input_kind_gives_the_same_pixels_in_its_own_type(engine, reference, expected, data_dir, kind):
    target = _inputs(data_dir)[kind]
    [result] = engine.colorize([target], reference, stage1=True)
    if kind in ("PIL", "path", "str"):
        assert isinstance(result.rgb, Image.Image) and result.rgb.mode == "RGB"
        pixels = np.asarray(result.rgb)
    elif kind.endswith("array"):
        assert isinstance(result.rgb, np.ndarray) and result.rgb.dtype == np.uint8 and result.rgb.shape[-1] == 3
        pixels = result.rgb
    else:
        assert isinstance(result.rgb, torch.Tensor) and result.rgb.shape[0] == 3
        pixels = result.rgb.permute(1, 2, 0).numpy()
    assert type(result.rgb_stage1) is type(result.rgb)
    if kind == "float array":   # L from float RGB, not uint8's float64 tables (1e-5 apart): a level at most
        difference = np.abs(pixels.astype(int) - expected.permute(1, 2, 0).numpy())
        assert difference.max() <= 1 and (difference == 0).mean() > 0.99
    else:
        assert np.array_equal(pixels, expected.permute(1, 2, 0).numpy())


def test_gray_and_sixteen_bit_arrays(engine, reference, data_dir):
    gray = np.asarray(Image.open(data_dir / "campus1.jpg").convert("L"))
    from_gray, from_deep, from_plane = (engine.colorize([image], reference)[0].rgb for image in
                                        (gray, gray.astype(np.uint16) * 257, gray[:, :, None]))   # 16-bit: same levels
    assert from_gray.shape == (*gray.shape, 3) and np.array_equal(from_gray, from_plane)
    assert np.abs(from_gray.astype(int) - from_deep).max() <= 1                  # float L: rounding at most


@pytest.mark.parametrize("image, error, message", [
    (np.zeros((8, 8, 2), np.uint8), ValueError, r"target 0: expected an array of shape \(H, W\) or \(H, W, 1\|3\|4\)"),
    (np.zeros((8, 8), np.int64), ValueError, "target 0: unsupported array dtype int64"),
    (np.full((8, 8), 255.0), ValueError, r"target 0: float arrays must hold values in \[0, 1\]"),
    (np.zeros((0, 8, 3), np.uint8), ValueError, "target 0: the array has no pixels"),
    (torch.zeros(2, 8, 8, dtype=torch.uint8), ValueError, r"target 0: expected an image tensor of shape \(1\|3, H"),
    (Image.new("F", (8, 8)), ValueError, "target 0: unsupported image mode F"),
    ([[0, 1], [2, 3]], TypeError, "target 0: expected a PIL image, a numpy array, a torch tensor or a path, got list"),
])
def test_bad_inputs_are_named(engine, reference, image, error, message):
    with pytest.raises(error, match=message):
        engine.colorize([image], reference)


def test_unreadable_files_are_image_errors(engine, tmp_path):
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(sscn.ImageError, match="broken.jpg: not an image"):
        engine.encode_reference(tmp_path / "broken.jpg")
    with pytest.raises(sscn.ImageError, match="missing.png: no such file"):
        as_pixels(tmp_path / "missing.png")


def test_one_call_helper_keeps_its_colorizer(tiny_weights, data_dir, expected):
    from sscn import quick

    options = dict(weights=tiny_weights, device="cpu", size=SIZE)
    first = sscn.colorize(Image.open(data_dir / "campus1.jpg"), data_dir / "campus2.jpg", **options)
    assert isinstance(first, Image.Image) and np.array_equal(np.asarray(first), expected.permute(1, 2, 0).numpy())
    hits = quick._colorizer.cache_info().hits
    again = sscn.colorize(np.asarray(first), Image.open(data_dir / "campus2.jpg"), **options)
    assert quick._colorizer.cache_info().hits == hits + 1 and again.shape == (*first.size[::-1], 3)


def test_public_names():
    assert {"Colorizer", "Reference", "colorize", "ImageError", "read_image"} <= set(sscn.__all__)
    assert sscn.Colorizer is sscn.models.Colorizer and sscn.Reference is sscn.models.Reference


def test_readme_python_api_runs_as_written():
    """Every python block of the README's "Python API" section, run from the repository root (shipped weights)."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Python API"):]
    section = section[:section.index("\n## ", 1)]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert blocks and "sscn.colorize(" in blocks[0] and "Image.open(" in blocks[0]
    script = "\n".join(f"exec({block!r}, {{}})" for block in blocks)      # each block in a namespace of its own
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["RGB (288, 192)", "[(288, 192), (288, 192)] RGB"]


def test_one_import_name(tmp_path):
    """The installed project is `sscn` alone: its folders are sscn.models / sscn.train / sscn.cli / sscn.tools,
    and nothing named `models` or `train` is importable (run from an empty folder, as a user's script would)."""
    probe = ("import importlib.util, sscn; from sscn import Colorizer\n"
             "print([importlib.util.find_spec(name) is None for name in ('models', 'train', 'colorize_cli', 'tools')])\n"
             "import sscn.models, sscn.train, sscn.cli.app, sscn.tools.flops\n")
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[True, True, True, True]"


def test_command_line_starts_without_torch(tmp_path):
    """`sscn --help` and argument errors do not wait for torch (about 3 s): the command line's modules read their
    choices from `sscn.constants`, and `sscn` / `sscn.models` import their names on first use."""
    probe = ("import sys; import sscn.cli.app, sscn.models\n"
             "print(sorted(name for name in ('torch', 'numpy', 'sscn.images') if name in sys.modules))\n"
             "sscn.models.CONFIGS; print('torch' in sys.modules)\n"
             "sscn.Colorizer; sscn.images.read_image; print('torch' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["[]", "False", "True"]


@pytest.mark.parametrize("args, message", [
    (["colorize", "absent.jpg", "--ref", "{data}/campus2.jpg"], "absent.jpg: no such file"),
    (["colorize", "a.jpg", "b.png", "--ref", "{data}/campus2.jpg"], "none of the targets exist: a.jpg, b.png"),
    (["colorize", "{data}/campus1.jpg", "--ref", "absent.jpg"], "reference absent.jpg: no such file"),
    (["colorize", "{data}/campus1.jpg", "--ref", "{data}"], "reference {data}: is a folder, not an image"),
    (["colorize", "{data}/campus1.jpg", "--ref", "x.jpg@1:99"], "--ref x.jpg@1:99: bad time '1:99'"),
    (["palette", "absent.jpg", "--colors", "#264653,#e9c46a"], "absent.jpg: no such file"),
    (["evaluate", "absent"], "absent: no such file or folder"),
    (["evaluate", "{data}", "--seed", "-1"], "--seed must be between 0 and 2**64-1 (got -1)"),
])
def test_bad_paths_are_reported_before_torch_loads(tmp_path, args, message):
    """A mistyped target or reference fails in a fraction of a second: targets, outputs and reference files are
    checked before the model (and torch) is loaded."""
    args = [arg.format(data=DATA) for arg in args]
    probe = ("import atexit, sys\n"
             "atexit.register(lambda: print('torch' in sys.modules))\n"
             f"sys.argv = ['sscn', *{args!r}]\n"
             "from sscn.cli.app import app\n"
             "app()\n")
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert result.stderr.startswith(f"sscn: error: {message.format(data=DATA)}")
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stdout.strip() == "False"


def test_lazy_names_resolve_like_eager_imports():
    import sscn.models
    from sscn.models import colorizer, config

    assert all(getattr(sscn, name) is not None for name in sscn.__all__)
    assert set(sscn.__all__) <= set(dir(sscn)) and set(sscn.models.__all__) <= set(dir(sscn.models))
    assert sscn.Colorizer is colorizer.Colorizer and sscn.models.CONFIGS is config.CONFIGS
    with pytest.raises(AttributeError, match="module 'sscn' has no attribute 'nope'"):
        sscn.nope
    with pytest.raises(AttributeError, match="module 'sscn.models' has no attribute 'nope'"):
        sscn.models.nope
