"""Training photos: a folder (recursive), class subfolders as labels, held decoded in memory when small,
streamed by DataLoader workers when large. Every photo is delivered as a square uint8 (3, S, S) tensor:
short side resized to S, centre-cropped; random crops are then taken on the device (train.pairs).
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from sscn.constants import IMAGE_SUFFIXES
from sscn.images import read_image, to_uint8

IN_MEMORY_BYTES = 4 << 30       # datasets smaller than this (decoded) are held in host memory ...
GPU_MEMORY_SHARE = 0.25         # ... and on the GPU when they take less than this share of its free memory
PHOTO_STREAM = 0                # stream_seed stream of the photo picks


def stream_seed(seed: int, rank: int, stream: int) -> int:
    """Seed of random stream `stream` (0..7) of process `rank` in a run seeded `seed`: generators seeded alike
    would draw the same numbers, so photo picks, pairs and selections each get their own."""
    return (seed * 1000 + rank) * 8 + stream


def find_photos(root: str | Path) -> list[Path]:
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"{root}: not a folder of photos")
    photos = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not photos:
        raise ValueError(f"{root}: no photos found (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    return photos


def class_labels(root: str | Path, photos: list[Path]) -> tuple[list[str], list[int]] | None:
    """Class names and per-photo labels from the first folder level under `root`, if every photo has one."""
    root = Path(root)
    parents = [p.relative_to(root).parts for p in photos]
    if any(len(parts) < 2 for parts in parents):
        return None
    names = sorted({parts[0] for parts in parents})
    if len(names) < 2:
        return None
    index = {name: i for i, name in enumerate(names)}
    return names, [index[parts[0]] for parts in parents]


def load_square(path: Path, size: int) -> torch.Tensor:
    """Decode (sscn.images.read_image: EXIF orientation, 16-bit, size guard; ImageError naming the file), resize
    the short side to `size` (bicubic), centre-crop: (3, size, size) uint8."""
    pixels = read_image(path).pixels                                                  # (1|3, H, W)
    image = Image.fromarray(to_uint8(pixels.expand(3, -1, -1)))
    square = ImageOps.fit(image, (size, size), Image.Resampling.BICUBIC)
    return torch.from_numpy(np.array(square)).permute(2, 0, 1)                       # (3, S, S), channels-last


class PhotoFolder(torch.utils.data.Dataset):
    def __init__(self, root: str | Path, size: int) -> None:
        self.root = Path(root)
        self.photos = find_photos(root)
        labels = class_labels(root, self.photos)
        self.class_names, self.labels = labels if labels else ([], None)
        self.size = size

    def __len__(self) -> int:
        return len(self.photos)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return load_square(self.photos[index], self.size), (self.labels[index] if self.labels else -1)

    def decoded_bytes(self) -> int:
        return len(self) * 3 * self.size ** 2

    def decoded(self, workers: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """Every photo decoded, in order: (N, 3, S, S) uint8 and labels (N,) (-1 where unknown)."""
        chunk = 64
        loader = torch.utils.data.DataLoader(self, batch_size=chunk, num_workers=min(workers, len(self) // chunk))
        batches = list(loader)
        return torch.cat([photos for photos, _ in batches]), torch.cat([labels for _, labels in batches])


class EpochSampler(torch.utils.data.Sampler[int]):
    """Endless photo indices for one process: epoch e is a permutation seeded by (seed, e), dealt round-robin
    over `world` processes (padded by wrapping, as DistributedSampler). Starts `skip` indices into this
    process's stream, so a resumed run draws exactly what the uninterrupted run would have drawn."""

    def __init__(self, size: int, seed: int, rank: int = 0, world: int = 1, skip: int = 0) -> None:
        self.size, self.seed, self.rank, self.world, self.skip = size, seed, rank, world, skip
        self.per_rank = math.ceil(size / world)

    def __iter__(self) -> Iterator[int]:
        epoch, offset = divmod(self.skip, self.per_rank)
        while True:
            order = torch.randperm(self.size, generator=torch.Generator().manual_seed(self.seed * 100_003 + epoch))
            order = order.repeat(math.ceil(self.per_rank * self.world / self.size))[:self.per_rank * self.world]
            yield from order[self.rank::self.world][offset:].tolist()
            epoch, offset = epoch + 1, 0


def _to_device(batch: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Batch -> device without waiting for the device: from host memory, a pinned asynchronous copy on CUDA."""
    if batch.device == device:
        return batch
    if device.type == "cuda":
        return batch.pin_memory().to(device, non_blocking=True)
    return batch.to(device)


def class_partners(labels: torch.Tensor, pick: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """For each picked photo index (B,), a random *other* photo index of the same class (itself only when its
    class has one photo). labels (N,) int, every photo labelled."""
    order = torch.argsort(labels, stable=True)                                 # photo indices grouped by class
    counts = torch.bincount(labels)
    starts = torch.cumsum(counts, 0) - counts                                  # (C,) first slot of each class
    slot = torch.empty_like(order)
    slot[order] = torch.arange(len(labels), device=labels.device)              # slot of each photo in `order`
    label = labels[pick]
    count, start = counts[label], starts[label]
    step = 1 + (torch.rand(pick.shape, generator=generator, device=pick.device) * (count - 1)).long()
    return order[start + (slot[pick] - start + step) % count]


class PhotoSource:
    """Batches of square uint8 photos (B, 3, S, S) on the device, with labels (B,) (or None without classes),
    and, when `partners` is asked for, a second batch of the same shape: for each photo another one of its class
    (class pairs, train.pairs).

    Small datasets are decoded once and held (on the GPU when they fit, so a batch is one gather there);
    batches are drawn with replacement from the source's own generator, whose state goes into checkpoints.
    Large datasets are streamed by DataLoader workers in EpochSampler order, re-entered at `start_step`.
    """

    def __init__(self, folder: PhotoFolder, batch_size: int, device: torch.device, workers: int, seed: int,
                 rank: int = 0, world: int = 1, start_step: int = 0, partners: bool = False) -> None:
        self.batch_size, self.device, self.with_partners = batch_size, device, partners
        self.has_labels = folder.labels is not None
        self.loader: Iterator | None = None
        held = folder.decoded_bytes() <= IN_MEMORY_BYTES
        if partners and not (held and self.has_labels):
            why = "class subfolders" if not self.has_labels else "a dataset small enough to hold in memory"
            raise ValueError(f"{folder.root}: class pairs need {why}")
        if held:
            photos, labels = folder.decoded(workers)
            fits_gpu = device.type == "cuda" and (
                folder.decoded_bytes() < GPU_MEMORY_SHARE * torch.cuda.mem_get_info(device)[0])
            on_device = device.type == "cpu" or fits_gpu
            home = device if on_device else torch.device("cpu")
            self.photos, self.labels = photos.to(home), labels.to(home)
            self.generator = torch.Generator(device=home).manual_seed(stream_seed(seed, rank, PHOTO_STREAM))
        else:
            sampler = EpochSampler(len(folder), seed, rank, world, skip=start_step * batch_size)
            self.generator = None
            self.loader = iter(torch.utils.data.DataLoader(
                folder, batch_size=batch_size, sampler=sampler, num_workers=workers, drop_last=True,
                pin_memory=device.type == "cuda", persistent_workers=workers > 0))

    def next(self) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """photos (B, 3, S, S) uint8, labels (B,) or None, partners (B, 3, S, S) uint8 or None."""
        partners = None
        if self.loader is None:
            pick = torch.randint(0, len(self.photos), (self.batch_size,), generator=self.generator,
                                 device=self.photos.device)                                       # (B,)
            photos, labels = _to_device(self.photos[pick], self.device), _to_device(self.labels[pick], self.device)
            if self.with_partners:
                partners = _to_device(self.photos[class_partners(self.labels, pick, self.generator)], self.device)
        else:
            photos, labels = next(self.loader)
            photos, labels = photos.to(self.device, non_blocking=True), labels.to(self.device, non_blocking=True)
        return photos, (labels if self.has_labels else None), partners

    def get_state(self) -> torch.Tensor | None:
        """What a checkpoint needs to continue the same draws (the streamed order follows from the step)."""
        return None if self.generator is None else self.generator.get_state()

    def set_state(self, state: torch.Tensor | None) -> None:
        if self.generator is not None and state is not None:
            self.generator.set_state(state)

    def close(self) -> None:
        self.loader = None
