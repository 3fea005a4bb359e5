"""Errors that reach the user as one line, never as a traceback."""

from __future__ import annotations


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
        super().__init__(text)


class NoLayoutError(RackoptError):
    """The solver found no feasible layout (infeasible demand, or no incumbent in time)."""

    exit_code = 3


class LayoutCheckError(RackoptError):
    """A layout failed the independent check; it is never written."""

    exit_code = 4
