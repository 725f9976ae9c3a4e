"""`sscn colorize`: colorize photos, folders and videos from a colour reference image."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from sscn.constants import BUDGETS, DESCRIPTORS

from .errors import CLIError, reported_errors
from .options import choices, optional
from .run_options import RunOptions, with_run_options


@with_run_options
def colorize(
    ref: Annotated[Optional[list[str]], optional(
        "--ref", help="Colour reference image (encoded once for all targets); repeat it to pool several references. "
             "Videos: FILE@TIME (seconds, MM:SS or HH:MM:SS) gives the shot at TIME its own reference.")] = None,
    ref_budget: Annotated[str, typer.Option(
        "--ref-budget",
        help=f"Several --ref ({choices(BUDGETS)}): 'each' attends to top-k + r positions of every reference, "
             "'shared' to k + r in all.")] = "each",
    ref_dir: Annotated[Optional[Path], optional(
        "--ref-dir", help="Library folder of colour photos: each target gets its most similar one(s) (described "
                          "once, cached).")] = None,
    ref_count: Annotated[int, typer.Option("--ref-count", help="--ref-dir: references pooled per target.")] = 1,
    match_by: Annotated[str, typer.Option(
        "--match-by", help=f"--ref-dir similarity ({choices(DESCRIPTORS)}): 'pooled' compares global features, "
                           "'cam' CAM-weighted ones.")] = "pooled",
    shot_threshold: Annotated[float, typer.Option(
        "--shot-threshold",
        help="Videos with FILE@TIME references or --ref-dir: lightness-histogram distance (0-1) that starts a shot.")
    ] = 0.2,
    pairs: Annotated[Optional[Path], optional(
        "--pairs", help="CSV of target,reference[,output] rows (instead of TARGET and --ref); paths relative to "
                        "the CSV; a reference that is a folder is a library (as --ref-dir).")] = None,
    *,
    run: RunOptions,
) -> None:
    """Colorize grayscale (or colour) photos and videos with the colours of a reference image.

    Outputs keep each input's size and lightness. Inputs are never modified: an output equal to an input is refused,
    outputs are written to a temporary file and renamed, and existing outputs are skipped unless --overwrite
    (so re-running a command resumes it). Exit codes: 0 ok, 1 some items failed, 2 bad input, 70 internal error
    (a bug), 130 / 143 / 129 stopped by Ctrl-C / SIGTERM / SIGHUP. With --pairs and -o, a row's output is a path
    inside -o.

    Examples:

      sscn colorize old.jpg --ref colour.jpg            (writes old_color.png)

      sscn colorize scans/ --ref colour.jpg -o colored/ --recursive

      find scans -name '*.tif' | sscn colorize - --ref colour.jpg -o colored/

      sscn colorize --pairs jobs.csv -o colored/    (rows: target,reference,output)

      sscn colorize street.mp4 --ref colour.jpg -o street_color.mp4

      sscn colorize scans/ --ref beach.jpg --ref dunes.jpg -o colored/    (references pooled)

      sscn colorize film.mp4 --ref street.jpg@0 --ref harbour.jpg@01:23.5 -o film_color.mp4   (per shot)

      sscn colorize scans/ film.mp4 --ref-dir library/ -o colored/   (best match per photo and per shot)

      sscn colorize street.mp4 --ref colour.jpg --frames frames/

      sscn colorize old.jpg --ref colour.jpg --quiet --json

      sscn colorize /shared/scans/ --ref colour.jpg -o /shared/colored/ --ray auto   (on a Ray cluster)
    """
    with reported_errors(run.debug):
        if pairs is not None and (run.targets or ref or ref_dir):
            raise CLIError("--pairs replaces TARGET and --ref; give one or the other")
        if pairs is None and not run.targets:
            raise CLIError("give one or more targets (files, folders, videos or -) or --pairs FILE")
        if pairs is None and not ref and ref_dir is None:
            raise CLIError("--ref REFERENCE or --ref-dir FOLDER is required (or use --pairs FILE)")
        if ref and ref_dir is not None:
            raise CLIError("give --ref files or one --ref-dir library, not both")
        if ref_count < 1:
            raise CLIError(f"--ref-count must be at least 1 (got {ref_count})")
        if ref_budget not in BUDGETS:
            raise CLIError(f"--ref-budget must be one of {', '.join(BUDGETS)} (got {ref_budget!r})")
        if match_by not in DESCRIPTORS:
            raise CLIError(f"--match-by must be one of {', '.join(DESCRIPTORS)} (got {match_by!r})")
        from sscn.image_files import ImageError, check_image_file

        from .reference_specs import parse_reference
        from .targets import check_outputs, plan_pairs, read_pairs

        # targets, outputs and reference files first: they need no model (nor torch), so a mistyped path fails
        # at once
        timed = [parse_reference(spec) for spec in ref or []]
        if pairs is not None:
            rows = read_pairs(pairs)
            jobs = plan_pairs(pairs, rows, run.out, run.frames)
        else:
            jobs = run.jobs()
        for path, _ in timed:
            try:
                check_image_file(path)
            except ImageError as error:
                raise CLIError(f"reference {error}") from None
        settings = run.settings()
        on_ray = run.ray_settings()

        from sscn.images import read_image

        from .library_match import LibrarySettings, library_photos
        from .runner import Group, load_colorizer
        from .shots import shot_group, timed_choice

        library = LibrarySettings(ref_count, ref_budget, match_by)
        colorizer = None        # loaded by the run, or before it when targets are matched to a library
        if pairs is not None:
            check_outputs(jobs, [pairs, settings.weights, *(row.reference for row in rows)])
            by_reference: dict[Path, list] = {}
            for job in jobs:
                by_reference.setdefault(job.reference, []).append(job)
            libraries = {folder: group for folder, group in by_reference.items() if folder.is_dir()}
            groups = [Group(_reference_from_file(reference, settings.max_pixels), group)
                      for reference, group in by_reference.items() if reference not in libraries]
            if libraries:
                _refuse_on_ray(on_ray, "--pairs rows naming a library folder")
                for folder in libraries:
                    library_photos(folder)      # an empty library fails before the model loads
                colorizer = load_colorizer(settings)
                groups += _library_groups(colorizer, libraries, library, shot_threshold)
        elif ref_dir is not None:
            _refuse_on_ray(on_ray, "--ref-dir")
            photos = library_photos(ref_dir)
            check_outputs(jobs, [*photos, settings.weights])
            colorizer = load_colorizer(settings)
            groups = _library_groups(colorizer, {ref_dir: jobs}, library, shot_threshold)
        else:
            paths = [path for path, _ in timed]
            check_outputs(jobs, [*paths, settings.weights])
            try:
                references = [read_image(path, settings.max_pixels).pixels for path in paths]
            except ImageError as error:
                raise CLIError(f"reference {error}") from None
            per_shot = [job for job in jobs if job.video and any(time is not None for _, time in timed)]
            if per_shot:
                _refuse_on_ray(on_ray, "--ref FILE@TIME")
            groups = [Group(lambda engine: engine.set_references(references, ref_budget),
                            [job for job in jobs if job not in per_shot])]
            groups += [shot_group(job, shot_threshold, timed_choice(timed), ref_budget) for job in per_shot]
        code = run.run(groups, settings, on_ray, colorizer)
    raise typer.Exit(code)


def _reference_from_file(path: Path, max_pixels: int):
    """A Group.set_reference that reads `path` when its group comes up (a bad one fails only its rows)."""
    from sscn.images import read_image

    def set_reference(colorizer) -> None:
        colorizer.set_reference(read_image(path, max_pixels).pixels)

    return set_reference


def _refuse_on_ray(on_ray, what: str) -> None:
    """Reference choice per target or per shot runs on the local engine only."""
    if on_ray:
        raise CLIError(f"{what} runs locally: leave out --ray (on Ray each job list has its references fixed)")


def _library_groups(colorizer, jobs_by_library: dict[Path, list], library, shot_threshold: float) -> list:
    """Groups for targets matched to library folders: photos by their best match, videos shot by shot."""
    from .library_match import match_groups, open_index
    from .shots import library_choice, shot_group

    groups = []
    for folder, jobs in jobs_by_library.items():
        index = open_index(colorizer, folder, library)
        groups += match_groups(index, [job for job in jobs if not job.video], library)
        choose = library_choice(index, library.count)
        groups += [shot_group(job, shot_threshold, choose, library.budget) for job in jobs if job.video]
    return groups
