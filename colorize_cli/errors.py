"""One-line errors, exit codes and signal handling shared by every subcommand.

Exit codes:
  0    success
  1    some items failed (folder runs), or a quality gate failed
  2    bad input or usage: an unreadable or malformed file, a bad option value, missing or corrupt weights,
       a missing package, torch.compile failing here, or out of memory (a smaller --batch-size or --size)
  70   internal error (EX_SOFTWARE): anything else, a bug in sscn; one line asks for a report
  128 + the signal's number when stopped by one: 130 Ctrl-C (SIGINT), 143 SIGTERM, 129 SIGHUP

The policy is decided here, once, for every command (`reported_errors`) and for the items of a folder run
(`item_error`): bad input and out of memory are the user's to fix and are said in one line; anything else is
reported as an internal error. `--debug` re-raises every error, whatever its kind, so Python prints the
traceback. Every stop is handled alike: writes under way are discarded (their temporary files removed),
finished outputs are kept, and a re-run resumes.
"""
from __future__ import annotations

import contextlib
import re
import signal
import sys
from collections.abc import Iterator
from types import FrameType

import typer

EXIT_FAILED_ITEMS = 1
EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 70      # sysexits.h EX_SOFTWARE
_TERMINATING = (signal.SIGTERM, signal.SIGHUP)
# torch's allocators say it in their messages: "CUDA out of memory", "DefaultCPUAllocator: can't allocate memory"
_OUT_OF_MEMORY = re.compile(r"out of memory|can't allocate memory", re.IGNORECASE)


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised in the main thread so that they unwind (and clean up) like Ctrl-C."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _terminate(signum: int, frame: FrameType | None) -> None:
    for other in _TERMINATING:      # once: a second signal must not cut the clean-up short
        signal.signal(other, signal.SIG_IGN)
    raise Terminated(signum)


def handle_termination() -> None:
    """Stop on SIGTERM and SIGHUP as on Ctrl-C (Python's default is to die at once, leaving temporary files);
    a signal ignored on entry (`nohup sscn ...`) stays ignored."""
    for signum in _TERMINATING:
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, _terminate)


def interrupted_exit_code(error: KeyboardInterrupt) -> int:
    return 128 + getattr(error, "signum", signal.SIGINT)


class CLIError(Exception):
    """A problem to report as one line (naming the file) with an exit code, never a traceback."""

    def __init__(self, message: str, exit_code: int = EXIT_BAD_INPUT) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def fail(message: str) -> None:
    typer.echo(f"sscn: error: {message}", err=True)


def warn(message: str) -> None:
    typer.echo(f"sscn: warning: {message}", err=True)


def _bad_input_types() -> tuple[type[BaseException], ...]:
    """What the user's input, options or installation cause: ValueError and OSError (the library's own errors
    derive from them: ImageError, VideoError, CheckpointError, OutputError), Pillow's and safetensors' errors on
    a bad file, torch.compile failing on this machine."""
    from PIL import Image
    from safetensors import SafetensorError

    from sscn.models.colorizer import CompileError

    return CLIError, ValueError, OSError, Image.DecompressionBombError, SafetensorError, CompileError


def _missing_package(error: BaseException) -> bool:
    """A package sscn needs is not installed (not one of sscn's own modules: that would be a bug)."""
    return isinstance(error, ModuleNotFoundError) and not (error.name or "sscn").startswith("sscn")


def out_of_memory(error: BaseException) -> bool:
    return isinstance(error, MemoryError) or (isinstance(error, RuntimeError)
                                              and _OUT_OF_MEMORY.search(str(error)) is not None)


def is_bad_input(error: BaseException) -> bool:
    """Bad input (or a missing package): `error`, or the error it was raised from (`raise ... from error`)."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, _bad_input_types()) or _missing_package(cause):
            return True
        cause = cause.__cause__
    return False


def is_bug(error: BaseException) -> bool:
    """Neither bad input nor out of memory: a bug in sscn."""
    return not (is_bad_input(error) or out_of_memory(error))


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def explain(error: Exception) -> tuple[str, int]:
    """The one line (after "sscn: ") and the exit code that report `error`."""
    if isinstance(error, CLIError):
        return f"error: {error}", error.exit_code
    if out_of_memory(error):
        return (f"error: out of memory ({_first_line(str(error)) or type(error).__name__}); a smaller --batch-size "
                "or --size needs less"), EXIT_BAD_INPUT
    if is_bad_input(error):
        return f"error: {str(error) or type(error).__name__}", EXIT_BAD_INPUT
    what = ": ".join(part for part in (type(error).__name__, _first_line(str(error))) if part)
    return f"internal error: {what} (a bug; rerun with --debug for the traceback and report it)", EXIT_INTERNAL


def item_error(error: Exception, debug: bool) -> None:
    """The policy for one item of a run (a photo, a batch, a video): returns when `error` fails that item alone
    (bad input, out of memory); re-raises it to stop the run with --debug (its traceback shows), when it is a bug,
    and when it would fail every item alike (a CLIError, torch.compile failing)."""
    from sscn.models.colorizer import CompileError

    if debug or is_bug(error) or isinstance(error, (CLIError, CompileError)):
        raise error


@contextlib.contextmanager
def reported_errors(debug: bool) -> Iterator[None]:
    """Turn exceptions into one line on stderr and an exit code (`explain`); `--debug` re-raises them all, so
    the traceback shows."""
    try:
        yield
    except (typer.Exit, typer.Abort):
        raise
    except KeyboardInterrupt as error:
        fail(f"interrupted ({error.args[0]})" if isinstance(error, Terminated) else "interrupted")
        raise typer.Exit(interrupted_exit_code(error)) from None
    except Exception as error:
        if debug:
            raise
        line, code = explain(error)
        typer.echo(f"sscn: {line}", err=True)
        raise typer.Exit(code) from None
    finally:
        outputs = sys.modules.get("sscn.models.outputs")    # the inputs a command protects are its own
        if outputs is not None:
            outputs.unprotect_all()


def stderr_is_terminal() -> bool:
    return sys.stderr.isatty()
