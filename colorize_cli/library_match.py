"""`--ref-dir`: each target gets the best reference(s) of a library folder (models.library.ReferenceIndex).

Targets are matched before the run and grouped by the references they got, so each chosen set is encoded
once and its targets go through the model in batches as with one `--ref`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sscn.constants import IMAGE_SUFFIXES
from sscn.images import ImageError, read_image
from sscn.models import Colorizer
from sscn.models.library import ReferenceIndex

from .errors import CLIError
from .runner import Group
from .targets import Job, natural_key


@dataclass(frozen=True)
class LibrarySettings:
    count: int = 1                  # references pooled per target
    budget: str = "each"            # models.references.BUDGETS
    descriptor: str = "pooled"      # models.library.DESCRIPTORS


def library_photos(folder: Path) -> list[Path]:
    """The reference images directly inside `folder`, in natural order; a CLIError when there are none."""
    if not folder.is_dir():
        raise CLIError(f"{folder}: reference library not found (--ref-dir takes a folder of colour photos)")
    photos = sorted((path for path in folder.iterdir() if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES
                     and not path.name.startswith(".")), key=natural_key)
    if not photos:
        raise CLIError(f"{folder}: no reference images in the library folder")
    return photos


def _load_reference(path: Path):
    try:
        return read_image(path).pixels
    except ImageError as error:
        raise CLIError(f"reference {error}") from None


def open_index(colorizer: Colorizer, folder: Path, settings: LibrarySettings) -> ReferenceIndex:
    """The folder's index: described once, then read from the cache while its files are unchanged."""
    return ReferenceIndex(colorizer, library_photos(folder), _load_reference, settings.descriptor)


def references_setter(paths: tuple[Path, ...] | list[Path], budget: str):
    """A Group.set_reference encoding `paths` (pooled when several), read when its group comes up."""
    def set_reference(colorizer: Colorizer) -> None:
        colorizer.set_references([read_image(path).pixels for path in paths], budget)

    return set_reference


def match_groups(index: ReferenceIndex, jobs: list[Job], settings: LibrarySettings) -> list[Group]:
    """Image jobs grouped by the references `index` picks for them; each job's choice and similarity go into
    `Group.notes`. A target that cannot be read is left to the engine, which reports it."""
    chosen: dict[tuple[Path, ...], Group] = {}
    unreadable: list[Job] = []
    for job in jobs:
        try:
            target = read_image(job.source).pixels
        except ImageError:
            unreadable.append(job)
            continue
        matches = index.match(target, settings.count, exclude=[job.source])
        key = tuple(match.path for match in matches)
        if key not in chosen:
            setter = references_setter(key, settings.budget) if key else _nothing_left(index.paths[0].parent)
            chosen[key] = Group(setter, [])
        chosen[key].jobs.append(job)
        chosen[key].notes[job.source] = {"reference": [str(match.path) for match in matches],
                                         "similarity": [round(match.similarity, 4) for match in matches]}
    groups = list(chosen.values())
    if unreadable:      # any reference will do: the engine reads the target again and reports why it cannot
        groups.append(Group(references_setter(index.paths[:1], settings.budget), unreadable))
    return groups


def _nothing_left(folder: Path):
    def set_reference(colorizer: Colorizer) -> None:
        raise ValueError(f"library {folder} holds no photo other than the target")

    return set_reference
