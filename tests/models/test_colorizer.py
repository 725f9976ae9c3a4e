"""`Colorizer`, the inference engine: any input size, L kept, reference encoded once, seeded selection."""
from __future__ import annotations

import copy
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from sscn.models import Colorizer, load_checkpoint
from sscn.models import colorizer as colorizer_module
from sscn.models import merge, runtime
from sscn.models.color import denormalize_ab, lab_to_linear_rgb, lab_to_rgb_keep_lightness, out_of_gamut, rgb_to_lab
from sscn.models.upsample import upsample_ab


def _read(path) -> torch.Tensor:
    """A photo as (3, H, W) uint8."""
    return torch.from_numpy(np.array(Image.open(path).convert("RGB"))).permute(2, 0, 1)


def _lightness(rgb: torch.Tensor) -> torch.Tensor:
    """L (H, W) of a (3, H, W) uint8 or float [0, 1] image."""
    rgb = rgb.float() / 255.0 if rgb.dtype == torch.uint8 else rgb
    return rgb_to_lab(rgb)[0]


@pytest.fixture(scope="module")
def photos(photo_paths) -> list[torch.Tensor]:
    return [_read(path) for path in photo_paths]


@pytest.fixture
def colorizer(tiny_weights, photos) -> Colorizer:
    engine = Colorizer(weights=tiny_weights, device="cpu", size=128)
    engine.set_reference(photos[0])
    return engine


@pytest.fixture
def saturated(tiny_weights, photos) -> Colorizer:
    """A tiny model pushed to predict strong, often out-of-gamut colours, to exercise the gamut handling."""
    model = load_checkpoint(tiny_weights)
    with torch.no_grad():
        model.ldt.decoder.to_ab.bias += torch.tensor([0.8, -0.7])     # ab ~ (+88, -77) on top of the prediction
    engine = Colorizer(model=model, device="cpu", size=128)
    engine.set_reference(photos[0])
    return engine


@pytest.mark.parametrize("height, width", [(97, 131), (131, 97), (64, 64), (33, 500), (1, 1), (256, 320)])
def test_output_size_is_input_size(colorizer, height, width):
    gray = torch.randint(0, 256, (1, height, width), dtype=torch.uint8)
    [result] = colorizer.colorize([gray])
    assert result.rgb.shape == (3, height, width) and result.rgb.dtype == torch.uint8
    assert result.rgb.device.type == "cpu"
    assert result.rgb.permute(1, 2, 0).is_contiguous()          # channels-last: a free (H, W, 3) view to write


def test_batch_of_mixed_sizes_and_inputs(colorizer, photos):
    gray = photos[1].float().mean(dim=0, keepdim=True) / 255.0       # (1, H, W) float
    inputs = [photos[2], gray, photos[3][:, :50, :70]]
    results = colorizer.colorize(inputs, stage1=True)
    assert [r.rgb.shape[-2:] for r in results] == [i.shape[-2:] for i in inputs]
    assert all(r.rgb_stage1.shape == r.rgb.shape for r in results)
    [single] = colorizer.colorize([photos[2]])
    torch.testing.assert_close(results[0].rgb, single.rgb, atol=1, rtol=0)        # batched convs: ulps


@pytest.mark.parametrize("precision, tolerance", [("bf16", 0.6), ("fp16", 0.1)])
def test_autocast_close_to_fp32(tiny_weights, photos, precision, tolerance):
    """bf16 (bf16 weights, channels_last on the CPU) and fp16 autocast agree with fp32; mean error in uint8 levels."""
    results = {}
    for name in ("fp32", precision):
        engine = Colorizer(weights=tiny_weights, device="cpu", size=128, precision=name)
        engine.set_reference(photos[0])
        results[name] = engine.colorize(photos[1:])
    for full, reduced in zip(results["fp32"], results[precision]):
        assert (full.rgb.int() - reduced.rgb.int()).abs().float().mean() < tolerance


def test_batch_of_one_size_equals_one_by_one(colorizer, photos):
    crops = [photo[:, :96, :112] for photo in photos]                # one size: merged as one (G, 3, H, W) group
    together = colorizer.colorize(crops, stage1=True)
    for crop, result in zip(crops, together):
        [alone] = colorizer.colorize([crop], stage1=True)
        torch.testing.assert_close(result.rgb, alone.rgb, atol=1, rtol=0)             # batched convs: ulps
        torch.testing.assert_close(result.rgb_stage1, alone.rgb_stage1, atol=1, rtol=0)


@pytest.mark.parametrize("engine", ["colorizer", "saturated"])
def test_output_keeps_input_lightness(request, engine, photos):
    colorizer = request.getfixturevalue(engine)
    for photo in photos:
        [result] = colorizer.colorize([photo])
        lightness = _lightness(photo)
        assert (_lightness(result.rgb) - lightness).abs().max() < 0.5      # within uint8 rounding
    chroma = rgb_to_lab(result.rgb.float() / 255.0)[1:].norm(dim=0)
    if engine == "saturated":
        assert chroma.mean() > 20                                         # really coloured, not greyed out


def test_gray_and_colour_input_same_result(colorizer, photos):
    gray = torch.from_numpy(np.array(Image.fromarray(photos[1].permute(1, 2, 0).numpy()).convert("L")))[None]
    [from_gray] = colorizer.colorize([gray])
    [from_rgb] = colorizer.colorize([gray.expand(3, -1, -1)])
    torch.testing.assert_close(from_gray.rgb, from_rgb.rgb, atol=0, rtol=0)


def test_reference_encoded_once(colorizer, photos, monkeypatch):
    calls = []
    original = colorizer.model.encode_reference
    monkeypatch.setattr(colorizer.model, "encode_reference", lambda *a, **kw: calls.append(1) or original(*a, **kw))
    first = colorizer.colorize([photos[1]])[0].rgb
    second = colorizer.colorize([photos[1]])[0].rgb
    assert not calls
    torch.testing.assert_close(first, second, atol=0, rtol=0)


def test_cached_reference_equals_fresh_engine(tiny_weights, colorizer, photos):
    cached = [colorizer.colorize([photo])[0].rgb for photo in photos[1:]]
    for photo, expected in zip(photos[1:], cached):
        fresh = Colorizer(weights=tiny_weights, device="cpu", size=128)
        fresh.set_reference(photos[0])
        torch.testing.assert_close(fresh.colorize([photo])[0].rgb, expected, atol=0, rtol=0)


def test_seed(tiny_weights, photos):
    def run(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        engine = Colorizer(weights=tiny_weights, device="cpu", size=128, seed=seed)
        engine.set_reference(photos[0])
        return engine.encoding().selected_idx, engine.colorize([photos[1]])[0].rgb

    idx_a, rgb_a = run(0)
    idx_b, rgb_b = run(0)
    idx_c, rgb_c = run(1)
    assert torch.equal(idx_a, idx_b) and torch.equal(rgb_a, rgb_b)
    assert not torch.equal(idx_a, idx_c)


def test_dense_and_sparse(tiny_weights, photos):
    dense = Colorizer(weights=tiny_weights, device="cpu", size=128, dense=True)
    dense.set_reference(photos[0])
    assert dense.encoding().selected_idx is None and dense.encoding().keys.shape[1] == (128 // 4) ** 2
    sparse = Colorizer(weights=tiny_weights, device="cpu", size=128, k=10, r=20)
    sparse.set_reference(photos[0])
    assert sparse.encoding().selected_idx.shape == (1, 30)


@pytest.mark.parametrize("k, r, message", [(-1, 5, "k and r must be >= 0"), (0, 0, r"k \+ r must be at least 1")])
def test_invalid_k_r(tiny_weights, k, r, message):
    with pytest.raises(ValueError, match=message):
        Colorizer(weights=tiny_weights, device="cpu", k=k, r=r)


@pytest.mark.parametrize("options, message", [
    ({"size": 16}, "working size must be between 32 and 4096"),
    ({"precision": "fp8"}, "unknown precision 'fp8'"),
    ({"device": "tpu"}, "device 'tpu'"),
])
def test_invalid_options(tiny_weights, options, message):
    with pytest.raises(ValueError, match=message):
        Colorizer(weights=tiny_weights, **options)


def test_colorize_needs_a_reference(tiny_weights, photos):
    engine = Colorizer(weights=tiny_weights, device="cpu", size=64)
    with pytest.raises(RuntimeError, match="set a reference"):
        engine.colorize([photos[0]])
    engine.set_palette([(230, 57, 70), (29, 53, 87)], [2.0, 1.0])
    assert engine.colorize([]) == []


@pytest.mark.parametrize("shape, dtype", [((2, 8, 8), torch.uint8), ((3, 8), torch.uint8), ((3, 8, 8), torch.int64)])
def test_bad_image_tensors(colorizer, shape, dtype):
    with pytest.raises(ValueError, match="expected an image tensor|unsupported image dtype"):
        colorizer.colorize([torch.zeros(shape, dtype=dtype)])


def test_merge_in_row_bands_is_seamless(colorizer, photos, monkeypatch):
    [whole] = colorizer.colorize([photos[1]])
    monkeypatch.setitem(merge.MERGE_PIXELS, "cpu", 7 * photos[1].shape[-1])     # bands of 7 rows
    [banded] = colorizer.colorize([photos[1]])
    torch.testing.assert_close(banded.rgb, whole.rgb, atol=0, rtol=0)         # no seams


def test_merge_pulls_out_of_gamut_pixels_as_lab_to_rgb_keep_lightness(monkeypatch):
    # saturated ab: many pixels out of gamut, pulled in batches across bands of 3 rows (flushed every 3 rows' worth)
    generator = torch.Generator().manual_seed(0)
    lightness = torch.rand(1, 1, 40, 50, generator=generator) * 100
    l_work = torch.nn.functional.interpolate(lightness, size=(16, 16), mode="bilinear", antialias=True)
    ab_norm = torch.randn(1, 2, 16, 16, generator=generator) * 0.6
    lab = torch.cat([lightness, upsample_ab(denormalize_ab(ab_norm), l_work, lightness, "bilinear")], dim=1)
    assert out_of_gamut(lab_to_linear_rgb(lab)).float().mean() > 0.2
    monkeypatch.setitem(merge.MERGE_PIXELS, "cpu", 3 * 50)
    [rgb] = merge.merge([lightness], l_work, ab_norm, "bilinear")
    expected = merge.to_bytes(lab_to_rgb_keep_lightness(lab))[0]
    torch.testing.assert_close(rgb, expected, atol=0, rtol=0)


def test_palette_reference(tiny_weights, photos):
    engine = Colorizer(weights=tiny_weights, device="cpu", size=96)
    swatch = engine.set_palette([(230, 57, 70), (29, 53, 87)], [3.0, 1.0])
    assert swatch.shape == (3, 96, 96)
    [result] = engine.colorize([photos[0]])
    assert result.rgb.shape == photos[0].shape


def test_batched_keeps_order_and_the_short_tail():
    batches = list(colorizer_module.batched(iter(range(7)), 3))
    assert batches == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(colorizer_module.batched([], 3)) == []


def test_compiled_equals_eager_and_pads_short_batches(tiny_weights, photos):
    """torch.compile (inductor, the real thing): same colours; a short last batch reuses the first graph."""
    eager = Colorizer(weights=tiny_weights, device="cpu", size=64)
    compiled = Colorizer(weights=tiny_weights, device="cpu", size=64, compile=True)
    for engine in (eager, compiled):
        engine.set_reference(photos[0])
    for batch in (photos[1:4], photos[1:3]):
        for expected, result in zip(eager.colorize(batch), compiled.colorize(batch)):
            assert result.rgb.shape == expected.rgb.shape
            torch.testing.assert_close(result.rgb, expected.rgb, atol=2, rtol=0)   # fused kernels: ulps
    for engine in (eager, compiled):                    # a new reference is an input of the graph, not baked in
        engine.set_reference(photos[3])
    for expected, result in zip(eager.colorize(photos[:2]), compiled.colorize(photos[:2])):
        torch.testing.assert_close(result.rgb, expected.rgb, atol=2, rtol=0)
    assert compiled._compiled_batches == {3}


def test_compile_failure_is_one_error(tiny_weights, photos, monkeypatch):
    def broken(model, **options):
        def forward(*args):
            raise RuntimeError("C++ compiler not found\nlong details")
        return forward

    monkeypatch.setattr(torch, "compile", broken)
    engine = Colorizer(weights=tiny_weights, device="cpu", size=64, compile=True)
    engine.set_reference(photos[0])
    with pytest.raises(colorizer_module.CompileError,
                       match=r"torch.compile failed \(RuntimeError: C\+\+ compiler not found\); run without --compile"):
        engine.colorize([photos[1]])


@pytest.mark.cuda
def test_cuda_batch_waits_for_the_gpu_once(tiny_weights, photos):
    """Upload, network, gamut mapping, quantisation and download are queued; one wait, for the last copy."""
    import warnings

    engine = Colorizer(weights=tiny_weights, device="cuda", size=128, precision="fp32")
    engine.set_reference(photos[0])
    batch = [*photos[1:3], photos[1][:, :50, :70]]
    engine.colorize(batch, stage1=True)                     # warm-up: constants copied to the GPU once
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            results = engine.colorize(batch, stage1=True)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert len([w for w in caught if "synchroniz" in str(w.message)]) == 1
    on_cpu = Colorizer(weights=tiny_weights, device="cpu", size=128)
    on_cpu.set_reference(photos[0])
    for result, expected in zip(results, on_cpu.colorize(batch)):
        assert result.rgb.device.type == "cpu" and result.rgb.dtype == torch.uint8
        assert (result.rgb.int() - expected.rgb.int()).abs().float().mean() < 1.0


@pytest.mark.parametrize("precision, dtype", [("bf16", torch.bfloat16), ("fp32", torch.float32)])
def test_cpu_engine_is_a_channels_last_copy_converted_once(tiny_weights, precision, dtype):
    model = load_checkpoint(tiny_weights)
    engine = Colorizer(model=model, device="cpu", precision=precision, size=64)
    assert engine.model is not model
    conv = next(module for module in engine.model.modules() if isinstance(module, torch.nn.Conv2d))
    assert conv.weight.dtype == dtype and conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert (engine.input_dtype, engine.memory_format) == (dtype, torch.channels_last)
    first = next(module for module in model.modules() if isinstance(module, torch.nn.Conv2d))
    assert first.weight.dtype == torch.float32 and first.weight.is_contiguous()              # the caller's is kept
    # E's BatchNorms folded into the copy's convolutions, the caller's left as they were
    assert not any(isinstance(module, torch.nn.BatchNorm2d) for module in engine.model.modules())
    assert any(isinstance(module, torch.nn.BatchNorm2d) for module in model.modules())


def test_cpu_fp32_engine_matches_the_model_as_loaded(tiny_weights, photos):
    """The folded channels_last fp32 engine computes what the NCHW model with its BatchNorms computes."""
    model = load_checkpoint(tiny_weights).eval()
    engine = Colorizer(model=model, device="cpu", precision="fp32", size=64)
    reference = engine._reference_rgb(photos[1])
    lightness = torch.rand(2, 1, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.inference_mode():
        expected = model(lightness, reference.contiguous(), dense=True)
        result = engine.model(lightness.contiguous(memory_format=torch.channels_last), reference, dense=True)
    torch.testing.assert_close(result.ab, expected.ab, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(result.ab_coarse, expected.ab_coarse, atol=1e-4, rtol=1e-4)


def test_folded_batch_norms_give_the_same_encoding(tiny_weights):
    model = load_checkpoint(tiny_weights).eval()
    with torch.no_grad():   # give the normalisations statistics and affines far from the identity
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                for tensor in (module.running_mean, module.weight, module.bias):
                    tensor.normal_(0.0, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    folded = runtime.fold_batch_norms(copy.deepcopy(model))
    rgb = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected, result = model.encoder(rgb), folded.encoder(rgb)
    for level, folded_level in zip(expected.levels, result.levels):
        torch.testing.assert_close(folded_level, level, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(result.style, expected.style, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("native, expected", [(True, "bf16"), (False, "fp32")])
def test_auto_precision_follows_the_cpu(monkeypatch, native, expected):
    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda: native)
    assert runtime.resolve_precision("auto", torch.device("cpu")) == expected
    assert runtime.resolve_precision("fp32", torch.device("cpu")) == "fp32"


def test_upsampling_choice(tiny_weights, photos):
    """guided and bilinear differ only where the output is larger than the working size; L is kept either way."""
    results = {}
    for method in ("guided", "bilinear"):
        engine = Colorizer(weights=tiny_weights, device="cpu", size=64, upsample=method)
        engine.set_reference(photos[0])
        results[method] = engine.colorize([photos[1], photos[1][:, :48, :64]])
    large, small = zip(*results.values())
    assert not torch.equal(large[0].rgb, large[1].rgb) and torch.equal(small[0].rgb, small[1].rgb)
    for result in large:
        assert (_lightness(result.rgb) - _lightness(photos[1])).abs().mean() < 1.0
    with pytest.raises(ValueError, match="unknown upsampling 'nearest'"):
        Colorizer(weights=tiny_weights, device="cpu", upsample="nearest")


def test_large_photo_stays_in_bounded_memory(tiny_weights):
    """A 4000 x 3000 target: its full-size ab and float RGB exist a band at a time (the process's peak RSS)."""
    script = f"""
import resource, torch
from sscn.models import Colorizer
engine = Colorizer(weights={str(tiny_weights)!r}, device="cpu", size=64)
engine.set_reference(torch.zeros(3, 64, 64, dtype=torch.uint8))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
[result] = engine.colorize([torch.full((1, 3000, 4000), 128, dtype=torch.uint8)])
assert result.rgb.shape == (3, 3000, 4000)
print(before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""
    output = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    before, after = (int(value) * 1024 / 1e6 for value in output.split())         # MB (Linux reports KiB)
    # the 12 MP target's own bytes and its L take about 60 MB, the RGB result 36 MB
    assert after - before < 700, f"colorizing 4000 x 3000 took {after - before:.0f} MB"
