"""Several references at once: pooled attention sets (models.references) and `sscn colorize --ref a --ref b`."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from sscn.models import Colorizer
from sscn.models.references import BUDGETS, pool_encodings


def _read(path) -> torch.Tensor:
    """A photo as (3, H, W) uint8."""
    return torch.from_numpy(np.array(Image.open(path).convert("RGB"))).permute(2, 0, 1)


@pytest.fixture(scope="module")
def photos(photo_paths) -> list[torch.Tensor]:
    return [_read(path) for path in photo_paths]


@pytest.fixture(scope="module")
def colorizer(tiny_weights) -> Colorizer:
    return Colorizer(weights=tiny_weights, device="cpu", size=64, k=16, r=8, seed=3)


@pytest.mark.parametrize("budget", BUDGETS)
def test_one_reference_pooled_equals_single(colorizer, photos, budget):
    single = colorizer.encoding(colorizer.set_reference(photos[0]))
    [expected] = colorizer.colorize([photos[1]])
    pooled = colorizer.encoding(colorizer.set_references([photos[0]], budget))
    for name in ("style", "keys", "values", "selected_idx", "cam", "logits"):
        assert torch.equal(getattr(pooled, name), getattr(single, name)), name
    [result] = colorizer.colorize([photos[1]])
    assert torch.equal(result.rgb, expected.rgb)


def test_each_budget_pools_every_selection(colorizer, photos):
    singles = [colorizer.encoding(colorizer.set_reference(photo)) for photo in photos[:2]]
    pooled = colorizer.encoding(colorizer.set_references(photos[:2], "each"))
    assert pooled.keys.shape[1] == 2 * (16 + 8)
    assert torch.equal(pooled.keys[:, :24], singles[0].keys)          # the first reference's own selection
    assert pooled.num_positions == 2 * singles[0].num_positions
    assert torch.equal(pooled.style, (singles[0].style + singles[1].style) / 2)
    assert int(pooled.selected_idx[0, 24:].min()) >= singles[0].num_positions   # second one's regions


def test_shared_budget_spends_k_plus_r_over_all(colorizer, photos):
    pooled = colorizer.encoding(colorizer.set_references(photos[:3], "shared"))
    assert pooled.keys.shape[1] == 16 + 8 and pooled.selected_idx.unique().numel() == 24
    assert pooled.num_positions == 3 * (64 // 4) ** 2 and int(pooled.selected_idx.max()) < pooled.num_positions


@pytest.mark.parametrize("budget", BUDGETS)
def test_several_references_deterministic(colorizer, photos, budget):
    colorizer.set_references(photos[:2], budget)
    [first] = colorizer.colorize([photos[2]])
    colorizer.set_references(photos[:2], budget)
    [again] = colorizer.colorize([photos[2]])
    assert torch.equal(first.rgb, again.rgb)


def test_dense_pooling_keeps_every_position(tiny_weights, photos):
    dense = Colorizer(weights=tiny_weights, device="cpu", size=64, dense=True)
    pooled = dense.encoding(dense.set_references(photos[:2]))
    assert pooled.selected_idx is None and pooled.keys.shape[1] == pooled.num_positions


def test_pool_rejects_nothing():
    with pytest.raises(ValueError, match="no references"):
        pool_encodings([])


def test_cli_several_references(run_sscn, tmp_path, data_dir, tiny_weights):
    target = tmp_path / "campus1.jpg"
    target.write_bytes((data_dir / "campus1.jpg").read_bytes())
    result = run_sscn("colorize", target, "--ref", data_dir / "campus2.jpg", "--ref", data_dir / "flowers.jpg",
                      "--weights", tiny_weights, "--size", "64", "--json", "-o", tmp_path / "out.png")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["done"] == 1 and (tmp_path / "out.png").is_file()
    bad = run_sscn("colorize", target, "--ref", data_dir / "campus2.jpg", "--ref-budget", "most",
                   "--weights", tiny_weights, "-o", tmp_path / "other.png")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--ref-budget" in bad.stderr
