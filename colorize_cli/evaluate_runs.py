"""The three protocols of `sscn evaluate` run with a progress bar: photos (self-augmentation), a video, pairs."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from . import evaluate_inputs as inputs
from .errors import CLIError, stderr_is_terminal

if TYPE_CHECKING:
    from sscn.train.methods import MethodSet


def with_rows(settings: dict, specs) -> dict:
    """The settings with the evaluated rows (k / r as resolved from the checkpoint)."""
    return {**settings, "rows": [{"name": s.name, "kind": s.kind, "k": s.k, "r": s.r} for s in specs]}


def _progress(label: str, total: int | None):
    """A rich progress bar on stderr (only when stderr is a terminal) and its `advance(n)` callback."""
    from contextlib import nullcontext

    if not stderr_is_terminal():
        return nullcontext(), None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    progress = Progress(TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                        console=Console(stderr=True))
    task = progress.add_task(label, total=total)
    return progress, lambda n: progress.advance(task, n)


def run_photos(bench, folder: Path, paths: list[Path], method_set, settings: dict, size: int, seed: int,
               batch_size: int, device, full_size: int | None = None):
    context, advance = _progress("evaluate", len(paths))
    with context:
        report = bench.evaluate_photos(paths, method_set, size=size, seed=seed, batch_size=batch_size,
                                       device=device, progress=advance, full_size=full_size)
    if not report.scores:
        raise CLIError(f"{folder}: none of its {len(paths)} photos could be read "
                       f"(first: {report.failed[0]['file']}: {report.failed[0]['error']})")
    report.settings = {**settings, "photos": len(paths) - len(report.failed)}
    return report


def run_video(video: Path, ref: Path | None, keyframe: str | None, gaps: str, load_methods: Callable[[], MethodSet],
              settings: dict, seed: int, limit: int | None, batch_size: int, device):
    from sscn.train.evaluate_video import evaluate_video

    from .video import probe

    info = probe(video)
    # the keyframe and gaps are checked before the model is loaded, so bad input fails fast
    total = info.frame_count if limit is None else min(info.frame_count or limit, limit)
    key_index, gap_frames = inputs.keyframe_plan(video, info, keyframe, gaps, total)
    method_set = load_methods()
    if key_index is not None:
        reference, ref_label = inputs.frame_at(video, info, key_index), f"keyframe {keyframe} (frame {key_index})"
        sheet_frames = set(gap_frames.values())
    else:
        if ref is not None:
            from sscn.images import read_image

            reference, ref_label = read_image(ref).pixels, str(ref)
        else:
            # decoding up to the middle costs half a pass; the frame count is exact for constant-rate video
            middle = (info.frame_count or 1) // 2
            reference, ref_label = inputs.frame_at(video, info, middle), f"middle frame ({middle})"
        every = max(1, (total or 4) // 4)
        sheet_frames = set(range(0, 4 * every, every))
    context, advance = _progress("evaluate", total)
    with context:
        report = evaluate_video(inputs.frames(video, info, limit), reference, method_set, seed=seed,
                                batch_size=batch_size, device=device, sheet_frames=sheet_frames, gaps=gap_frames,
                                progress=advance)
    report.settings = {**with_rows(settings, method_set.specs), "reference": ref_label,
                       "frames": len(report.frames) // len(report.methods), "width": info.width,
                       "height": info.height, "fps": float(info.fps)}
    if key_index is not None:
        report.settings.update(keyframe=keyframe, keyframe_frame=key_index)
    return report


def run_pairs(pairs_file: Path, root: Path | None, limit: int | None, method_set: MethodSet, settings: dict,
              size: int, seed: int):
    from sscn.train.evaluate_pairs import evaluate_pairs

    folder, pairs = inputs.pair_rows(pairs_file, root)
    pairs = pairs[:limit] if limit else pairs
    context, advance = _progress("evaluate", len(pairs))
    with context:
        report = evaluate_pairs(inputs.decoded_pairs(folder, pairs), method_set, size=size, seed=seed,
                                progress=advance)
    report.settings = {**with_rows(settings, method_set.specs), "root": str(folder), "pairs": len(pairs)}
    return report
