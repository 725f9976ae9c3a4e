"""The options of the commands: `colorize` and `palette` declare one shared set (`RunOptions`), choices in help
texts come from the registries that check them, and `--weights` is the model file everywhere (palette's colour
shares are `--shares`; the old spellings `--model PATH` and `palette --weights 0.5,0.3,0.2` still work, hidden,
each with a one-line notice)."""
from __future__ import annotations

import dataclasses
import shutil

import pytest
import typer

from sscn.cli.app import app
from sscn.cli.run_options import RunOptions
from sscn.constants import ATTENTION_MODES
from sscn.models.runtime import PRECISIONS
from sscn.models.config import CONFIGS, ENCODERS
from sscn.models.library import DESCRIPTORS
from sscn.models.references import BUDGETS
from sscn.models.upsample import UPSAMPLERS
from sscn.train.methods import METHODS
from sscn.train.run_setup import TRAIN_PRECISIONS

MODEL_NOTICE = "sscn: warning: --model is deprecated; use --weights PATH"
SHARES_NOTICE = "sscn: warning: --weights 0.5,0.3,... for colour shares is deprecated; use --shares"


def _params(command: str) -> dict:
    return {param.name: param for param in typer.main.get_command(app).commands[command].params}


def _declared(param) -> dict:
    """What a parameter declares: its names, default, help, flags... (the plain values among its attributes)."""
    return {name: value for name, value in vars(param).items()
            if isinstance(value, (str, int, float, bool, list, tuple, type(None)))}


def test_colorize_and_palette_declare_one_option_set():
    colorize, palette = _params("colorize"), _params("palette")
    shared = [field.name for field in dataclasses.fields(RunOptions)]
    for name in shared:
        assert _declared(colorize[name]) == _declared(palette[name]), name
    assert set(colorize) - set(shared) == {"ref", "ref_budget", "ref_dir", "ref_count", "match_by", "shot_threshold",
                                           "pairs"}
    assert set(palette) - set(shared) == {"colors", "palette_file", "shares", "count", "save_reference"}
    assert colorize["weights"].opts == ["--weights"] and colorize["model"].hidden


@pytest.mark.parametrize("command, option, registry", [
    ("colorize", "precision", PRECISIONS), ("colorize", "upsample", UPSAMPLERS), ("palette", "precision", PRECISIONS),
    ("colorize", "ref_budget", BUDGETS), ("colorize", "match_by", DESCRIPTORS),
    ("evaluate", "precision", PRECISIONS), ("evaluate", "upsample", UPSAMPLERS), ("evaluate", "methods", METHODS),
    ("bench", "precision", PRECISIONS), ("bench", "config", CONFIGS), ("bench", "modes", ATTENTION_MODES),
    ("train", "precision", TRAIN_PRECISIONS), ("train", "config", CONFIGS), ("train", "encoder", ENCODERS),
])
def test_help_names_the_registrys_choices(command, option, registry):
    help_text = _params(command)[option].help
    assert all(name in help_text for name in registry), help_text


def test_defaults_follow_the_registries():
    assert _params("evaluate")["methods"].default == ",".join(METHODS)
    assert _params("bench")["modes"].default == ",".join(ATTENTION_MODES)


def test_old_spellings_are_hidden(run_sscn):
    for command in ("colorize", "palette"):
        result = run_sscn(command, "--help")
        assert "--weights" in result.stdout and "--model" not in result.stdout
    assert "--shares" in run_sscn("palette", "--help").stdout


@pytest.fixture
def photo(tmp_path, data_dir):
    shutil.copy(data_dir / "campus1.jpg", tmp_path / "campus1.jpg")
    return tmp_path / "campus1.jpg"


def _palette(invoke_sscn, photo, out, *spelling):
    return invoke_sscn("palette", photo, "--colors", "#e63946,#f1faee,#a8dadc", "--size", 64, "-o", out,
                       "--save-reference", out.with_name(out.stem + "_swatch.png"), *spelling)


def test_palette_spellings_old_and_new(invoke_sscn, photo, tiny_weights, tmp_path):
    """`--shares S --weights M` and the old `--weights S --model M` make the same swatch and the same output."""
    new = _palette(invoke_sscn, photo, tmp_path / "new.png", "--shares", "0.5,0.3,0.2", "--weights", tiny_weights)
    assert new.exit_code == 0 and "warning" not in new.stderr, new.stderr
    old = _palette(invoke_sscn, photo, tmp_path / "old.png", "--weights", "0.5,0.3,0.2", "--model", tiny_weights)
    assert old.exit_code == 0, old.stderr
    notices = old.stderr.splitlines()[:2]
    assert notices[0].startswith(SHARES_NOTICE) and notices[1].startswith(MODEL_NOTICE)
    for name in ("new", "old"):
        assert (tmp_path / f"{name}.png").exists()
    assert (tmp_path / "new.png").read_bytes() == (tmp_path / "old.png").read_bytes()
    assert (tmp_path / "new_swatch.png").read_bytes() == (tmp_path / "old_swatch.png").read_bytes()


def test_colorize_takes_the_old_model_spelling(invoke_sscn, photo, data_dir, tiny_weights, tmp_path):
    result = invoke_sscn("colorize", photo, "--ref", data_dir / "campus2.jpg", "--model", tiny_weights, "--size", 64,
                         "-o", tmp_path / "out.png")
    assert result.exit_code == 0 and result.stderr.startswith(MODEL_NOTICE), result.stderr
    assert (tmp_path / "out.png").exists()


@pytest.mark.parametrize("spelling, message", [
    (["--weights", "absent.safetensors"], "absent.safetensors: weights file not found"),    # a path, not shares
    (["--weights", "{tiny}", "--model", "{tiny}"], "give the model file once: --weights (--model is its old name)"),
    (["--weights", "0.5,0.5", "--shares", "0.5,0.5"], "give the colour shares once: --shares"),
    (["--shares", "1,2"], "2 weights for 3 colours"),
])
def test_palette_spelling_errors(invoke_sscn, photo, tiny_weights, tmp_path, monkeypatch, spelling, message):
    monkeypatch.chdir(tmp_path)
    spelling = [str(arg).format(tiny=tiny_weights) for arg in spelling]
    result = invoke_sscn("palette", photo, "--colors", "#e63946,#f1faee,#a8dadc", "-o", tmp_path / "out.png",
                         *spelling)
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1].startswith("sscn: error: ") and message in result.stderr
    assert not (tmp_path / "out.png").exists()


def test_a_file_named_like_numbers_is_the_model(invoke_sscn, photo, tiny_weights, tmp_path, monkeypatch):
    """`--weights 0.5` names the model file when such a file exists; only a value naming no file is read as
    the old shares spelling."""
    monkeypatch.chdir(tmp_path)
    shutil.copy(tiny_weights, tmp_path / "0.5")
    result = invoke_sscn("palette", photo, "--colors", "#e63946", "--weights", "0.5", "--size", 64,
                         "-o", tmp_path / "out.png")
    assert result.exit_code == 0 and "warning" not in result.stderr, result.stderr
