"""The explicit reference handle (`Colorizer.encode_reference*` -> `Reference`): one encoding serves every
(k, r), dense and stage 1; per-row references; and `sscn evaluate` running the network exactly as `Colorizer`."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from sscn.images import read_image
from sscn.models import Colorizer
from sscn.train.evaluate_pairs import resize_short_side

SIZE = 64


@pytest.fixture(scope="module")
def photos(photo_paths) -> list[torch.Tensor]:
    return [read_image(path).pixels for path in photo_paths]


@pytest.fixture(scope="module")
def colorizer(tiny_weights) -> Colorizer:
    return Colorizer(weights=tiny_weights, device="cpu", size=SIZE, k=12, r=20, seed=4)


def _rgb(results) -> list[torch.Tensor]:
    return [result.rgb for result in results]


def test_explicit_reference_equals_the_default_one(tiny_weights, photos):
    engine = Colorizer(weights=tiny_weights, device="cpu", size=SIZE)
    explicit = _rgb(engine.colorize(photos[1:3], engine.encode_reference(photos[0])))
    engine.set_reference(photos[0])
    assert all(torch.equal(a, b) for a, b in zip(explicit, _rgb(engine.colorize(photos[1:3]))))


def test_one_encoding_serves_every_variant(tiny_weights, colorizer, photos, monkeypatch):
    """k / r / dense / stage1_only per call equal colorizers built with them; the encoder runs once."""
    calls = []
    original = colorizer.model.encode_reference
    monkeypatch.setattr(colorizer.model, "encode_reference", lambda *a, **kw: calls.append(1) or original(*a, **kw))
    reference = colorizer.encode_reference(photos[0])
    variants = {"sparse 8:8": dict(k=8, r=8), "dense": dict(dense=True), "default": {}}
    for name, overrides in variants.items():
        got = colorizer.colorize([photos[1]], reference, **overrides)[0].rgb
        built = Colorizer(weights=tiny_weights, device="cpu", size=SIZE, seed=4,
                          **{"k": 12, "r": 20, **overrides})
        built.set_reference(photos[0])
        assert torch.equal(got, built.colorize([photos[1]])[0].rgb), name
    [both] = colorizer.colorize([photos[1]], reference, stage1=True)
    [coarse] = colorizer.colorize([photos[1]], reference, stage1_only=True)
    assert torch.equal(coarse.rgb, both.rgb_stage1) and not torch.equal(coarse.rgb, both.rgb)
    assert len(calls) == 1
    assert reference.encoding(8, 8) is reference.encoding(8, 8)                  # cached per (k, r)
    assert colorizer.k == 12 and colorizer.dense is False                         # overrides are per call


def test_seed_per_reference(colorizer, photos):
    seeded = colorizer.encode_reference(photos[0], seed=9)
    assert torch.equal(colorizer.encoding(seeded).selected_idx,
                       colorizer.encoding(colorizer.encode_reference(photos[0], seed=9)).selected_idx)
    assert not torch.equal(colorizer.encoding(seeded).selected_idx,
                           colorizer.encoding(colorizer.encode_reference(photos[0])).selected_idx)


def test_reference_batch_row_i_for_target_i(colorizer, photos):
    """Rows of one batched encoding, each with its own seed, equal encoding and colorizing pair by pair.
    Random picks only (k = 0): the tiny random network's CAM is flat at its top, and which of the tied positions
    win the top k is decided by the last bit, which a batch of 2 and a batch of 1 need not share."""
    batch = colorizer.encode_reference_batch(photos[:2], [1, 2])
    assert len(batch) == 2
    together = colorizer.colorize(photos[2:4], batch, k=0, r=32)
    for index in range(2):
        alone = colorizer.encode_reference(photos[index], seed=index + 1)
        assert torch.equal(colorizer.encoding(batch, k=0, r=32).selected_idx[index],
                           colorizer.encoding(alone, k=0, r=32).selected_idx[0])
        [expected] = colorizer.colorize([photos[2 + index]], alone, k=0, r=32)
        torch.testing.assert_close(together[index].rgb, expected.rgb, atol=1, rtol=0)   # batched convs: ulps
    with pytest.raises(ValueError, match="2 references for 3 targets"):
        colorizer.colorize(photos[1:4], batch)
    with pytest.raises(ValueError, match="2 references with 1 seeds"):
        colorizer.encode_reference_batch(photos[:2], [1])


def test_pooled_references_equal_set_references(colorizer, photos):
    for budget in ("each", "shared"):
        pooled = colorizer.encode_references(photos[:2], budget)
        colorizer.set_references(photos[:2], budget)
        assert torch.equal(colorizer.colorize([photos[2]], pooled)[0].rgb, colorizer.colorize([photos[2]])[0].rgb)
    with pytest.raises(ValueError, match="unknown reference budget 'most'"):
        colorizer.encode_references(photos[:2], "most")


def test_bad_per_call_settings(colorizer, photos):
    reference = colorizer.encode_reference(photos[0])
    with pytest.raises(ValueError, match=r"k \+ r must be at least 1"):
        colorizer.colorize([photos[1]], reference, k=0, r=0)
    with pytest.raises(ValueError, match="unknown upsampling 'cubic'"):
        colorizer.colorize([photos[1]], reference, upsample="cubic")


def test_evaluate_pairs_cli_scores_colorizer_pixels(run_sscn, tiny_weights, data_dir, tmp_path):
    """`sscn evaluate --pairs` (the installed CLI) shows, on its contact sheet, exactly the pixels `Colorizer`
    gives for the same target, reference and seed, for sscn, dense and stage1; the JSON's per-pair PSNR is
    theirs."""
    from sscn.train.metrics import psnr

    (tmp_path / "pairs.csv").write_text("target,reference\ncampus1.jpg,campus2.jpg\n")
    methods = ["sscn", "dense", "stage1"]
    result = run_sscn("evaluate", "--pairs", tmp_path / "pairs.csv", "--root", data_dir, "--weights", tiny_weights,
                      "--size", SIZE, "--device", "cpu", "--methods", ",".join(methods),
                      "--json-out", tmp_path / "scores.json", "--sheet", tmp_path / "sheet.png")
    assert result.returncode == 0, result.stderr
    scores = {row["method"]: row["psnr"] for row in json.loads((tmp_path / "scores.json").read_text())["pairs"]}

    engine = Colorizer.from_pretrained(tiny_weights, device="cpu", size=SIZE, seed=0)
    reference = engine.encode_reference(data_dir / "campus2.jpg")               # a path: read as the CLI reads it
    target = resize_short_side(read_image(data_dir / "campus1.jpg").pixels, SIZE)   # (3, 64, 96) uint8, the truth
    variants = {"sscn": {}, "dense": {"dense": True}, "stage1": {"stage1_only": True}}
    height, width = target.shape[-2:]
    with Image.open(tmp_path / "sheet.png") as sheet:
        cells = np.asarray(sheet.convert("RGB"))[16 + 14:16 + 14 + height]     # header, caption, then the row
    for column, name in enumerate(methods, start=2):                              # gray | reference | methods
        [colorized] = engine.colorize([target], reference, **variants[name])
        shown = cells[:, column * width:(column + 1) * width]
        assert np.array_equal(shown, colorized.rgb.permute(1, 2, 0).numpy()), name
        assert psnr(colorized.rgb[None], target[None]).item() == pytest.approx(scores[name], abs=1e-5)
