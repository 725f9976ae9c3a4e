"""`Colorizer`, the inference engine: the one way anything runs the network (every subcommand, evaluation,
`sscn bench`, library users).

Load the model once, encode a reference once (`encode_reference` -> a `Reference`; several pooled into one
attention set: `encode_references`; row i for target i: `encode_reference_batch`), then colorize any number of
targets of any size with it: each target's L is resized to the working resolution, the network predicts ab
there, the ab is upsampled to the target's own size and merged with its original full-resolution L on the device
(models.merge). One `Reference` serves sparse attention with any k / r, dense attention and stage 1 alone
(`colorize(..., k=, r=, dense=, stage1_only=)`). `set_reference` / `set_references` / `set_palette` store a
default `Reference` for the `colorize` calls that name none.

Targets and references may be PIL images, numpy arrays, torch tensors or paths (sscn.images); each result comes
back in its target's own type.
"""
from __future__ import annotations

import copy
import dataclasses
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from sscn.images import ImageInput, as_pixels, image_to_float, like_input

from . import merge
from .checkpoint import default_weights_path, load_checkpoint
from .color import network_lab_to_rgb, normalize_l, rgb_to_lightness
from .ldt import check_selection
from .library import describe
from .palette import palette_image
from .references import Reference, check_budget
from .runtime import autocast, input_layout, prepare_model, resolve_device, resolve_precision, working_size
from .sscn import SSCN, ReferenceEncoding, SSCNOutput
from .upsample import UPSAMPLERS

T = TypeVar("T")


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


def _check_upsample(upsample: str) -> str:
    if upsample not in UPSAMPLERS:
        raise ValueError(f"unknown upsampling {upsample!r}; choose one of {', '.join(UPSAMPLERS)}")
    return upsample


class CompileError(RuntimeError):
    """torch.compile could not build the network here (no C++ compiler, an unsupported op, ...)."""


@dataclass
class ColorizeResult:
    # in the target's own type (sscn.images.like_input); for a tensor target (3, H, W) uint8 on the CPU, stored
    # channels-last: rgb.permute(1, 2, 0).numpy() is an (H, W, 3) view
    rgb: torch.Tensor | np.ndarray | Image.Image
    rgb_stage1: torch.Tensor | np.ndarray | Image.Image | None    # the coarse (GCT) result, when asked for


class Colorizer:
    """Reference-based colorization with a loaded SSCN.

    >>> colorizer = Colorizer.from_pretrained()                     # shipped weights, CUDA when present
    >>> ref = colorizer.encode_reference(Image.open("ref.jpg"))     # PIL, numpy, (3, H, W) tensor or a path
    >>> [result] = colorizer.colorize([Image.open("gray.jpg")], ref)
    >>> result.rgb                                                  # a PIL image, as the target
    """

    def __init__(self, weights: str | Path | None = None, device: str = "auto", precision: str = "auto",
                 size: int = 256, k: int | None = None, r: int | None = None, dense: bool = False,
                 seed: int = 0, model: SSCN | None = None, compile: bool = False, upsample: str = "guided") -> None:
        self.upsample = _check_upsample(upsample)
        self.device = resolve_device(device)
        self.precision = resolve_precision(precision, self.device)
        self.size = working_size(size)
        # a model passed in is copied: the caller's keeps its dtype, layout and device (`sscn bench` times fp32
        # and bf16 engines around one model)
        network = load_checkpoint(weights or default_weights_path()) if model is None else copy.deepcopy(model)
        self.model = prepare_model(network, self.device, self.precision)
        self.input_dtype, self.memory_format = input_layout(self.device, self.precision)
        self.k = self.model.config.k if k is None else k
        self.r = self.model.config.r if r is None else r
        if not dense:
            check_selection(self.k, self.r)
        self.dense = dense
        self.seed = seed
        self.reference: Reference | None = None      # the default of `colorize` (set_reference, ...)
        # torch.compile'd forward (the reference encoding, run once, stays eager); batches are padded to the
        # largest seen so far, so one graph serves a whole run whose last batch is short
        self.compiled = None
        if compile:
            # inductor's C++ toolchain probe warns that a CUDA build of torch finds no CUDA runtime on CPU hosts
            logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
            self.compiled = torch.compile(self.model, dynamic=False)
        self._compiled_batches: set[int] = set()

    @classmethod
    def from_pretrained(cls, path: str | Path | None = None, **options) -> Colorizer:
        """A colorizer with the weights of `path` (a .safetensors checkpoint; None: the shipped model) and the
        other options of `Colorizer`."""
        return cls(weights=path, **options)

    @property
    def config(self):
        return self.model.config

    def _to_working(self, image: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, S, S) with antialiasing when shrinking."""
        return F.interpolate(image, size=(self.size, self.size), mode="bilinear", align_corners=False,
                             antialias=True)

    def _reference_rgb(self, image: ImageInput, what: str = "reference") -> torch.Tensor:
        """A reference -> (1, 3, S, S) in [0, 1] on the device, as the encoder takes it."""
        rgb = image_to_float(as_pixels(image, what)).to(self.device)[None]
        return self._to_working(rgb).clamp(0.0, 1.0).contiguous(memory_format=self.memory_format)

    @torch.inference_mode()
    def _encode(self, rgb: torch.Tensor) -> ReferenceEncoding:
        """E(I_r), the style vector, the CAM and the keys/values of every region of references (Br, 3, S, S)."""
        with autocast(self.device, self.precision):
            return self.model.encode_reference(rgb, dense=True)

    def encode_reference(self, image: ImageInput, seed: int | None = None) -> Reference:
        """Encode one reference once, for every target; `seed` (default: the colorizer's) fixes the random picks
        of its sparse selection."""
        return Reference((self._encode(self._reference_rgb(image)),), (self.seed if seed is None else seed,))

    def encode_references(self, images: Sequence[ImageInput], budget: str = "each",
                          seed: int | None = None) -> Reference:
        """Encode several references, each once, pooled into one attention set for every target
        (models.references: `budget` "each" or "shared"); one reference = `encode_reference`."""
        if not images:
            raise ValueError("no references to pool")
        check_budget(budget)                              # before the encoder runs
        parts = tuple(self._encode(self._reference_rgb(image, f"reference {index}"))
                      for index, image in enumerate(images))
        return Reference(parts, (self.seed if seed is None else seed,), budget)

    def encode_reference_batch(self, images: Sequence[ImageInput], seeds: Sequence[int]) -> Reference:
        """Encode references in one pass, reference i (its picks seeded by `seeds[i]`) for target i of the
        batches it is used with (as many targets as references)."""
        if len(images) != len(seeds) or not images:
            raise ValueError(f"{len(images)} references with {len(seeds)} seeds (one each, at least one)")
        rgb = torch.cat([self._reference_rgb(image, f"reference {index}")
                         for index, image in enumerate(images)])                             # (Br, 3, S, S)
        return Reference((self._encode(rgb),), tuple(seeds))

    def set_reference(self, image: ImageInput) -> Reference:
        """`encode_reference` with the colorizer's seed, kept as the default reference of `colorize`."""
        self.reference = self.encode_reference(image)
        return self.reference

    def set_references(self, images: Sequence[ImageInput], budget: str = "each") -> Reference:
        """`encode_references` with the colorizer's seed, kept as the default reference of `colorize`."""
        self.reference = self.encode_references(images, budget)
        return self.reference

    def set_palette(self, colors: list[tuple[int, int, int]], weights: list[float] | None = None) -> torch.Tensor:
        """Use a swatch image built from `colors` (RGB 0-255) as the reference; returns that image (3, S, S)."""
        swatch = palette_image(colors, weights, self.size)
        self.set_reference(swatch)
        return swatch

    def encoding(self, reference: Reference | None = None, k: int | None = None, r: int | None = None,
                 dense: bool | None = None) -> ReferenceEncoding:
        """What the network attends to for `reference` (default: the one set) with the colorizer's k / r /
        dense, or those given."""
        if reference is None:
            if self.reference is None:
                raise RuntimeError("set a reference (set_reference / set_palette) or pass one to colorize")
            reference = self.reference
        dense = self.dense if dense is None else dense
        return reference.encoding(self.k if k is None else k, self.r if r is None else r, dense)

    @torch.inference_mode()
    def describe(self, image: ImageInput, descriptor: str = "pooled") -> torch.Tensor:
        """A target or reference -> its unit descriptor (D,) for reference matching, seen gray (models.library):
        L at the working size with ab = 0."""
        rgb = image_to_float(as_pixels(image)).to(self.device)[None]
        lightness = self._to_working(rgb_to_lightness(rgb))                                          # (1,1,S,S)
        l_norm = normalize_l(lightness.clamp(0.0, 100.0))
        gray = network_lab_to_rgb(l_norm, l_norm.new_zeros(1, 2, self.size, self.size))              # (1,3,S,S)
        with autocast(self.device, self.precision):
            return describe(self.model, gray, descriptor)[0]

    @torch.inference_mode()
    def predict(self, l_norm: torch.Tensor, reference: Reference | None = None, *, k: int | None = None,
                r: int | None = None, dense: bool | None = None, stage1_only: bool = False) -> SSCNOutput:
        """The network alone: L (B, 1, S, S) on the device, at the working size, scaled to [-1, 1] -> SSCNOutput
        (ab in the network's scaling); reference, k, r, dense as in `encoding`, `stage1_only` runs GCT alone
        (§3.2). `colorize` wraps it; `sscn bench` times it."""
        encoding = self.encoding(reference, k, r, dense)
        # .to, not .contiguous: a 1-channel L counts as channels_last already, and its torch.cat with
        # channels_last features in the decoder would fall back to NCHW
        l_norm = l_norm.to(self.input_dtype, memory_format=self.memory_format)
        with autocast(self.device, self.precision):
            # one reference row per target would not survive the compiled graph's batch padding: run eagerly
            if self.compiled is None or encoding.style.shape[0] > 1:
                return self.model(l_norm, encoding, stage1_only=stage1_only)
            return self._compiled_forward(l_norm, encoding, stage1_only)

    def _compiled_forward(self, l_norm: torch.Tensor, reference: ReferenceEncoding, stage1_only: bool) -> SSCNOutput:
        batch = l_norm.shape[0]
        padded = max([batch, *self._compiled_batches])
        if padded > batch:
            l_norm = torch.cat([l_norm, l_norm.new_zeros(padded - batch, *l_norm.shape[1:])])   # (padded, 1, S, S)
        try:    # stage 1 alone is a graph of its own; the full forward is called as it always was
            output = self.compiled(l_norm, reference, **({"stage1_only": True} if stage1_only else {}))
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
    def colorize(self, images: Sequence[ImageInput], reference: Reference | None = None, *, stage1: bool = False,
                 stage1_only: bool = False, k: int | None = None, r: int | None = None, dense: bool | None = None,
                 upsample: str | None = None) -> list[ColorizeResult]:
        """Colorize targets (any size) with `reference` (default: the one set); one batch, one forward.

        k, r, dense and upsample override the colorizer's for this call; `stage1` also returns the coarse
        (GCT) result, `stage1_only` runs stage 1 alone and returns it as `rgb`. On a GPU the whole batch runs
        without waiting for it: images go up from pinned memory, results are quantised to uint8 there and come
        down into pinned memory, and the one wait is for that last copy."""
        self.encoding(reference, k, r, dense)           # fails before any work without a reference
        if not images:
            return []
        method = self.upsample if upsample is None else _check_upsample(upsample)
        pixels = [as_pixels(image, f"target {index}") for index, image in enumerate(images)]
        lightness = [merge.lightness(merge.upload(image, self.device)) for image in pixels]       # (1,1,H,W)
        l_work = torch.cat([self._to_working(l) for l in lightness]).clamp(0.0, 100.0)            # (B,1,S,S)
        output = self.predict(normalize_l(l_work), reference, k=k, r=r, dense=dense, stage1_only=stage1_only)
        rgb = merge.merge(lightness, l_work, output.ab, method)
        coarse = [None] * len(images)
        if stage1:
            coarse = rgb if stage1_only else merge.merge(lightness, l_work, output.ab_coarse, method)
        if self.device.type == "cuda":
            torch.cuda.current_stream(self.device).synchronize()    # the copies into pinned memory are done
        return [ColorizeResult(like_input(result, image), None if extra is None else like_input(extra, image))
                for image, result, extra in zip(images, rgb, coarse)]
