"""`Colorizer`, the inference engine every subcommand uses.

Load the model once, encode a reference once (`set_reference` / `set_palette`), then colorize any number of
targets of any size: each target's L is resized to the working resolution, the network predicts ab there, the
ab is upsampled to the target's own size and merged with its original full-resolution L on the device.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import torch
import torch.nn.functional as F

from .checkpoint import default_weights_path, load_checkpoint
from .color import (denormalize_ab, lab_to_rgb_keep_lightness, network_lab_to_rgb, normalize_l,
                    rgb_to_lightness)
from .ldt import check_selection
from .library import describe
from .palette import palette_image
from .references import encode_references
from .sscn import SSCN, ReferenceEncoding, SSCNOutput
from .upsample import UPSAMPLERS, AbUpsampler

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
# Full-resolution Lab -> RGB runs in bands of rows holding about this many pixels (all targets of a size
# together): cache-sized on the CPU (a quarter faster than 4x larger bands), few kernel launches on a GPU;
# either way a large photo never has all its float temporaries at once.
_MERGE_PIXELS = {"cpu": 1 << 18, "cuda": 1 << 22}
T = TypeVar("T")


def resolve_device(device: str = "auto") -> torch.device:
    """'auto' picks CUDA when present; 'cpu', 'cuda', 'cuda:N' are taken as given (and checked)."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise ValueError(f"unknown device {device!r} (use auto, cpu, cuda or cuda:N)") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but CUDA is not available here")
    if resolved.type not in ("cpu", "cuda"):
        raise ValueError(f"unsupported device {device!r} (use auto, cpu, cuda or cuda:N)")
    return resolved


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes in bf16 natively (AVX-512 BF16 or AMX): there oneDNN's bf16 convolutions and
    matrix products run several times faster than fp32; elsewhere bf16 is emulated, and slower."""
    native = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return torch.backends.mkldnn.is_available() and any(check is not None and check() for check in native)


def resolve_precision(precision: str, device: torch.device) -> str:
    """'auto' is bf16 on CUDA and on CPUs with native bf16, fp32 on other CPUs; fp32, bf16 and fp16 are taken
    as given."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        return "bf16" if device.type == "cuda" or cpu_has_native_bf16() else "fp32"
    return precision


def input_layout(device: torch.device, precision: str) -> tuple[torch.dtype, torch.memory_format]:
    """dtype and memory format of the network's inputs, those of a `prepare_model` model's weights: a mismatch
    would cost a conversion at every layer."""
    cpu_bf16 = device.type == "cpu" and precision == "bf16"
    channels_last = cpu_bf16 or device.type == "cuda"
    return (torch.bfloat16 if cpu_bf16 else torch.float32,
            torch.channels_last if channels_last else torch.contiguous_format)


def prepare_model(model: SSCN, device: torch.device, precision: str) -> SSCN:
    """`model` on `device`, in eval mode and laid out for inference at `precision`: channels_last on CUDA, and on
    the CPU in bf16 its weights converted to bf16 once (autocast would convert them at every call) and
    channels_last (oneDNN's bf16 kernels work in that layout). A CPU conversion works on a copy: the caller's
    model keeps its dtype (`sscn bench` times fp32 and bf16 engines around one model)."""
    if device.type == "cpu" and precision == "bf16":
        return copy.deepcopy(model).eval().to(dtype=torch.bfloat16, memory_format=torch.channels_last)
    model = model.to(device).eval()
    return model.to(memory_format=torch.channels_last) if device.type == "cuda" else model


def inference_autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """The autocast of a `prepare_model` model: none in fp32, else bf16 / fp16 on `device`'s type."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


def working_size(size: int) -> int:
    """The network's square working resolution: `size` rounded to a multiple of 32 (E's stride)."""
    if not 32 <= size <= 4096:
        raise ValueError(f"working size must be between 32 and 4096 (got {size})")
    return max(32, round(size / 32) * 32)


def image_to_float(image: torch.Tensor) -> torch.Tensor:
    """(C, H, W) uint8 / uint16-as-int32 / float image -> float32 in [0, 1] with 3 channels."""
    if image.dim() != 3 or image.shape[0] not in (1, 3):
        raise ValueError(f"expected an image tensor of shape (1|3, H, W), got {tuple(image.shape)}")
    if image.dtype == torch.uint8:
        image = image.float() / 255.0
    elif not image.is_floating_point():
        raise ValueError(f"unsupported image dtype {image.dtype}")
    image = image.float()
    return image.expand(3, -1, -1) if image.shape[0] == 1 else image


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of `size` items (the last one shorter): frames and photos go to `colorize` in batches."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class CompileError(RuntimeError):
    """torch.compile could not build the network here (no C++ compiler, an unsupported op, ...)."""


@dataclass
class ColorizeResult:
    # (3, H, W) uint8 on the CPU, stored channels-last: rgb.permute(1, 2, 0).numpy() is an (H, W, 3) view
    rgb: torch.Tensor
    rgb_stage1: torch.Tensor | None    # the coarse (GCT) result, when asked for


class Colorizer:
    """Reference-based colorization with a loaded SSCN.

    >>> colorizer = Colorizer()                       # shipped weights, CUDA when present
    >>> colorizer.set_reference(ref)                  # (3, H, W) uint8 or float in [0, 1]
    >>> [result] = colorizer.colorize([gray])         # (1|3, H, W) -> ColorizeResult
    """

    def __init__(self, weights: str | Path | None = None, device: str = "auto", precision: str = "auto",
                 size: int = 256, k: int | None = None, r: int | None = None, dense: bool = False,
                 seed: int = 0, model: SSCN | None = None, compile: bool = False, upsample: str = "guided") -> None:
        if upsample not in UPSAMPLERS:
            raise ValueError(f"unknown upsampling {upsample!r}; choose one of {', '.join(UPSAMPLERS)}")
        self.upsample = upsample
        self.device = resolve_device(device)
        self.precision = resolve_precision(precision, self.device)
        self.size = working_size(size)
        self.model = prepare_model(model if model is not None else load_checkpoint(weights or default_weights_path()),
                                   self.device, self.precision)
        self.input_dtype, self.memory_format = input_layout(self.device, self.precision)
        self.k = self.model.config.k if k is None else k
        self.r = self.model.config.r if r is None else r
        if not dense:
            check_selection(self.k, self.r)
        self.dense = dense
        self.seed = seed
        self.reference: ReferenceEncoding | None = None
        # torch.compile'd forward (the reference encoding, run once, stays eager); batches are padded to the
        # largest seen so far, so one graph serves a whole run whose last batch is short
        self.compiled = None
        if compile:
            # inductor's C++ toolchain probe warns that a CUDA build of torch finds no CUDA runtime on CPU hosts
            logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
            self.compiled = torch.compile(self.model, dynamic=False)
        self._compiled_batches: set[int] = set()

    @property
    def config(self):
        return self.model.config

    def _autocast(self):
        return inference_autocast(self.device, self.precision)

    def _to_working(self, image: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, S, S) with antialiasing when shrinking."""
        return F.interpolate(image, size=(self.size, self.size), mode="bilinear", align_corners=False,
                             antialias=True)

    def _reference_rgb(self, image: torch.Tensor) -> torch.Tensor:
        """A reference (3, H, W) -> (1, 3, S, S) in [0, 1] on the device, as the encoder takes it."""
        rgb = image_to_float(image).to(self.device)[None]
        rgb = self._to_working(rgb).clamp(0.0, 1.0).contiguous(memory_format=self.memory_format)
        return rgb

    @torch.inference_mode()
    def set_reference(self, image: torch.Tensor) -> ReferenceEncoding:
        """Encode a reference (3, H, W) once: features, style vector, CAM and the selected keys/values."""
        generator = torch.Generator().manual_seed(self.seed)
        with self._autocast():
            self.reference = self.model.encode_reference(self._reference_rgb(image), self.k, self.r, self.dense,
                                                         generator)
        return self.reference

    @torch.inference_mode()
    def set_references(self, images: list[torch.Tensor], budget: str = "each") -> ReferenceEncoding:
        """Encode several references (each (3, H, W)) once and pool their selected keys/values into one
        attention set (models.references: `budget` "each" or "shared"); one reference = `set_reference`."""
        generator = torch.Generator().manual_seed(self.seed)
        with self._autocast():
            self.reference = encode_references(self.model, [self._reference_rgb(image) for image in images],
                                               self.k, self.r, self.dense, generator, budget)
        return self.reference

    @torch.inference_mode()
    def describe(self, image: torch.Tensor, descriptor: str = "pooled") -> torch.Tensor:
        """A target or reference (1|3, H, W) -> its unit descriptor (D,) for reference matching, seen gray
        (models.library): L at the working size with ab = 0."""
        lightness = self._to_working(rgb_to_lightness(image_to_float(image).to(self.device)[None]))  # (1,1,S,S)
        l_norm = normalize_l(lightness.clamp(0.0, 100.0))
        gray = network_lab_to_rgb(l_norm, l_norm.new_zeros(1, 2, self.size, self.size))              # (1,3,S,S)
        with self._autocast():
            return describe(self.model, gray, descriptor)[0]

    def set_palette(self, colors: list[tuple[int, int, int]], weights: list[float] | None = None) -> torch.Tensor:
        """Use a swatch image built from `colors` (RGB 0-255) as the reference; returns that image (3, S, S)."""
        swatch = palette_image(colors, weights, self.size)
        self.set_reference(swatch)
        return swatch

    def _require_reference(self) -> ReferenceEncoding:
        if self.reference is None:
            raise RuntimeError("set a reference (set_reference / set_palette) before colorizing")
        return self.reference

    @torch.inference_mode()
    def predict(self, l_norm: torch.Tensor) -> SSCNOutput:
        """The network alone, with the current reference: L (B, 1, S, S) on the device, at the working size,
        scaled to [-1, 1] -> SSCNOutput (ab in the network's scaling). `colorize` wraps it; `sscn bench` times it."""
        reference = self._require_reference()
        # .to, not .contiguous: a 1-channel L counts as channels_last already, and its torch.cat with
        # channels_last features in the decoder would fall back to NCHW
        l_norm = l_norm.to(self.input_dtype, memory_format=self.memory_format)
        with self._autocast():
            if self.compiled is None:
                return self.model(l_norm, reference)
            return self._compiled_forward(l_norm, reference)

    def _compiled_forward(self, l_norm: torch.Tensor, reference: ReferenceEncoding) -> SSCNOutput:
        batch = l_norm.shape[0]
        padded = max([batch, *self._compiled_batches])
        if padded > batch:
            l_norm = torch.cat([l_norm, l_norm.new_zeros(padded - batch, *l_norm.shape[1:])])   # (padded, 1, S, S)
        try:
            output = self.compiled(l_norm, reference)
        except torch.cuda.OutOfMemoryError:
            raise
        except Exception as error:
            if padded in self._compiled_batches:    # compiled already: a failure of the run, not of compiling
                raise
            detail = str(error).strip().splitlines()
            raise CompileError(f"torch.compile failed ({type(error).__name__}: "
                               f"{detail[0] if detail else 'no details'}); run without --compile") from error
        self._compiled_batches.add(padded)
        return dataclasses.replace(output, ab=output.ab[:batch], ab_coarse=output.ab_coarse[:batch])

    @torch.inference_mode()
    def colorize(self, images: list[torch.Tensor], stage1: bool = False) -> list[ColorizeResult]:
        """Colorize targets (each (1|3, H, W), any size) with the current reference; one batch, one forward.

        On a GPU the whole batch runs without waiting for it: images go up from pinned memory, results are
        quantised to uint8 there and come down into pinned memory, and the one wait is for that last copy."""
        self._require_reference()
        if not images:
            return []
        lightness = [self._lightness(self._upload(image)) for image in images]                      # (1,1,H,W)
        l_work = torch.cat([self._to_working(l) for l in lightness]).clamp(0.0, 100.0)                # (B,1,S,S)
        output = self.predict(normalize_l(l_work))
        rgb = self._merge(lightness, l_work, output.ab)
        coarse = self._merge(lightness, l_work, output.ab_coarse) if stage1 else [None] * len(images)
        if self.device.type == "cuda":
            torch.cuda.current_stream(self.device).synchronize()    # the copies into pinned memory are done
        return [ColorizeResult(*pair) for pair in zip(rgb, coarse)]

    def _lightness(self, image: torch.Tensor) -> torch.Tensor:
        """L (1, 1, H, W) of an image (C, H, W) on the device, converted in bands of rows: the float RGB of a
        large photo, and its temporaries, never exist at once."""
        height, width = image.shape[-2:]
        lightness = torch.empty(1, 1, height, width, device=image.device)
        rows = max(1, _MERGE_PIXELS[self.device.type] // width)
        for top in range(0, height, rows):
            lightness[..., top:top + rows, :] = rgb_to_lightness(image_to_float(image[:, top:top + rows])[None])
        return lightness

    def _upload(self, image: torch.Tensor) -> torch.Tensor:
        """An image (C, H, W) to the device as it is (uint8 stays uint8: a quarter of float's bytes), from a
        contiguous pinned copy, so the transfer is asynchronous."""
        if self.device.type == "cpu":
            return image
        hwc = image.permute(1, 2, 0)
        if hwc.is_contiguous():     # decoded photos and frames are (H, W, C) in memory: copy those bytes as they are
            return hwc.pin_memory().to(self.device, non_blocking=True).permute(2, 0, 1)
        return image.contiguous().pin_memory().to(self.device, non_blocking=True)

    def _merge(self, lightness: list[torch.Tensor], l_work: torch.Tensor, ab_norm: torch.Tensor) -> list[torch.Tensor]:
        """Each target's full-resolution L (1, 1, H, W) with its predicted ab (B, 2, S, S) upsampled to H x W
        (`self.upsample`, guided by the working-size L `l_work` (B, 1, S, S)), as RGB (3, H, W) uint8 on the
        CPU. Targets of one size are merged together (a folder of photos from one camera, a video's frames);
        rows go in bands, so a large photo never has its full-size ab or float RGB at once."""
        by_size: dict[tuple[int, int], list[int]] = {}
        for index, l_full in enumerate(lightness):
            by_size.setdefault(tuple(l_full.shape[-2:]), []).append(index)
        merged: list[torch.Tensor] = [torch.empty(0)] * len(lightness)
        for (height, width), indices in by_size.items():
            l_full = torch.cat([lightness[index] for index in indices])                        # (G, 1, H, W)
            ab_work = denormalize_ab(ab_norm[indices].float())                                 # (G, 2, S, S)
            upsampler = AbUpsampler(ab_work, l_work[indices], height, width, self.upsample)
            pixels = torch.empty(len(indices), height, width, 3, dtype=torch.uint8, device=self.device)
            rows = max(1, _MERGE_PIXELS[self.device.type] // (len(indices) * width))
            for top in range(0, height, rows):
                band = slice(top, top + rows)
                l_band = l_full[..., band, :]                                                  # (G, 1, h, W)
                rgb = lab_to_rgb_keep_lightness(torch.cat([l_band, upsampler.band(band, l_band)], dim=1))
                pixels[:, band] = rgb.mul(255.0).round_().to(torch.uint8).permute(0, 2, 3, 1)  # (G, h, W, 3)
            if self.device.type == "cuda":
                pixels = torch.empty(pixels.shape, dtype=torch.uint8, pin_memory=True).copy_(pixels, non_blocking=True)
            for index, image in zip(indices, pixels.permute(0, 3, 1, 2)):                      # (3, H, W) views
                merged[index] = image
        return merged
