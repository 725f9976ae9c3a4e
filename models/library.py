"""A reference library with automatic match: for each gray target, the most similar colour photos of a folder.

Similarity is semantic, on E (§3.2-3.3), and like for like: both the target and every reference are seen as
gray (their L with ab = 0, the same input E gets for I_c when ab_coarse is flat), so a reference is not
preferred for its colours, which the target cannot show. Two descriptors (`DESCRIPTORS`):
- "pooled": E's deepest correspondence level F4 averaged over the image (global semantics);
- "cam": the correspondence features F1..F4 averaged with the CAM as weights (the salient object, §3.3).
Descriptors are L2-normalised, the similarity is their cosine.

The library is described once and cached in a safetensors file keyed on the folder, the model and the
working size; an entry is reused while its file's name, size and mtime_ns are unchanged, else re-described.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save_file

from sscn.constants import DESCRIPTORS

from .ldt import correspondence_features
from .outputs import atomic_write

if TYPE_CHECKING:
    from .colorizer import Colorizer
    from .sscn import SSCN

_CACHE_FORMAT = "sscn-reference-index-1"


def describe(model: SSCN, gray_rgb: torch.Tensor, descriptor: str = "pooled") -> torch.Tensor:
    """Gray images (B, 3, S, S) in [0, 1] -> unit descriptors (B, D) (see the module docstring)."""
    if descriptor not in DESCRIPTORS:
        raise ValueError(f"unknown descriptor {descriptor!r}; choose one of {', '.join(DESCRIPTORS)}")
    if descriptor == "pooled":
        features = model.encoder.levels(gray_rgb)[-1].float().mean(dim=(2, 3))                 # (B, C4)
    else:
        encoded = model.encoder(gray_rgb)
        corr = correspondence_features(encoded.levels).float()                                 # (B, d, H/4, W/4)
        cam = F.interpolate(encoded.cam.float(), size=corr.shape[-2:], mode="bilinear", align_corners=False)
        weights = torch.softmax(cam.flatten(1), dim=1)                                         # (B, HW/16)
        features = torch.einsum("bdn,bn->bd", corr.flatten(2), weights)                        # (B, d)
    return F.normalize(features, dim=1)


def model_fingerprint(model: torch.nn.Module) -> str:
    """A digest of every weight (and buffer): a cache made with other weights is never reused."""
    digest = hashlib.sha1()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def default_cache_dir() -> Path:
    """$SSCN_CACHE_DIR, else $XDG_CACHE_HOME/sscn, else ~/.cache/sscn (never inside the library itself)."""
    if os.environ.get("SSCN_CACHE_DIR"):
        return Path(os.environ["SSCN_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sscn"


@dataclass(frozen=True)
class Match:
    path: Path
    similarity: float


def _file_key(path: Path) -> list:
    stat = path.stat()
    return [path.name, stat.st_size, stat.st_mtime_ns]


class ReferenceIndex:
    """Descriptors of a folder's reference photos, built (or read from the cache) once; `match` ranks them.

    >>> index = ReferenceIndex(colorizer, paths, load)    # load(path) -> (3, H, W) image
    >>> [best] = index.match(gray_target)                  # Match(path, similarity)
    """

    def __init__(self, colorizer: Colorizer, paths: Sequence[Path], load: Callable[[Path], torch.Tensor],
                 descriptor: str = "pooled", cache_dir: Path | None = None) -> None:
        if not paths:
            raise ValueError("no reference photos to index")
        self.colorizer, self.descriptor = colorizer, descriptor
        self.paths = [Path(path) for path in paths]
        self.cache_path = self._cache_path(cache_dir or default_cache_dir())
        self.reused = 0            # entries taken from the cache
        self.described = 0         # entries described now
        self.descriptors = self._build(load)                                                    # (N, D)

    def _cache_path(self, cache_dir: Path) -> Path:
        folders = sorted({str(path.parent.resolve()) for path in self.paths})
        key = json.dumps([_CACHE_FORMAT, folders, model_fingerprint(self.colorizer.model), self.colorizer.size,
                          self.descriptor])
        return cache_dir / f"refs-{hashlib.sha1(key.encode()).hexdigest()[:20]}.safetensors"

    def _read_cache(self) -> dict[str, tuple[list, torch.Tensor]]:
        """{resolved path: (file key, descriptor)} of a readable cache; {} when absent or unreadable."""
        try:
            with safe_open(str(self.cache_path), framework="pt") as cache:
                descriptors = cache.get_tensor("descriptors")                                   # (N, D)
                entries = json.loads(cache.metadata()["entries"])
            return {path: (key, descriptors[row]) for row, (path, key) in enumerate(entries)}
        except (OSError, ValueError, KeyError, IndexError, TypeError, RuntimeError):
            return {}

    def _build(self, load: Callable[[Path], torch.Tensor]) -> torch.Tensor:
        cached = self._read_cache()
        keys = [_file_key(path) for path in self.paths]
        rows: list[torch.Tensor] = []
        for path, key in zip(self.paths, keys):
            entry = cached.get(str(path.resolve()))
            if entry is not None and entry[0] == key:
                rows.append(entry[1])
                self.reused += 1
            else:
                rows.append(self.colorizer.describe(load(path), self.descriptor).cpu())
                self.described += 1
        descriptors = torch.stack(rows)                                                         # (N, D)
        if self.described or len(cached) != len(self.paths):
            self._write_cache(keys, descriptors)
        return descriptors

    def _write_cache(self, keys: list[list], descriptors: torch.Tensor) -> None:
        entries = json.dumps([[str(path.resolve()), key] for path, key in zip(self.paths, keys)])
        try:
            atomic_write(self.cache_path, lambda tmp: save_file({"descriptors": descriptors.contiguous()}, tmp,
                                                                metadata={"entries": entries}))
        except OSError:
            pass        # a read-only cache folder costs a re-description next time, not the run

    def match(self, image: torch.Tensor, count: int = 1, exclude: Sequence[Path] = ()) -> list[Match]:
        """The `count` references most similar to a target (1|3, H, W), best first; `exclude`: paths never
        picked (the target itself, when it is in the library)."""
        excluded = {Path(path).resolve() for path in exclude}
        similarity = self.descriptors @ self.colorizer.describe(image, self.descriptor).cpu()   # (N,)
        for row, path in enumerate(self.paths):
            if path.resolve() in excluded:
                similarity[row] = -float("inf")
        order = similarity.argsort(descending=True)[:count]
        return [Match(self.paths[row], float(similarity[row])) for row in order if similarity[row] > -float("inf")]
