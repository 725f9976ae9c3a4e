"""Every kind of bad input, one row each: the exit code, one line on stderr naming the file (or option) and
the problem, no traceback, no input changed (md5 of every file), no temporary `.part` file left.

The runs are in-process (`invoke_sscn`: no interpreter start-up per row); `test_cli_colorize.py` and
`test_signals.py` cover the installed console script.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from sscn.cli.video import ffmpeg_exe


@dataclass(frozen=True)
class World:
    """Inputs shared by every row (never to be modified) and a fresh output folder per row."""
    root: Path
    out: Path
    weights: Path

    def __getitem__(self, name: str) -> Path:
        return self.root / name

    def fast(self) -> list[str]:
        return ["--weights", str(self.weights), "--size", "64"]


def _ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-y", *args], check=True)


@pytest.fixture(scope="module")
def world_root(tmp_path_factory, data_dir, tiny_weights) -> Path:
    root = tmp_path_factory.mktemp("inputs")
    for name in ("campus1.jpg", "campus2.jpg", "tomato.jpg"):
        shutil.copy(data_dir / name, root / name)
    shutil.copy(tiny_weights, root / "tiny.safetensors")
    shutil.copy(tiny_weights, root / "weights.png")             # weights under an image's name
    Image.open(data_dir / "campus1.jpg").save(root / "photo.png")
    Image.new("L", (400, 300)).save(root / "big.png")
    (root / "empty.jpg").write_bytes(b"")
    (root / "notes.jpg").write_text("not a photo\n")
    (root / "cut.jpg").write_bytes((data_dir / "tomato.jpg").read_bytes()[:4000])
    Image.new("F", (8, 8)).save(root / "float.tif")
    Image.new("1", (14200, 14200)).save(root / "bomb.png")     # 202 Mpx in a few kB
    (root / "loop.jpg").symlink_to(root / "loop.jpg")
    (root / "garbage.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    save_file({"w": torch.zeros(2)}, str(root / "foreign.safetensors"))
    (root / "empty_folder").mkdir()
    (root / "mixed").mkdir()
    shutil.copy(data_dir / "campus1.jpg", root / "mixed" / "good.jpg")
    (root / "mixed" / "bad.jpg").write_text("no\n")
    (root / "clip.mp4").write_bytes((data_dir / "tree-2s.mp4").read_bytes())
    (root / "empty.mp4").write_bytes(b"")
    (root / "notes.mp4").write_text("not a video\n")
    _ffmpeg("-f", "lavfi", "-i", "sine=duration=1", "-c:a", "aac", str(root / "sound.mp4"))
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25", "-t", "4", "-pix_fmt", "yuv420p",
            "-movflags", "+faststart", str(root / "whole.mp4"))
    whole = (root / "whole.mp4").read_bytes()
    (root / "half.mp4").write_bytes(whole[:len(whole) // 2])    # index intact, second half of the frames gone
    (root / "whole.mp4").unlink()
    (root / "busy_frames").mkdir()
    Image.new("RGB", (4, 4)).save(root / "busy_frames" / "frame_000001.png")
    (root / "pairs_bad_row.csv").write_text("campus1.jpg\n")
    (root / "pairs_video_png.csv").write_text("clip.mp4,campus2.jpg,clip_out.png\n")
    (root / "pairs_outside.csv").write_text("campus1.jpg,campus2.jpg,../escape.png\n")
    (root / "pairs_absolute.csv").write_text(f"campus1.jpg,campus2.jpg,{root / 'abs.png'}\n")
    (root / "nan.json").write_text('{"colors": ["#264653", "#2a9d8f"], "weights": [NaN, 1]}')
    (root / "photos").mkdir()
    shutil.copy(data_dir / "campus1.jpg", root / "photos" / "a.jpg")
    Image.open(data_dir / "campus2.jpg").save(root / "photos" / "b.png")
    (root / "run").mkdir()
    shutil.copy(tiny_weights, root / "run" / "model.safetensors")
    return root


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink()}


@pytest.fixture
def world(world_root, tmp_path) -> World:
    return World(world_root, tmp_path / "out", world_root / "tiny.safetensors")


@dataclass(frozen=True)
class Case:
    args: Callable[[World], list]
    message: Callable[[World], str]         # the line's text after "sscn: error: " (a substring of it)
    code: int = 2
    lines: int = 1                          # stderr lines: the error (a folder run adds its summary)
    stdin: str | None = None


def colorize(*args) -> Callable[[World], list]:
    """`sscn colorize` with the tiny weights; `{name}` is a file of the world, `{out}` the row's output folder."""
    return lambda w: ["colorize", *_fill(w, args), *w.fast()]


def command(*args) -> Callable[[World], list]:
    return lambda w: _fill(w, args)


def _fill(w: World, args) -> list[str]:
    return [arg.format_map(_Names(w)) if isinstance(arg, str) else str(arg) for arg in args]


class _Names(dict):
    """`{out}` is the row's output folder; `{name|ext}` the world's file name.ext (a dot would be read as an
    attribute)."""

    def __init__(self, world: World) -> None:
        super().__init__(out=world.out)
        self.world = world

    def __missing__(self, key: str) -> str:
        return str(self.world[key.replace("|", ".")])


def says(text: str) -> Callable[[World], str]:
    return lambda w: _fill(w, [text])[0]


CASES = {
    # images
    "zero-byte image": Case(colorize("{empty|jpg}", "--ref", "{campus2|jpg}", "-o", "{out}/"),
                            says("{empty|jpg}: empty file (0 bytes)")),
    "text named .jpg": Case(colorize("{notes|jpg}", "--ref", "{campus2|jpg}", "-o", "{out}/"),
                            says("{notes|jpg}: not an image")),
    "truncated jpeg": Case(colorize("{cut|jpg}", "--ref", "{campus2|jpg}", "-o", "{out}/"),
                           says("{cut|jpg}: corrupt or truncated image")),
    "missing image": Case(colorize("{absent|jpg}", "--ref", "{campus2|jpg}", "-o", "{out}/"),
                          says("{absent|jpg}: no such file")),
    "float image mode": Case(colorize("{float|tif}", "--ref", "{campus2|jpg}", "-o", "{out}/"),
                             says("{float|tif}: unsupported image mode F")),
    "decompression bomb": Case(colorize("{bomb|png}", "--ref", "{campus2|jpg}", "-o", "{out}/"),
                               says("{bomb|png}: image too large (14200x14200 = 202 Mpx; --max-pixels is 100 Mpx")),
    "over --max-pixels": Case(colorize("{big|png}", "--ref", "{campus2|jpg}", "-o", "{out}/", "--max-pixels",
                                       100_000), says("{big|png}: image too large (400x300 = 0.12 Mpx; "
                                                      "--max-pixels is 0.1 Mpx: raise it")),
    "symlink loop": Case(colorize("{loop|jpg}", "--ref", "{campus2|jpg}", "-o", "{out}/"),
                         says("{loop|jpg}: cannot read (Too many levels of symbolic links)")),
    "empty folder": Case(colorize("{empty_folder}", "--ref", "{campus2|jpg}", "-o", "{out}/"),
                         says("no images or videos found in {empty_folder}")),
    "folder with a bad file": Case(colorize("{mixed}", "--ref", "{campus2|jpg}", "-o", "{out}/"),
                                   says("{mixed}/bad.jpg: not an image"), code=1, lines=2),
    "nothing on stdin": Case(colorize("-", "--ref", "{campus2|jpg}", "-o", "{out}/"),
                             says("no targets given on stdin"), stdin=""),
    # references and weights
    "reference not an image": Case(colorize("{campus1|jpg}", "--ref", "{notes|jpg}", "-o", "{out}/"),
                                   says("reference {notes|jpg}: not an image")),
    "missing reference": Case(colorize("{campus1|jpg}", "--ref", "{absent|jpg}", "-o", "{out}/"),
                              says("reference {absent|jpg}: no such file")),
    "no reference": Case(colorize("{campus1|jpg}", "-o", "{out}/"), says("--ref REFERENCE or --ref-dir FOLDER is required")),
    "missing weights": Case(command("colorize", "{campus1|jpg}", "--ref", "{campus2|jpg}", "-o", "{out}/",
                                    "--weights", "{absent|safetensors}"),
                            says("{absent|safetensors}: weights file not found")),
    "corrupt weights": Case(command("colorize", "{campus1|jpg}", "--ref", "{campus2|jpg}", "-o", "{out}/",
                                    "--weights", "{garbage|safetensors}"),
                            says("{garbage|safetensors}: not a readable safetensors file")),
    "foreign weights": Case(command("colorize", "{campus1|jpg}", "--ref", "{campus2|jpg}", "-o", "{out}/",
                                    "--weights", "{foreign|safetensors}"),
                            says("{foreign|safetensors}: not an sscn checkpoint")),
    # settings
    "k out of range": Case(colorize("{campus1|jpg}", "--ref", "{campus2|jpg}", "-o", "{out}/", "--k", -1),
                           says("--k must be >= 0 (got -1)")),
    "k and r both 0": Case(colorize("{campus1|jpg}", "--ref", "{campus2|jpg}", "-o", "{out}/", "--k", 0, "--r", 0),
                           says("--k and --r cannot both be 0")),
    "working size": Case(command("colorize", "{campus1|jpg}", "--ref", "{campus2|jpg}", "-o", "{out}/", "--size", 7),
                         says("working size must be between 32 and 4096 (got 7)")),
    "batch size 0": Case(colorize("{campus1|jpg}", "--ref", "{campus2|jpg}", "-o", "{out}/", "--batch-size", 0),
                         says("--batch-size must be at least 1 (got 0)")),
    "seed 2**70": Case(colorize("{campus1|jpg}", "--ref", "{campus2|jpg}", "-o", "{out}/", "--seed", 2**70),
                       says(f"--seed must be between 0 and 2**64-1 (got {2**70})")),
    "negative seed": Case(colorize("{campus1|jpg}", "--ref", "{campus2|jpg}", "-o", "{out}/", "--seed", -1),
                          says("--seed must be between 0 and 2**64-1 (got -1)")),
    "max-pixels 0": Case(colorize("{campus1|jpg}", "--ref", "{campus2|jpg}", "-o", "{out}/", "--max-pixels", 0),
                         says("--max-pixels must be between 1 and 1000000000 (got 0)")),
    "unknown precision": Case(colorize("{campus1|jpg}", "--ref", "{campus2|jpg}", "-o", "{out}/", "--precision",
                                       "fp8"), says("unknown precision 'fp8'")),
    "unknown device": Case(colorize("{campus1|jpg}", "--ref", "{campus2|jpg}", "-o", "{out}/", "--device", "tpu"),
                           says("unknown device 'tpu'")),
    # outputs
    "output is the input": Case(colorize("{photo|png}", "--ref", "{campus2|jpg}", "-o", "{photo|png}"),
                                says("{photo|png}: output path is an input")),
    "output is the reference": Case(colorize("{campus1|jpg}", "--ref", "{photo|png}", "-o", "{photo|png}"),
                                    says("{photo|png}: output path is an input")),
    "output is the weights": Case(command("colorize", "{campus1|jpg}", "--ref", "{campus2|jpg}", "--weights",
                                          "{weights|png}", "--size", 64, "-o", "{weights|png}"),
                                  says("{weights|png}: output path is an input")),
    "-o parent is a file": Case(colorize("{campus1|jpg}", "--ref", "{campus2|jpg}", "-o", "{notes|jpg}/x.png"),
                                says("{notes|jpg}/x.png: cannot write there: {notes|jpg} is a file, not a folder")),
    "-o checked before the model": Case(command("colorize", "{campus1|jpg}", "--ref", "{campus2|jpg}", "--weights",
                                                "{garbage|safetensors}", "-o", "{notes|jpg}/x.png"),
                                        says("{notes|jpg}/x.png: cannot write there")),
    "-o file for two targets": Case(colorize("{campus1|jpg}", "{tomato|jpg}", "--ref", "{campus2|jpg}", "-o",
                                             "{out}/one.png"), says("names a file, but there are 2 targets")),
    "-o unknown suffix": Case(colorize("{campus1|jpg}", "--ref", "{campus2|jpg}", "-o", "{out}/x.xyz"),
                              says("cannot write images with suffix '.xyz'")),
    # --pairs
    "pairs file missing": Case(command("colorize", "--pairs", "{absent|csv}", "-o", "{out}"),
                               says("{absent|csv}: pairs file not found")),
    "pairs malformed row": Case(command("colorize", "--pairs", "{pairs_bad_row|csv}", "-o", "{out}"),
                                says("{pairs_bad_row|csv}: line 1")),
    "pairs video to .png": Case(command("colorize", "--pairs", "{pairs_video_png|csv}", "-o", "{out}"),
                                says("{pairs_video_png|csv}: line 1: {clip|mp4} is a video; its output "
                                     "clip_out.png needs a video suffix")),
    "pairs output outside -o": Case(command("colorize", "--pairs", "{pairs_outside|csv}", "-o", "{out}"),
                                    says("{pairs_outside|csv}: line 1: output ../escape.png is outside -o")),
    "pairs absolute output": Case(command("colorize", "--pairs", "{pairs_absolute|csv}", "-o", "{out}"),
                                  says("{pairs_absolute|csv}: line 1: output {abs|png} is outside -o")),
    "pairs with a target": Case(command("colorize", "{campus1|jpg}", "--pairs", "{pairs_bad_row|csv}"),
                                says("--pairs replaces TARGET and --ref")),
    # video
    "zero-byte video": Case(colorize("{empty|mp4}", "--ref", "{campus2|jpg}", "-o", "{out}/"),
                            says("{empty|mp4}: empty file (0 bytes)")),
    "text named .mp4": Case(colorize("{notes|mp4}", "--ref", "{campus2|jpg}", "-o", "{out}/"),
                            says("{notes|mp4}: not a readable video")),
    "video without picture": Case(colorize("{sound|mp4}", "--ref", "{campus2|jpg}", "-o", "{out}/"),
                                  says("{sound|mp4}: no video stream")),
    "truncated video": Case(colorize("{half|mp4}", "--ref", "{campus2|jpg}", "-o", "{out}/"),
                            says("{half|mp4}: the video ends early: ")),
    "video to an image file": Case(colorize("{clip|mp4}", "--ref", "{campus2|jpg}", "-o", "{out}/x.png"),
                                   says("-o {out}/x.png: a video needs a video suffix")),
    "frames folder taken": Case(colorize("{clip|mp4}", "--ref", "{campus2|jpg}", "--frames", "{busy_frames}"),
                                says("{busy_frames}: holds 1 other file; --frames needs an empty folder")),
    "frames for photos only": Case(colorize("{campus1|jpg}", "--ref", "{campus2|jpg}", "--frames", "{out}"),
                                   says("--frames applies to video targets")),
    # palette
    "malformed colour": Case(command("palette", "{campus1|jpg}", "--colors", "#12345g", "-o", "{out}/"),
                             says("malformed colour '#12345g'")),
    "NaN weight in a palette file": Case(command("palette", "{campus1|jpg}", "--palette", "{nan|json}", "-o",
                                                 "{out}/"), says("{nan|json}: palette weights must be finite")),
    "infinite --shares": Case(command("palette", "{campus1|jpg}", "--colors", "#264653,#2a9d8f", "--shares",
                                      "inf,1", "-o", "{out}/"), says("weight 'inf' must be a finite number")),
    "--save-reference is -o": Case(command("palette", "{campus1|jpg}", "--colors", "#264653", "--save-reference",
                                           "{out}/s.png", "-o", "{out}/s.png"),
                                   says("{campus1|jpg} and --save-reference would both be written to {out}/s.png")),
    "--save-reference is the palette": Case(command("palette", "--palette", "{photo|png}", "--save-reference",
                                                    "{photo|png}"), says("{photo|png}: output path is an input")),
    "missing palette file": Case(command("palette", "{campus1|jpg}", "--palette", "{absent|gpl}", "-o", "{out}/"),
                                 says("{absent|gpl}: palette file not found")),
    # evaluate
    "evaluate report over the photo": Case(command("evaluate", "{campus1|jpg}", "--json-out", "{campus1|jpg}"),
                                           says("{campus1|jpg}: output path is an input")),
    "evaluate sheet over a photo": Case(command("evaluate", "{photos}", "--sheet", "{photos}/b.png"),
                                        says("{photos}/b.png: output path is an input")),
    "evaluate two reports, one file": Case(command("evaluate", "{campus1|jpg}", "--json-out", "{out}/r",
                                                   "--csv", "{out}/r"), says("would both be written to {out}/r")),
    "evaluate missing input": Case(command("evaluate", "{absent}"), says("{absent}: no such file or folder")),
    "evaluate seed 2**70": Case(command("evaluate", "{campus1|jpg}", "--seed", 2**70),
                                says("--seed must be between 0 and 2**64-1")),
    # bench and train
    "bench folder without images": Case(command("bench", "--device", "cpu", "--config", "tiny", "--folder",
                                                "{empty_folder}"), says("no images or videos found in {empty_folder}")),
    "train run inside the photos": Case(command("train", "{photos}", "--out", "{photos}/run"),
                                        says("{photos}/run: the run folder is inside the photo folder")),
    "train class pairs without classes": Case(command("train", "{photos}", "--out", "{run}", "--config", "tiny",
                                                      "--class-share", "0.3"),
                                              says("{photos}: class pairs need class subfolders")),
    "train class share above 1": Case(command("train", "{photos}", "--out", "{run}", "--class-share", "1.5"),
                                      says("--class-share 1.5: must be between 0 and 1")),
    "train over its --init weights": Case(command("train", "{photos}", "--out", "{run}", "--init",
                                                  "{run}/model.safetensors"),
                                          says("{run}/model.safetensors: output path is an input")),
}


@pytest.mark.parametrize("kind", list(CASES))
def test_bad_input(world, invoke_sscn, kind):
    case = CASES[kind]
    before = _digests(world.root)
    result = invoke_sscn(*case.args(world), input=case.stdin)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    assert result.exit_code == case.code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == case.lines and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith("sscn: error: ") and case.message(world) in lines[0], result.stderr
    assert _digests(world.root) == before, "an input was modified"
    for folder in (world.root, world.out):
        assert not list(folder.rglob("*.part")) if folder.exists() else True


def test_there_are_at_least_forty_kinds():
    assert len(CASES) >= 40


def test_old_evaluate_json_spelling(world, invoke_sscn, tmp_path):
    """`evaluate --json PATH` (before --json became a flag) still writes the file, with a deprecation line."""
    report = tmp_path / "scores.json"
    result = invoke_sscn("evaluate", world["campus1.jpg"], "--methods", "copy-gray", "--json", report)
    assert result.exit_code == 0, result.stderr
    assert "--json PATH is deprecated; use --json-out PATH" in result.stderr
    assert json.loads(report.read_text())["methods"] == ["copy-gray"] and result.stdout == ""
    flag = invoke_sscn("evaluate", world["campus1.jpg"], "--methods", "copy-gray", "--json")
    assert flag.exit_code == 0 and json.loads(flag.stdout)["methods"] == ["copy-gray"]
