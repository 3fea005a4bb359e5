"""Errors that reach the user as one line, never as a traceback, and the exit codes.

Each outcome a user can meet has its own error class and its own exit code, so that
callers (the CLI, ``batch``, scripts) tell outcomes apart with ``isinstance``, never by
reading message text. :data:`EXIT_CODES` is the one table of codes; README.md,
docs/instance-format.md, docs/verification.md and :mod:`optimizer.cli.options` print it
word for word (tests/test_pipeline.py checks that they do).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Sequence

EXIT_OK = 0
EXIT_VIOLATIONS = 1
EXIT_INVALID_INPUT = 2
EXIT_INFEASIBLE = 3
EXIT_CHECK_FAILED = 4
EXIT_NO_LAYOUT_IN_TIME = 5
EXIT_UNAVAILABLE = 69
"""EX_UNAVAILABLE of sysexits.h: something rackopt needs from its surroundings is missing."""
EXIT_INTERNAL = 70
"""EX_SOFTWARE: a bug in rackopt."""
EXIT_WRITE_FAILED = 74
"""EX_IOERR: an output could not be written."""
EXIT_INTERRUPTED = 130
"""128 + SIGINT, as a shell reports a command stopped by Ctrl-C."""

EXIT_CODES: dict[int, str] = {
    EXIT_OK: "success",
    EXIT_VIOLATIONS: "`verify` found violations (each printed with its load, limit and excess)",
    EXIT_INVALID_INPUT: "invalid input: instance, study, layout or option "
    "(one line: file, field, fix)",
    EXIT_INFEASIBLE: "infeasible demand (the shortfalls are listed); "
    "`batch`: a scenario has no layout",
    EXIT_CHECK_FAILED: "a layout failed the independent check; nothing written "
    "(a bug: please report it)",
    EXIT_NO_LAYOUT_IN_TIME: "no layout in time: the time limit came before any layout was found",
    EXIT_UNAVAILABLE: "environment: dask scheduler unreachable, TLS files unusable, "
    "extra not installed",
    EXIT_INTERNAL: "internal error: a bug in rackopt (rerun with `--debug` and report it)",
    EXIT_WRITE_FAILED: "an output could not be written (disk full, no permission); "
    "nothing half-written",
    EXIT_INTERRUPTED: "interrupted by Ctrl-C: `solve` writes its best layout if any, "
    "`batch` finished ones",
}
"""Every exit code of ``rackopt`` with its meaning, in the words the docs use."""


class RackoptError(Exception):
    """Base of every error the CLI reports in one line; ``exit_code`` is what it exits with.

    Only its subclasses are raised: a bare RackoptError would be an outcome without a
    name, so it counts as a bug (70)."""

    exit_code = EXIT_INTERNAL


class InstanceError(RackoptError):
    """Invalid input: names the file (an instance, study or layout file, or a command-line
    option), the line when known, the field path and the fix."""

    exit_code = EXIT_INVALID_INPUT

    def __init__(
        self, file: str, field: str, problem: str, fix: str = "", line: int | None = None
    ) -> None:
        self.file = file
        self.field = field
        self.problem = problem
        self.fix = fix
        self.line = line
        where = f"{file}:{line}" if line else file
        text = f"{where}: {field}: {problem}" if field else f"{where}: {problem}"
        if fix:
            text += f" (fix: {fix})"
        super().__init__(one_printable_line(text))


def one_printable_line(text: str) -> str:
    """``text`` as one line a terminal shows as written: the CLI promises one line, and a
    message quoting the input (a key like ``"\\e[2J"``) must neither break it nor send
    control sequences to the terminal. Line breaks and tabs become spaces; every other
    character that is not printable is escaped as Python writes it (``\\x1b``)."""
    text = " ".join(text.splitlines()).replace("\t", " ")
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


ErrorAt = Callable[[tuple[str, ...], str, str], InstanceError]
"""Makes the error for (field path, problem, fix), located at the line that defines it."""


class FieldProblem(ValueError):
    """A problem found while validating one field, with its fix kept apart.

    Schema validators and the catalog raise it so the loader can report problem and
    fix in the usual shape instead of pydantic's "Value error, ..." wording.
    ``field`` names a sub-field when the problem sits below the value being checked.
    """

    def __init__(self, problem: str, fix: str, field: str | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix
        self.field = field


def closest(name: str, known: Iterable[str]) -> str | None:
    """The known name ``name`` is most likely a misspelling of, if any is close."""
    close = difflib.get_close_matches(name, [str(k) for k in known], n=1, cutoff=0.6)
    return close[0] if close else None


def choices(known: Iterable[str], listed: int = 8) -> str:
    """Known names for a message, cut short when there are many."""
    names = [str(k) for k in known]
    if not names:
        return "(none defined)"
    more = f", ... ({len(names)} in all)" if len(names) > listed else ""
    return ", ".join(names[:listed]) + more


def did_you_mean(name: str, known: Iterable[str], otherwise: str | None = None) -> str:
    """A fix for a misspelt name: the closest known name, else ``otherwise`` (by default
    the list of known names)."""
    names = list(known)
    close = closest(name, names)
    if close:
        return f"did you mean {close!r}?"
    return otherwise or f"use one of: {choices(names)}"


class NoLayoutError(RackoptError):
    """No layout came out of a solve; the subclasses say why. Raised as such only by
    ``batch`` when some scenarios of a study have no layout."""

    exit_code = EXIT_INFEASIBLE


class InfeasibleError(NoLayoutError):
    """The demand minimums cannot all be met; ``details`` are the findings that explain it
    (the resources that fall short), printed one per line under the message."""

    exit_code = EXIT_INFEASIBLE

    def __init__(self, message: str, details: Sequence[str] = ()) -> None:
        self.message = message
        self.details = tuple(details)
        super().__init__("\n".join([message, *(f"  {line}" for line in self.details)]))

    def one_line(self) -> str:
        """Message and details on one line, for a table cell or a dataset variable."""
        return " ".join([self.message, "; ".join(self.details)]) if self.details else self.message


class NoLayoutInTimeError(NoLayoutError):
    """The solve stopped at its time limit before it found any layout: more time may
    find one, unlike an infeasible demand, hence a code of its own."""

    exit_code = EXIT_NO_LAYOUT_IN_TIME


class LayoutCheckError(RackoptError):
    """A layout failed the independent check; it is never written."""

    exit_code = EXIT_CHECK_FAILED


class OutputError(RackoptError):
    """A result could not be written (disk full, no permission); nothing half-written stays."""

    exit_code = EXIT_WRITE_FAILED


class Interrupted(RackoptError):
    """Ctrl-C stopped the work before there was anything to keep (a solve before its first
    layout). A solve stopped after it found one writes that layout instead."""

    exit_code = EXIT_INTERRUPTED


class InternalError(RackoptError):
    """rackopt, or a library it drives, failed in a way no input explains: a bug."""

    exit_code = EXIT_INTERNAL


class UnavailableError(RackoptError):
    """Something rackopt needs from its surroundings is missing: an unreachable dask
    scheduler, TLS files that cannot be used, an optional package not installed. Not the
    input's fault and not a bug."""

    exit_code = EXIT_UNAVAILABLE
