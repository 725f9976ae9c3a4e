"""What to colorize and where each result goes.

Targets are image files, video files, folders (images and videos inside; `recursive` descends) or `-`
(paths read from stdin, one a line). Output naming, documented in `sscn colorize --help`:

- no `-o`: `photo.jpg` -> `photo_color.png` and `clip.mp4` -> `clip_color.mp4` beside the input; a folder
  `shots/` -> a sibling folder `shots_color/` mirroring its layout;
- `-o FILE` (one target, with a suffix): exactly that file, its format from the suffix;
- `-o DIR`: `DIR/<relative path>.png` (videos keep their container, or `.mp4`), where the relative path is
  taken inside a folder target, or below the deepest folder common to loose files.
"""
from __future__ import annotations

import csv
import dataclasses
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sscn.constants import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from sscn.models.outputs import check_folder, check_output, protect

from .errors import CLIError
from .formats import VIDEO_OUTPUT_FORMATS, WRITE_FORMATS, output_format

OUTPUT_TAG = "_color"
IMAGE_OUTPUT_SUFFIX = ".png"


@dataclass(frozen=True)
class Target:
    path: Path                   # the input file (may not exist: reading it reports the problem)
    relative: Path               # its place under `-o DIR`
    default_output: Path | None  # folder targets: its place in the sibling `<folder>_color`; loose: None


@dataclass(frozen=True)
class Job:
    source: Path
    output: Path                 # image or video file; for `frames`, the folder of numbered PNG frames
    video: bool = False
    frames: bool = False
    reference: Path | None = None  # --pairs: this row's reference (None: the run's one reference)


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES


def natural_key(path: Path) -> list:
    """frame_2 before frame_10."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", str(path))]


def read_path_lines(lines: Iterable[str]) -> list[str]:
    """Target paths from stdin: one a line, blank lines ignored, surrounding whitespace kept off."""
    return [line.strip() for line in lines if line.strip()]


def discover(names: list[str], recursive: bool, exclude: list[Path], stdin: Iterable[str]) -> list[Target]:
    """Expand target arguments into files; `exclude` folders (the outputs) are never searched."""
    if names.count("-") > 1:
        raise CLIError("'-' (read targets from stdin) may be given only once")
    expanded = [p for name in names for p in (read_path_lines(stdin) if name == "-" else [name])]
    if not expanded:
        raise CLIError("no targets given" + (" on stdin" if "-" in names else ""))
    excluded = {os.path.realpath(p) for p in exclude}
    targets: list[Target] = []
    loose: list[Path] = []
    for path in map(Path, expanded):
        if path.is_dir():
            folder = Path(os.path.abspath(path))
            default_dir = folder.parent / f"{folder.name}{OUTPUT_TAG}"
            # with several targets, each folder keeps its own name under -o DIR
            prefix = Path(folder.name if len(expanded) > 1 else "")
            for file in _folder_files(path, recursive, excluded):
                inner = file.relative_to(path)
                targets.append(Target(file, prefix / inner, default_dir / inner))
        else:
            loose.append(path)
    if loose and not targets and not any(os.path.lexists(p) for p in loose):
        # nothing to do but report: fail before the model loads (a missing file among others is that item's failure)
        raise CLIError(f"{loose[0]}: no such file" if len(loose) == 1
                       else f"none of the targets exist: {', '.join(map(str, loose))}")
    if loose:
        parents = [os.path.dirname(os.path.abspath(p)) for p in loose]
        root = os.path.commonpath(parents)
        targets += [Target(p, Path(os.path.relpath(os.path.abspath(p), root)), None) for p in loose]
    if not targets:
        raise CLIError(f"no images or videos found in {', '.join(expanded)}"
                       + ("" if recursive else " (add --recursive to search subfolders)"))
    return targets


def _folder_files(root: Path, recursive: bool, excluded: set[str]) -> list[Path]:
    wanted = IMAGE_SUFFIXES | VIDEO_SUFFIXES
    found = []
    for folder, subfolders, files in os.walk(root):
        # hidden names are skipped: they include the `.name.part` files of interrupted writes
        subfolders[:] = [d for d in subfolders if recursive and not d.startswith(".")
                         and os.path.realpath(os.path.join(folder, d)) not in excluded]
        found += [Path(folder) / f for f in files if not f.startswith(".") and Path(f).suffix.lower() in wanted]
    return sorted(found, key=natural_key)


def _video_suffix(source: Path) -> str:
    suffix = source.suffix.lower()
    return suffix if suffix in VIDEO_OUTPUT_FORMATS else ".mp4"


def _names_a_file(out: str, single: bool) -> bool:
    """`-o` is a file when it has a known suffix (or, for one target, any suffix), is no folder and does
    not end with a slash."""
    path = Path(out)
    if out.endswith(("/", os.sep)) or path.is_dir():
        return False
    return path.suffix.lower() in set(WRITE_FORMATS) | set(VIDEO_OUTPUT_FORMATS) or (single and bool(path.suffix))


def plan_jobs(targets: list[Target], out: str | None, frames: Path | None) -> list[Job]:
    """One job per target with its output path (see the module docstring)."""
    out_file = out is not None and _names_a_file(out, len(targets) == 1)
    if out_file and len(targets) > 1:
        raise CLIError(f"-o {out} names a file, but there are {len(targets)} targets; give a folder")
    videos = sum(is_video(t.path) for t in targets)
    if frames is not None and not videos:
        raise CLIError("--frames applies to video targets, and none was given")
    if out_file and videos and Path(out).suffix.lower() not in VIDEO_OUTPUT_FORMATS:
        raise CLIError(f"-o {out}: a video needs a video suffix ({', '.join(VIDEO_OUTPUT_FORMATS)}), "
                       "or use --frames DIR")
    if out_file and not videos:
        output_format(Path(out))
    out_dir = Path(out) if out is not None and not out_file else None
    jobs = []
    for target in targets:
        video = is_video(target.path)
        if video and frames is not None:
            output = frames if videos == 1 else frames / target.relative.with_suffix("")
            jobs.append(Job(target.path, output, video=True, frames=True))
            continue
        suffix = _video_suffix(target.path) if video else IMAGE_OUTPUT_SUFFIX
        if out_file:
            output = Path(out)
        elif out_dir is not None:
            output = out_dir / target.relative.with_suffix(suffix)
        elif target.default_output is not None:
            output = target.default_output.with_suffix(suffix)
        else:
            output = target.path.with_name(f"{target.path.stem}{OUTPUT_TAG}{suffix}")
        jobs.append(Job(target.path, output, video=video))
    return jobs


def read_csv_rows(path: Path, columns: str) -> list[tuple[int, list[str]]]:
    """(line number, cells stripped) of each row of a pairs file whose rows are `columns`, two named cells and
    an optional third (e.g. 'target,reference[,output]'). UTF-8 with or without a byte-order mark; blank lines
    are skipped; a first row starting with `target` is the header. Any other problem is a CLIError naming the
    file and the line."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            rows = [(reader.line_num, [cell.strip() for cell in row]) for row in reader
                    if any(cell.strip() for cell in row)]
    except FileNotFoundError:
        raise CLIError(f"{path}: pairs file not found") from None
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise CLIError(f"{path}: cannot read the pairs file ({error})") from None
    if rows and rows[0][1][0].lower() == "target":
        rows = rows[1:]
    if not rows:
        raise CLIError(f"{path}: no rows (expected {columns} lines)")
    for line, cells in rows:
        if len(cells) not in (2, 3) or not cells[0] or not cells[1]:
            raise CLIError(f"{path}: line {line} {','.join(cells)!r} is not {columns}")
    return rows


@dataclass(frozen=True)
class PairRow:
    number: int                  # line in the CSV file, for messages
    target: Path                 # relative to the CSV's folder
    reference: Path
    output: str | None           # as written in the CSV: resolved by `plan_pairs`


def read_pairs(path: Path) -> list[PairRow]:
    """`target,reference[,output]` rows (read_csv_rows); targets and references relative to the CSV's folder."""
    base = path.parent
    return [PairRow(line, base / cells[0], base / cells[1], cells[2] if len(cells) == 3 and cells[2] else None)
            for line, cells in read_csv_rows(path, "target,reference[,output]")]


def plan_pairs(csv_path: Path, rows: list[PairRow], out: str | None, frames: Path | None) -> list[Job]:
    """Jobs for --pairs rows: each keeps its reference; a row's own output wins over the derived one. Without
    -o a row's output is relative to the CSV's folder (or absolute); with -o it is relative to -o and must
    stay inside it."""
    for row in rows:
        if row.target.is_dir():
            raise CLIError(f"{row.target}: is a folder; --pairs rows name files")
    if out is not None and _names_a_file(out, single=False):
        raise CLIError(f"-o {out} names a file; with --pairs give a folder (or an output column)")
    targets = discover([str(row.target) for row in rows], recursive=False, exclude=[], stdin=[])
    jobs = plan_jobs(targets, out, frames)
    return [dataclasses.replace(job, reference=row.reference, output=_row_output(csv_path, row, job, out))
            for job, row in zip(jobs, rows)]


def _row_output(csv_path: Path, row: PairRow, job: Job, out: str | None) -> Path:
    """The output a row asks for, checked against its target's kind; the derived one when it names none."""
    where = f"{csv_path}: line {row.number}"
    if row.output is None:
        return job.output
    if job.frames:
        raise CLIError(f"{where}: --frames writes {row.target}'s frames into a folder; leave its output empty")
    written = Path(row.output)
    if out is None:
        output = csv_path.parent / written
    elif written.is_absolute() or os.path.normpath(written).split(os.sep)[0] == os.pardir:
        raise CLIError(f"{where}: output {row.output} is outside -o {out} (with -o, an output is a path "
                       "inside it; without -o, paths are taken as written)")
    else:
        output = Path(out) / written
    suffix = output.suffix.lower()
    if job.video and suffix not in VIDEO_OUTPUT_FORMATS:
        raise CLIError(f"{where}: {row.target} is a video; its output {row.output} needs a video suffix "
                       f"({', '.join(VIDEO_OUTPUT_FORMATS)})")
    if not job.video and suffix not in WRITE_FORMATS:
        raise CLIError(f"{where}: {row.target} is an image; its output {row.output} needs an image suffix "
                       f"({', '.join(WRITE_FORMATS)})")
    return output


def check_outputs(jobs: list[Job], inputs: Iterable[Path | None], extra_outputs: dict[str, Path] | None = None
                  ) -> None:
    """Before any model is loaded: refuse two writers of one file (jobs, and `extra_outputs` by option name),
    any output that is an input (the same file, however named: `inputs` and every job's source are protected
    for the whole run) and any output that cannot be written where it is (a parent is a file, or not
    writable)."""
    extra_outputs = extra_outputs or {}
    seen: dict[str, str] = {}
    for writer, output in [*((str(job.source), job.output) for job in jobs), *extra_outputs.items()]:
        key = os.path.realpath(output)
        if key in seen:
            raise CLIError(f"{seen[key]} and {writer} would both be written to {output}")
        seen[key] = writer
    protect([*inputs, *(job.source for job in jobs)])
    checked_folders: set[Path] = set()
    for output in [*(job.output for job in jobs if not job.frames), *extra_outputs.values()]:
        if output.exists() or output.parent not in checked_folders:
            check_output(output)
            checked_folders.add(output.parent)
    for job in jobs:
        if job.frames:
            check_folder(job.output)
