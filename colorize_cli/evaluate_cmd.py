"""`sscn evaluate`: colorization scored against ground truth, methods side by side, in three protocols:
self-augmentation (paper §4.2: a photo folder or a photo), real references (`--pairs FILE.csv`) and video (a
colour clip, from its middle frame, `--ref` or `--keyframe`)."""
from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer.models import Context

from sscn.constants import METHODS, UPSAMPLERS

from . import evaluate_inputs as inputs
from . import evaluate_runs as runs
from .errors import EXIT_FAILED_ITEMS, CLIError, fail, reported_errors, warn
from .options import Command, Debug, Device, Precision, Upsample, Weights, check_seed, choices, flag

DEFAULT_GAPS = "1s,3s,6s"


def evaluate(
    source: Optional[Path] = typer.Argument(None, metavar="INPUT", show_default=False,
                                            help="Folder of photos (searched recursively), one photo, or a colour "
                                                 "video. Leave out with --pairs."),
    pairs: Optional[Path] = typer.Option(None, "--pairs", show_default=False,
                                         help="Real-reference protocol: a CSV of target,reference[,kind] rows, each "
                                              "target a colour photo (the truth) colorized from the reference."),
    root: Optional[Path] = typer.Option(None, "--root", show_default=False,
                                        help="Folder the --pairs paths are relative to (default: the CSV's)."),
    methods: Annotated[str, typer.Option("--methods", "-m", help=f"Comma-separated rows: {choices(METHODS)}.")
                       ] = ",".join(METHODS),
    weights: Weights = None,
    k: Optional[int] = typer.Option(None, "--k", help="Top-k CAM positions of the `sscn` row (default: the model's)."),
    r: Optional[int] = typer.Option(None, "--r",
                                    help="Random extra positions of the `sscn` row (default: the model's)."),
    sweep: Optional[str] = typer.Option(None, help="Extra sparse rows, k:r pairs, e.g. \"64:64,128:128,256:256\"."),
    size: int = typer.Option(256, help="Photos: short side resized to this (then centre-cropped square, except "
                                       "--pairs targets). Also the network's working resolution."),
    seed: int = typer.Option(0, help="Base seed of the per-image references and the sparse selection."),
    limit: Optional[int] = typer.Option(None, help="Only the first N photos (sorted by path) or pairs, or N video "
                                                   "frames."),
    batch_size: int = typer.Option(16, help="Pairs (or video frames) per forward pass (--pairs: one at a time)."),
    device: Device = "auto",
    precision: Precision = "auto",
    upsample: Upsample = "guided",
    full_size: Optional[int] = typer.Option(
        None, "--full-size", show_default=False,
        help="Photos: score at full resolution: truth and target at short side N, the network at --size, each "
             "network row once per upsampling (bilinear, guided); PSNR and ΔE00 of the N x N result."),
    ref: Optional[Path] = typer.Option(None, help="Video only: reference image (default: the video's middle frame)."),
    keyframe: Optional[str] = typer.Option(None, show_default=False,
                                           help="Video keyframe protocol: the colour frame at this time (1.5s, or "
                                                "a frame number counted from 0) is the reference."),
    gaps: Optional[str] = typer.Option(None, show_default=False,
                                       help="With --keyframe: the frames this long after it are reported on their "
                                            f"own (frames, or seconds with s; default {DEFAULT_GAPS})."),
    json_stdout: Annotated[bool, flag("--json", help="Print every score as JSON on stdout.")] = False,
    json_path: Optional[Path] = typer.Option(None, "--json-out", show_default=False,
                                             help="Write every score as JSON to this file."),
    csv_path: Optional[Path] = typer.Option(None, "--csv",
                                            help="Write per image and reference (or per pair, or per frame) "
                                                 "scores as CSV."),
    sheet: Optional[Path] = typer.Option(None, help="Write a contact sheet PNG: gray | reference | methods | truth."),
    min_psnr: Optional[float] = typer.Option(None, help="Exit 1 when the gate method's mean PSNR (dB) is below this."),
    max_de00: Optional[float] = typer.Option(None, "--max-de00",
                                             help="Exit 1 when the gate method's mean ΔE00 is above this."),
    gate_method: str = typer.Option("sscn", help="The row --min-psnr / --max-de00 check (a method or a sweep row)."),
    debug: Debug = False,
) -> None:
    """Score colorization against ground truth: PSNR, SSIM, mean ΔE00 (CIEDE2000) and colourfulness ratio
    against the truth, HIS against the reference.

    A photo folder: references made from each photo itself (TPS warp, random rotation, random crop,
    dominant-colour palette), the paper's protocol. --pairs: each target colorized from another photo, as
    users do. A colour video: greyed, colorized with one reference, scored per frame plus a flicker ratio and
    the CDC; --keyframe makes a frame of the clip the reference and reports the frames --gaps after it. The
    table goes to stderr (also when it is not a terminal, for CI logs); --json prints every score on stdout,
    --json-out, --csv and --sheet write files (never over an input).

    Examples:

      sscn evaluate photos/val --json-out scores.json

      sscn evaluate photos/val --methods sscn,reinhard --min-psnr 24 --limit 20

      sscn evaluate photos/val -m sscn,dense --sweep "64:64,256:256" --csv sweep.csv

      sscn evaluate --pairs docs/val_pairs.csv --root photos/val --max-de00 12 --sheet pairs.png

      sscn evaluate clip.mp4 --keyframe 1s --gaps 1,1s,3s,6s --json-out clip.json
    """
    with reported_errors(debug):
        # the input and the options that go with it first: they need no model (nor torch), so a mistyped path
        # fails at once
        mode = _mode(source, pairs)
        _check_mode_options(mode, ref, keyframe, gaps, root)
        check_seed(seed)
        if upsample not in UPSAMPLERS:
            raise CLIError(f"--upsample {upsample!r}: choose one of {', '.join(UPSAMPLERS)}")

        from sscn.models.checkpoint import default_weights_path
        from sscn.models.runtime import resolve_device, resolve_precision
        from sscn.train import evaluate as bench
        from sscn.train import methods as rows

        from .targets import check_outputs

        names = [name.strip() for name in methods.split(",") if name.strip()]
        specs = rows.method_specs(names, k, r, rows.parse_sweep(sweep) if sweep else [])
        if full_size is not None:
            if full_size < size:
                raise CLIError(f"--full-size must be at least --size ({size}), got {full_size}")
            specs = rows.with_upsamplers(specs)
        gates = [(metric, threshold) for metric, threshold in (("psnr", min_psnr), ("de00", max_de00))
                 if threshold is not None]
        if gates and gate_method not in [spec.name for spec in specs]:
            raise CLIError(f"--gate-method {gate_method!r} is not among the evaluated rows "
                           f"({', '.join(spec.name for spec in specs)})")
        if batch_size < 1:
            raise CLIError(f"--batch-size must be at least 1 (got {batch_size})")
        if limit is not None and limit < 1:
            raise CLIError(f"--limit must be at least 1 (got {limit})")
        torch_device = resolve_device(device)
        precision = resolve_precision(precision, torch_device)
        if full_size is not None and mode != "photos":
            raise CLIError("--full-size is for a photo folder (the self-augmentation protocol)")
        # find the inputs and check the outputs before the model is loaded, so bad input fails fast
        paths = inputs.photo_paths(source, limit) if mode == "photos" else []
        reports = {"--json-out": json_path, "--csv": csv_path, "--sheet": sheet}
        check_outputs([], [source, pairs, ref, weights or default_weights_path(), *paths,
                           *(_pair_files(pairs, root) if mode == "pairs" else [])],
                      {option: path for option, path in reports.items() if path is not None and str(path) != "-"})
        settings = {"input": str(pairs if mode == "pairs" else source), "size": size, "seed": seed,
                    "device": str(torch_device),
                    "precision": precision, "upsample": upsample, "full_size": full_size,
                    "weights": str(weights or "shipped") if any(s.kind != "baseline" for s in specs) else None}
        failed: list[dict] = []
        # the network is loaded once the inputs are known to be good (video: after its keyframe plan)
        load_methods = functools.partial(rows.build_methods, specs, weights, torch_device, size, precision, upsample)
        if mode == "pairs":
            report = runs.run_pairs(pairs, root, limit, load_methods(), settings, size, seed)
            scores = report.scores
        elif mode == "video":
            report = runs.run_video(source, ref, keyframe, gaps or DEFAULT_GAPS, load_methods, settings, seed, limit,
                                    batch_size, torch_device)
            scores = report.frames
        else:
            method_set = load_methods()
            report = runs.run_photos(bench, source, paths, method_set, runs.with_rows(settings, method_set.specs),
                                     size, seed, batch_size, torch_device, full_size)
            failed, scores = report.failed, report.scores
        _print_table(mode, report)
        if json_stdout or str(json_path) == "-":
            sys.stdout.write(json.dumps(report.to_json(), indent=2) + "\n")
        elif json_path is not None:
            bench.write_json(json_path, report.to_json())
        if csv_path is not None:
            bench.write_csv(csv_path, scores)
        if sheet is not None:
            bench.save_sheet(sheet, report.sheet, report.methods)
        for item in failed:
            fail(f"{item['file']}: skipped ({item['error']})")
        for metric, threshold in gates:
            _gate(report, mode, gate_method, metric, threshold)
        if failed:
            raise CLIError(f"{len(failed)} of {len(failed) + report.settings['photos']} photos could not be read",
                           EXIT_FAILED_ITEMS)


def _mode(source: Path | None, pairs: Path | None) -> str:
    """"photos", "video" or "pairs", from INPUT / --pairs (exactly one of them)."""
    from .targets import is_video

    if pairs is not None:
        if source is not None:
            raise CLIError("--pairs replaces INPUT; give one or the other")
        return "pairs"
    if source is None:
        raise CLIError("give an INPUT (a photo folder, a photo or a colour video) or --pairs FILE")
    if not source.exists():
        raise CLIError(f"{source}: no such file or folder")
    return "video" if source.is_file() and is_video(source) else "photos"


def _check_mode_options(mode: str, ref: Path | None, keyframe: str | None, gaps: str | None,
                        root: Path | None) -> None:
    if ref is not None and mode != "video":
        raise CLIError("--ref is for video input (photos are their own references; --pairs rows name theirs)")
    if (keyframe is not None or gaps is not None) and mode != "video":
        raise CLIError("--keyframe and --gaps are for video input")
    if gaps is not None and keyframe is None:
        raise CLIError("--gaps needs --keyframe (the frame the gaps count from)")
    if keyframe is not None and ref is not None:
        raise CLIError("--keyframe makes a frame of the video the reference; leave out --ref")
    if root is not None and mode != "pairs":
        raise CLIError("--root is for --pairs")


def _pair_files(pairs_file: Path, root: Path | None) -> list[Path]:
    """Every target and reference a pairs file names (protected from being overwritten by a report)."""
    folder, rows = inputs.pair_rows(pairs_file, root)
    return [folder / name for row in rows for name in (row.target, row.reference)]


def _print_table(mode: str, report) -> None:
    from . import evaluate_tables

    {"photos": evaluate_tables.print_photo_table, "pairs": evaluate_tables.print_pairs_table,
     "video": evaluate_tables.print_video_table}[mode](report)


class EvaluateCommand(Command):
    """Takes the old spelling `--json PATH` as `--json-out PATH`, with a deprecation line: `--json` is now
    a flag printing to stdout, as in every other subcommand."""

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        _, extra, _ = self.make_parser(ctx).parse_args(args=list(args))
        if extra:           # a value after INPUT: the old --json's?
            for index, arg in enumerate(args[:-1]):
                if arg == "--json" and args[index + 1] in extra:
                    warn("--json PATH is deprecated; use --json-out PATH (--json alone prints the scores on stdout)")
                    args = [*args[:index], "--json-out", *args[index + 1:]]
                    break
        return super().parse_args(ctx, args)


_GATES = {"psnr": ("--min-psnr", "PSNR", " dB"), "de00": ("--max-de00", "ΔE00", "")}
_GATE_SCOPES = {"photos": "mean (TPS/RR/RC)", "pairs": "mean over pairs", "video": "mean per-frame"}


def _gate(report, mode: str, method: str, metric: str, threshold: float) -> None:
    """One line either way; a shortfall exits 1. PSNR must reach the threshold, ΔE00 stay at or below it."""
    row = report.summary()[method]
    value = row[metric] if mode == "video" else row["mean"][metric]
    option, name, unit = _GATES[metric]
    what = f"{_GATE_SCOPES[mode]} {name}"
    if metric == "psnr" and value < threshold:
        raise CLIError(f"quality gate failed: {method} {what} {value:.2f}{unit} is {threshold - value:.2f}{unit} "
                       f"below {option} {threshold:.2f}", EXIT_FAILED_ITEMS)
    if metric == "de00" and value > threshold:
        raise CLIError(f"quality gate failed: {method} {what} {value:.2f} is {value - threshold:.2f} above "
                       f"{option} {threshold:.2f}", EXIT_FAILED_ITEMS)
    from .evaluate_tables import console

    console().print(f"quality gate passed: {method} {what} {value:.2f}{unit} {'>=' if metric == 'psnr' else '<='} "
                    f"{threshold:.2f}")
