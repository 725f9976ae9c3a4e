"""`sscn evaluate`: the self-augmentation benchmark (paper §4.2) and video scores, methods side by side."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from . import options
from .errors import EXIT_FAILED_ITEMS, CLIError, fail, reported_errors, stderr_is_terminal

DEFAULT_METHODS = "sscn,dense,stage1,reinhard,welsh,copy-gray"


def evaluate(
    source: Path = typer.Argument(..., metavar="INPUT",
                                  help="Folder of photos (searched recursively), one photo, or a colour video."),
    methods: str = typer.Option(DEFAULT_METHODS, "--methods", "-m",
                                help="Comma-separated rows: sscn, dense, stage1, reinhard, welsh, copy-gray."),
    weights: Optional[Path] = typer.Option(None, help="Model weights (.safetensors); default: the shipped model."),
    k: Optional[int] = typer.Option(None, "--k", help="Top-k CAM positions of the `sscn` row (default: the model's)."),
    r: Optional[int] = typer.Option(None, "--r",
                                    help="Random extra positions of the `sscn` row (default: the model's)."),
    sweep: Optional[str] = typer.Option(None, help="Extra sparse rows, k:r pairs, e.g. \"64:64,128:128,256:256\"."),
    size: int = typer.Option(256, help="Photos: short side resized to this, centre-cropped square. Also the "
                                       "network's working resolution."),
    seed: int = typer.Option(0, help="Base seed of the per-image references and the sparse selection."),
    limit: Optional[int] = typer.Option(None, help="Only the first N photos (sorted by path), or N video frames."),
    batch_size: int = typer.Option(16, help="Pairs (or video frames) per forward pass."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or cuda:N."),
    precision: str = options.PRECISION,
    upsample: str = options.UPSAMPLE,
    full_size: Optional[int] = typer.Option(
        None, "--full-size", show_default=False,
        help="Photos: score at full resolution: truth and target at short side N, the network at --size, each "
             "network row once per upsampling (bilinear, guided); PSNR and ΔE00 of the N x N result."),
    ref: Optional[Path] = typer.Option(None, help="Video only: reference image (default: the video's middle frame)."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write every score as JSON ('-' for stdout)."),
    csv_path: Optional[Path] = typer.Option(None, "--csv",
                                            help="Write per image and reference (or per frame) scores as CSV."),
    sheet: Optional[Path] = typer.Option(None, help="Write a contact sheet PNG: gray | reference | methods | truth."),
    min_psnr: Optional[float] = typer.Option(None, help="Exit 1 when the gate method's mean PSNR (dB) is below this."),
    gate_method: str = typer.Option("sscn", help="The row --min-psnr checks (a method or a sweep row name)."),
    debug: bool = typer.Option(False, help="Show tracebacks."),
) -> None:
    """Score colorization against ground truth: references made from each photo itself (TPS warp, random
    rotation, random crop, dominant-colour palette), PSNR / SSIM against the photo, HIS against the reference.
    A colour video is greyed, colorized with one reference, and scored per frame plus a flicker ratio.

    Examples:

      sscn evaluate photos/val --json scores.json

      sscn evaluate photos/val --methods sscn,reinhard,copy-gray --min-psnr 24 --limit 20

      sscn evaluate photos/val --methods sscn,dense --sweep "64:64,128:128,256:256" --csv sweep.csv

      sscn evaluate clip.mp4 --ref frame.jpg --sheet clip-sheet.png
    """
    with reported_errors(debug):
        from models.colorizer import resolve_device, resolve_precision
        from models.upsample import UPSAMPLERS
        from train import evaluate as bench

        from .targets import is_video as is_video_path
        from .video import probe

        names = [name.strip() for name in methods.split(",") if name.strip()]
        specs = bench.method_specs(names, k, r, bench.parse_sweep(sweep) if sweep else [])
        if full_size is not None:
            if full_size < size:
                raise CLIError(f"--full-size must be at least --size ({size}), got {full_size}")
            specs = bench.with_upsamplers(specs)
        if upsample not in UPSAMPLERS:
            raise CLIError(f"--upsample {upsample!r}: choose one of {', '.join(UPSAMPLERS)}")
        if min_psnr is not None and gate_method not in [spec.name for spec in specs]:
            raise CLIError(f"--gate-method {gate_method!r} is not among the evaluated rows "
                           f"({', '.join(spec.name for spec in specs)})")
        if batch_size < 1:
            raise CLIError(f"--batch-size must be at least 1 (got {batch_size})")
        if limit is not None and limit < 1:
            raise CLIError(f"--limit must be at least 1 (got {limit})")
        if not source.exists():
            raise CLIError(f"{source}: no such file or folder")
        is_video = source.is_file() and is_video_path(source)
        if ref is not None and not is_video:
            raise CLIError("--ref is for video input (photos are their own references)")
        torch_device = resolve_device(device)
        precision = resolve_precision(precision, torch_device)
        # find the inputs before loading the model, so bad input fails fast
        info = probe(source) if is_video else None
        paths = None if is_video else _photo_paths(source, limit)
        method_set = bench.build_methods(specs, weights, torch_device, size, precision, upsample)
        settings = {"input": str(source), "size": size, "seed": seed, "device": str(torch_device),
                    "precision": precision, "upsample": upsample, "full_size": full_size,
                    "weights": (str(weights or "shipped") if method_set.network else None),
                    "rows": [{"name": s.name, "kind": s.kind, "k": s.k, "r": s.r} for s in method_set.specs]}
        if is_video:
            report, failed = _run_video(bench, source, info, ref, method_set, settings, seed, limit, batch_size,
                                        torch_device), []
            rows = report.frames
            _print_video_table(report)
        else:
            report = _run_photos(bench, source, paths, method_set, settings, size, seed, batch_size, torch_device,
                                 full_size)
            failed, rows = report.failed, report.scores
            _print_photo_table(report)
        if json_path is not None:
            if str(json_path) == "-":
                sys.stdout.write(json.dumps(report.to_json(), indent=2) + "\n")
            else:
                bench.write_json(json_path, report.to_json())
        if csv_path is not None:
            bench.write_csv(csv_path, rows)
        if sheet is not None:
            bench.save_sheet(sheet, report.sheet, report.methods)
        for item in failed:
            fail(f"{item['file']}: skipped ({item['error']})")
        if min_psnr is not None:
            _gate(report, gate_method, min_psnr, video=is_video)
        if failed:
            raise CLIError(f"{len(failed)} of {len(failed) + report.settings['photos']} photos could not be read",
                           EXIT_FAILED_ITEMS)


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


def _photo_paths(source: Path, limit: int | None) -> list[Path]:
    from train.data import IMAGE_SUFFIXES, find_photos

    if source.is_file():
        if source.suffix.lower() not in IMAGE_SUFFIXES:
            raise CLIError(f"{source}: neither a photo ({', '.join(sorted(IMAGE_SUFFIXES))}) nor a video")
        return [source]
    paths = find_photos(source)
    return paths[:limit] if limit else paths


def _run_photos(bench, folder: Path, paths: list[Path], method_set, settings: dict, size: int, seed: int,
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


def _frames(video: Path, info, limit: int | None):
    """(3, H, W) uint8 frames streamed from ffmpeg, at most `limit`."""
    from .video import FrameReader

    with FrameReader(video, info) as reader:
        for index, frame in enumerate(reader):
            if limit is not None and index >= limit:
                return
            yield frame.permute(2, 0, 1)                       # (H, W, 3) -> (3, H, W)


def _run_video(bench, video: Path, info, ref: Path | None, method_set, settings: dict, seed: int,
               limit: int | None, batch_size: int, device):
    total = info.frame_count if limit is None else min(info.frame_count or limit, limit)
    if ref is not None:
        from .images import read_image

        reference, ref_label = read_image(ref).pixels, str(ref)
    else:
        # decoding up to the middle costs half a pass; the frame count is exact for constant-rate video
        middle = (info.frame_count or 1) // 2
        reference = next((frame for index, frame in enumerate(_frames(video, info, None)) if index == middle), None)
        if reference is None:
            raise CLIError(f"{video}: no frame {middle} (the video is shorter than its header says)")
        ref_label = f"middle frame ({middle})"
    context, advance = _progress("evaluate", total)
    with context:
        report = bench.evaluate_video(_frames(video, info, limit), reference, method_set, seed=seed,
                                      batch_size=batch_size, device=device, sheet_every=max(1, (total or 4) // 4),
                                      progress=advance)
    report.settings = {**settings, "reference": ref_label, "frames": len(report.frames) // len(report.methods),
                       "width": info.width, "height": info.height, "fps": float(info.fps)}
    return report


def _console():
    from rich.console import Console

    # a log file gets the table unwrapped; a terminal gets its own width
    return Console(stderr=True, width=None if stderr_is_terminal() else 200)


def _print_photo_table(report) -> None:
    from rich.table import Table

    from train.evaluate import KIND_TITLES

    summary = report.summary()
    columns = [c for c in ("tps", "rr", "rc", "palette", "mean") if any(c in row for row in summary.values())]
    best = {c: max((row[c]["psnr"] for row in summary.values() if c in row), default=None) for c in columns}
    photos = report.settings["photos"]
    table = Table(title=f"self-augmentation benchmark: {photos} photo{'' if photos == 1 else 's'} at "
                        f"{report.settings.get('full_size') or report.settings['size']}², "
                        "PSNR (dB) / SSIM / HIS / ΔE00",
                  caption="mean = mean of TPS, RR, RC (paper Table 1); HIS against the reference")
    table.add_column("method")
    for column in columns:
        table.add_column(KIND_TITLES[column], justify="right")
    for method, row in summary.items():
        cells = []
        for column in columns:
            scores = row.get(column)
            text = (f"{scores['psnr']:.2f} / {scores['ssim']:.3f} / {scores['his']:.3f} / {scores['de00']:.2f}"
                    if scores else "-")
            cells.append(f"[bold]{text}[/bold]" if scores and scores["psnr"] == best[column] else text)
        table.add_row(method, *cells)
    console = _console()
    console.print(table)
    console.print(f"{len(report.scores) // max(1, len(report.methods))} pairs in {report.elapsed_s:.1f} s")


def _print_video_table(report) -> None:
    from rich.table import Table

    table = Table(title=f"video: {report.settings['frames']} frames, reference: {report.settings['reference']}",
                  caption="flicker = frame-to-frame ab change of the result / of the source (1 = as steady)")
    for title in ("method", "PSNR (dB)", "SSIM", "HIS", "flicker"):
        table.add_column(title, justify="left" if title == "method" else "right")
    for method, row in report.summary().items():
        flicker = "-" if row["flicker"] is None else f"{row['flicker']:.2f}"
        table.add_row(method, f"{row['psnr']:.2f}", f"{row['ssim']:.3f}", f"{row['his']:.3f}", flicker)
    console = _console()
    console.print(table)
    console.print(f"evaluated in {report.elapsed_s:.1f} s")


def _gate(report, method: str, min_psnr: float, video: bool) -> None:
    """One line either way; a shortfall exits 1."""
    row = report.summary()[method]
    value = row["psnr"] if video else row["mean"]["psnr"]
    what = "mean per-frame PSNR" if video else "mean PSNR (TPS/RR/RC)"
    if value < min_psnr:
        raise CLIError(f"quality gate failed: {method} {what} {value:.2f} dB is {min_psnr - value:.2f} dB "
                       f"below --min-psnr {min_psnr:.2f}", EXIT_FAILED_ITEMS)
    _console().print(f"quality gate passed: {method} {what} {value:.2f} dB >= {min_psnr:.2f}")
