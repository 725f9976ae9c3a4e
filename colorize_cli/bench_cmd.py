"""`sscn bench`: speed, memory and achieved TFLOP/s of the network, and `sscn colorize` end to end."""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from sscn.constants import ATTENTION_MODES
from sscn.models.config import CONFIGS

from .bench_tables import markdown, print_tables
from .errors import CLIError, reported_errors, stderr_is_terminal
from .options import Debug, Device, Precision, Weights, choices, flag, optional

if TYPE_CHECKING:
    from sscn.models import Colorizer

    from .settings import RunSettings
    from .targets import Target

# The reference of the end-to-end runs: a palette, so that no reference file is needed (any reference
# costs the same: it is encoded once).
_PALETTE = [(230, 57, 70), (241, 250, 238), (168, 218, 220), (69, 123, 157), (29, 53, 87)]


def bench(
    device: Device = "auto",
    sizes: Annotated[str, typer.Option(
        "--sizes", help="Working resolutions to time, comma-separated (multiples of 32).")] = "256,512,1024",
    batch_size: Annotated[int, typer.Option("--batch-size", help="Targets per forward pass.")] = 1,
    precision: Precision = "auto",
    weights: Weights = None,
    config: Annotated[Optional[str], optional(
        "--config", help=f"Time a randomly initialised model of this size ({choices(CONFIGS)}) instead of "
                         "loading weights: timings do not depend on weight values.")] = None,
    modes: Annotated[str, typer.Option(
        "--modes", help=f"Attention modes to time, comma-separated: {choices(ATTENTION_MODES)} or "
                        "several.")] = ",".join(ATTENTION_MODES),
    runs: Annotated[Optional[int], optional(
        "--runs", help="Timed runs per measurement, median reported (default: 10 on CUDA, 3 on the CPU).")] = None,
    warmup: Annotated[int, typer.Option("--warmup", help="Untimed runs before each measurement.")] = 2,
    compile: Annotated[bool, flag(
        "--compile", help="torch.compile the network (the first warm-up run compiles; its time is reported apart).")
    ] = False,
    threads: Annotated[Optional[int], optional(
        "--threads", help="CPU threads torch may use (default: torch's choice).")] = None,
    folder: Annotated[Optional[Path], optional(
        "--folder", help="Also time `sscn colorize` over this folder's images: decode, colorize at the first "
                         "--sizes size, write PNG.")] = None,
    video: Annotated[Optional[Path], optional(
        "--video", help="Also time `sscn colorize` over this video: decode, colorize, encode.")
    ] = None,
    json_output: Annotated[bool, flag("--json", help="Print the results as JSON on stdout.")] = False,
    markdown_output: Annotated[bool, flag(
        "--markdown", help="Print the tables as Markdown on stdout (for a README), with device, torch version and "
                           "date.")] = False,
    debug: Debug = False,
) -> None:
    """Time the network and `sscn colorize` end to end: speed, memory and TFLOP/s.

    The network runs with a cached reference (as `sscn colorize` uses it), sparse and dense attention, at
    several working sizes: ms per image, images/s, peak memory (CUDA: allocated; CPU: the process's peak
    RSS), achieved TFLOP/s and its share of the device's dense bf16/fp16 peak where known. On a CPU whose
    precision is not fp32 (auto: bf16 where the CPU has it natively), fp32 is timed too, in the same run, and
    each row shows its speed-up over fp32. --folder and
    --video add end-to-end figures of `sscn colorize` (decode, model, encode). A table goes to stderr;
    --json prints everything, with the device, torch version and date, on stdout; --markdown prints the tables
    as Markdown (the README's speed table is made this way).

    Examples:

      sscn bench --device cuda --batch-size 8

      sscn bench --device cpu --threads 4 --sizes 256,512 --config base --runs 3

      sscn bench --folder photos/ --video clip.mp4 --sizes 256 --json > bench.json

      sscn bench --device cuda --batch-size 64 --compile --markdown >> speed.md
    """
    with reported_errors(debug):
        import torch

        from sscn.models import SSCN, default_weights_path, get_config, load_checkpoint
        from sscn.models.runtime import resolve_device, resolve_precision
        from sscn.tools.benchmark import benchmark, device_name
        from sscn.tools.flops import count_parameters

        if json_output and markdown_output:
            raise CLIError("give --json or --markdown, not both (both print on stdout)")
        size_list = _parse_sizes(sizes)
        mode_list = _parse_modes(modes)
        if batch_size < 1:
            raise CLIError(f"--batch-size must be at least 1 (got {batch_size})")
        if runs is not None and runs < 1:
            raise CLIError(f"--runs must be at least 1 (got {runs})")
        if warmup < 0:
            raise CLIError(f"--warmup must be at least 0 (got {warmup})")
        if compile and warmup < 1:
            raise CLIError(f"--compile needs --warmup 1 or more: the first run compiles (got {warmup})")
        if threads is not None:
            if threads < 1:
                raise CLIError(f"--threads must be at least 1 (got {threads})")
            torch.set_num_threads(threads)
        for path, what in ((folder, "folder"), (video, "video")):
            if path is not None and not path.exists():
                raise CLIError(f"{path}: no such {what}")
        # before the model is loaded and timed: an end-to-end input without images fails now, not minutes later
        inputs = [(kind, source, _targets(kind, source)) for kind, source in (("folder", folder), ("video", video))
                  if source is not None]
        torch_device = resolve_device(device)
        resolved_precision = resolve_precision(precision, torch_device)
        runs = runs or (10 if torch_device.type == "cuda" else 3)
        # on the CPU the new default is shown against fp32 side by side, each pair measured back to back
        precisions = (("fp32",) if torch_device.type == "cpu" and resolved_precision != "fp32" else ()) \
            + (resolved_precision,)

        if config is not None:
            if weights is not None:
                raise CLIError("give --weights or --config (random weights), not both")
            torch.manual_seed(0)
            model, weights_label = SSCN(get_config(config)), "random weights"
        else:
            path = weights or default_weights_path()
            if weights is None and not path.is_file():
                raise CLIError(f"{path}: shipped weights not found (pass --weights FILE, or --config base to "
                               "time random weights)")
            model, weights_label = load_checkpoint(path), str(path)

        report = {
            "device": device_name(torch_device), "torch": torch.__version__,
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "config": model.config.name, "weights": weights_label, "parameters": count_parameters(model),
            "precision": resolved_precision, "precisions": list(precisions), "batch_size": batch_size, "runs": runs,
            "warmup": warmup,
            "k": model.config.k, "r": model.config.r, "compile": compile,
        }
        with _progress(len(size_list) * len(mode_list) * len(precisions)) as advance:
            timings = benchmark(model, size_list, tuple(mode_list), precisions, on_result=advance,
                                batch_size=batch_size, runs=runs, warmup=warmup, device=str(torch_device),
                                compile=compile)
        report["network"] = [timing.as_dict() for timing in timings]
        report["end_to_end"] = []
        if folder is not None or video is not None:
            from .runner import load_colorizer
            from .settings import RunSettings

            with tempfile.TemporaryDirectory(prefix="sscn-bench-") as work:
                for kind, source, targets in inputs:
                    for run_precision in precisions:
                        settings = RunSettings(device=str(torch_device), precision=run_precision, size=size_list[0],
                                               dense=mode_list == ["dense"], batch_size=batch_size, compile=compile,
                                               overwrite=True, quiet=True)
                        colorizer = load_colorizer(settings, model)
                        report["end_to_end"].append(_end_to_end(kind, source, targets, colorizer, Path(work),
                                                                settings))
        print_tables(report)
        if json_output:
            typer.echo(json.dumps(report, indent=2))
        if markdown_output:
            typer.echo(markdown(report))


def _parse_sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise CLIError(f"--sizes {text!r}: expected comma-separated integers such as 256,512,1024") from None
    bad = [size for size in sizes if size < 32 or size > 4096 or size % 32]
    if not sizes or bad:
        raise CLIError(f"--sizes {text!r}: each size must be a multiple of 32 between 32 and 4096")
    return sizes


def _parse_modes(text: str) -> list[str]:
    modes = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [mode for mode in modes if mode not in ATTENTION_MODES]
    if not modes or unknown:
        raise CLIError(f"--modes {text!r}: choose {choices([*ATTENTION_MODES, ','.join(ATTENTION_MODES)])}")
    return list(dict.fromkeys(modes))


@contextlib.contextmanager
def _progress(total: int):
    """Yields a callback advancing a rich progress bar on stderr (nothing when stderr is not a terminal)."""
    if not stderr_is_terminal():
        yield lambda timing: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("[bold]bench"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=Console(stderr=True)) as progress:
        task = progress.add_task("bench", total=total)
        yield lambda timing: progress.advance(task)


def _targets(kind: str, source: Path) -> list[Target]:
    """The images of a --folder, or the --video; CLIError when there are none."""
    from .targets import discover, is_video

    targets = [target for target in discover([str(source)], recursive=False, exclude=[], stdin=[])
               if is_video(target.path) == (kind == "video")]
    if not targets:
        raise CLIError(f"{source}: no {'video' if kind == 'video' else 'images'} to time")
    return targets


def _end_to_end(kind: str, source: Path, targets: list[Target], colorizer: Colorizer, work: Path,
                settings: RunSettings) -> dict:
    """Run the `sscn colorize` engine over a folder's images or a video, writing into `work`, and time it
    after one warm-up batch (which compiles, with --compile, and lets cuDNN pick its kernels)."""
    import torch

    from .runner import Group, run_groups
    from .targets import check_outputs, plan_jobs

    jobs = plan_jobs(targets, str(work / kind) + os.sep, None)
    check_outputs(jobs, [])
    colorizer.set_palette(_PALETTE)
    colorizer.colorize([torch.zeros(1, colorizer.size, colorizer.size, dtype=torch.uint8)] * settings.batch_size)
    group = Group(lambda engine: engine.set_palette(_PALETTE), jobs)
    start = time.perf_counter()
    summary = run_groups([group], settings, colorizer)
    seconds = time.perf_counter() - start
    if summary.exit_code():
        failed = next(item for item in summary.items if item["status"] == "failed")
        raise CLIError(f"end-to-end {kind} run failed: {failed.get('error', failed['input'])}")
    data = summary.as_dict()
    return {"kind": kind, "source": str(source), "precision": colorizer.precision, "files": data["done"],
            "images": data["images"], "size": settings.size, "mode": "dense" if settings.dense else "sparse",
            "seconds": round(seconds, 3), "images_per_second": data["images_per_second"]}
