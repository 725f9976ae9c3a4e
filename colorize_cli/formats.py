"""The output formats the CLI writes, by suffix. Torch-free, so that targets and outputs are planned and
checked before the model (and torch) is loaded: a mistyped path fails in a fraction of a second."""
from __future__ import annotations

from pathlib import Path

# image output suffix -> Pillow format
WRITE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".tif": "TIFF",
                 ".tiff": "TIFF", ".bmp": "BMP"}
# video output suffix -> ffmpeg muxer
VIDEO_OUTPUT_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm",
                        ".avi": "avi"}


def output_format(path: Path) -> str:
    """Pillow format name for an output path, from its suffix; ValueError for suffixes not written."""
    try:
        return WRITE_FORMATS[path.suffix.lower()]
    except KeyError:
        raise ValueError(f"{path}: cannot write images with suffix {path.suffix or '(none)'!r}; use one of "
                         f"{', '.join(sorted(WRITE_FORMATS))}") from None
