"""`sscn.colorize`: one image, one call, with a default `Colorizer` built on first use and kept for the next
calls with the same options."""
from __future__ import annotations

import functools

from sscn.images import ImageInput
from sscn.models.colorizer import Colorizer


@functools.lru_cache(maxsize=1)
def _colorizer(options: tuple) -> Colorizer:
    return Colorizer(**dict(options))


def colorize(target: ImageInput, reference: ImageInput, **options):
    """`target` colorized from `reference`, in the target's own type (a PIL image for a PIL image or a path, an
    (H, W, 3) uint8 array for an array, a (3, H, W) uint8 tensor for a tensor; sscn.images).

    `options` are those of `Colorizer` (weights: a .safetensors path, None for the shipped model; device,
    precision, size, k, r, dense, seed, upsample); the colorizer is built once and reused while they stay the
    same. For many targets, or one reference for several, use a `Colorizer` and `encode_reference` directly.
    """
    colorizer = _colorizer(tuple(sorted(options.items())))
    [result] = colorizer.colorize([target], colorizer.encode_reference(reference))
    return result.rgb
