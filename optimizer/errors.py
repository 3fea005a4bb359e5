"""Errors that reach the user as one line, never as a traceback."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable


class RackoptError(Exception):
    """Base of every error the CLI reports in one line; ``exit_code`` is what it exits with."""

    exit_code = 1


class InstanceError(RackoptError):
    """A bad instance file: names the file, the line when known, the field path and the fix."""

    exit_code = 2

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
    """The solver found no feasible layout (infeasible demand, or no incumbent in time)."""

    exit_code = 3


class LayoutCheckError(RackoptError):
    """A layout failed the independent check; it is never written."""

    exit_code = 4


class OutputError(RackoptError):
    """A result could not be written (disk full, no permission); nothing half-written stays."""

    exit_code = 74
