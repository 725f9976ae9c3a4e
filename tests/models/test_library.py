"""Reference library with automatic match: models.library.ReferenceIndex and `sscn colorize --ref-dir`."""
from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from sscn.models import Colorizer
from sscn.models.library import DESCRIPTORS, ReferenceIndex


def _read(path) -> torch.Tensor:
    """A photo as (3, H, W) uint8."""
    return torch.from_numpy(np.array(Image.open(path).convert("RGB"))).permute(2, 0, 1)


@pytest.fixture(scope="module")
def colorizer(tiny_weights) -> Colorizer:
    return Colorizer(weights=tiny_weights, device="cpu", size=64)


@pytest.fixture
def library(tmp_path, data_dir):
    folder = tmp_path / "library"
    folder.mkdir()
    for name in ("campus1.jpg", "flowers.jpg", "tomato.jpg"):
        shutil.copy(data_dir / name, folder / name)
    return folder


def _index(colorizer, folder, cache, descriptor="pooled") -> ReferenceIndex:
    return ReferenceIndex(colorizer, sorted(folder.glob("*.jpg")), _read, descriptor, cache_dir=cache)


@pytest.mark.parametrize("descriptor", DESCRIPTORS)
def test_a_library_photo_matches_itself_best(colorizer, library, tmp_path, descriptor):
    index = _index(colorizer, library, tmp_path / "cache", descriptor)
    best = index.match(_read(library / "flowers.jpg"), count=3)
    assert best[0].path.name == "flowers.jpg" and best[0].similarity == pytest.approx(1.0, abs=1e-3)
    assert [m.similarity for m in best] == sorted((m.similarity for m in best), reverse=True)
    others = index.match(_read(library / "flowers.jpg"), count=3, exclude=[library / "flowers.jpg"])
    assert len(others) == 2 and all(match.path.name != "flowers.jpg" for match in others)


def test_cache_reused_and_invalidated_on_change(colorizer, library, tmp_path, data_dir):
    cache = tmp_path / "cache"
    first = _index(colorizer, library, cache)
    assert (first.described, first.reused) == (3, 0) and first.cache_path.is_file()
    assert first.cache_path.parent == cache and not list(library.glob(".*"))     # the library is untouched
    again = _index(colorizer, library, cache)
    assert (again.described, again.reused) == (0, 3) and torch.equal(again.descriptors, first.descriptors)
    changed = library / "tomato.jpg"
    shutil.copy(data_dir / "campus2.jpg", changed)                   # same name, new content (size, mtime)
    stat = changed.stat()
    os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    after = _index(colorizer, library, cache)
    assert (after.described, after.reused) == (1, 2)
    assert not torch.equal(after.descriptors[2], first.descriptors[2])
    assert (_index(colorizer, library, cache).reused) == 3


def test_cli_ref_dir_records_choice(run_sscn, tmp_path, library, data_dir, tiny_weights, monkeypatch):
    monkeypatch.setenv("SSCN_CACHE_DIR", str(tmp_path / "cache"))
    target = tmp_path / "campus2.jpg"
    shutil.copy(data_dir / "campus2.jpg", target)
    result = run_sscn("colorize", target, "--ref-dir", library, "--ref-count", "2", "--weights", tiny_weights,
                      "--size", "64", "--json", "-o", tmp_path / "out.png")
    assert result.returncode == 0, result.stderr
    [item] = json.loads(result.stdout)["items"]
    assert item["status"] == "done" and len(item["reference"]) == 2 and len(item["similarity"]) == 2
    assert all(os.path.dirname(path) == str(library) for path in item["reference"])
    assert list((tmp_path / "cache").glob("*.safetensors"))


def test_cli_empty_ref_dir_is_one_line(run_sscn, tmp_path, data_dir, tiny_weights):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no photos here")
    result = run_sscn("colorize", data_dir / "campus1.jpg", "--ref-dir", empty, "--weights", tiny_weights,
                      "-o", tmp_path / "out.png")
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert str(empty) in result.stderr and "no reference images" in result.stderr
    assert not (tmp_path / "out.png").exists()


def test_cli_pairs_row_names_a_library(run_sscn, tmp_path, library, data_dir, tiny_weights, monkeypatch):
    monkeypatch.setenv("SSCN_CACHE_DIR", str(tmp_path / "cache"))
    shutil.copy(data_dir / "campus2.jpg", tmp_path / "campus2.jpg")
    shutil.copy(data_dir / "campus1.jpg", tmp_path / "campus1.jpg")
    (tmp_path / "jobs.csv").write_text("target,reference\ncampus2.jpg,library\ncampus1.jpg,library/flowers.jpg\n")
    result = run_sscn("colorize", "--pairs", tmp_path / "jobs.csv", "-o", tmp_path / "out", "--weights",
                      tiny_weights, "--size", "64", "--json")
    assert result.returncode == 0, result.stderr
    items = {os.path.basename(item["input"]): item for item in json.loads(result.stdout)["items"]}
    assert "reference" in items["campus2.jpg"] and "reference" not in items["campus1.jpg"]
