"""One-line errors and exit codes shared by every subcommand.

Exit codes: 0 success; 1 some items failed (folder runs) or a quality gate failed; 2 bad input or usage
(unreadable file, malformed colour, missing weights, ...); 130 interrupted.
"""
from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

import typer

EXIT_FAILED_ITEMS = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


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
    except KeyboardInterrupt:
        fail("interrupted")
        raise typer.Exit(EXIT_INTERRUPTED) from None
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


def stderr_is_terminal() -> bool:
    return sys.stderr.isatty()
