"""What `sscn evaluate` reads, checked before the model is loaded where it can be, so bad input fails fast:
photo paths, video frames (streamed from ffmpeg), the keyframe plan, and the rows of a pairs file."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import CLIError

if TYPE_CHECKING:
    import torch

    from sscn.train.evaluate_pairs import Pair


def photo_paths(source: Path, limit: int | None) -> list[Path]:
    """One photo, or a folder's photos searched recursively (sorted by path), at most `limit`."""
    from sscn.constants import IMAGE_SUFFIXES
    from sscn.train.data import find_photos

    if source.is_file():
        if source.suffix.lower() not in IMAGE_SUFFIXES:
            raise CLIError(f"{source}: neither a photo ({', '.join(sorted(IMAGE_SUFFIXES))}) nor a video")
        return [source]
    paths = find_photos(source)
    return paths[:limit] if limit else paths


def frames(video: Path, info, limit: int | None) -> Iterator[torch.Tensor]:
    """(3, H, W) uint8 frames streamed from ffmpeg, at most `limit`."""
    from .video import FrameReader

    with FrameReader(video, info) as reader:
        for index, frame in enumerate(reader):
            if limit is not None and index >= limit:
                return
            yield frame.permute(2, 0, 1)                       # (H, W, 3) -> (3, H, W)


def keyframe_plan(video: Path, info, keyframe: str | None, gaps: str,
                  total: int | None) -> tuple[int | None, dict[str, int]]:
    """The keyframe's index and {gap label: frame index}; every one of them inside the frames evaluated."""
    from sscn.train.evaluate_video import frame_offset, parse_gaps

    if keyframe is None:
        return None, {}
    key_index = frame_offset(keyframe, info.fps)
    gap_frames = {label: key_index + offset for label, offset in parse_gaps(gaps, info.fps).items()}
    label, last = max(gap_frames.items(), key=lambda item: item[1])
    if total is not None and last >= total:
        raise CLIError(f"{video}: keyframe {keyframe} + {label} is frame {last}, past the last frame evaluated "
                       f"({total - 1})")
    return key_index, gap_frames


def frame_at(video: Path, info, index: int) -> torch.Tensor:
    """Frame `index` (3, H, W) uint8, decoded from the start."""
    frame = next((frame for number, frame in enumerate(frames(video, info, None)) if number == index), None)
    if frame is None:
        raise CLIError(f"{video}: no frame {index} (the video is shorter than its header says)")
    return frame


def pair_rows(path: Path, root: Path | None) -> tuple[Path, list[Pair]]:
    """The folder the rows are relative to, and the rows as `Pair`s, every file checked to exist: a missing one
    is one line naming the pairs file, its line and the path (exit 2); blank lines and a BOM are fine."""
    from sscn.train.evaluate_pairs import Pair

    from .targets import read_csv_rows

    if root is not None and not root.is_dir():
        raise CLIError(f"{root}: --root is not a folder")
    folder = root if root is not None else path.parent
    pairs = [Pair(cells[0], cells[1], cells[2] if len(cells) == 3 else "", line)
             for line, cells in read_csv_rows(path, "target,reference[,kind]")]
    for pair in pairs:
        for name in (pair.target, pair.reference):
            if not (folder / name).is_file():
                raise CLIError(f"{path}: line {pair.line}: {folder / name}: no such file")
    return folder, pairs


def decoded_pairs(folder: Path, pairs: list[Pair]) -> Iterator[tuple[Pair, torch.Tensor, torch.Tensor]]:
    """(pair, target pixels, reference pixels), decoded as `sscn colorize` reads its inputs."""
    from sscn.images import read_image

    for pair in pairs:
        yield pair, read_image(folder / pair.target).pixels, read_image(folder / pair.reference).pixels
