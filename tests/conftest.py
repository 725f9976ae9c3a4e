"""Shared fixtures: bundled real photos, a tiny random checkpoint, a runner for the installed `sscn`, and one
that runs it in-process."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

DATA = Path(__file__).parent / "data"


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def photo_paths() -> list[Path]:
    return sorted(DATA.glob("*.jpg"))


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> Path:
    """A `tiny` SSCN with fixed random weights, saved as an fp16 safetensors checkpoint."""
    from sscn.models import SSCN, get_config, save_checkpoint

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    save_checkpoint(SSCN(get_config("tiny")), path)
    return path


def sscn_command() -> list[str]:
    """The installed console script next to this interpreter (falls back to `python -m sscn`)."""
    script = Path(sys.executable).parent / "sscn"
    if script.exists():
        return [str(script)]
    found = shutil.which("sscn")
    return [found] if found else [sys.executable, "-m", "sscn"]


@pytest.fixture(scope="session")
def run_sscn():
    """run_sscn(*args, input=None, cwd=None) -> CompletedProcess with text stdout/stderr."""
    base = sscn_command()

    def run(*args, input: str | None = None, cwd: Path | None = None, timeout: float = 600):
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        return subprocess.run([*base, *map(str, args)], input=input, capture_output=True, text=True,
                              cwd=cwd, env=env, timeout=timeout)

    return run


@pytest.fixture(scope="session")
def invoke_sscn():
    """invoke_sscn(*args, input=None) -> typer's Result of `sscn` run in-process (typer's CliRunner: no interpreter
    start-up), keeping this process's SIGTERM and SIGHUP handlers (the app installs its own)."""
    from typer.testing import CliRunner

    from sscn.cli.app import app

    def invoke(*args, input: str | None = None):
        handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGHUP)}
        try:
            return CliRunner().invoke(app, [str(arg) for arg in args], input=input)
        finally:
            for signum, handler in handlers.items():
                signal.signal(signum, handler)

    return invoke
