"""One-line errors, exit codes and signal handling shared by every subcommand.

Exit codes: 0 success; 1 some items failed (folder runs) or a quality gate failed; 2 bad input or usage
(unreadable file, malformed colour, missing weights, ...); 128 + the signal's number when stopped by one:
130 Ctrl-C (SIGINT), 143 SIGTERM, 129 SIGHUP. Every stop is handled alike: writes under way are discarded
(their temporary files removed), finished outputs are kept, and a re-run resumes.
"""
from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Iterator
from types import FrameType

import typer

EXIT_FAILED_ITEMS = 1
EXIT_BAD_INPUT = 2
_TERMINATING = (signal.SIGTERM, signal.SIGHUP)


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


@contextlib.contextmanager
def reported_errors(debug: bool) -> Iterator[None]:
    """Turn exceptions into one line on stderr and an exit code; `--debug` re-raises with the traceback."""
    try:
        yield
    except typer.Exit:
        raise
    except KeyboardInterrupt as error:
        fail(f"interrupted ({error.args[0]})" if isinstance(error, Terminated) else "interrupted")
        raise typer.Exit(interrupted_exit_code(error)) from None
    except CLIError as error:
        if debug:
            raise
        fail(str(error))
        raise typer.Exit(error.exit_code) from None
    except (ValueError, OSError, RuntimeError) as error:
        if debug:
            raise
        fail(str(error) or type(error).__name__)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    finally:
        outputs = sys.modules.get("sscn.models.outputs")    # the inputs a command protects are its own
        if outputs is not None:
            outputs.unprotect_all()


def stderr_is_terminal() -> bool:
    return sys.stderr.isatty()
