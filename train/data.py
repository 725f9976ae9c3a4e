"""Training photos: a folder (recursive), class subfolders as labels, held decoded in memory when small,
streamed by DataLoader workers when large. Every photo is delivered as a square uint8 (3, S, S) tensor:
short side resized to S, centre-cropped; random crops are then taken on the device (train.pairs).
"""
from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image, ImageOps

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


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
    """Decode, honour EXIF orientation, resize the short side to `size`, centre-crop: (3, size, size) uint8."""
    with Image.open(path) as image:
        image = ImageOps.exif_transpose(image).convert("RGB")
        image = ImageOps.fit(image, (size, size), Image.Resampling.BICUBIC)
        return torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8).view(size, size, 3).permute(2, 0, 1)


class PhotoFolder(torch.utils.data.Dataset):
    def __init__(self, root: str | Path, size: int) -> None:
        self.photos = find_photos(root)
        labels = class_labels(root, self.photos)
        self.class_names, self.labels = labels if labels else ([], None)
        self.size = size

    def __len__(self) -> int:
        return len(self.photos)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return load_square(self.photos[index], self.size), (self.labels[index] if self.labels else -1)

    def decoded(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Every photo decoded: (N, 3, S, S) uint8 and labels (N,) (-1 where unknown)."""
        items = [self[i] for i in range(len(self))]
        return torch.stack([p for p, _ in items]), torch.tensor([label for _, label in items])
